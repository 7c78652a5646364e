//! Durability of `cairn serve --database-url`: SIGKILL during a stream of publishes, two
//! server processes publishing to one namespace, and PostgreSQL restarted under a running
//! server. What is acknowledged is stored; what is stored is whole (release, history entry
//! and release message together); ids stay gapless and the check stays clean.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn::store::pg::{PgOptions, PgRepo};
use cairn::store::{Counter, NsKey, Repo};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::pg::{self, PgCluster};
use crate::common::process::{cli, get_json, open_api, text, Proc};
use crate::common::{eventually, ADMIN};

const NS: &str = "/envs/DEV/apps/demo/clusters/default/namespaces/application";

/// The admin, an Open API consumer (its token) and app `demo`, made on database `url`.
async fn seed(data: &Path, url: &str) -> (Proc, String) {
    let user = cli(data, &["--database-url", url, "user", "add", ADMIN, "--admin"], "a-good-password\n");
    assert!(user.status.success(), "{}", text(&user));
    let out = cli(data, &["--database-url", url, "consumer", "create", "ci", "--allow-create-app"], "");
    assert!(out.status.success(), "{}", text(&out));
    let token = String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_string();
    let proc = Proc::start(data, &["--database-url", url]);
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "demo", "name": "demo", "ownerName": ADMIN}});
    assert_eq!(open_api(&proc.base, &token, Method::POST, "/apps", app).await.0, 200);
    (proc, token)
}

/// One Open API call; `None` once the server is gone (connection refused or reset).
async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> Option<(u16, Value)> {
    let r = http
        .request(method, format!("{base}/openapi/v1{path}"))
        .header("Authorization", token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    let body = r.text().await.ok()?;
    Some((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
}

/// Sets item `key` and publishes; the release JSON when acknowledged, `None` otherwise.
async fn publish(http: &reqwest::Client, base: &str, token: &str, key: &str, value: &str) -> Option<Value> {
    let item = json!({"key": key, "value": value, "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN});
    let path = format!("{NS}/items/{key}?createIfNotExists=true");
    let (st, _) = call(http, base, token, Method::PUT, &path, item).await?;
    if st != 200 {
        return None;
    }
    let body = json!({"releaseTitle": value, "releasedBy": ADMIN});
    let (st, release) = call(http, base, token, Method::POST, &format!("{NS}/releases"), body).await?;
    assert!(st == 200 || st >= 500, "a publish got {st}: {release}");
    (st == 200).then_some(release)
}

/// Everything stored for the namespace agrees: every release id up to the counter is a
/// release with one history entry (contiguous seqs, ids rising with seq), one release message
/// per release (the message counter moved with the release counter) and the check is clean.
/// Returns the release ids in history order.
fn assert_whole(repo: &PgRepo) -> Vec<u64> {
    let releases = repo.counter(Counter::Release).unwrap();
    let key = NsKey::new("DEV", "demo", "default", "application");
    let mut history = repo.history(&key, 100_000).unwrap();
    history.reverse();
    let seqs: Vec<u64> = history.iter().map(|h| h.seq).collect();
    let expected: Vec<u64> = (1..=history.len() as u64).collect();
    assert_eq!(seqs, expected, "history is contiguous");
    let ids: Vec<u64> = history.iter().map(|h| h.release_id).collect();
    assert_eq!(ids, (1..=releases).collect::<Vec<_>>(), "release ids are gapless and in commit order");
    for id in 1..=releases {
        let r = repo.release("DEV", id).unwrap().unwrap_or_else(|| panic!("release {id} is in history but not stored"));
        assert_eq!((r.app_id.as_str(), r.namespace.as_str()), ("demo", "application"));
    }
    assert!(repo.release("DEV", releases + 1).unwrap().is_none(), "no release beyond the counter");
    let messages = repo.counter(Counter::Message).unwrap();
    assert_eq!(messages, releases, "one release message per release");
    let latest = repo.messages("DEV").unwrap();
    let message = latest.iter().find(|m| m.content == "demo+default+application").expect("the namespace's message");
    assert_eq!(message.id as u64, messages, "the namespace's message is the newest");
    let report = cairn::store::check(repo).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.releases as u64, releases);
    ids
}

#[tokio::test]
async fn sigkill_during_a_stream_of_publishes_loses_no_acknowledged_release_and_leaves_nothing_half_written() {
    let Some(url) = pg::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never-created");
    let (proc, token) = seed(&data, &url).await;
    let http = reqwest::Client::new();

    // Four publishers, each on its own key, until the server is gone.
    let acked: Arc<Mutex<Vec<Value>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let mut publishers = Vec::new();
    for p in 0..4 {
        let (http, base, token, acked, count) =
            (http.clone(), proc.base.clone(), token.clone(), acked.clone(), count.clone());
        publishers.push(tokio::spawn(async move {
            for i in 0.. {
                let Some(release) = publish(&http, &base, &token, &format!("k{p}"), &format!("v{p}-{i}")).await else {
                    if call(&http, &base, &token, Method::GET, "/apps", Value::Null).await.is_none() {
                        return;
                    }
                    continue;
                };
                acked.lock().unwrap().push(release);
                count.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    eventually(Duration::from_secs(60), "20 acknowledged publishes", || async { count.load(Ordering::SeqCst) >= 20 })
        .await;
    proc.kill9();
    for p in publishers {
        tokio::time::timeout(Duration::from_secs(10), p).await.unwrap().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let repo = PgRepo::open(&url, PgOptions::default()).unwrap();
    let ids = assert_whole(&repo);
    for release in &acked {
        let id = release["id"].as_u64().unwrap();
        let stored = repo.release("DEV", id).unwrap().unwrap_or_else(|| panic!("acknowledged release {id} was lost"));
        let served: Value =
            stored.configurations.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>().into();
        assert_eq!(served, release["configurations"], "release {id}");
        assert!(ids.contains(&id), "release {id} is in history");
    }
    assert!(ids.len() >= acked.len());

    // A restarted server serves the newest stored release and publishes on.
    let proc = Proc::start(&data, &["--database-url", &url]);
    let newest = repo.release("DEV", *ids.last().unwrap()).unwrap().unwrap();
    let configs = get_json(&http, &format!("{}/envs/DEV/configs/demo/default/application", proc.base)).await;
    assert_eq!(configs["releaseKey"], newest.release_key.as_str(), "{configs}");
    assert!(publish(&http, &proc.base, &token, "after", "restart").await.is_some());
    assert_eq!(assert_whole(&repo).len(), ids.len() + 1);
    eprintln!("{} publishes acknowledged before SIGKILL, {} stored", acked.len(), ids.len());
}

#[tokio::test]
async fn two_servers_publishing_to_one_namespace_keep_history_contiguous_and_ids_gapless() {
    let Some(url) = pg::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never-created");
    let (first, token) = seed(&data, &url).await;
    let second = Proc::start(&data, &["--database-url", &url]);
    let http = reqwest::Client::new();
    let mut publishers = Vec::new();
    for (p, base) in [first.base.clone(), second.base.clone()].into_iter().enumerate() {
        let (http, token) = (http.clone(), token.clone());
        publishers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..50 {
                let release = publish(&http, &base, &token, &format!("k{p}"), &format!("v{i}")).await;
                ids.push(
                    release.unwrap_or_else(|| panic!("publish {i} through server {p} failed"))["id"].as_u64().unwrap(),
                );
            }
            ids
        }));
    }
    let mut acked = Vec::new();
    for p in publishers {
        acked.extend(p.await.unwrap());
    }
    let repo = PgRepo::open(&url, PgOptions::default()).unwrap();
    let ids = assert_whole(&repo);
    acked.sort_unstable();
    assert_eq!(ids, acked, "every publish is one release, in history in commit order");
    assert_eq!(ids.len(), 100);
}

/// Publishes until one succeeds (PostgreSQL coming back), within 20 s.
async fn publish_once_back(cluster: &PgCluster, base: &str, token: &str, value: &str) {
    let http = reqwest::Client::new();
    let start = Instant::now();
    while publish(&http, base, token, "k", value).await.is_none() {
        assert!(start.elapsed() < Duration::from_secs(20), "writes did not recover\n{}", cluster.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn postgres_restarted_under_a_running_server_is_reconnected_to_by_itself() {
    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.create_database();
    let dir = tempfile::tempdir().unwrap();
    let (proc, token) = seed(&dir.path().join("never-created"), &url).await;
    let http = reqwest::Client::new();
    assert!(publish(&http, &proc.base, &token, "k", "v1").await.is_some());

    // `pg_ctl restart -m fast`: every connection of the pool is closed by the server.
    cluster.restart_fast();
    publish_once_back(&cluster, &proc.base, &token, "v2").await;
    let configs = get_json(&http, &format!("{}/envs/DEV/configs/demo/default/application", proc.base)).await;
    assert_eq!(configs["configurations"]["k"], "v2");

    // Down after a fast shutdown: clients served, writes 503, /ready down; then back.
    crate::pg_serve::outage(&cluster, &proc, &token, || cluster.stop_fast(), || cluster.restart()).await;
    let repo = PgRepo::open(&url, PgOptions::default()).unwrap();
    assert_whole(&repo);
}
