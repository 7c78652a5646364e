//! Instance audit: which client (app, cluster, data center, ip) fetched which release.
//! Recorded off the request path: a bounded queue feeds one writer thread; repeated fetches
//! of the same release are written at most every 10 minutes.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use crate::domain::model::InstanceConfig;
use crate::store::{keys, Store, WriteSet, T};

/// Refresh interval of an unchanged instance record.
const REFRESH_MS: i64 = 10 * 60 * 1000;
/// Instances seen within this window count as live in views.
pub const LIVE_WINDOW_MS: i64 = 25 * 60 * 60 * 1000;

enum Job {
    Record(String, Box<InstanceConfig>),
    Flush(SyncSender<()>),
}

/// Queues instance records for the writer thread.
pub struct InstanceRecorder {
    /// Hash of (env, instance, config app, namespace) → (release key, last written).
    seen: Mutex<HashMap<u64, (String, i64)>>,
    tx: SyncSender<Job>,
}

impl InstanceRecorder {
    /// Starts the writer thread.
    pub(crate) fn start(store: Arc<Store>) -> InstanceRecorder {
        let (tx, rx) = sync_channel(10_000);
        let spawned = std::thread::Builder::new().name("cairn-instances".into()).spawn(move || writer(store, rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the instance-audit writer; instances will not be recorded");
        }
        InstanceRecorder { seen: Mutex::new(HashMap::new()), tx }
    }

    /// Notes that `rec` was served; cheap when nothing changed.
    pub(crate) fn record(&self, env: &str, rec: InstanceConfig) {
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (env, &rec.app_id, &rec.cluster, &rec.data_center, &rec.ip, &rec.config_app_id, &rec.config_namespace)
                .hash(&mut h);
            h.finish()
        };
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            match seen.get_mut(&key) {
                Some((release, at)) if *release == rec.release_key && rec.last_seen - *at < REFRESH_MS => return,
                Some(slot) => *slot = (rec.release_key.clone(), rec.last_seen),
                None => {
                    seen.insert(key, (rec.release_key.clone(), rec.last_seen));
                }
            }
        }
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Job::Record(env.to_string(), Box::new(rec))) {
            tracing::debug!("instance-audit queue full; record dropped");
        }
    }

    /// Waits until everything queued so far is written to the store (not flushed to disk).
    pub(crate) fn flush(&self) {
        let (done_tx, done_rx) = sync_channel(1);
        if self.tx.send(Job::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }
}

fn writer(store: Arc<Store>, rx: Receiver<Job>) {
    while let Ok(job) = rx.recv() {
        match job {
            // The queue is FIFO: everything sent before this is in the store now. Durability
            // is the caller's business (`Cairn::flush` flushes the store afterwards).
            Job::Flush(done) => {
                let _ = done.send(());
            }
            Job::Record(env, mut rec) => {
                let key = keys::instance(
                    &env,
                    &rec.app_id,
                    &rec.cluster,
                    &rec.data_center,
                    &rec.ip,
                    &rec.config_app_id,
                    &rec.config_namespace,
                );
                if let Ok(Some(old)) = store.get::<InstanceConfig>(T::Instances, &key) {
                    if old.release_key == rec.release_key {
                        rec.release_delivery_time = old.release_delivery_time;
                    }
                }
                let mut ws = WriteSet::new();
                let result = ws.put(T::Instances, key, &rec).and_then(|_| store.commit(ws, false));
                if let Err(e) = result {
                    tracing::warn!(error = %e, "could not record a client instance");
                }
            }
        }
    }
}

impl super::Cairn {
    /// Instances seen in the last 25 hours fetching a namespace of `app` (any client app).
    pub fn instances(&self, caller: &super::Caller, at: super::NsRef<'_>) -> super::Result<Vec<InstanceConfig>> {
        let super::NsRef { env, app, cluster, ns } = at;
        caller.require(super::auth::Permission::Read { app, ns, env })?;
        self.instances.flush();
        let since = crate::domain::time::now_ms() - LIVE_WINDOW_MS;
        Ok(self
            .store
            .scan::<InstanceConfig>(T::Instances, &keys::env(env))?
            .into_iter()
            .map(|(_, i)| i)
            .filter(|i| {
                i.config_app_id.eq_ignore_ascii_case(app)
                    && i.config_namespace.eq_ignore_ascii_case(ns)
                    && (i.config_cluster.eq_ignore_ascii_case(cluster) || i.cluster.eq_ignore_ascii_case(cluster))
                    && i.last_seen >= since
            })
            .collect())
    }
}
