//! Instance audit: which client (app, cluster, data center, ip) fetched which release.
//! Recorded off the request path: a bounded queue feeds one writer thread; repeated fetches
//! of the same release are written at most every 10 minutes.
//!
//! Every field of a record is chosen by an anonymous client, so the table is bounded: fields
//! must pass a length and charset rule (a record that fails is not kept; the configuration
//! is still served), records are capped per (env, client app) and in all (a full app drops
//! new instances of that app only), records not refreshed within the expiry are pruned by
//! the writer thread, and the in-memory "seen" map holds at most as many entries as the
//! table may hold records. The same thread keeps the audit log within its bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::model::InstanceConfig;
use crate::domain::names::is_valid_name;
use crate::store::{Record, Repo};

/// Refresh interval of an unchanged instance record.
const REFRESH_MS: i64 = 10 * 60 * 1000;
/// Instances seen within this window count as live in views.
pub const LIVE_WINDOW_MS: i64 = 25 * 60 * 60 * 1000;
/// How often the writer deletes expired records when idle or busy.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);
/// Least time between two prunes forced by a full table, so a flood cannot make every
/// fetch scan the table.
const PRUNE_WHEN_FULL_EVERY: Duration = Duration::from_secs(60);
/// Longest app id or cluster name recorded (the name rule's bound).
const NAME_MAX: usize = 128;
/// Longest data center or ip recorded: enough for any IPv6 address with a zone, or a host
/// name label.
const TOKEN_MAX: usize = 64;

/// Bounds of the instance table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most records per (env, client app).
    pub per_app: usize,
    /// Most records in all; also the size of the in-memory "seen" map.
    pub total: usize,
    /// Records not refreshed for this long are deleted.
    pub expiry_ms: i64,
    /// Most audit entries kept: the same thread deletes the oldest beyond it (failed sign-ins
    /// are audited and anyone may cause them, so the audit log needs a bound too).
    pub audit_max: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { per_app: 20_000, total: 200_000, expiry_ms: 7 * 24 * 60 * 60 * 1000, audit_max: 1_000_000 }
    }
}

/// Letters, digits and `. _ - :` (`:` for IPv6, `%` for an IPv6 zone): what an address, a
/// host name or a data-center label is made of.
fn is_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '%'))
}

/// True when every client-chosen field of `rec` passes its rule.
pub fn recordable(rec: &InstanceConfig) -> bool {
    let name = |s: &str| s.len() <= NAME_MAX && is_valid_name(s);
    name(&rec.app_id)
        && name(&rec.cluster)
        && (rec.data_center.is_empty() || is_token(&rec.data_center, TOKEN_MAX))
        && is_token(&rec.ip, TOKEN_MAX)
}

enum Job {
    Record(String, Box<InstanceConfig>),
    Flush(SyncSender<()>),
}

/// Queues instance records for the writer thread.
pub struct InstanceRecorder {
    /// Hash of (env, instance, config app, namespace) → (release key, last written).
    seen: Mutex<HashMap<u64, (String, i64)>>,
    limits: Limits,
    /// Records in the store, as the writer counts them.
    stored: Arc<AtomicUsize>,
    tx: SyncSender<Job>,
}

impl InstanceRecorder {
    /// Starts the writer thread.
    pub(crate) fn start(store: Arc<dyn Repo>, limits: Limits) -> InstanceRecorder {
        let (tx, rx) = sync_channel(10_000);
        let stored = Arc::new(AtomicUsize::new(0));
        let counted = stored.clone();
        let spawned = std::thread::Builder::new()
            .name("cairn-instances".into())
            .spawn(move || Writer::new(store, limits, counted).run(rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the instance-audit writer; instances will not be recorded");
        }
        InstanceRecorder { seen: Mutex::new(HashMap::new()), limits, stored, tx }
    }

    /// Notes that `rec` was served; cheap when nothing changed. Records whose fields break
    /// the rules are dropped.
    pub(crate) fn record(&self, env: &str, rec: InstanceConfig) {
        if !recordable(&rec) {
            tracing::debug!("client instance with an invalid ip, data center, cluster or app id not recorded");
            return;
        }
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
                    if seen.len() >= self.limits.total {
                        // Entries older than the refresh interval would be rewritten anyway.
                        let fresh_since = rec.last_seen - REFRESH_MS;
                        seen.retain(|_, (_, at)| *at > fresh_since);
                    }
                    if seen.len() >= self.limits.total {
                        // Full of fresh entries: a flood of distinct clients. Forgetting them
                        // all costs live clients one extra (capped) write each, where keeping
                        // them would shut new clients out until the entries age.
                        seen.clear();
                    }
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

    /// Records in the store, as last counted (does not wait for the queue).
    pub(crate) fn stored(&self) -> usize {
        self.stored.load(Ordering::Relaxed)
    }

    /// (records stored, entries in the "seen" map), after the queue is drained.
    pub(crate) fn counts(&self) -> (usize, usize) {
        self.flush();
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).len();
        (self.stored.load(Ordering::Relaxed), seen)
    }
}

/// The writer thread's state: record counts per (env, client app) and in all.
struct Writer {
    store: Arc<dyn Repo>,
    limits: Limits,
    per_app: HashMap<(String, String), usize>,
    total: Arc<AtomicUsize>,
    last_prune: Option<Instant>,
}

impl Writer {
    fn new(store: Arc<dyn Repo>, limits: Limits, total: Arc<AtomicUsize>) -> Writer {
        Writer { store, limits, per_app: HashMap::new(), total, last_prune: None }
    }

    fn run(mut self, rx: Receiver<Job>) {
        self.prune();
        loop {
            match rx.recv_timeout(PRUNE_EVERY) {
                // The queue is FIFO: everything sent before this is in the store now.
                // Durability is the caller's business (`Cairn::flush` flushes afterwards).
                Ok(Job::Flush(done)) => {
                    let _ = done.send(());
                }
                Ok(Job::Record(env, rec)) => self.write(&env, *rec),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if self.last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                self.prune();
            }
        }
    }

    fn full(&self, env: &str, app: &str) -> bool {
        self.total.load(Ordering::Relaxed) >= self.limits.total
            || self.per_app.get(&(env.to_string(), app.to_string())).is_some_and(|n| *n >= self.limits.per_app)
    }

    fn write(&mut self, env: &str, mut rec: InstanceConfig) {
        let old = match self.store.instance(env, &rec) {
            Ok(old) => old,
            Err(e) => {
                tracing::warn!(error = %e, "could not read a client instance");
                return;
            }
        };
        match &old {
            Some(old) if old.release_key == rec.release_key => rec.release_delivery_time = old.release_delivery_time,
            Some(_) => {}
            None if self.full(env, &rec.app_id) => {
                if self.last_prune.is_none_or(|t| t.elapsed() >= PRUNE_WHEN_FULL_EVERY) {
                    self.prune();
                }
                if self.full(env, &rec.app_id) {
                    tracing::debug!(env, app = %rec.app_id, "instance table full; client instance not recorded");
                    return;
                }
            }
            None => {}
        }
        let app = rec.app_id.clone();
        let result = self.store.write_unlocked(vec![Record::Instance { env: env.to_string(), instance: rec }]);
        match result {
            Ok(()) if old.is_none() => {
                *self.per_app.entry((env.to_string(), app)).or_default() += 1;
                self.total.fetch_add(1, Ordering::Relaxed);
            }
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, "could not record a client instance"),
        }
    }

    /// Deletes records not refreshed within the expiry, and recounts what is left.
    fn prune(&mut self) {
        self.last_prune = Some(Instant::now());
        let cutoff = crate::domain::time::now_ms().saturating_sub(self.limits.expiry_ms);
        let records = match self.store.instances(None) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not scan client instances for expiry");
                return;
            }
        };
        let mut per_app: HashMap<(String, String), usize> = HashMap::new();
        let mut total = 0;
        let mut deletes = Vec::new();
        for (env, rec) in records {
            if rec.last_seen < cutoff {
                deletes.push(Record::DeleteInstance { env, instance: rec });
                continue;
            }
            *per_app.entry((env, rec.app_id)).or_default() += 1;
            total += 1;
        }
        let expired = deletes.len();
        if expired > 0 {
            match self.store.write_unlocked(deletes) {
                Ok(()) => tracing::info!(expired, "expired client-instance records deleted"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not delete expired client instances");
                    total += expired;
                }
            }
        }
        self.per_app = per_app;
        self.total.store(total, Ordering::Relaxed);
        match self.store.prune_audit(self.limits.audit_max) {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, kept = self.limits.audit_max, "oldest audit entries deleted"),
            Err(e) => tracing::warn!(error = %e, "could not prune the audit log"),
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
            .repo
            .instances(Some(env))?
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

    /// (client-instance records stored, entries in the in-memory "seen" map), once every
    /// record queued so far is written. For `/metrics` and tests of the bounds.
    pub fn instance_counts(&self) -> (usize, usize) {
        self.instances.counts()
    }

    /// Client-instance records stored, without waiting for queued ones (for `/metrics`).
    pub fn instance_records(&self) -> usize {
        self.instances.stored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ip: &str, dc: &str) -> InstanceConfig {
        InstanceConfig {
            app_id: "app".into(),
            cluster: "default".into(),
            data_center: dc.into(),
            ip: ip.into(),
            config_app_id: "app".into(),
            config_cluster: "default".into(),
            config_namespace: "application".into(),
            release_key: "k".into(),
            release_delivery_time: 0,
            last_seen: 0,
        }
    }

    #[test]
    fn records_past_the_expiry_are_pruned_when_the_writer_starts() {
        let store = crate::store::open_temporary().unwrap();
        let mut stale = rec("10.0.0.1", "");
        stale.last_seen = crate::domain::time::now_ms() - 2 * 86_400_000;
        let mut live = rec("10.0.0.2", "");
        live.last_seen = crate::domain::time::now_ms();
        let records = [&stale, &live].map(|r| Record::Instance { env: "DEV".into(), instance: r.clone() });
        store.write_unlocked(records.to_vec()).unwrap();
        let limits = Limits { expiry_ms: 86_400_000, ..Limits::default() };
        let recorder = InstanceRecorder::start(store.clone(), limits);
        assert_eq!(recorder.counts(), (1, 0));
        let left: Vec<InstanceConfig> = store.instances(None).unwrap().into_iter().map(|(_, r)| r).collect();
        assert_eq!(left, vec![live]);
    }

    #[test]
    fn the_oldest_audit_entries_beyond_the_bound_are_pruned_when_the_writer_starts() {
        let store = crate::store::open_temporary().unwrap();
        let entry = |id| crate::domain::model::AuditEntry {
            id,
            time: 0,
            actor: "t".into(),
            claimed_operator: None,
            action: "test".into(),
            env: None,
            target: String::new(),
            detail: String::new(),
        };
        store.write_unlocked((1..=25_000u64).map(|id| Record::Audit { entry: entry(id) }).collect()).unwrap();
        let limits = Limits { audit_max: 10_000, ..Limits::default() };
        let recorder = InstanceRecorder::start(store.clone(), limits);
        recorder.counts();
        let left: Vec<u64> = store.audit(&Default::default(), usize::MAX).unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(left.len(), 10_000);
        assert_eq!((left[9_999], left[0]), (15_001, 25_000), "the newest are kept");
        assert_eq!(store.prune_audit(10_000).unwrap(), 0, "nothing more to prune");
    }

    #[test]
    fn addresses_and_host_names_are_recordable_garbage_is_not() {
        for ip in ["10.1.2.3", "::1", "fe80::1%eth0", "host-1.example.com", "undefined"] {
            assert!(recordable(&rec(ip, "")), "{ip}");
        }
        for ip in ["", &"a".repeat(65), "a b", "<script>", "a\0b", "é"] {
            assert!(!recordable(&rec(ip, "")), "{ip:?}");
        }
        assert!(recordable(&rec("10.0.0.1", "dc-1")));
        assert!(!recordable(&rec("10.0.0.1", &"d".repeat(65))));
        assert!(!recordable(&rec("10.0.0.1", "dc/1")));
    }
}
