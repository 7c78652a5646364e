//! `cairn serve --database-url`: the real binary on a real PostgreSQL, with no data
//! directory, and its behaviour while the database is stopped or frozen.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::common::pg::{self, PgCluster};
use crate::common::process::{cli, get_json, open_api, text, Proc};
use crate::common::ADMIN;

const NS: &str = "/envs/DEV/apps/demo/clusters/default/namespaces/application";

/// The admin and an Open API consumer, created by the CLI on the database; the token.
fn seed(data: &Path, url: &str) -> String {
    let user = cli(data, &["--database-url", url, "user", "add", ADMIN, "--admin"], "a-good-password\n");
    assert!(user.status.success(), "{}", text(&user));
    let out = cli(data, &["--database-url", url, "consumer", "create", "ci", "--allow-create-app"], "");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_string()
}

async fn publish(base: &str, token: &str, value: &str) -> (u16, serde_json::Value) {
    let item = json!({"key": "k", "value": value, "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN});
    let (st, body) = open_api(base, token, Method::PUT, &format!("{NS}/items/k?createIfNotExists=true"), item).await;
    if st != 200 {
        return (st, body);
    }
    let title: String = value.chars().take(32).collect();
    open_api(base, token, Method::POST, &format!("{NS}/releases"), json!({"releaseTitle": title, "releasedBy": ADMIN}))
        .await
}

async fn start(url: &str, dir: &Path) -> (Proc, String) {
    let data = dir.join("never-created");
    let token = seed(&data, url);
    let proc = Proc::start(&data, &["--database-url", url]);
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "demo", "name": "demo", "ownerName": ADMIN}});
    assert_eq!(open_api(&proc.base, &token, Method::POST, "/apps", app).await.0, 200);
    assert_eq!(publish(&proc.base, &token, "v1").await.0, 200);
    (proc, token)
}

fn configs_url(base: &str) -> String {
    format!("{base}/envs/DEV/configs/demo/default/application")
}

#[tokio::test]
async fn serve_with_a_database_url_keeps_everything_in_postgres_and_no_data_directory() {
    let Some(url) = pg::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (proc, token) = start(&url, dir.path()).await;
    let http = reqwest::Client::new();
    let served = get_json(&http, &configs_url(&proc.base)).await;
    assert_eq!(served["configurations"]["k"], "v1");
    let ready = get_json(&http, &format!("{}/ready", proc.base)).await;
    assert_eq!(ready["database"], "UP", "{ready}");
    let (status, _) = proc.terminate();
    assert!(status.success());
    assert!(!dir.path().join("never-created").exists(), "no data directory is made");

    // A new process on the same database serves the same release.
    let proc = Proc::start(&dir.path().join("never-created"), &["--database-url", &url]);
    let again = get_json(&http, &configs_url(&proc.base)).await;
    assert_eq!(again, served);
    assert_eq!(publish(&proc.base, &token, "v2").await.0, 200);
    assert_eq!(get_json(&http, &configs_url(&proc.base)).await["configurations"]["k"], "v2");
}

#[test]
fn serve_with_an_unreachable_database_exits_with_one_line_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://cairn:secret-pw@127.0.0.1:{port}/cairn");
    let dir = tempfile::tempdir().unwrap();
    let out = cli(&dir.path().join("data"), &["--database-url", &url, "serve", "--listen", "127.0.0.1:0"], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(&format!("postgres://cairn@127.0.0.1:{port}/cairn")), "{line}");
    assert!(line.contains("check that PostgreSQL runs there"), "{line}");
    assert!(!err.contains("secret-pw") && !err.contains("panicked"), "{err}");
}

/// While the database is away: reads and held polls are answered from memory, writes get
/// Apollo's 503 within 2 s, /health stays 200 and /ready says the database is down; all
/// recovers by itself.
pub(crate) async fn outage(cluster: &PgCluster, proc: &Proc, token: &str, down: impl Fn(), up: impl Fn()) {
    let http = reqwest::Client::new();
    let base = proc.base.clone();
    let notifications = format!(
        "{base}/envs/DEV/notifications/v2?appId=demo&cluster=default&notifications={}",
        crate::common::enc(r#"[{"namespaceName":"application","notificationId":-1}]"#)
    );
    let current = get_json(&http, &notifications).await;
    let id = current[0]["notificationId"].as_i64().unwrap();
    let held = {
        let url = format!(
            "{base}/envs/DEV/notifications/v2?appId=demo&cluster=default&notifications={}",
            crate::common::enc(&format!(r#"[{{"namespaceName":"application","notificationId":{id}}}]"#))
        );
        let http = http.clone();
        tokio::spawn(async move { http.get(url).send().await.unwrap().json::<serde_json::Value>().await.unwrap() })
    };

    let portal = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = crate::common::portal_sign_in_at(&base, &portal, ADMIN, "a-good-password").await;
    let page = |path: &str| portal.get(format!("{base}{path}")).header("Cookie", cookie.clone()).send();
    assert_eq!(page("/users").await.unwrap().status(), 200);

    down();
    // Writers waiting on the database must not hold up client fetches.
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (base, token) = (base.clone(), token.to_string());
            tokio::spawn(async move { publish(&base, &token, &format!("stuck-{i}")).await.0 })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let start = Instant::now();
        let r = http.get(configs_url(&base)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(start.elapsed() < Duration::from_secs(1), "configs took {:?}", start.elapsed());
        let r = http.get(format!("{base}/envs/DEV/configfiles/json/demo/default/application")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    for w in writers {
        assert_eq!(w.await.unwrap(), 503);
    }
    let start = Instant::now();
    let (st, body) = publish(&base, token, "during").await;
    assert!(start.elapsed() < Duration::from_secs(2), "the write took {:?}", start.elapsed());
    assert_eq!(st, 503, "{body}");
    assert_eq!(body["exception"], "ServiceUnavailableException", "{body}");
    assert!(body["timestamp"].is_string() && body["status"] == 503, "{body}");
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = http.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["database"], "DOWN", "{ready}");
    assert_eq!(ready["writable"], false, "{ready}");
    assert!(!held.is_finished(), "the held poll is still held");
    // A portal page that needs the database says so; the operator stays signed in.
    assert_eq!(page("/users").await.unwrap().status(), 503);

    up();
    let start = Instant::now();
    loop {
        let (st, _) = publish(&base, token, "after").await;
        if st == 200 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "writes did not recover: {st}\n{}", cluster.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let woken = tokio::time::timeout(Duration::from_secs(5), held).await.unwrap().unwrap();
    assert!(woken[0]["notificationId"].as_i64().unwrap() > id, "{woken}");
    assert_eq!(get_json(&http, &configs_url(&base)).await["configurations"]["k"], "after");
    let ready = get_json(&http, &format!("{base}/ready")).await;
    assert_eq!(ready["database"], "UP", "{ready}");
    assert_eq!(page("/users").await.unwrap().status(), 200, "the session outlived the outage");
}

#[tokio::test]
async fn a_stopped_database_keeps_clients_served_and_writes_fail_fast_until_it_returns() {
    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.create_database();
    let dir = tempfile::tempdir().unwrap();
    let (proc, token) = start(&url, dir.path()).await;
    outage(&cluster, &proc, &token, || cluster.stop(), || cluster.restart()).await;
}

#[tokio::test]
async fn a_frozen_database_keeps_clients_served_and_writes_fail_fast_until_it_thaws() {
    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.create_database();
    let dir = tempfile::tempdir().unwrap();
    let (proc, token) = start(&url, dir.path()).await;
    outage(&cluster, &proc, &token, || cluster.freeze(), || cluster.thaw()).await;
}

#[tokio::test]
async fn acknowledged_releases_survive_sigkill_of_cairn_on_postgres() {
    let Some(url) = pg::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (mut proc, token) = start(&url, dir.path()).await;
    let http = reqwest::Client::new();
    for round in 0..8 {
        let value = format!("value-{round}-{}", "x".repeat(round * 1000));
        let (st, release) = publish(&proc.base, &token, &value).await;
        assert_eq!(st, 200, "{release}");
        proc.kill9();
        proc = Proc::start(&dir.path().join("never-created"), &["--database-url", &url]);
        let (st, latest) =
            open_api(&proc.base, &token, Method::GET, &format!("{NS}/releases/latest"), json!(null)).await;
        assert_eq!(st, 200);
        assert_eq!(latest["id"], release["id"], "round {round}");
        assert_eq!(get_json(&http, &configs_url(&proc.base)).await["configurations"]["k"], value, "round {round}");
    }
}

/// The raw `/configs` body and notification answer of the seeded namespace.
async fn client_answers(base: &str) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for env in ["DEV"] {
        let url = format!("{base}/envs/{env}/configs/demo/default/application");
        out.push(http.get(url).send().await.unwrap().text().await.unwrap());
        let q = crate::common::enc(r#"[{"namespaceName":"application","notificationId":-1}]"#);
        let url = format!("{base}/envs/{env}/notifications/v2?appId=demo&cluster=default&notifications={q}");
        out.push(http.get(url).send().await.unwrap().text().await.unwrap());
    }
    out
}

/// The record lines of a backup file (without its header and trailer, which hold its time
/// and engine).
fn backup_records(data: &Path, extra: &[&str], file: &Path) -> Vec<String> {
    let mut args = extra.to_vec();
    args.extend(["backup", file.to_str().unwrap()]);
    let out = cli(data, &args, "");
    assert!(out.status.success(), "{}", text(&out));
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[1..lines.len() - 1].to_vec()
}

#[tokio::test]
async fn a_sled_backup_restored_into_postgres_answers_clients_byte_for_byte() {
    let Some(url) = pg::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sled");
    let token = crate::common::process::seed_data_dir(&data);
    let proc = Proc::start(&data, &[]);
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "demo", "name": "demo", "ownerName": ADMIN}});
    assert_eq!(open_api(&proc.base, &token, Method::POST, "/apps", app).await.0, 200);
    for v in ["a", "b", "ç \"q\"\nline"] {
        assert_eq!(publish(&proc.base, &token, v).await.0, 200);
    }
    let before = client_answers(&proc.base).await;
    assert!(proc.terminate().0.success());
    let file = dir.path().join("sled.backup");
    let sled_records = backup_records(&data, &[], &file);

    let nowhere = dir.path().join("never-created");
    let out =
        cli(&nowhere, &["--database-url", &url, "restore", file.to_str().unwrap(), "--keep-notification-ids"], "");
    assert!(out.status.success(), "{}", text(&out));
    let pg_records = backup_records(&nowhere, &["--database-url", &url], &dir.path().join("pg.backup"));
    assert_eq!(pg_records, sled_records, "both engines export the same records");
    let check = cli(&nowhere, &["--database-url", &url, "check"], "");
    assert!(check.status.success() && text(&check).contains("no problems"), "{}", text(&check));

    let proc = Proc::start(&nowhere, &["--database-url", &url]);
    assert_eq!(client_answers(&proc.base).await, before, "same configs and notification ids on PostgreSQL");
    assert!(!nowhere.exists());
}
