//! The real binary's commands: help, users, consumers, check, backup/restore, healthcheck.

use std::process::Command;

use cairn::store::{Record, StoreConfig};

fn open_store(data: &std::path::Path) -> std::sync::Arc<dyn cairn::store::Repo> {
    cairn::store::open(&StoreConfig::Sled { path: data.to_path_buf() }).unwrap()
}
use reqwest::Method;
use serde_json::json;

use crate::common::process::{cli, get_json, text, Proc, BIN};
use crate::common::ADMIN;

#[test]
fn help_explains_commands_and_settings() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = text(&out);
    for word in ["serve", "user", "consumer", "healthcheck", "check", "backup", "restore", "CAIRN_DATA", "cairn.toml"] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
    let serve = text(&Command::new(BIN).args(["serve", "--help"]).output().unwrap());
    for word in ["--listen", "CAIRN_LISTEN", "CAIRN_DEFAULT_ENV", "--long-poll-timeout"] {
        assert!(serve.contains(word), "serve --help lacks {word}");
    }
}

#[test]
fn settings_come_from_cairn_variables_without_a_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .env("CAIRN_DATA", dir.path())
        .env("CAIRN_LISTEN", "127.0.0.1:0")
        .env("CAIRN_ENVS", "DEV,PRO")
        .env("CAIRN_LOG_FORMAT", "json")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The listening line, after any notice about the data directory (a temp dir others may
    // read is made owner-only first).
    let mut reader = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    for _ in 0..5 {
        line.clear();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        if line.contains("listening") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let log: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    let msg = log["fields"]["message"].as_str().unwrap();
    assert!(msg.starts_with("cairn listening on http://127.0.0.1:"), "{msg}");
    assert!(log["fields"]["envs"].as_str().unwrap().contains("PRO"), "{log}");
    assert!(!log["fields"]["envs"].as_str().unwrap().contains("FAT"), "{log}");
}

#[test]
fn the_first_admin_can_come_from_a_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("password");
    std::fs::write(&secret, "from-a-secret\n").unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(BIN)
        .args(["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("CAIRN_ADMIN_USER", "root")
        .env("CAIRN_ADMIN_PASSWORD_FILE", &secret)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let reader = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    for line in std::io::BufRead::lines(reader) {
        let line = line.unwrap();
        seen.push_str(&line);
        if line.contains("listening on") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen.contains("created the first admin"), "{seen}");
    let store = open_store(&data);
    let user = store.user("root").unwrap().unwrap();
    assert!(user.is_admin);
    assert!(cairn::security::password::verify("from-a-secret", &user.password_hash));
}

#[test]
fn bad_settings_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["--data", dir.path().to_str().unwrap(), "--long-poll-timeout", "300"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("1..=90"), "{}", text(&out));
    let cfg = dir.path().join("cairn.toml");
    std::fs::write(&cfg, "lissten = 1").unwrap();
    let out = Command::new(BIN).args(["--config", cfg.to_str().unwrap(), "check"]).output().unwrap();
    assert!(text(&out).contains("invalid config file"), "{}", text(&out));
}

#[test]
fn users_and_consumers_are_created_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let ok = cli(dir.path(), &["user", "add", "alice", "--admin"], "long-enough-pw\n");
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("user 'alice' created (admin)"));
    let again = cli(dir.path(), &["user", "add", "alice"], "long-enough-pw\n");
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"));
    let short = cli(dir.path(), &["user", "add", "bob"], "short\n");
    assert!(text(&short).contains("at least 8"));

    let created = cli(dir.path(), &["consumer", "create", "deployer"], "");
    assert!(created.status.success(), "{}", text(&created));
    let token = String::from_utf8_lossy(&created.stdout).lines().last().unwrap().trim().to_string();
    assert_eq!(token.len(), 40);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    let grant = cli(dir.path(), &["consumer", "grant", "deployer", "--app", "nope"], "");
    assert!(!grant.status.success());
    assert!(text(&grant).contains("app 'nope' not found"));
    // The token itself is not stored, only its hash.
    let store = open_store(dir.path());
    let consumer = store.consumer("deployer").unwrap().unwrap();
    assert_eq!(consumer.token_sha256, cairn::security::token::sha256_hex(&token));
    assert!(store.consumer_by_token(&token).unwrap().is_none());
}

#[tokio::test]
async fn admin_commands_work_through_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let proc = Proc::start(dir.path(), &[]);
    let admin_file = dir.path().join("admin.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&admin_file).unwrap().permissions().mode() & 0o777, 0o600);

    let out = cli(dir.path(), &["user", "add", "carol", "--admin"], "long-enough-pw\n");
    assert!(out.status.success(), "{}", text(&out));
    let out = cli(dir.path(), &["consumer", "create", "live", "--allow-create-app"], "");
    assert!(out.status.success(), "{}", text(&out));
    let token = String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_string();
    // The new token works at once against the running server.
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "live", "name": "live", "ownerName": "carol"}});
    let r = reqwest::Client::new()
        .post(format!("{}/openapi/v1/apps", proc.base))
        .header("Authorization", &token)
        .header("Content-Type", "application/json")
        .body(app.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let again = cli(dir.path(), &["user", "add", "carol"], "long-enough-pw\n");
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    let check = cli(dir.path(), &["check"], "");
    assert!(check.status.success(), "{}", text(&check));
    let backup = dir.path().join("live.backup");
    let b = cli(dir.path(), &["backup", backup.to_str().unwrap()], "");
    assert!(b.status.success(), "{}", text(&b));
    assert!(std::fs::read_to_string(&backup).unwrap().contains("cairn-backup"));
    let restore = cli(dir.path(), &["restore", backup.to_str().unwrap()], "");
    assert!(!restore.status.success());
    assert!(text(&restore).contains("in use by a running server"), "{}", text(&restore));
    assert!(!text(&restore).contains("could not acquire lock"), "raw lock error leaked");

    // The admin API is not reachable without the token.
    let denied = reqwest::Client::new().get(format!("{}/admin/v1/check", proc.base)).send().await.unwrap();
    assert_eq!(denied.status(), 404);

    let health = Command::new(BIN).args(["healthcheck", "--url", &proc.base]).output().unwrap();
    assert!(health.status.success(), "{}", text(&health));
    let (status, took) = proc.terminate();
    assert!(status.success());
    assert!(took.as_secs() < 5);
    let down = Command::new(BIN).args(["healthcheck", "--url", "http://127.0.0.1:9"]).output().unwrap();
    assert!(!down.status.success());
}

async fn seed_with_releases(data: &std::path::Path) {
    let token = crate::common::process::seed_data_dir(data);
    let proc = Proc::start(data, &["--value-max", "100000"]);
    let call = |m: Method, p: String, b: serde_json::Value| {
        let (base, token) = (proc.base.clone(), token.clone());
        async move { crate::common::process::open_api(&base, &token, m, &p, b).await }
    };
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "demo", "name": "demo", "ownerName": ADMIN}});
    assert_eq!(call(Method::POST, "/apps".into(), app).await.0, 200);
    for (env, n) in [("DEV", 3), ("PRO", 2)] {
        for i in 0..n {
            let ns = format!("/envs/{env}/apps/demo/clusters/default/namespaces/application");
            let item = json!({"key": format!("k{i}"), "value": "x".repeat(70_000 + i), "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN});
            assert_eq!(call(Method::PUT, format!("{ns}/items/k{i}?createIfNotExists=true"), item).await.0, 200);
            assert_eq!(
                call(Method::POST, format!("{ns}/releases"), json!({"releaseTitle": "r", "releasedBy": ADMIN})).await.0,
                200
            );
        }
    }
    assert!(proc.terminate().0.success());
}

#[tokio::test]
async fn backup_and_restore_reproduce_every_release_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_with_releases(&data).await;
    let file = dir.path().join("cairn.backup");
    let b = cli(&data, &["backup", file.to_str().unwrap()], "");
    assert!(b.status.success(), "{}", text(&b));
    let restored = dir.path().join("restored");
    let r = cli(&restored, &["restore", file.to_str().unwrap()], "");
    assert!(r.status.success(), "{}", text(&r));
    assert!(text(&r).contains("restored"));

    // A backup of the restored data is identical record for record, but for the release
    // notification ids, which a restore moves ahead (see the next test).
    let file2 = dir.path().join("again.backup");
    assert!(cli(&restored, &["backup", file2.to_str().unwrap()], "").status.success());
    let body = |p: &std::path::Path| {
        std::fs::read_to_string(p).unwrap().lines().skip(1).map(str::to_string).collect::<Vec<_>>()
    };
    let (a, b) = (body(&file), body(&file2));
    let records = |v: &[String]| {
        v[..v.len() - 1]
            .iter()
            .filter(|l| !l.contains("\"record\":{\"type\":\"message\"") && !l.contains("\"counter\":\"message\""))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(records(&a), records(&b));
    assert!(records(&a).len() + 3 < a.len(), "the filter kept the notification records");

    let (orig, copy) = (open_store(&data), open_store(&restored));
    for env in ["DEV", "PRO"] {
        for id in 1..=5 {
            assert_eq!(orig.release(env, id).unwrap(), copy.release(env, id).unwrap());
        }
    }
    assert!(copy.release("DEV", 1).unwrap().unwrap().verify());
    drop((orig, copy));

    let again = cli(&restored, &["restore", file.to_str().unwrap()], "");
    assert!(!again.status.success());
    assert!(text(&again).contains("already holds data"));
    let mut damaged = std::fs::read_to_string(&file).unwrap();
    damaged = damaged.replacen("\"value\":\"", "\"value\":\"AAAA", 1);
    std::fs::write(&file, damaged).unwrap();
    let bad = cli(&dir.path().join("third"), &["restore", file.to_str().unwrap()], "");
    assert!(!bad.status.success());
    assert!(text(&bad).contains("checksum"), "{}", text(&bad));
}

/// Clients hold the newest notification id they saw and are woken only by a greater one.
/// After a restore from an older backup they must not wait for the counter to catch up while
/// keeping values the restore took back: every namespace gets a fresh, greater id.
#[tokio::test]
async fn after_a_restore_every_client_is_woken_to_fetch_the_restored_values() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = crate::common::process::seed_data_dir(&data);
    let proc = Proc::start(&data, &[]);
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "demo", "name": "demo", "ownerName": ADMIN}});
    assert_eq!(crate::common::process::open_api(&proc.base, &token, Method::POST, "/apps", app).await.0, 200);
    let ns = "/envs/DEV/apps/demo/clusters/default/namespaces/application";
    let release = |v: &'static str| {
        let (base, token) = (proc.base.clone(), token.clone());
        async move {
            let item = json!({"key": "k", "value": v, "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN});
            let put = format!("{ns}/items/k?createIfNotExists=true");
            assert_eq!(crate::common::process::open_api(&base, &token, Method::PUT, &put, item).await.0, 200);
            let rel = json!({"releaseTitle": v, "releasedBy": ADMIN});
            let post = format!("{ns}/releases");
            assert_eq!(crate::common::process::open_api(&base, &token, Method::POST, &post, rel).await.0, 200);
        }
    };
    release("v1").await;
    let file = dir.path().join("v1.backup");
    assert!(cli(&data, &["backup", file.to_str().unwrap()], "").status.success());
    for v in ["v2", "v3", "v4"] {
        release(v).await;
    }
    let http = reqwest::Client::new();
    let poll = |base: &str, id: i64| {
        let q = format!("[{{\"namespaceName\":\"application\",\"notificationId\":{id}}}]");
        let enc: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
        format!("{base}/envs/DEV/notifications/v2?appId=demo&cluster=default&notifications={enc}")
    };
    let latest = get_json(&http, &poll(&proc.base, -1)).await;
    let client_id = latest[0]["notificationId"].as_i64().unwrap();
    assert!(proc.terminate().0.success());

    let restored = dir.path().join("restored");
    let r = cli(&restored, &["restore", file.to_str().unwrap()], "");
    assert!(r.status.success() && text(&r).contains("notifications"), "{}", text(&r));
    let proc = Proc::start(&restored, &[]);
    // The client's poll with its newest id is answered at once, with a greater id...
    let started = std::time::Instant::now();
    let woken = http.get(poll(&proc.base, client_id)).send().await.unwrap();
    assert_eq!(woken.status(), 200);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let woken: serde_json::Value = woken.json().await.unwrap();
    let new_id = woken[0]["notificationId"].as_i64().unwrap();
    assert!(new_id > client_id && new_id < i64::from(i32::MAX), "{new_id} after {client_id}");
    // ...and the fetch it triggers serves the restored values.
    let cfg = get_json(&http, &format!("{}/envs/DEV/configs/demo/default/application", proc.base)).await;
    assert_eq!(cfg["configurations"]["k"], "v1");
    // Releases after the restore keep going up from there.
    let (base, token) = (proc.base.clone(), token.clone());
    let item = json!({"key": "k", "value": "v5", "dataChangeLastModifiedBy": ADMIN});
    assert_eq!(
        crate::common::process::open_api(&base, &token, Method::PUT, &format!("{ns}/items/k"), item).await.0,
        200
    );
    let rel = json!({"releaseTitle": "v5", "releasedBy": ADMIN});
    assert_eq!(
        crate::common::process::open_api(&base, &token, Method::POST, &format!("{ns}/releases"), rel).await.0,
        200
    );
    let next = get_json(&http, &poll(&proc.base, new_id)).await;
    assert!(next[0]["notificationId"].as_i64().unwrap() > new_id);
}

#[tokio::test]
async fn check_reports_a_corrupted_release() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_with_releases(&data).await;
    let ok = cli(&data, &["check"], "");
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("no problems"));
    {
        // A value changed on disk: the record decodes, its checksum no longer matches.
        let store = open_store(&data);
        let mut release = store.release("PRO", 5).unwrap().unwrap();
        // Same length, so the stored chunks are overwritten one for one.
        let value = &mut release.configurations[0].1;
        *value = "y".repeat(value.len());
        store.write_unlocked(vec![Record::Release { env: "PRO".into(), release }]).unwrap();
        store.flush().unwrap();
    }
    let bad = cli(&data, &["check"], "");
    assert!(!bad.status.success());
    let t = text(&bad);
    assert!(t.contains("release 5") && t.contains("checksum"), "{t}");
}

#[test]
fn every_cairn_variable_the_flags_read_is_known_and_others_are_reported() {
    // A variable a flag reads is never reported as ignored (CAIRN_TRUSTED_PROXIES was).
    let out = Command::new(BIN)
        .args(["healthcheck", "--url", "http://127.0.0.1:1"])
        .env("CAIRN_TRUSTED_PROXIES", "10.0.0.0/8")
        .env("CAIRN_AGENT_WAIT", "5")
        .env("CAIRN_NOT_A_SETTING", "1")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("CAIRN_TRUSTED_PROXIES is ignored"), "{log}");
    assert!(!log.contains("CAIRN_AGENT_WAIT is ignored"), "{log}");
    assert!(log.contains("unknown environment variable CAIRN_NOT_A_SETTING is ignored"), "{log}");
    // Every CAIRN_* variable the packaging and the docs set is one Cairn reads.
    let known = cairn::cli::known_env_vars();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("packaging"), root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p)
            } else {
                files.push(p)
            }
        }
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (i, _) in text.match_indices("CAIRN_") {
            let name: String =
                text[i..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
            if name.len() > "CAIRN_".len() && !name.ends_with('_') {
                assert!(known.contains(&name), "{} names {name}, which Cairn does not read", file.display());
            }
        }
    }
}

#[test]
fn a_placeholder_admin_password_is_refused_at_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("password");
    std::fs::write(&secret, "CHANGE-ME-before-applying\n").unwrap();
    let out = Command::new(BIN)
        .args(["--data", dir.path().join("data").to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("CAIRN_ADMIN_USER", "admin")
        .env("CAIRN_ADMIN_PASSWORD_FILE", &secret)
        .output()
        .unwrap();
    assert!(!out.status.success(), "Cairn started with a placeholder admin password");
    assert!(String::from_utf8_lossy(&out.stderr).contains("placeholder"), "{}", String::from_utf8_lossy(&out.stderr));
}
