//! An acknowledged release survives SIGKILL of the real binary, with the same id and content.

use reqwest::Method;
use serde_json::json;

use crate::common::process::{cli, get_json, open_api, seed_data_dir, Proc};
use crate::common::ADMIN;

#[tokio::test]
async fn acknowledged_releases_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = seed_data_dir(&data);
    let http = reqwest::Client::new();

    let mut proc = Proc::start(&data, &[]);
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "durable", "name": "durable", "ownerName": ADMIN}});
    assert_eq!(open_api(&proc.base, &token, Method::POST, "/apps", app).await.0, 200);
    let ns = "/envs/PRO/apps/durable/clusters/default/namespaces/application";
    for round in 0..20 {
        let value = format!("value-{round}-{}", "x".repeat(round * 100));
        let (st, _) = open_api(
            &proc.base,
            &token,
            Method::PUT,
            &format!("{ns}/items/k?createIfNotExists=true"),
            json!({"key": "k", "value": value, "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN}),
        )
        .await;
        assert_eq!(st, 200);
        let (st, release) = open_api(
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
        let served = get_json(&http, &format!("{}/envs/PRO/configs/durable/default/application", proc.base)).await;
        let (st, latest) =
            open_api(&proc.base, &token, Method::GET, &format!("{ns}/releases/latest"), json!(null)).await;
        assert_eq!(st, 200);
        assert_eq!(latest["id"], release["id"], "round {round}");
        assert_eq!(served["configurations"]["k"], value, "round {round}");
    }
    let (status, took) = proc.terminate();
    assert!(status.success());
    assert!(took.as_secs() < 5);
    let check = cli(&data, &["check"], "");
    assert!(check.status.success(), "{}", crate::common::process::text(&check));
}
