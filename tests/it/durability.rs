//! An acknowledged release survives SIGKILL of the real binary, with the same key and content.

use reqwest::Method;
use serde_json::json;

use crate::common::process::{cli, Proc};
use crate::common::ADMIN;

async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = http
        .request(method, format!("{base}/openapi/v1{path}"))
        .header("Authorization", token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(json!(null)))
}

#[tokio::test]
async fn acknowledged_releases_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(cli(&data, &["user", "add", ADMIN, "--admin"], "a-good-password\n").status.success());
    let out = cli(&data, &["consumer", "create", "ci", "--allow-create-app"], "");
    let token = String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_string();
    let http = reqwest::Client::new();

    let mut proc = Proc::start(&data, &[]);
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "durable", "name": "durable", "ownerName": ADMIN}});
    assert_eq!(call(&http, &proc.base, &token, Method::POST, "/apps", app).await.0, 200);
    let ns = "/envs/PRO/apps/durable/clusters/default/namespaces/application";
    for round in 0..20 {
        let value = format!("value-{round}-{}", "x".repeat(round * 100));
        let (st, _) = call(
            &http,
            &proc.base,
            &token,
            Method::PUT,
            &format!("{ns}/items/k?createIfNotExists=true"),
            json!({"key": "k", "value": value, "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN}),
        )
        .await;
        assert_eq!(st, 200);
        let (st, release) = call(
            &http,
            &proc.base,
            &token,
            Method::POST,
            &format!("{ns}/releases"),
            json!({"releaseTitle": format!("r{round}"), "releasedBy": ADMIN}),
        )
        .await;
        assert_eq!(st, 200);
        proc.kill9();

        proc = Proc::start(&data, &[]);
        let served: serde_json::Value = http
            .get(format!("{}/envs/PRO/configs/durable/default/application", proc.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(served["releaseKey"], release["releaseKey"], "round {round}");
        assert_eq!(served["configurations"]["k"], value, "round {round}");
    }
    let (status, took) = proc.terminate();
    assert!(status.success());
    assert!(took.as_secs() < 5);
    let check = cli(&data, &["check"], "");
    assert!(check.status.success(), "{}", crate::common::process::text(&check));
}
