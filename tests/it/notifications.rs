//! /notifications/v2 and the legacy /notifications: immediate answers, holds, wake-ups.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{enc, TestServer};

fn poll_path(env: &str, app: &str, entries: serde_json::Value) -> String {
    format!("/envs/{env}/notifications/v2?appId={app}&cluster=default&notifications={}", enc(&entries.to_string()))
}

#[tokio::test]
async fn a_stale_client_is_answered_at_once_with_details() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("k", "v")]).await;
    let r = s.get(&poll_path("DEV", "demo", json!([{"namespaceName": "application", "notificationId": -1}]))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let id = v[0]["notificationId"].as_i64().unwrap();
    assert!(id > 0);
    assert_eq!(v[0]["namespaceName"], "application");
    assert_eq!(v[0]["messages"]["details"]["demo+default+application"], id);

    // The client's own spelling comes back.
    let spelled = s
        .get(&poll_path("DEV", "demo", json!([{"namespaceName": "application.properties", "notificationId": -1}])))
        .await
        .json();
    assert_eq!(spelled[0]["namespaceName"], "application.properties");
}

#[tokio::test]
async fn a_held_poll_wakes_within_a_second_of_a_release() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("k", "1")]).await;
    let current =
        s.get(&poll_path("DEV", "demo", json!([{"namespaceName": "application", "notificationId": -1}]))).await.json();
    let id = current[0]["notificationId"].as_i64().unwrap();

    let path = poll_path(
        "DEV",
        "demo",
        json!([{"namespaceName": "application", "notificationId": id}, {"namespaceName": "other", "notificationId": -1}]),
    );
    let url = s.url(&path);
    let http = s.http.clone();
    let held = tokio::spawn(async move {
        let r = http.get(url).send().await.unwrap();
        (r.status(), r.text().await.unwrap(), Instant::now())
    });
    s.wait_held_polls(1).await;
    assert!(!held.is_finished(), "the poll must be held while nothing changes");
    s.set_items("DEV", "demo", "default", "application", &[("k", "2")]).await;
    s.release("DEV", "demo", "default", "application").await;
    let released_at = Instant::now();
    let (status, text, answered_at) = held.await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(answered_at.duration_since(released_at) < Duration::from_secs(1));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["namespaceName"], "application");
    assert!(v[0]["notificationId"].as_i64().unwrap() > id);
    // After the wake-up, /configs already serves the new value.
    let cfg = s.configs("DEV", "demo", "default", "application", "").await.json();
    assert_eq!(cfg["configurations"]["k"], "2");
}

/// Once a release is durable it is announced, whatever happens to the read model's refresh
/// after it: the publish is answered as done, the held poll wakes, and /configs serves it.
#[tokio::test]
async fn a_committed_release_is_announced_even_when_the_refresh_after_it_fails() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("k", "1")]).await;
    let current =
        s.get(&poll_path("DEV", "demo", json!([{"namespaceName": "application", "notificationId": -1}]))).await.json();
    let id = current[0]["notificationId"].as_i64().unwrap();
    let url = s.url(&poll_path("DEV", "demo", json!([{"namespaceName": "application", "notificationId": id}])));
    let http = s.http.clone();
    let held = tokio::spawn(async move {
        let r = http.get(url).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    });
    s.wait_held_polls(1).await;
    s.set_items("DEV", "demo", "default", "application", &[("k", "2")]).await;

    s.cairn.fail_next_index_refresh();
    let released = s.release("DEV", "demo", "default", "application").await;
    assert!(released["id"].as_u64().is_some(), "{released}");

    let (status, text) = tokio::time::timeout(Duration::from_secs(10), held).await.unwrap().unwrap();
    assert_eq!(status, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v[0]["notificationId"].as_i64().unwrap() > id, "{v}");
    let cfg = s.configs("DEV", "demo", "default", "application", "").await.json();
    assert_eq!(cfg["configurations"]["k"], "2", "{cfg}");
    assert_eq!(cfg["releaseKey"], released["releaseKey"], "{cfg}");
}

#[tokio::test]
async fn an_unchanged_poll_times_out_with_304() {
    let s = TestServer::start_with(|c| c.long_poll_timeout_secs = 1).await;
    s.seed_app("demo").await;
    let start = Instant::now();
    let r = s.get(&poll_path("DEV", "demo", json!([{"namespaceName": "application", "notificationId": -1}]))).await;
    assert_eq!(r.status, 304);
    assert!(start.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn releases_in_another_env_do_not_wake_a_poll() {
    let s = TestServer::start_with(|c| c.long_poll_timeout_secs = 2).await;
    s.seed_app("demo").await;
    let url = s.url(&poll_path("DEV", "demo", json!([{"namespaceName": "application", "notificationId": -1}])));
    let http = s.http.clone();
    let held = tokio::spawn(async move { http.get(url).send().await.unwrap().status() });
    s.wait_held_polls(1).await;
    s.publish("PRO", "demo", "application", &[("k", "pro")]).await;
    assert_eq!(held.await.unwrap(), 304);
}

#[tokio::test]
async fn malformed_polls_are_rejected_with_400() {
    let s = TestServer::start().await;
    s.get("/envs/DEV/notifications/v2?appId=demo&cluster=default&notifications=%5Bnope")
        .await
        .assert_error(400, "invalid notifications format");
    s.get("/envs/DEV/notifications/v2?appId=demo&cluster=default&notifications=%5B%5D")
        .await
        .assert_error(400, "invalid notifications format");
    s.get("/envs/DEV/notifications/v2?appId=demo&cluster=default").await.assert_error(400, "notifications");
    s.get("/envs/DEV/notifications/v2?appId=demo&notifications=%5B%5D").await.assert_error(400, "cluster");
    s.get("/envs/DEV/notifications/v2?cluster=default&notifications=%5B%5D").await.assert_error(400, "InvalidAppId");
}

#[tokio::test]
async fn public_namespace_changes_reach_watchers_of_other_apps() {
    let s = TestServer::start().await;
    s.seed_app("platform").await;
    s.seed_app("demo").await;
    s.seed_namespace("platform", "FX.common", "properties", true).await;
    s.publish("PRO", "platform", "FX.common", &[("a", "1")]).await;
    let v =
        s.get(&poll_path("PRO", "demo", json!([{"namespaceName": "FX.common", "notificationId": -1}]))).await.json();
    assert!(v[0]["messages"]["details"]["platform+default+FX.common"].is_i64(), "{v}");
}

#[tokio::test]
async fn legacy_notifications_answer_when_the_id_differs() {
    let s = TestServer::start_with(|c| c.long_poll_timeout_secs = 1).await;
    s.seed_app("demo").await;
    let idle = s.get("/envs/DEV/notifications?appId=demo&cluster=default&namespace=application").await;
    assert_eq!(idle.status, 304);
    s.publish("DEV", "demo", "application", &[("k", "v")]).await;
    let r = s.get("/envs/DEV/notifications?appId=demo&cluster=default&namespace=application&notificationId=-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["namespaceName"], "application");
    assert!(v["notificationId"].as_i64().unwrap() > 0);
}
