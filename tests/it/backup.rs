//! Backup format v2 through the real binary: round trips with byte-identical client answers,
//! notification ids kept (migration) or moved ahead (default), old version 1 backups, and a
//! restore refused by a target that holds data.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::json;

use crate::common::process::{cli, open_api, seed_data_dir, text, Proc};
use crate::common::ADMIN;

/// The client answers a restore must reproduce: raw `/configs` bodies and notification ids.
#[derive(Debug, PartialEq)]
struct Answers {
    configs: Vec<String>,
    ids: Vec<i64>,
}

const SPOTS: [(&str, &str); 3] = [("DEV", "demo"), ("PRO", "demo"), ("DEV", "other")];

async fn answers(base: &str) -> Answers {
    answers_of(base, &SPOTS).await
}

async fn answers_of(base: &str, spots: &[(&str, &str)]) -> Answers {
    let http = reqwest::Client::new();
    let (mut configs, mut ids) = (Vec::new(), Vec::new());
    for &(env, app) in spots {
        let url = format!("{base}/envs/{env}/configs/{app}/default/application");
        configs.push(http.get(url).send().await.unwrap().text().await.unwrap());
        let q = r#"[{"namespaceName":"application","notificationId":-1}]"#;
        let enc: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
        let url = format!("{base}/envs/{env}/notifications/v2?appId={app}&cluster=default&notifications={enc}");
        let v: serde_json::Value = http.get(url).send().await.unwrap().json().await.unwrap();
        ids.push(v[0]["notificationId"].as_i64().unwrap());
    }
    Answers { configs, ids }
}

/// A data dir with two apps, releases in DEV and PRO and a rollback; returns what clients see.
async fn seed(data: &Path) -> Answers {
    let token = seed_data_dir(data);
    let proc = Proc::start(data, &[]);
    let call = |m: Method, p: String, b: serde_json::Value| {
        let (base, token) = (proc.base.clone(), token.clone());
        async move { open_api(&base, &token, m, &p, b).await }
    };
    for app in ["demo", "other"] {
        let body = json!({"assignAppRoleToSelf": true, "app": {"appId": app, "name": app, "ownerName": ADMIN}});
        assert_eq!(call(Method::POST, "/apps".into(), body).await.0, 200);
    }
    let mut last = serde_json::Value::Null;
    for (env, app, values) in
        [("DEV", "demo", &["a", "b", "ç \"q\""][..]), ("PRO", "demo", &["p"][..]), ("DEV", "other", &["o1", "o2"][..])]
    {
        let ns = format!("/envs/{env}/apps/{app}/clusters/default/namespaces/application");
        for v in values {
            let item = json!({"key": "k", "value": v, "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN});
            assert_eq!(call(Method::PUT, format!("{ns}/items/k?createIfNotExists=true"), item).await.0, 200);
            let (status, release) =
                call(Method::POST, format!("{ns}/releases"), json!({"releaseTitle": v, "releasedBy": ADMIN})).await;
            assert_eq!(status, 200);
            last = release;
        }
    }
    let rollback = format!("/envs/DEV/releases/{}/rollback?operator={ADMIN}", last["id"]);
    assert_eq!(call(Method::PUT, rollback, json!({})).await.0, 200);
    let seen = answers(&proc.base).await;
    assert!(proc.terminate().0.success());
    seen
}

fn restore(target: &Path, file: &Path, keep_ids: bool) -> std::process::Output {
    let mut args = vec!["restore", file.to_str().unwrap()];
    if keep_ids {
        args.push("--keep-notification-ids");
    }
    cli(target, &args, "")
}

async fn served(data: &Path) -> Answers {
    let proc = Proc::start(data, &[]);
    let seen = answers(&proc.base).await;
    assert!(proc.terminate().0.success());
    seen
}

/// The record lines of a backup file (without header and trailer, which hold its time).
fn records(file: &PathBuf) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[1..lines.len() - 1].to_vec()
}

fn backup(data: &Path, file: &Path) {
    let out = cli(data, &["backup", file.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test]
async fn a_restored_backup_answers_clients_byte_for_byte_and_migration_keeps_notification_ids() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let before = seed(&data).await;
    let file = dir.path().join("cairn.backup");
    backup(&data, &file);
    let header: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&file).unwrap().lines().next().unwrap()).unwrap();
    let engine = if crate::common::on_pg() { "postgres" } else { "sled" };
    assert_eq!((header["version"].as_u64(), header["engine"].as_str()), (Some(2), Some(engine)));

    let kept = dir.path().join("kept");
    let out = restore(&kept, &file, true);
    assert!(out.status.success() && text(&out).contains("kept"), "{}", text(&out));
    // A backup of the restored data holds the same records (before clients are served, which
    // records their instances).
    let again = dir.path().join("again.backup");
    backup(&kept, &again);
    assert_eq!(records(&again), records(&file));
    assert_eq!(served(&kept).await, before, "the migration keeps answers and notification ids");
    let check = cli(&kept, &["check"], "");
    assert!(check.status.success() && text(&check).contains("no problems"), "{}", text(&check));

    let moved = dir.path().join("moved");
    let out = restore(&moved, &file, false);
    assert!(out.status.success(), "{}", text(&out));
    let after = served(&moved).await;
    assert_eq!(after.configs, before.configs, "a default restore serves the same configuration");
    for (new, old) in after.ids.iter().zip(&before.ids) {
        assert!(*new > old + 1_000_000 && *new < i64::from(i32::MAX), "{new} after {old}");
    }
}

/// `tests/fixtures/v1.backup` was written by the version 1 writer (before backups became
/// engine-neutral): app `demo`, two releases per env in DEV and PRO, PRO rolled back to its
/// first; then DEV answered with the body below and notification id 2, PRO with id 5.
#[tokio::test]
async fn an_old_version_1_backup_still_restores() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1.backup");
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept");
    let out = restore(&kept, &fixture, true);
    assert!(out.status.success(), "{}", text(&out));
    let check = cli(&kept, &["check"], "");
    assert!(check.status.success() && text(&check).contains("checked 4 releases"), "{}", text(&check));
    let proc = Proc::start(&kept, &[]);
    let http = reqwest::Client::new();
    let get = |env: &str| http.get(format!("{}/envs/{env}/configs/demo/default/application", proc.base)).send();
    assert_eq!(
        get("DEV").await.unwrap().text().await.unwrap(),
        r#"{"appId":"demo","cluster":"default","namespaceName":"application","configurations":{"k":"two-DEV ü"},"releaseKey":"20261202180510-6f70c0173b000601"}"#
    );
    let pro: serde_json::Value = get("PRO").await.unwrap().json().await.unwrap();
    assert_eq!(pro["configurations"]["k"], "one-PRO ü", "the rollback survives");
    let demo = [("DEV", "demo"), ("PRO", "demo")];
    assert_eq!(answers_of(&proc.base, &demo).await.ids, vec![2, 5]);
    drop(proc);

    let moved = dir.path().join("moved");
    let out = restore(&moved, &fixture, false);
    assert!(out.status.success(), "{}", text(&out));
    let proc = Proc::start(&moved, &[]);
    let seen = answers_of(&proc.base, &demo).await;
    assert!(seen.ids[0] > 1_000_005 && seen.ids[1] > 1_000_005, "{:?}", seen.ids);
}

#[tokio::test]
async fn a_restore_into_a_store_with_data_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let before = seed(&data).await;
    let first = dir.path().join("first.backup");
    backup(&data, &first);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1.backup");
    for (file, keep) in [(&first, false), (&fixture, true)] {
        let out = restore(&data, file, keep);
        assert!(!out.status.success());
        assert!(
            text(&out).contains("already holds data") && text(&out).contains("nothing was changed"),
            "{}",
            text(&out)
        );
    }
    let second = dir.path().join("second.backup");
    backup(&data, &second);
    assert_eq!(records(&second), records(&first));
    assert_eq!(served(&data).await, before);
}

/// A backup taken while releases are published shows one moment: restored, it checks clean
/// (every namespace's history as long as recorded, every active release present).
#[tokio::test]
async fn a_backup_taken_during_publishes_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = seed_data_dir(&data);
    let proc = Proc::start(&data, &[]);
    let body = json!({"assignAppRoleToSelf": true, "app": {"appId": "demo", "name": "demo", "ownerName": ADMIN}});
    assert_eq!(open_api(&proc.base, &token, Method::POST, "/apps", body).await.0, 200);
    let publishes = {
        let (base, token) = (proc.base.clone(), token.clone());
        tokio::spawn(async move {
            let ns = "/envs/DEV/apps/demo/clusters/default/namespaces/application";
            for i in 0..40 {
                let item = json!({"key": "k", "value": format!("v{i}"), "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN});
                let put = format!("{ns}/items/k?createIfNotExists=true");
                assert_eq!(open_api(&base, &token, Method::PUT, &put, item).await.0, 200);
                let rel = json!({"releaseTitle": format!("r{i}"), "releasedBy": ADMIN});
                assert_eq!(open_api(&base, &token, Method::POST, &format!("{ns}/releases"), rel).await.0, 200);
            }
        })
    };
    let mut files = Vec::new();
    for n in 0..3 {
        let (data, file) = (data.clone(), dir.path().join(format!("during-{n}.backup")));
        files.push(file.clone());
        tokio::task::spawn_blocking(move || backup(&data, &file)).await.unwrap();
    }
    publishes.await.unwrap();
    for (n, file) in files.iter().enumerate() {
        let target = dir.path().join(format!("restored-{n}"));
        let out = restore(&target, file, true);
        assert!(out.status.success(), "{}", text(&out));
        let check = cli(&target, &["check"], "");
        assert!(check.status.success() && text(&check).contains("no problems"), "{}", text(&check));
    }
}
