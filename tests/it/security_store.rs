//! Storage and service invariants under hostile or careless use: bounded client-instance
//! records, a full disk, the consumer as the actor of Open API changes, changes that read
//! what they modify inside the write lock, the power-loss window of a release, and the exact
//! field set of Open API releases.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cairn::domain::model::Grant;
use cairn::service::{Caller, NsRef};
use reqwest::Method;
use serde_json::json;

use crate::common::{eventually, portal_sign_in, TestServer, ADMIN};

const DEV_NS: &str = "/envs/DEV/apps/demo/clusters/default/namespaces/application";
const PRO_NS: &str = "/envs/PRO/apps/demo/clusters/default/namespaces/application";

fn master(app: &str) -> Grant {
    Grant { app_id: app.into(), namespace: None, env: None, modify: true, release: true }
}

#[tokio::test]
async fn open_api_releases_carry_exactly_apollos_fields() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.set_items("DEV", "demo", "default", "application", &[("k", "v")]).await;
    let published = s
        .open(Method::POST, &format!("{DEV_NS}/releases"), Some(json!({"releaseTitle": "t", "releasedBy": ADMIN})))
        .await;
    assert_eq!(published.status, 200, "{}", published.text);
    let latest = s.open(Method::GET, &format!("{DEV_NS}/releases/latest"), None).await;
    let by_id = s.open(Method::GET, &format!("/envs/DEV/releases/{}", published.json()["id"]), None).await;
    // Apollo's OpenReleaseDTO, field for field.
    let expected: BTreeSet<&str> = [
        "id",
        "appId",
        "clusterName",
        "namespaceName",
        "name",
        "configurations",
        "comment",
        "dataChangeCreatedBy",
        "dataChangeLastModifiedBy",
        "dataChangeCreatedTime",
        "dataChangeLastModifiedTime",
    ]
    .into();
    for r in [&published, &latest, &by_id] {
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        let fields: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(fields, expected, "{v}");
    }
}

#[tokio::test]
async fn one_consumer_creating_apps_concurrently_keeps_every_grant() {
    let s = Arc::new(TestServer::start().await);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let app = format!("par{i}");
            let body = json!({"assignAppRoleToSelf": true, "app": {"appId": app, "name": app, "ownerName": ADMIN}});
            let r = s.open(Method::POST, "/apps", Some(body)).await;
            assert_eq!(r.status, 200, "{}", r.text);
            app
        }));
    }
    let mut apps = Vec::new();
    for t in tasks {
        apps.push(t.await.unwrap());
    }
    for app in &apps {
        let r = s.open(Method::GET, &format!("/apps/{app}/envclusters"), None).await;
        assert_eq!(r.status, 200, "{app}: {}", r.text);
    }
    let authorized = s.open(Method::GET, "/apps/authorized", None).await.json();
    assert_eq!(authorized.as_array().unwrap().len(), 40, "{authorized}");
}

#[tokio::test]
async fn four_eyes_holds_for_the_token_whatever_operator_it_names() {
    let s = TestServer::with_four_eyes_pro(false).await;
    s.seed_app("demo").await;
    let sys = Caller::system("t");
    for u in ["mod", "rel"] {
        s.cairn.create_user(&sys, u, &format!("{u}-password"), false).unwrap();
        s.cairn.grant_user(&sys, u, master("demo")).unwrap();
    }
    let edit = s
        .open(
            Method::PUT,
            &format!("{PRO_NS}/items/fe?createIfNotExists=true"),
            Some(json!({"key": "fe", "value": "1", "dataChangeLastModifiedBy": "mod", "dataChangeCreatedBy": "mod"})),
        )
        .await;
    assert_eq!(edit.status, 200, "{}", edit.text);
    for operator in ["mod", "rel"] {
        s.open(Method::POST, &format!("{PRO_NS}/releases"), Some(json!({"releaseTitle": "t", "releasedBy": operator})))
            .await
            .assert_error(400, "four-eyes");
    }
    assert_eq!(s.configs("PRO", "demo", "default", "application", "").await.status, 404);

    // Another consumer, naming another user, is the second pair of eyes.
    let (_, other) = s.cairn.create_consumer(&sys, "reviewer", false).unwrap();
    s.cairn.grant_consumer(&sys, "reviewer", "demo", None, None).unwrap();
    let released = s
        .open_as(
            &other,
            Method::POST,
            &format!("{PRO_NS}/releases"),
            Some(json!({"releaseTitle": "t", "releasedBy": "rel"})),
        )
        .await;
    assert_eq!(released.status, 200, "{}", released.text);
    assert_eq!(released.json()["dataChangeCreatedBy"], "rel");

    // The audit log names the token; the operator is kept as its claim.
    let audit = s.cairn.audit_log(&sys, 50).unwrap();
    let save = audit.iter().find(|a| a.action == "item.save" && a.env.as_deref() == Some("PRO")).unwrap();
    assert_eq!((save.actor.as_str(), save.claimed_operator.as_deref()), ("consumer:tester", Some("mod")));
    let publish = audit.iter().find(|a| a.action == "release.publish" && a.env.as_deref() == Some("PRO")).unwrap();
    assert_eq!((publish.actor.as_str(), publish.claimed_operator.as_deref()), ("consumer:reviewer", Some("rel")));
}

#[tokio::test]
async fn a_named_operator_needs_the_grant_the_change_needs() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let sys = Caller::system("t");
    s.cairn.create_user(&sys, "nobody", "nobody-password", false).unwrap();
    s.set_items("DEV", "demo", "default", "application", &[("k", "v")]).await;
    s.open(Method::POST, &format!("{DEV_NS}/releases"), Some(json!({"releaseTitle": "t", "releasedBy": "nobody"})))
        .await
        .assert_error(403, "operator 'nobody'");
    s.open(
        Method::PUT,
        &format!("{DEV_NS}/items/k"),
        Some(json!({"key": "k", "value": "w", "dataChangeLastModifiedBy": "nobody"})),
    )
    .await
    .assert_error(403, "operator 'nobody'");
    s.open(
        Method::POST,
        "/envs/DEV/apps/demo/clusters",
        Some(json!({"name": "c1", "appId": "demo", "dataChangeCreatedBy": "nobody"})),
    )
    .await
    .assert_error(403, "operator 'nobody'");
    // Nothing was released or changed.
    assert_eq!(s.configs("DEV", "demo", "default", "application", "").await.status, 404);
    assert_eq!(s.open(Method::GET, &format!("{DEV_NS}/items/k"), None).await.json()["value"], "v");

    // Once granted, the same operator is accepted.
    s.cairn.grant_user(&sys, "nobody", master("demo")).unwrap();
    let r = s
        .open(Method::POST, &format!("{DEV_NS}/releases"), Some(json!({"releaseTitle": "t", "releasedBy": "nobody"})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn an_instance_flood_stays_within_the_caps_and_real_clients_are_still_recorded() {
    let s = Arc::new(
        TestServer::start_with(|c| {
            c.instances_max_per_app = 50;
            c.instances_max_total = 80;
        })
        .await,
    );
    s.seed_app("gapp").await;
    s.seed_app("other").await;
    s.publish("DEV", "gapp", "application", &[("k", "v")]).await;
    s.publish("DEV", "other", "application", &[("k", "v")]).await;

    // A flood of client fetches, scaled down: random addresses, and garbage in every field.
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..250u32 {
                let n = t * 1000 + i;
                let query = match i % 5 {
                    0 => format!("?ip={}", "ab".repeat(1000 + n as usize % 7)),
                    1 => format!("?ip=10.0.{}.{}&dataCenter={}", n / 256, n % 256, "d".repeat(100)),
                    2 => format!("?ip=%3Cscript%3E{n}"),
                    _ => format!("?ip=10.{}.{}.{}", t, i / 256, i % 256),
                };
                let r = s
                    .send(
                        s.http
                            .get(s.url(&format!("/envs/DEV/configs/gapp/default/application{query}")))
                            .header("X-Forwarded-For", format!("192.0.2.{}", n % 250)),
                    )
                    .await;
                assert_eq!(r.status, 200, "{query}: {}", r.text);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (records, seen) = s.cairn.instance_counts();
    assert!(records <= 80 && seen <= 80, "records {records}, seen {seen}");
    let ns = |app| NsRef { env: "DEV", app, cluster: "default", ns: "application" };
    let flooded = s.cairn.instances(&Caller::system("t"), ns("gapp")).unwrap();
    assert_eq!(flooded.len(), 50, "the flooded app fills its own cap only");
    assert!(
        flooded.iter().all(|i| i.ip.starts_with("10.") && i.ip.len() <= 15 && i.data_center.is_empty()),
        "{flooded:?}"
    );

    // A real client of another app is still recorded and visible.
    let r = s.configs("DEV", "other", "default", "application", "?ip=10.9.9.9&dataCenter=dc-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let real = s.cairn.instances(&Caller::system("t"), ns("other")).unwrap();
    assert_eq!(
        real.iter().map(|i| (i.ip.as_str(), i.data_center.as_str())).collect::<Vec<_>>(),
        [("10.9.9.9", "dc-1")]
    );
    let (records, seen) = s.cairn.instance_counts();
    assert!(records <= 80 && seen <= 80, "records {records}, seen {seen}");

    // Without `ip`, the peer address is recorded, never X-Forwarded-For.
    let r = s
        .send(s.http.get(s.url("/envs/DEV/configs/other/default/application")).header("X-Forwarded-For", "203.0.113.9"))
        .await;
    assert_eq!(r.status, 200);
    let ips: Vec<String> =
        s.cairn.instances(&Caller::system("t"), ns("other")).unwrap().into_iter().map(|i| i.ip).collect();
    assert!(ips.contains(&"127.0.0.1".to_string()) && !ips.contains(&"203.0.113.9".to_string()), "{ips:?}");
}

#[tokio::test]
async fn every_blob_file_an_acknowledged_release_rests_on_is_synced() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let text: String = (0..5000).map(|i| format!("key.{i:05}=value-{i}-{}\n", "x".repeat(80))).collect();
    let admin = Caller::system(ADMIN);
    let at = NsRef { env: "DEV", app: "demo", cluster: "default", ns: "application" };
    assert_eq!(s.cairn.save_draft_text(&admin, at, &text).unwrap(), 5000);
    let r = s
        .open(Method::POST, &format!("{DEV_NS}/releases"), Some(json!({"releaseTitle": "big", "releasedBy": ADMIN})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The release's blob files are written before its commit's flush returns, so the commit
    // found them when it synced: every blob file older (by log sequence number, its name)
    // than the newest one it found must be among those it synced, at least at its length now.
    let sled = s.cairn.repo().sled().expect("the blob-file window is sled's");
    let blobs = sled.path().join("db").join("blobs");
    let on_disk = || -> BTreeSet<(u64, u64)> {
        std::fs::read_dir(&blobs)
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                Some((e.file_name().to_str()?.parse().ok()?, e.metadata().ok()?.len()))
            })
            .collect()
    };
    let synced = || -> BTreeSet<(u64, u64)> {
        sled.synced_blob_files().into_iter().map(|(n, len)| (n.parse().unwrap(), len)).collect()
    };
    let at_ack: Vec<(u64, u64)> =
        sled.blobs_of_last_commit().into_iter().map(|(n, len)| (n.parse().unwrap(), len)).collect();
    assert!(!at_ack.is_empty(), "a 5,000-item release is expected to make sled write blob files");
    let newest_at_ack = at_ack.iter().map(|(lsn, _)| *lsn).max().unwrap();
    for (lsn, len) in on_disk() {
        if lsn <= newest_at_ack {
            let found = at_ack.iter().find(|(l, _)| *l == lsn);
            assert!(
                found.is_some_and(|(_, synced_len)| *synced_len >= len),
                "blob {lsn} ({len} bytes) existed at the acknowledgement but was not synced by it: {found:?}"
            );
        }
    }
    // Blob files sled writes later (relocating pages) are synced within a moment too.
    eventually(Duration::from_secs(5), "every blob file to be synced", || async { on_disk().is_subset(&synced()) })
        .await;
    let served = s.configs("DEV", "demo", "default", "application", "").await.json();
    assert_eq!(served["configurations"].as_object().unwrap().len(), 5000);
}

/// A tmpfs mounted for one test, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// None when tmpfs cannot be mounted here (not root): the test then has nothing to run on.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then_some(SmallDisk { dir })
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.dir.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).output();
    }
}

#[tokio::test]
async fn a_full_disk_answers_507_reports_degraded_and_recovers_without_a_restart() {
    let Some(disk) = SmallDisk::mount("24m") else {
        eprintln!("skipped: mounting a tmpfs needs root (CI runs as root)");
        return;
    };
    let data = disk.dir.path().join("data");
    let s = TestServer::start_with(|c| c.data = data.clone()).await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("before", "1")]).await;
    let portal = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = portal_sign_in(&s, &portal, ADMIN, "apollo-password").await;
    let page = "/apps/demo/envs/DEV/clusters/default/namespaces/application";
    let html = s.send(portal.get(s.url(page)).header("Cookie", &cookie)).await.text;
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = html[at..].split('"').next().unwrap().to_string();
    let filler = disk.fill();

    // Writes until one is refused: each 200 is an acknowledged write that must survive.
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let key = format!("k{i}");
        let r = s
            .open(
                Method::PUT,
                &format!("{DEV_NS}/items/{key}?createIfNotExists=true"),
                Some(json!({"key": key, "value": "v".repeat(10_000), "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN})),
            )
            .await;
        match r.status.as_u16() {
            200 => acked.push(key),
            _ => {
                refused = Some(r);
                break;
            }
        }
    }
    let refused = refused.expect("the full disk never refused a write");
    refused.assert_error(507, "is full");
    let refused_key = format!("k{}", acked.len());
    let health = s.get("/health").await;
    assert_eq!(health.status, 200, "{}", health.text);
    assert_eq!(health.json()["status"], "DEGRADED", "{}", health.text);
    assert!(health.json()["reason"].as_str().unwrap().contains("No space left"), "{}", health.text);
    let ready = s.get("/ready").await.json();
    assert_eq!((ready["status"].as_str(), ready["writable"].as_bool()), (Some("READY"), Some(false)), "{ready}");
    assert!(s.get("/metrics").await.text.contains("\ncairn_store_writable 0\n"));
    // The portal says so too.
    let form = [("csrf", csrf.as_str()), ("key", "portal"), ("value", "1"), ("comment", "")];
    let r = s.send(portal.post(s.url(&format!("{page}/items"))).header("Cookie", &cookie).form(&form)).await;
    assert_eq!(r.status, 507, "{}", r.text);
    assert!(r.text.contains("Disk full") && r.text.contains("free space"), "{}", r.text);
    // Clients are still served.
    let served = s.configs("DEV", "demo", "default", "application", "").await;
    assert_eq!(served.status, 200);
    assert_eq!(served.json()["configurations"]["before"], "1");

    // Space returns: writes succeed again, with no restart.
    std::fs::remove_file(&filler).unwrap();
    eventually(Duration::from_secs(20), "a write to succeed after space was freed", || async {
        let r = s
            .open(
                Method::PUT,
                &format!("{DEV_NS}/items/after?createIfNotExists=true"),
                Some(json!({"key": "after", "value": "2", "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN})),
            )
            .await;
        r.status == 200
    })
    .await;
    assert_eq!(s.get("/health").await.json()["status"], "UP");
    assert!(s.get("/metrics").await.text.contains("\ncairn_store_writable 1\n"));
    let release = s.release("DEV", "demo", "default", "application").await;
    assert!(release["id"].as_u64().is_some());
    let served = s.configs("DEV", "demo", "default", "application", "").await.json();
    assert_eq!(served["configurations"]["after"], "2");
    for key in &acked {
        assert_eq!(served["configurations"][key].as_str().map(str::len), Some(10_000), "acknowledged {key} lost");
    }
    assert!(served["configurations"][&refused_key].is_null(), "the refused write of {refused_key} changed something");
    assert!(s.cairn.check(&Caller::system("t")).unwrap().problems.is_empty());
    drop(s);
}
