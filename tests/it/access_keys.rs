//! Access keys: signatures, skew, modes, prefixes, and no bypass through appId variants.

use reqwest::Method;
use serde_json::Value;

use cairn::security::signature::sign;

use crate::common::{Resp, TestServer, ADMIN};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn signed(s: &TestServer, path: &str, signed_path: &str, secret: &str, ts: i64) -> Resp {
    let sig = sign(&ts.to_string(), signed_path, secret);
    s.send(
        s.http
            .get(s.url(path))
            .header("Authorization", format!("Apollo demo:{sig}"))
            .header("Timestamp", ts.to_string()),
    )
    .await
}

async fn enforced_key(s: &TestServer, mode: i32) -> (u64, String) {
    let created = s.open(Method::POST, &format!("/apps/demo/envs/DEV/accesskeys?operator={ADMIN}"), None).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let v: Value = created.json();
    let id = v["id"].as_u64().unwrap();
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32);
    assert_eq!(v["enabled"], false);
    let act = s
        .open(
            Method::PUT,
            &format!("/apps/demo/envs/DEV/accesskeys/{id}/activation?mode={mode}&operator={ADMIN}"),
            None,
        )
        .await;
    assert_eq!(act.status, 200, "{}", act.text);
    (id, secret)
}

#[tokio::test]
async fn enforced_keys_require_a_fresh_valid_signature() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("k", "v")]).await;
    let (_, secret) = enforced_key(&s, 0).await;
    let path = "/envs/DEV/configs/demo/default/application?ip=10.1.2.3";

    // Like upstream, the timestamp is checked first: no headers at all reads as skewed.
    s.get(path).await.assert_error(401, "RequestTimeTooSkewed");
    s.send(s.http.get(s.url(path)).header("Timestamp", now_ms().to_string())).await.assert_error(401, "Unauthorized");
    signed(&s, path, path, "wrong-secret", now_ms()).await.assert_error(401, "Unauthorized");
    signed(&s, path, path, &secret, now_ms() - 61_000).await.assert_error(401, "RequestTimeTooSkewed");
    signed(&s, path, path, &secret, now_ms() + 61_000).await.assert_error(401, "RequestTimeTooSkewed");

    // Signed over the full path (Java client) or without the env prefix (community clients).
    assert_eq!(signed(&s, path, path, &secret, now_ms()).await.status, 200);
    let unprefixed = "/configs/demo/default/application?ip=10.1.2.3";
    let ok = signed(&s, path, unprefixed, &secret, now_ms()).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["configurations"]["k"], "v");
    // A signature for another path does not carry over.
    signed(&s, path, "/configs/demo/default/other", &secret, now_ms()).await.assert_error(401, "Unauthorized");

    // Every client endpoint is covered, including notifications and configfiles.
    for p in [
        "/envs/DEV/configfiles/json/demo/default/application",
        "/envs/DEV/configfiles/raw/demo/default/application",
        "/envs/DEV/configfiles/demo/default/application",
        "/envs/DEV/notifications/v2?appId=demo&cluster=default&notifications=%5B%5D",
        "/envs/DEV/notifications?appId=demo&cluster=default",
    ] {
        signed(&s, p, p, "wrong-secret", now_ms()).await.assert_error(401, "Unauthorized");
    }
    // The meta server stays open.
    assert_eq!(s.get("/envs/DEV/services/config").await.status, 200);
}

#[tokio::test]
async fn appid_variants_do_not_bypass_the_key() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("k", "v")]).await;
    enforced_key(&s, 0).await;
    for path in [
        "/envs/DEV/configs/DEMO/default/application",
        "/envs/DEV/configs/%64emo/default/application",
        "/envs/DEV/configs/demo/default/application.properties",
        "/envs/DEV//configs/demo/default/application",
        "/envs/DEV/notifications/v2?appId=Demo&cluster=default&notifications=%5B%5D",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, 401, "{path}: {}", r.text);
    }
    s.get("/envs/DEV/configs/demo%2Bx/default/application").await.assert_error(400, "InvalidAppId");
}

#[tokio::test]
async fn observer_and_disabled_keys_do_not_block() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("k", "v")]).await;
    let (id, _) = enforced_key(&s, 1).await;
    assert_eq!(s.configs("DEV", "demo", "default", "application", "").await.status, 200);
    let act = s
        .open(Method::PUT, &format!("/apps/demo/envs/DEV/accesskeys/{id}/activation?mode=0&operator={ADMIN}"), None)
        .await;
    assert_eq!(act.status, 200);
    assert_eq!(s.configs("DEV", "demo", "default", "application", "").await.status, 401);
    let off =
        s.open(Method::PUT, &format!("/apps/demo/envs/DEV/accesskeys/{id}/deactivation?operator={ADMIN}"), None).await;
    assert_eq!(off.status, 200);
    assert_eq!(s.configs("DEV", "demo", "default", "application", "").await.status, 200);
    // Keys are per env: PRO is unaffected by DEV keys.
    assert_eq!(s.open(Method::GET, "/apps/demo/envs/PRO/accesskeys", None).await.json(), serde_json::json!([]));
}

#[tokio::test]
async fn at_most_five_keys_and_only_disabled_keys_can_be_deleted() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let (id, _) = enforced_key(&s, 0).await;
    s.open(Method::DELETE, &format!("/apps/demo/envs/DEV/accesskeys/{id}?operator={ADMIN}"), None)
        .await
        .assert_error(400, "disable it");
    for _ in 0..4 {
        assert_eq!(
            s.open(Method::POST, &format!("/apps/demo/envs/DEV/accesskeys?operator={ADMIN}"), None).await.status,
            200
        );
    }
    s.open(Method::POST, &format!("/apps/demo/envs/DEV/accesskeys?operator={ADMIN}"), None)
        .await
        .assert_error(400, "5 access keys");
    let list = s.open(Method::GET, "/apps/demo/envs/DEV/accesskeys", None).await.json();
    assert_eq!(list.as_array().unwrap().len(), 5);
    let off =
        s.open(Method::PUT, &format!("/apps/demo/envs/DEV/accesskeys/{id}/deactivation?operator={ADMIN}"), None).await;
    assert_eq!(off.status, 200);
    assert_eq!(
        s.open(Method::DELETE, &format!("/apps/demo/envs/DEV/accesskeys/{id}?operator={ADMIN}"), None).await.status,
        200
    );
    s.open(Method::DELETE, &format!("/apps/demo/envs/DEV/accesskeys/{id}?operator={ADMIN}"), None)
        .await
        .assert_error(404, "not found");
}
