//! End to end: an example app configured only through Cairn serves traffic under a bounded
//! load loop while configuration is released and Cairn itself is restarted.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::common::front::FrontDoor;
use crate::common::process::{open_api, seed_data_dir, Proc};
use crate::common::{eventually, ADMIN};

/// One request of the load loop: when it finished and what it got.
type Answer = (Instant, Result<String, String>);

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn greeter_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().unwrap().parent().unwrap();
    let bin = debug.join("examples").join("greeter");
    assert!(bin.exists(), "{} is missing: `cargo test` builds the examples", bin.display());
    bin
}

async fn release(base: &str, token: &str, greeting: &str) -> Instant {
    let ns = "/envs/DEV/apps/greeter/clusters/default/namespaces/application";
    let item =
        json!({"key": "greeting", "value": greeting, "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN});
    assert_eq!(
        open_api(base, token, Method::PUT, &format!("{ns}/items/greeting?createIfNotExists=true"), item).await.0,
        200
    );
    let release = json!({"releaseTitle": greeting, "releasedBy": ADMIN});
    assert_eq!(open_api(base, token, Method::POST, &format!("{ns}/releases"), release).await.0, 200);
    Instant::now()
}

#[tokio::test]
async fn releases_and_cairn_restarts_cause_no_failed_requests() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = seed_data_dir(&data);
    let front = FrontDoor::start().await;
    let cairn = Proc::start(&data, &[]);
    front.point_to(&cairn.base);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "greeter", "name": "greeter", "ownerName": ADMIN}});
    assert_eq!(open_api(&cairn.base, &token, Method::POST, "/apps", app).await.0, 200);
    release(&cairn.base, &token, "hello").await;

    // The app: one generic binary, told only where Cairn is.
    let mut child = Command::new(greeter_binary())
        .env("APOLLO_META", format!("{}/envs/DEV", front.base))
        .env("APP_ID", "greeter")
        .env("LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let _child = Child(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on ") {
                let _ = tx.send(line[i + 13..].trim().to_string());
            }
        }
    });
    let app_url = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    eventually(Duration::from_secs(10), "the app serving its first config", || async {
        http.get(&app_url).send().await.map(|r| r.status() == 200).unwrap_or(false)
    })
    .await;

    // Bounded load loop: at most 60 s, stops when told.
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<Answer>>> = Arc::new(Mutex::new(Vec::new()));
    let (s2, seen2, url2, http2) = (stop.clone(), seen.clone(), app_url.clone(), http.clone());
    let load = tokio::spawn(async move {
        let start = Instant::now();
        while !s2.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(60) {
            let r = match http2.get(&url2).send().await {
                Ok(r) if r.status() == 200 => Ok(r.text().await.unwrap_or_default()),
                Ok(r) => Err(format!("status {}", r.status())),
                Err(e) => Err(e.to_string()),
            };
            seen2.lock().unwrap().push((Instant::now(), r));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let answers_since = |t: Instant, text: &str| {
        seen.lock()
            .unwrap()
            .iter()
            .find(|(at, r)| *at >= t && r.as_deref() == Ok(text))
            .map(|(at, _)| at.duration_since(t))
    };

    // 1. A release reaches the running app within 2 s.
    let released = release(&cairn.base, &token, "bonjour").await;
    eventually(Duration::from_secs(2), "the app answering with the new release", || async {
        answers_since(released, "bonjour").is_some()
    })
    .await;

    // 2. Cairn restarts (SIGTERM, start again): the app keeps answering from its last config.
    let (status, _) = tokio::task::spawn_blocking(move || cairn.terminate()).await.unwrap();
    assert!(status.success());
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        answers_since(down + Duration::from_millis(500), "bonjour").is_some(),
        "the app stopped answering while Cairn was down"
    );
    let cairn = Proc::start(&data, &[]);
    front.point_to(&cairn.base);

    // 3. ...and picks up the next release once Cairn is back.
    let released = release(&cairn.base, &token, "hola").await;
    eventually(Duration::from_secs(10), "the app picking up a release after the restart", || async {
        answers_since(released, "hola").is_some()
    })
    .await;

    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let seen = seen.lock().unwrap();
    let failed: Vec<_> = seen.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    assert!(seen.len() > 100, "only {} requests were made", seen.len());
    assert!(failed.is_empty(), "{} of {} requests failed: {:?}", failed.len(), seen.len(), failed.first());
}
