//! Long polling: the release-message fan-out and the `/notifications` algorithms.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::domain::names::{strip_properties_suffix, DEFAULT_CLUSTER, NO_APP_ID_PLACEHOLDER};

use super::index::{live_key, Index};
use super::metrics::Metrics;
use super::Cairn;

/// A committed release message, or the shutdown signal (`id` < 0).
#[derive(Debug, Clone)]
pub struct Message {
    pub env: String,
    /// Canonical `app+cluster+namespace`.
    pub content: String,
    /// `content` in lower case, the form watch keys are compared in.
    pub key: String,
    pub id: i64,
    /// When the message was committed (for the fan-out latency metric).
    pub at: std::time::Instant,
}

impl Message {
    /// The signal that wakes every held poll with "not modified" at shutdown.
    fn shutdown() -> Message {
        let empty = String::new;
        Message { env: empty(), content: empty(), key: empty(), id: -1, at: std::time::Instant::now() }
    }

    fn is_shutdown(&self) -> bool {
        self.id < 0
    }
}

/// Broadcasts release messages to every held poll; each poll filters by its watch keys.
/// Shutdown travels on the same channel, so a held poll waits on one receiver only.
pub struct Notifier {
    tx: broadcast::Sender<Arc<Message>>,
    shutting_down: AtomicBool,
}

impl Notifier {
    pub(crate) fn new() -> Notifier {
        let (tx, _) = broadcast::channel(4096);
        Notifier { tx, shutting_down: AtomicBool::new(false) }
    }

    pub(crate) fn publish(&self, env: String, content: String, id: i64) {
        // No receivers is fine: nobody is polling.
        let key = content.to_ascii_lowercase();
        let _ = self.tx.send(Arc::new(Message { env, content, key, id, at: std::time::Instant::now() }));
    }

    pub(crate) fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let _ = self.tx.send(Arc::new(Message::shutdown()));
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// One namespace entry of a poll, as the client sent it.
#[derive(Debug, Clone)]
pub struct PollEntry {
    pub namespace: String,
    pub notification_id: i64,
}

/// A changed namespace in a poll answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    /// The client's own spelling.
    pub namespace: String,
    pub notification_id: i64,
    /// Canonical watch key → latest id.
    pub details: Vec<(String, i64)>,
}

/// A poll from one client process.
#[derive(Debug, Clone)]
pub struct PollRequest {
    pub env: String,
    pub app_id: String,
    pub cluster: String,
    pub data_center: Option<String>,
    pub entries: Vec<PollEntry>,
}

/// What one poll watches: per namespace (normalized name, client spelling, client id,
/// lower-case watch keys). Polls name few namespaces, so lookups are linear: no map to hold.
struct Watch {
    namespaces: Vec<(String, String, i64, Vec<String>)>,
}

impl Watch {
    fn find(&self, key_lower: &str) -> Option<&str> {
        self.namespaces.iter().find(|n| n.3.iter().any(|k| k == key_lower)).map(|n| n.1.as_str())
    }
}

fn watch_keys(index: &Index, app: &str, cluster: &str, dc: Option<&str>, ns: &str) -> Vec<String> {
    let mut apps: Vec<&str> = Vec::with_capacity(2);
    if app != NO_APP_ID_PLACEHOLDER {
        apps.push(app);
    }
    if let Some(owner) = index.public_owner(app, ns) {
        apps.push(owner);
    }
    let mut keys = Vec::with_capacity(apps.len() * 3);
    for a in apps {
        if cluster != DEFAULT_CLUSTER {
            keys.push(live_key(a, cluster, ns));
        }
        if let Some(dc) = dc.filter(|d| !d.is_empty() && *d != cluster) {
            keys.push(live_key(a, dc, ns));
        }
        keys.push(live_key(a, DEFAULT_CLUSTER, ns));
    }
    keys
}

impl Cairn {
    fn build_watch(&self, req: &PollRequest) -> Watch {
        let index = self.read_index();
        let mut namespaces: Vec<(String, String, i64, Vec<String>)> = Vec::new();
        for e in req.entries.iter().filter(|e| !e.namespace.is_empty()) {
            let normalized = index.normalize_namespace(&req.app_id, strip_properties_suffix(&e.namespace));
            match namespaces.iter_mut().find(|n| n.0 == normalized) {
                // Two spellings of one namespace: keep the smaller id so the stale one updates.
                Some(existing) if e.notification_id < existing.2 => {
                    existing.1 = e.namespace.clone();
                    existing.2 = e.notification_id;
                }
                Some(_) => {}
                None => {
                    let keys = watch_keys(&index, &req.app_id, &req.cluster, req.data_center.as_deref(), &normalized);
                    namespaces.push((normalized, e.namespace.clone(), e.notification_id, keys));
                }
            }
        }
        Watch { namespaces }
    }

    /// Namespaces whose latest message id is newer than the client's (or, for the legacy
    /// protocol, merely different).
    fn outdated(&self, env: &str, watch: &Watch, legacy: bool) -> Vec<Changed> {
        let index = self.read_index();
        let Some(e) = index.envs.get(env) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (_, original, client_id, keys) in &watch.namespaces {
            let details: Vec<(String, i64)> =
                keys.iter().filter_map(|k| e.messages.get(k)).map(|(id, content)| (content.clone(), *id)).collect();
            let latest = details.iter().map(|(_, id)| *id).max().unwrap_or(-1);
            let behind = if legacy { latest != *client_id && latest >= 0 } else { latest > *client_id };
            if behind {
                out.push(Changed { namespace: original.clone(), notification_id: latest, details });
            }
        }
        out
    }

    /// Answers a poll: at once when any namespace is behind, else when a watched release
    /// message arrives, else `None` after `hold` (or at shutdown).
    ///
    /// Thousands of polls wait at once, so the checks run before the future is built and the
    /// wait keeps only the env, the watch and one receiver (about 300 bytes with its timer).
    pub fn poll(
        &self,
        req: PollRequest,
        hold: Duration,
        legacy: bool,
    ) -> impl std::future::Future<Output = Option<Vec<Changed>>> + '_ {
        // Subscribe before checking, so a message committed in between is not missed.
        let rx = self.notifier.tx.subscribe();
        let prepared = self.prepare(req, legacy);
        async move {
            match prepared {
                Prepared::Answer(answer) => answer,
                Prepared::Wait(env, watch) => {
                    let _held = HeldGuard::new(self);
                    tokio::time::timeout(hold, self.wait(env, watch, rx, legacy)).await.unwrap_or(None)
                }
            }
        }
    }

    fn prepare(&self, req: PollRequest, legacy: bool) -> Prepared {
        let watch = self.build_watch(&req);
        if watch.namespaces.is_empty() {
            return Prepared::Answer(None);
        }
        let now = self.outdated(&req.env, &watch, legacy);
        if !now.is_empty() {
            return Prepared::Answer(Some(now));
        }
        if self.notifier.is_shutting_down() {
            return Prepared::Answer(None);
        }
        Prepared::Wait(req.env, watch)
    }

    async fn wait(
        &self,
        env: String,
        watch: Watch,
        mut rx: broadcast::Receiver<Arc<Message>>,
        legacy: bool,
    ) -> Option<Vec<Changed>> {
        loop {
            match rx.recv().await {
                Ok(m) if m.is_shutdown() => return None,
                Ok(m) if m.env == env => {
                    if let Some(original) = watch.find(&m.key) {
                        let micros = u64::try_from(m.at.elapsed().as_micros()).unwrap_or(u64::MAX);
                        self.metrics.fanout_micros_sum.fetch_add(micros, Ordering::Relaxed);
                        Metrics::inc(&self.metrics.fanout_count);
                        return Some(vec![Changed {
                            namespace: original.to_string(),
                            notification_id: m.id,
                            details: vec![(m.content.clone(), m.id)],
                        }]);
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if self.notifier.is_shutting_down() {
                        return None;
                    }
                    let now = self.outdated(&env, &watch, legacy);
                    if !now.is_empty() {
                        return Some(now);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// A poll after its checks: answered at once, or waiting for a message in this env.
enum Prepared {
    Answer(Option<Vec<Changed>>),
    Wait(String, Watch),
}

/// Counts held polls for `/metrics` while alive.
struct HeldGuard<'a>(&'a Cairn);

impl<'a> HeldGuard<'a> {
    fn new(c: &'a Cairn) -> Self {
        c.metrics.long_polls_held.fetch_add(1, Ordering::Relaxed);
        HeldGuard(c)
    }
}

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.0.metrics.long_polls_held.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::PollRequest;
    use crate::service::Cairn;

    /// Ten thousand held polls each keep one of these futures: the checks and the request
    /// must not live on in it (it was 696 bytes when they did).
    #[test]
    fn a_held_poll_keeps_a_small_future() {
        let cairn = Cairn::new(crate::store::open_temporary().unwrap(), Default::default()).unwrap();
        let req = PollRequest {
            env: "DEV".into(),
            app_id: "app".into(),
            cluster: "default".into(),
            data_center: None,
            entries: Vec::new(),
        };
        let fut = cairn.poll(req, Duration::from_secs(1), false);
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 512, "a held poll's future grew to {size} bytes");
    }
}
