//! Operations: graceful shutdown, health, readiness, metrics.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::process::Proc;
use crate::common::TestServer;

#[tokio::test]
async fn sigterm_answers_every_held_poll_and_exits_0_within_5_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let proc = Proc::start(dir.path(), &["--default-env", "DEV"]);
    let addr = proc.base.trim_start_matches("http://").to_string();
    let req = b"GET /notifications/v2?appId=demo&cluster=default&notifications=%5B%7B%22namespaceName%22%3A%22application%22%2C%22notificationId%22%3A-1%7D%5D HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(req).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap_or(0);
            String::from_utf8_lossy(&buf[..n]).to_string()
        }));
    }
    // Wait until the server holds all of them.
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = http.get(format!("{}/metrics", proc.base)).send().await.unwrap().text().await.unwrap();
        if m.contains("cairn_long_polls_held 1000") {
            break;
        }
        assert!(Instant::now() < deadline, "polls not held: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, took) = tokio::task::spawn_blocking(move || proc.terminate()).await.unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    for t in tasks {
        let answer = t.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 304"), "a held poll got {answer:?}");
    }
}

#[tokio::test]
async fn health_ready_and_metrics_report_the_server() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("k", "v")]).await;
    s.configs("DEV", "demo", "default", "application", "").await;
    s.configs("DEV", "demo", "default", "nope", "").await;
    let health = s.get("/health").await;
    assert_eq!((health.status.as_u16(), health.json()["status"].as_str()), (200, Some("UP")));
    let ready = s.get("/ready").await.json();
    assert_eq!(ready["status"], "READY");
    assert_eq!(ready["envs"], serde_json::json!(["DEV", "FAT", "UAT", "PRO"]));
    let m = s.get("/metrics").await;
    assert!(m.content_type().starts_with("text/plain"));
    for line in [
        "cairn_http_requests_total{route=\"/configs/{app_id}/{cluster}/{namespace}\",status=\"200\"} 1",
        "cairn_http_requests_total{route=\"/configs/{app_id}/{cluster}/{namespace}\",status=\"404\"} 1",
        "cairn_releases_published_total 1",
        "cairn_long_polls_held 0",
        "cairn_store_size_bytes ",
        "cairn_notification_fanout_seconds_count ",
    ] {
        assert!(m.text.contains(line), "metrics lack {line:?}:\n{}", m.text);
    }
    assert!(m.text.contains("route=\"/apps\",status=\"200\"") || m.text.contains("/openapi/v1"), "{}", m.text);
}
