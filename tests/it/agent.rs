//! `cairn agent`: files written atomically, reload once per release, `--once`, outages.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::common::front::FrontDoor;
use crate::common::process::{cli, open_api, seed_data_dir, text, Proc, BIN};
use crate::common::{eventually, TestServer, ADMIN};

/// A running agent, stopped however the test ends.
struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent(server: &str, dir: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["agent", "--server", server, "--app", "demo", "--dir", dir.to_str().unwrap()])
        .args(extra)
        .env("CAIRN_LOG", "info");
    c
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[tokio::test]
async fn once_writes_every_namespace_and_exits_0() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("db.url", "jdbc:a"), ("pool", "5")]).await;
    s.seed_namespace("demo", "app", "yaml", false).await;
    s.publish("DEV", "demo", "app.yaml", &[("content", "server:\n  port: 80\n")]).await;
    let dir = tempfile::tempdir().unwrap();
    let tmpl = dir.path().join("app.conf.tmpl");
    std::fs::write(&tmpl, "url = {{ db.url }}\n").unwrap();
    let out_dir = dir.path().join("out");
    let server = s.url("/envs/DEV");
    let t = format!("application={}", tmpl.display());
    let out = tokio::task::spawn_blocking(move || {
        agent(&server, &out_dir, &["--namespaces", "application,app.yaml", "--once", "--template", &t])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out_dir = dir.path().join("out");
    assert_eq!(read(&out_dir.join("application.properties")), "db.url=jdbc\\:a\npool=5\n");
    assert_eq!(read(&out_dir.join("app.yaml")), "server:\n  port: 80\n");
    assert_eq!(read(&out_dir.join("app.conf")), "url = jdbc:a\n");
}

#[tokio::test]
async fn once_fails_clearly_without_a_release_or_a_server() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let dir = tempfile::tempdir().unwrap();
    let (server, d) = (s.url("/envs/DEV"), dir.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || agent(&server, &d, &["--once"]).output().unwrap()).await.unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("has no release"), "{}", text(&out));
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        agent("http://127.0.0.1:9/envs/DEV", &d, &["--once", "--wait", "0"]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot reach Cairn"), "{}", text(&out));
    assert!(text(&out).contains("raise --wait, or give --cache"), "{}", text(&out));
    let d = dir.path().to_path_buf();
    let out =
        tokio::task::spawn_blocking(move || agent("https://cairn.example/envs/PRO", &d, &["--once"]).output().unwrap())
            .await
            .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("is not an http:// URL"), "{}", text(&out));
}

#[tokio::test]
async fn releases_rewrite_files_atomically_and_reload_once_each() {
    let s = TestServer::start_with(|c| c.value_max = 1_000_000).await;
    s.seed_app("demo").await;
    s.seed_namespace("demo", "big", "json", false).await;
    let version = |n: usize| format!("{{\"version\": {n}, \"padding\": \"{}\"}}", "x".repeat(300_000 + n));
    s.publish("DEV", "demo", "big.json", &[("content", &version(0))]).await;
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("reloads");
    let out = dir.path().join("out");
    let on_change = format!("echo reload >> {}", counter.display());
    let mut child = agent(&s.url("/envs/DEV"), &out, &["--namespaces", "big.json", "--on-change", &on_change])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let file = out.join("big.json");
    eventually(Duration::from_secs(10), "first write", || async { read(&file) == version(0) }).await;

    // A reader that must only ever see complete versions.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (f2, stop2) = (file.clone(), stop.clone());
    let reader = std::thread::spawn(move || {
        let mut reads = 0;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let text = std::fs::read_to_string(&f2).unwrap();
            let v: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("half-written file ({e}), {} bytes", text.len()));
            assert!(v["version"].is_u64());
            reads += 1;
        }
        reads
    });
    for n in 1..=3 {
        s.publish("DEV", "demo", "big.json", &[("content", &version(n))]).await;
        eventually(Duration::from_secs(5), "rewrite after release", || async { read(&file) == version(n) }).await;
    }
    // Let a late, duplicate reload show up if there were one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 10);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(read(&counter).lines().count(), 4, "one reload for the first write and one per release");
    let leftovers: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "temporary files left behind: {leftovers:?}");
}

async fn call(base: &str, token: &str, method: Method, path: &str, body: serde_json::Value) {
    assert_eq!(open_api(base, token, method, path, body).await.0, 200);
}

async fn release(base: &str, token: &str, value: &str) {
    let ns = "/envs/DEV/apps/demo/clusters/default/namespaces/application";
    let item = json!({"key": "k", "value": value, "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN});
    call(base, token, Method::PUT, &format!("{ns}/items/k?createIfNotExists=true"), item).await;
    call(base, token, Method::POST, &format!("{ns}/releases"), json!({"releaseTitle": value, "releasedBy": ADMIN}))
        .await;
}

#[tokio::test]
async fn the_agent_survives_cairn_being_down_at_start_and_later() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = seed_data_dir(&data);
    let front = FrontDoor::start().await;
    let proc = Proc::start(&data, &[]);
    front.point_to(&proc.base);
    call(
        &proc.base,
        &token,
        Method::POST,
        "/apps",
        json!({"assignAppRoleToSelf": true, "app": {"appId": "demo", "name": "demo", "ownerName": ADMIN}}),
    )
    .await;
    release(&proc.base, &token, "v1").await;
    assert!(proc.terminate().0.success());

    // Cairn is down when the agent starts.
    let out = dir.path().join("out");
    let mut child = agent(&format!("{}/envs/DEV", front.base), &out, &[]).stderr(Stdio::null()).spawn().unwrap();
    let file = out.join("application.properties");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(read(&file), "");
    let proc = Proc::start(&data, &[]);
    front.point_to(&proc.base);
    eventually(Duration::from_secs(10), "files after Cairn came up", || async { read(&file) == "k=v1\n" }).await;

    // Cairn crashes: the last good file stays.
    proc.kill9();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(read(&file), "k=v1\n");
    let proc = Proc::start(&data, &[]);
    front.point_to(&proc.base);
    release(&proc.base, &token, "v2").await;
    eventually(Duration::from_secs(15), "files after the next release", || async { read(&file) == "k=v2\n" }).await;
    child.kill().unwrap();
    child.wait().unwrap();
    drop(proc);
}

/// Starts Cairn with the app `demo` released as `k=v1`; returns the dir, data, token, process.
async fn cairn_with_release() -> (tempfile::TempDir, std::path::PathBuf, String, Proc) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = seed_data_dir(&data);
    let proc = Proc::start(&data, &[]);
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "demo", "name": "demo", "ownerName": ADMIN}});
    call(&proc.base, &token, Method::POST, "/apps", app).await;
    release(&proc.base, &token, "v1").await;
    (dir, data, token, proc)
}

#[tokio::test]
async fn once_waits_for_cairn_to_come_up_within_its_wait() {
    let (dir, data, _token, proc) = cairn_with_release().await;
    assert!(proc.terminate().0.success());
    let front = FrontDoor::start().await;
    let out = dir.path().join("out");
    let mut init = agent(&format!("{}/envs/DEV", front.base), &out, &["--once", "--wait", "30"]);
    let init = tokio::task::spawn_blocking(move || init.output().unwrap());
    // The agent is retrying against a Cairn that is down; it comes up 2 s later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let proc = Proc::start(&data, &[]);
    front.point_to(&proc.base);
    let out_put = init.await.unwrap();
    assert!(out_put.status.success(), "{}", text(&out_put));
    assert!(text(&out_put).contains("retrying"), "{}", text(&out_put));
    assert_eq!(read(&out.join("application.properties")), "k=v1\n");
    drop(proc);
}

#[tokio::test]
async fn once_starts_from_the_cache_when_cairn_stays_down() {
    let (dir, _data, _token, proc) = cairn_with_release().await;
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap().to_string();
    // A first pod fills the cache while Cairn is up.
    let front = FrontDoor::start().await;
    front.point_to(&proc.base);
    let (server, first) = (format!("{}/envs/DEV", front.base), dir.path().join("first"));
    let c = cache_arg.clone();
    let out = tokio::task::spawn_blocking(move || agent(&server, &first, &["--once", "--cache", &c]).output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let server = format!("{}/envs/DEV", front.base);
    assert!(proc.terminate().0.success());
    front.point_nowhere();

    // Without a cache, a short wait ends in a clear failure; with it, the pod starts.
    let second = dir.path().join("second");
    let (s2, d2) = (server.clone(), second.clone());
    let out = tokio::task::spawn_blocking(move || agent(&s2, &d2, &["--once", "--wait", "1"]).output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let started = std::time::Instant::now();
    let (s2, d2) = (server.clone(), second.clone());
    let out = tokio::task::spawn_blocking(move || {
        agent(&s2, &d2, &["--once", "--wait", "1", "--cache", &cache_arg]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("started from the cached files"), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(read(&second.join("application.properties")), "k=v1\n");

    // An empty cache cannot stand in: the failure says so.
    let (d3, empty) = (dir.path().join("third"), dir.path().join("empty-cache"));
    let out = tokio::task::spawn_blocking(move || {
        agent(&server, &d3, &["--once", "--wait", "0", "--cache", empty.to_str().unwrap()]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("the cache cannot stand in"), "{}", text(&out));
}

#[tokio::test]
async fn the_sidecar_does_not_reload_at_start_when_nothing_changed() {
    let (dir, _data, token, proc) = cairn_with_release().await;
    let out = dir.path().join("out");
    let server = format!("{}/envs/DEV", proc.base);
    let (s, o) = (server.clone(), out.clone());
    let init = tokio::task::spawn_blocking(move || agent(&s, &o, &["--once"]).output().unwrap()).await.unwrap();
    assert!(init.status.success(), "{}", text(&init));
    let counter = dir.path().join("reloads");
    let on_change = format!("echo reload >> {}", counter.display());
    let mut sidecar = agent(&server, &out, &["--on-change", &on_change]).stderr(Stdio::piped()).spawn().unwrap();
    let log = sidecar.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(log).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The sidecar has compared the release with the file the init container wrote.
    let saw_unchanged = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            if line.contains("configuration unchanged") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(saw_unchanged, "the sidecar never checked the release");
    assert_eq!(read(&counter), "", "reloaded although nothing changed");
    release(&proc.base, &token, "v2").await;
    let file = out.join("application.properties");
    eventually(Duration::from_secs(10), "the next release", || async { read(&file) == "k=v2\n" }).await;
    eventually(Duration::from_secs(5), "its reload", || async { read(&counter).lines().count() == 1 }).await;
    sidecar.kill().unwrap();
    sidecar.wait().unwrap();
}

#[test]
fn agent_help_lists_only_agent_flags() {
    let help = Command::new(BIN).args(["agent", "--help"]).output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for own in ["--server", "--once", "--wait", "--cache", "--secret-file", "--log-format"] {
        assert!(help.contains(own), "agent --help lacks {own}:\n{help}");
    }
    for server_only in ["--listen", "--key-max", "--body-max", "--four-eyes-envs", "--advertised-url", "--data"] {
        assert!(!help.contains(&format!("{server_only} <")), "agent --help lists {server_only}:\n{help}");
    }
    // The server's own help is unchanged.
    let serve = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&serve.stdout).contains("--listen"));
}

/// One namespace failing (no release yet, say) must not hold back the reload for another
/// one the sidecar has just rewritten.
#[tokio::test]
async fn a_failing_namespace_does_not_hold_back_the_reload_of_another() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("k", "v1")]).await;
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("reloads");
    let out = dir.path().join("out");
    let on_change = format!("echo reload >> {}", counter.display());
    let child =
        agent(&s.url("/envs/DEV"), &out, &["--namespaces", "application,unreleased", "--on-change", &on_change])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    let _child = Stop(child);
    let file = out.join("application.properties");
    eventually(Duration::from_secs(10), "the first write", || async { read(&file) == "k=v1\n" }).await;
    eventually(Duration::from_secs(5), "its reload", || async { read(&counter).lines().count() == 1 }).await;
    s.publish("DEV", "demo", "application", &[("k", "v2")]).await;
    eventually(Duration::from_secs(10), "the next release", || async { read(&file) == "k=v2\n" }).await;
    eventually(Duration::from_secs(5), "its reload", || async { read(&counter).lines().count() == 2 }).await;
}

/// Restoring a backup turns Cairn's notification ids back. An agent that kept the newer ids
/// across the outage would wait for ids the restored Cairn reaches only releases later; it
/// starts over instead, so the first release after the restore arrives as usual.
#[tokio::test]
async fn after_a_restore_the_next_release_still_arrives() {
    let (dir, data, token, proc) = cairn_with_release().await;
    let front = FrontDoor::start().await;
    front.point_to(&proc.base);
    let backup = dir.path().join("v1.backup");
    let b = cli(&data, &["backup", backup.to_str().unwrap()], "");
    assert!(b.status.success(), "{}", text(&b));
    for v in ["v2", "v3", "v4"] {
        release(&proc.base, &token, v).await;
    }
    let out = dir.path().join("out");
    let child =
        agent(&format!("{}/envs/DEV", front.base), &out, &["--refresh", "2"]).stderr(Stdio::null()).spawn().unwrap();
    let _child = Stop(child);
    let file = out.join("application.properties");
    eventually(Duration::from_secs(10), "the latest release", || async { read(&file) == "k=v4\n" }).await;

    assert!(proc.terminate().0.success());
    let restored = dir.path().join("restored");
    let r = cli(&restored, &["restore", backup.to_str().unwrap()], "");
    assert!(r.status.success(), "{}", text(&r));
    let proc = Proc::start(&restored, &[]);
    front.point_to(&proc.base);
    eventually(Duration::from_secs(10), "the restored release", || async { read(&file) == "k=v1\n" }).await;
    release(&proc.base, &token, "v5").await;
    eventually(Duration::from_secs(10), "the first release after the restore", || async { read(&file) == "k=v5\n" })
        .await;
    drop(proc);
}
