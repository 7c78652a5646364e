//! Database calls never run on the async workers: with PostgreSQL slow (the tables Open API
//! reads need locked by another session) or frozen (SIGSTOP), a burst of Open API reads and
//! portal pages gets 503s within about 2 s while `/configs` and `/notifications/v2`, answered
//! by the same two workers, keep answering at once. The server's debug build also logs any
//! database call made on an async worker; none may appear.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::common::pg::PgCluster;
use crate::common::process::{cli, open_api, text, Proc};
use crate::common::ADMIN;

const NS: &str = "/envs/DEV/apps/demo/clusters/default/namespaces/application";
/// The most a client request may take while the database stalls.
const CLIENT_MAX: Duration = Duration::from_millis(300);
/// The most an Open API read may take to fail while the database stalls.
const READ_MAX: Duration = Duration::from_millis(2500);
/// What the engine logs for a database call made on an async worker (debug builds).
const ON_WORKER: &str = "database call on an async worker";

async fn start(url: &str, dir: &Path) -> (Proc, String) {
    let data = dir.join("never-created");
    let user = cli(&data, &["--database-url", url, "user", "add", ADMIN, "--admin"], "a-good-password\n");
    assert!(user.status.success(), "{}", text(&user));
    let out = cli(&data, &["--database-url", url, "consumer", "create", "ci", "--allow-create-app"], "");
    assert!(out.status.success(), "{}", text(&out));
    let token = String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_string();
    let proc = Proc::start(&data, &["--database-url", url]);
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "demo", "name": "demo", "ownerName": ADMIN}});
    assert_eq!(open_api(&proc.base, &token, Method::POST, "/apps", app).await.0, 200);
    let item = json!({"key": "k", "value": "v1", "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN});
    let (st, body) =
        open_api(&proc.base, &token, Method::PUT, &format!("{NS}/items/k?createIfNotExists=true"), item).await;
    assert_eq!(st, 200, "{body}");
    let release = json!({"releaseTitle": "r1", "releasedBy": ADMIN});
    let (st, body) = open_api(&proc.base, &token, Method::POST, &format!("{NS}/releases"), release).await;
    assert_eq!(st, 200, "{body}");
    (proc, token)
}

/// The Open API reads of the burst: one record, pages, namespaces, releases, apps, keys.
fn reads() -> Vec<String> {
    let mut paths = vec![
        format!("{NS}/items/k"),
        format!("{NS}/items?page=0&size=50"),
        NS.to_string(),
        format!("{NS}/releases/latest"),
        format!("{NS}/lock"),
        "/apps".to_string(),
        "/apps/demo".to_string(),
        "/apps/authorized".to_string(),
        "/apps/demo/envclusters".to_string(),
        "/apps/demo/appnamespaces".to_string(),
        "/apps/demo/envs/DEV/accesskeys".to_string(),
        "/envs/DEV/apps/demo/clusters/default".to_string(),
        "/envs/DEV/apps/demo/clusters/default/namespaces".to_string(),
        "/envs/DEV/releases/1".to_string(),
        format!("{NS}/branches"),
    ];
    let again = paths.clone();
    paths.extend(again);
    paths
}

/// Fires the burst (30 Open API reads, 6 portal pages) and, while it runs, `/configs` and
/// `/notifications/v2` one after the other. Returns the slowest client answer and the
/// slowest Open API read.
async fn burst(proc: &Proc, token: &str, cookie: &str) -> (Duration, Duration) {
    let base = proc.base.as_str();
    let http = reqwest::Client::new();
    let mut reads = Vec::new();
    for path in self::reads() {
        let (base, token) = (base.to_string(), token.to_string());
        reads.push(tokio::spawn(async move {
            let start = Instant::now();
            let (st, body) = open_api(&base, &token, Method::GET, &path, json!(null)).await;
            (path, st, body, start.elapsed())
        }));
    }
    let mut pages = Vec::new();
    for path in ["/apps/demo", "/", "/apps", "/apps/demo", "/audit", "/apps"] {
        let (url, cookie) = (format!("{base}{path}"), cookie.to_string());
        let portal = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        pages.push(tokio::spawn(async move {
            portal.get(url).header("Cookie", cookie).send().await.unwrap().status().as_u16()
        }));
    }
    // With a client ip, so the instance is recorded too (queued for the writer thread).
    let configs = format!("{base}/envs/DEV/configs/demo/default/application?ip=10.0.0.7");
    let notifications = format!(
        "{base}/envs/DEV/notifications/v2?appId=demo&cluster=default&notifications={}",
        crate::common::enc(r#"[{"namespaceName":"application","notificationId":-1}]"#)
    );
    let mut slowest_client = Duration::ZERO;
    let mut asked = 0;
    let mut failed = Vec::new();
    while asked < 10 || !reads.iter().all(|r| r.is_finished()) {
        for url in [&configs, &notifications] {
            let start = Instant::now();
            let status = http.get(url).send().await.map(|r| r.status().as_u16());
            slowest_client = slowest_client.max(start.elapsed());
            if status.as_ref().map_or(true, |s| *s != 200) {
                failed.push(format!("{url}: {status:?} after {:?}", start.elapsed()));
            }
        }
        asked += 1;
    }
    assert!(failed.is_empty(), "client requests failed:\n{}\n{}", failed.join("\n"), on_worker(proc));
    let mut slowest_read = Duration::ZERO;
    for r in reads {
        let (path, st, body, took) = r.await.unwrap();
        assert_eq!(st, 503, "{path}: {body}");
        assert_eq!(body["exception"], "ServiceUnavailableException", "{path}: {body}");
        slowest_read = slowest_read.max(took);
    }
    for p in pages {
        assert_eq!(p.await.unwrap(), 503, "a portal page that needs the database says it is unavailable");
    }
    (slowest_client, slowest_read)
}

/// The server's log lines about database calls made on an async worker.
fn on_worker(proc: &Proc) -> String {
    let log = proc.log.lock().unwrap().clone();
    log.lines().filter(|l| l.contains(ON_WORKER)).collect::<Vec<_>>().join("\n")
}

/// A psql session holding exclusive locks on the tables the reads need (reads wait for
/// them, then fail on `lock_timeout`); the token and session reads still get through.
struct TableLocks(Child);

impl TableLocks {
    fn take(url: &str) -> TableLocks {
        let mut child = Command::new("psql")
            .arg(url)
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-t", "-A"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let tables = "apps, app_namespaces, clusters, namespaces, items, releases, release_history, branches, \
                      access_keys, audit";
        writeln!(
            child.stdin.as_mut().unwrap(),
            "BEGIN; LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE; SELECT 'locked';"
        )
        .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "locked");
        TableLocks(child)
    }
}

impl Drop for TableLocks {
    fn drop(&mut self) {
        let _ = writeln!(self.0.stdin.as_mut().unwrap(), "ROLLBACK;");
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn open_api_reads_and_pages_on_a_stalled_database_never_hold_up_client_fetches() {
    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.create_database();
    let dir = tempfile::tempdir().unwrap();
    let (proc, token) = start(&url, dir.path()).await;
    let portal = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = crate::common::portal_sign_in_at(&proc.base, &portal, ADMIN, "a-good-password").await;
    for path in reads() {
        let (st, body) = open_api(&proc.base, &token, Method::GET, &path, json!(null)).await;
        assert!(st == 200 || st == 404, "{path}: {st} {body}");
    }

    let locks = TableLocks::take(&url);
    let (client, read) = burst(&proc, &token, &cookie).await;
    eprintln!("tables locked: slowest client answer {client:?}, slowest Open API read {read:?}");
    drop(locks);
    let calls = on_worker(&proc);
    assert!(calls.is_empty(), "database calls on async workers:\n{calls}");
    assert!(client < CLIENT_MAX, "a client request took {client:?} while the tables were locked");
    assert!(read < READ_MAX, "an Open API read took {read:?} to fail while the tables were locked");

    cluster.freeze();
    let (client, read) = burst(&proc, &token, &cookie).await;
    eprintln!("database frozen: slowest client answer {client:?}, slowest Open API read {read:?}");
    cluster.thaw();
    assert!(client < CLIENT_MAX, "a client request took {client:?} while the database was frozen");
    assert!(read < READ_MAX, "an Open API read took {read:?} to fail while the database was frozen");

    let calls = on_worker(&proc);
    assert!(calls.is_empty(), "database calls on async workers:\n{calls}");
}
