//! `cairn agent`: a sidecar / init container for apps without an Apollo client. It fetches
//! namespaces over the Apollo client protocol, writes each to a file atomically, long-polls
//! for releases, rewrites the files and then runs a reload command or signals a process.
//! When Cairn is unreachable it keeps the last good files and retries with a short, jittered
//! backoff. With `--once` (init containers) it retries for a bounded time and can then start
//! from a cache directory on a volume, like an Apollo client's local cache.
//! Imports only `domain` (properties text) and `security` (signatures) from Cairn.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rand::Rng;
use serde::Deserialize;

use crate::domain::format::CONTENT_KEY;
use crate::domain::{properties, Format};
use crate::security::signature;

/// What the agent does.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Config service base URL, e.g. `http://cairn:8080/envs/PRO`.
    pub server: String,
    pub app_id: String,
    pub cluster: String,
    pub namespaces: Vec<String>,
    pub dir: PathBuf,
    pub secret: Option<String>,
    pub ip: Option<String>,
    pub label: Option<String>,
    pub data_center: Option<String>,
    /// Shell command run after files change.
    pub on_change: Option<String>,
    /// Signal sent to the process in `pid_file` after files change.
    pub signal: Option<(String, PathBuf)>,
    /// (namespace, template file): also render the template to `dir/<template name minus .tmpl>`.
    pub templates: Vec<(String, PathBuf)>,
    /// Fetch once, write, exit.
    pub once: bool,
    /// With `once`: how long to keep retrying while Cairn is unreachable or failing.
    pub wait: Duration,
    /// A directory that keeps a copy of every file written; with `once`, used when Cairn
    /// stays unreachable for `wait`.
    pub cache: Option<PathBuf>,
    /// The sidecar fetches every namespace again and starts its long polls over at least this
    /// often (Apollo clients refresh every 5 minutes). After a restore Cairn's notification
    /// ids are older than the ones the agent holds; without this it would miss releases.
    pub refresh: Duration,
}

/// Longest pause between two attempts. Short, so an agent is back within a couple of seconds
/// of Cairn's return however long the outage was; the jitter spreads the reconnects of many
/// agents that lost Cairn at the same moment.
pub const RETRY_CAP: Duration = Duration::from_secs(2);
/// First pause after a failure.
const RETRY_FIRST: Duration = Duration::from_millis(500);

/// The pause before attempt `failures + 1`: doubling from 0.5 s up to [`RETRY_CAP`], then a
/// random point in the upper half of that step.
pub fn retry_delay(failures: u32) -> Duration {
    let step = RETRY_FIRST.saturating_mul(1u32 << failures.min(16)).min(RETRY_CAP);
    let half = step / 2;
    half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
}

/// A failure worth retrying: Cairn unreachable, timing out, or answering 5xx. Wrong settings
/// (no release, refused key) are not: retrying would only delay the message.
#[derive(Debug)]
struct Transient(String);

impl std::fmt::Display for Transient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Transient {}

fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Transient>())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigDto {
    configurations: BTreeMap<String, String>,
    release_key: String,
}

/// Keeps insertion order of `configurations` (a BTreeMap would sort keys).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderedConfigDto {
    configurations: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationDto {
    namespace_name: String,
    notification_id: i64,
}

struct Namespace {
    name: String,
    release_key: Option<String>,
    notification_id: i64,
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| anyhow!("bad file name {}", path.display()))?;
    // Unique even when several pods, each with the same pid, share a cache volume.
    let tmp = dir.join(format!(".{name}.tmp-{}-{:016x}", std::process::id(), rand::thread_rng().gen::<u64>()));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).ok();
    Ok(())
}

/// The file a namespace is written to: `application.properties`, `app.yaml`, ...
pub fn file_name(ns: &str) -> String {
    if Format::of_namespace(ns).is_file() {
        ns.to_string()
    } else {
        format!("{}.properties", crate::domain::names::strip_properties_suffix(ns))
    }
}

/// Writes `bytes` to `path` atomically unless the file already holds exactly them (so an
/// agent restarted over the files it wrote does not make the app reload). True when written.
fn write_if_different(path: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_atomically(path, bytes)?;
    Ok(true)
}

/// The file a template renders to: its name minus `.tmpl`.
fn template_output(template: &Path) -> String {
    template.file_name().and_then(|n| n.to_str()).unwrap_or("rendered").trim_end_matches(".tmpl").to_string()
}

/// Replaces `{{ key }}` placeholders with values; an unknown key is an error.
pub fn render(template: &str, values: &[(String, String)]) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| anyhow!("unclosed '{{{{' in template"))?;
        let key = after[..end].trim();
        let value = values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| anyhow!("template names '{key}', which the namespace does not have"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Largest answer the agent reads from Cairn.
const MAX_BODY: usize = 64 * 1024 * 1024;

struct Agent {
    opts: AgentOptions,
    http: reqwest::Client,
    namespaces: Vec<Namespace>,
    /// Files changed since the last reload: the sidecar reloads after every round, also one
    /// that failed on a later namespace, so a written file is never left unannounced.
    unreloaded: bool,
}

impl Agent {
    fn url(&self, path_and_query: &str) -> (String, String) {
        let base = self.opts.server.trim_end_matches('/');
        let full = format!("{base}{path_and_query}");
        // The signed path is the URL path (prefix included) plus the query.
        let signed =
            full.split_once("://").and_then(|(_, r)| r.find('/').map(|i| r[i..].to_string())).unwrap_or_default();
        (full, signed)
    }

    async fn get(&self, path_and_query: &str, timeout: Duration) -> anyhow::Result<(u16, String)> {
        let (url, signed) = self.url(path_and_query);
        let mut req = self.http.get(&url).timeout(timeout);
        if let Some(secret) = &self.opts.secret {
            let ts = crate::domain::time::now_ms().to_string();
            let sig = signature::sign(&ts, &signed, secret);
            req = req.header("Authorization", format!("Apollo {}:{sig}", self.opts.app_id)).header("Timestamp", ts);
        }
        let mut res = req.send().await.map_err(|e| Transient(format!("cannot reach Cairn at {url}: {e}")))?;
        let status = res.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| Transient(format!("reading {url}: {e}")))? {
            if body.len() + chunk.len() > MAX_BODY {
                bail!("{url} answered more than {} MiB", MAX_BODY >> 20);
            }
            body.extend_from_slice(&chunk);
        }
        let body = String::from_utf8_lossy(&body).to_string();
        if status >= 500 {
            return Err(Transient(format!("Cairn answered {status}: {body}")).into());
        }
        Ok((status, body))
    }

    fn query(&self, extra: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, &str)> = extra.to_vec();
        if let Some(ip) = &self.opts.ip {
            pairs.push(("ip", ip));
        }
        if let Some(label) = &self.opts.label {
            pairs.push(("label", label));
        }
        if let Some(dc) = &self.opts.data_center {
            pairs.push(("dataCenter", dc));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    /// Fetches one namespace; writes it when its release changed. True when written.
    async fn sync(&mut self, i: usize) -> anyhow::Result<bool> {
        let ns = &self.namespaces[i];
        let release_key = ns.release_key.clone().unwrap_or_default();
        let with_key = [("releaseKey", release_key.as_str())];
        let q = self.query(if release_key.is_empty() { &[] } else { &with_key });
        let path = format!("/configs/{}/{}/{}?{q}", self.opts.app_id, self.opts.cluster, ns.name);
        let (status, body) = self.get(&path, Duration::from_secs(10)).await?;
        match status {
            304 => Ok(false),
            200 => {
                let dto: ConfigDto =
                    serde_json::from_str(&body).context("Cairn answered /configs with unexpected JSON")?;
                let ordered: OrderedConfigDto = serde_json::from_str(&body)?;
                let pairs: Vec<(String, String)> = ordered
                    .configurations
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                    .collect();
                let name = self.namespaces[i].name.clone();
                let changed = self.write(&name, &pairs, &dto.configurations)?;
                self.unreloaded |= changed;
                if changed {
                    tracing::info!(namespace = %name, release_key = %dto.release_key, "wrote configuration");
                } else {
                    tracing::info!(namespace = %name, release_key = %dto.release_key, "configuration unchanged");
                }
                self.namespaces[i].release_key = Some(dto.release_key);
                Ok(changed)
            }
            404 => bail!(
                "namespace '{}' of app '{}' (cluster '{}') has no release at {}; publish it first",
                self.namespaces[i].name,
                self.opts.app_id,
                self.opts.cluster,
                self.opts.server
            ),
            401 => bail!("Cairn refused the request (401 {body}); check the access-key secret"),
            other => bail!("Cairn answered {other}: {body}"),
        }
    }

    /// Name of `file` in the cache: the app and cluster prefix it, so apps may share a volume.
    fn cached(&self, cache: &Path, file: &str) -> PathBuf {
        cache.join(format!("{}+{}+{file}", self.opts.app_id, self.opts.cluster))
    }

    /// Writes `file` into the directory (and the cache) unless it already holds `bytes`.
    /// True when the directory's copy changed.
    fn put(&self, file: &str, bytes: &[u8]) -> anyhow::Result<bool> {
        let changed = write_if_different(&self.opts.dir.join(file), bytes)?;
        if let Some(cache) = &self.opts.cache {
            // A cache that cannot be written must not stop the app from getting its files.
            if let Err(e) = write_if_different(&self.cached(cache, file), bytes) {
                tracing::warn!(error = %format!("{e:#}"), "cannot update the cache");
            }
        }
        Ok(changed)
    }

    /// Every file the agent writes: one per namespace plus rendered templates.
    fn files(&self) -> Vec<String> {
        let mut files: Vec<String> = self.namespaces.iter().map(|n| file_name(&n.name)).collect();
        files.extend(self.opts.templates.iter().map(|(_, t)| template_output(t)));
        files
    }

    /// Copies the cached files into the directory; fails naming the first one missing.
    fn restore_from_cache(&self, cache: &Path) -> anyhow::Result<()> {
        let mut copies = Vec::new();
        for file in self.files() {
            let from = self.cached(cache, &file);
            let bytes = std::fs::read(&from).with_context(|| format!("the cache has no {}", from.display()))?;
            copies.push((file, bytes));
        }
        for (file, bytes) in copies {
            write_if_different(&self.opts.dir.join(&file), &bytes)?;
        }
        Ok(())
    }

    fn write(&self, ns: &str, pairs: &[(String, String)], map: &BTreeMap<String, String>) -> anyhow::Result<bool> {
        let bytes = if Format::of_namespace(ns).is_file() {
            map.get(CONTENT_KEY).cloned().unwrap_or_default()
        } else {
            properties::write(pairs)
        };
        let mut changed = self.put(&file_name(ns), bytes.as_bytes())?;
        for (tns, template) in self.opts.templates.iter().filter(|(t, _)| t == ns) {
            let text = std::fs::read_to_string(template)
                .with_context(|| format!("cannot read template {}", template.display()))?;
            let rendered =
                render(&text, pairs).with_context(|| format!("rendering {} for {tns}", template.display()))?;
            changed |= self.put(&template_output(template), rendered.as_bytes())?;
        }
        Ok(changed)
    }

    async fn sync_all(&mut self) -> anyhow::Result<bool> {
        let mut changed = false;
        for i in 0..self.namespaces.len() {
            changed |= self.sync(i).await?;
        }
        Ok(changed)
    }

    /// One long poll; returns the namespaces that changed (empty on 304).
    async fn poll(&mut self) -> anyhow::Result<Vec<usize>> {
        let entries: Vec<serde_json::Value> = self
            .namespaces
            .iter()
            .map(|n| serde_json::json!({"namespaceName": n.name, "notificationId": n.notification_id}))
            .collect();
        let notifications = serde_json::Value::from(entries).to_string();
        let q = self.query(&[
            ("appId", &self.opts.app_id),
            ("cluster", &self.opts.cluster),
            ("notifications", &notifications),
        ]);
        let (status, body) = self.get(&format!("/notifications/v2?{q}"), Duration::from_secs(90)).await?;
        match status {
            304 => Ok(Vec::new()),
            200 => {
                let list: Vec<NotificationDto> = serde_json::from_str(&body).context("unexpected notification JSON")?;
                let mut changed = Vec::new();
                for n in list {
                    if let Some(i) = self.namespaces.iter().position(|x| x.name == n.namespace_name) {
                        self.namespaces[i].notification_id = n.notification_id;
                        changed.push(i);
                    }
                }
                Ok(changed)
            }
            other => bail!("long poll answered {other}: {body}"),
        }
    }

    fn reload(&self) {
        if let Some(cmd) = &self.opts.on_change {
            match std::process::Command::new("sh").arg("-c").arg(cmd).status() {
                Ok(s) if s.success() => tracing::info!(command = %cmd, "reload command ran"),
                Ok(s) => tracing::warn!(command = %cmd, status = ?s.code(), "reload command failed"),
                Err(e) => tracing::warn!(command = %cmd, error = %e, "reload command could not start"),
            }
        }
        if let Some((sig, pid_file)) = &self.opts.signal {
            let pid = std::fs::read_to_string(pid_file).map(|p| p.trim().to_string());
            match pid {
                Ok(pid) => {
                    let ok = std::process::Command::new("kill")
                        .args(["-s", sig, &pid])
                        .status()
                        .map(|s| s.success())
                        .unwrap_or(false);
                    if ok {
                        tracing::info!(signal = %sig, pid = %pid, "signalled the app");
                    } else {
                        tracing::warn!(signal = %sig, pid = %pid, "could not signal the app");
                    }
                }
                Err(e) => tracing::warn!(file = %pid_file.display(), error = %e, "cannot read the pid file"),
            }
        }
    }
}

/// Runs the agent until killed (or once, with `--once`).
pub async fn run(opts: AgentOptions) -> anyhow::Result<()> {
    if opts.namespaces.is_empty() {
        bail!("name at least one namespace (--namespaces application,app.yaml)");
    }
    if !opts.server.to_ascii_lowercase().starts_with("http://") {
        bail!(
            "--server {} is not an http:// URL: the agent speaks plain HTTP, so point it at Cairn's \
             service inside the cluster (e.g. http://cairn:8080/envs/PRO) or at a local TLS proxy",
            opts.server
        );
    }
    std::fs::create_dir_all(&opts.dir).with_context(|| format!("cannot create {}", opts.dir.display()))?;
    let namespaces =
        opts.namespaces.iter().map(|n| Namespace { name: n.clone(), release_key: None, notification_id: -1 }).collect();
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("cannot set up the HTTP client")?;
    let mut agent = Agent { opts, http, namespaces, unreloaded: false };
    if agent.opts.once {
        return once(&mut agent).await;
    }
    let mut failures = 0u32;
    let mut synced = false;
    let mut refreshed = Instant::now();
    loop {
        if refreshed.elapsed() >= agent.opts.refresh {
            synced = false;
        }
        let round = async {
            if !synced {
                // Start over: Cairn may have been restored (older notification ids) or
                // replaced while the agent could not see it; the first poll answers at once
                // with the current ids, and fetches that find nothing new answer 304.
                for ns in agent.namespaces.iter_mut() {
                    ns.notification_id = -1;
                }
                agent.sync_all().await?;
                synced = true;
                refreshed = Instant::now();
            }
            let due = agent.opts.refresh.saturating_sub(refreshed.elapsed());
            // A long poll cut short when the next refresh is due.
            if let Ok(changed) = tokio::time::timeout(due, agent.poll()).await {
                for i in changed? {
                    agent.sync(i).await?;
                }
            }
            anyhow::Ok(())
        };
        let result = round.await;
        if agent.unreloaded {
            agent.reload();
            agent.unreloaded = false;
        }
        match result {
            Ok(()) => failures = 0,
            Err(e) => {
                let pause = retry_delay(failures);
                tracing::warn!(error = %format!("{e:#}"), retry_in = ?pause, "keeping the last good files");
                synced = false;
                tokio::time::sleep(pause).await;
                failures = failures.saturating_add(1);
            }
        }
    }
}

/// `--once`: fetch and write every file, retrying transient failures until `wait` is spent;
/// then fall back to the cache when there is one.
async fn once(agent: &mut Agent) -> anyhow::Result<()> {
    let deadline = Instant::now() + agent.opts.wait;
    let mut failures = 0u32;
    loop {
        let e = match agent.sync_all().await {
            Ok(_) => {
                tracing::info!(dir = %agent.opts.dir.display(), "configuration written");
                return Ok(());
            }
            Err(e) => e,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if !is_transient(&e) {
            return Err(e);
        }
        if left.is_zero() {
            let Some(cache) = agent.opts.cache.clone() else {
                return Err(e.context(format!(
                    "gave up after {:?}; raise --wait, or give --cache a volume to start from the last copy",
                    agent.opts.wait
                )));
            };
            agent.restore_from_cache(&cache).map_err(|c| {
                anyhow!("{e:#}; and the cache cannot stand in: {c:#}. Start once while Cairn is up to fill it")
            })?;
            tracing::warn!(
                error = %format!("{e:#}"),
                cache = %cache.display(),
                "Cairn is unreachable: started from the cached files; the sidecar will fetch the current ones"
            );
            return Ok(());
        }
        let pause = retry_delay(failures).min(left);
        tracing::warn!(error = %format!("{e:#}"), retry_in = ?pause, left = ?left, "retrying");
        tokio::time::sleep(pause).await;
        failures = failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_known_keys_and_reject_unknown_ones() {
        let values = vec![("db.url".to_string(), "jdbc:x".to_string())];
        assert_eq!(render("url={{ db.url }};", &values).unwrap(), "url=jdbc:x;");
        assert!(render("{{ nope }}", &values).is_err());
        assert!(render("{{ db.url ", &values).is_err());
    }

    #[test]
    fn retries_are_capped_and_jittered() {
        assert!(retry_delay(0) <= Duration::from_millis(500));
        assert!(retry_delay(0) >= Duration::from_millis(250));
        let late: Vec<Duration> = (0..50).map(|_| retry_delay(40)).collect();
        assert!(late.iter().all(|d| *d <= RETRY_CAP && *d >= RETRY_CAP / 2), "{late:?}");
        assert!(late.iter().any(|d| *d != late[0]), "no jitter: {late:?}");
    }

    #[test]
    fn namespaces_map_to_file_names() {
        assert_eq!(file_name("application"), "application.properties");
        assert_eq!(file_name("application.properties"), "application.properties");
        assert_eq!(file_name("app.yaml"), "app.yaml");
    }
}
