//! Gray releases through the Open API, as clients see them.

use reqwest::Method;
use serde_json::json;

use crate::common::{TestServer, ADMIN};

const NS: &str = "/envs/DEV/apps/demo/clusters/default/namespaces/application";

async fn setup_branch(s: &TestServer) -> String {
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("color", "blue"), ("size", "10")]).await;
    let b = s.open(Method::POST, &format!("{NS}/branches?operator={ADMIN}"), None).await;
    assert_eq!(b.status, 200, "{}", b.text);
    let branch = b.json()["clusterName"].as_str().unwrap().to_string();
    s.set_items("DEV", "demo", &branch, "application", &[("color", "green")]).await;
    branch
}

async fn color(s: &TestServer, query: &str) -> (String, String) {
    let v = s.configs("DEV", "demo", "default", "application", query).await.json();
    (v["configurations"]["color"].as_str().unwrap().to_string(), v["cluster"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_gray_rule_serves_the_branch_only_to_matching_ips_and_labels() {
    let s = TestServer::start().await;
    let branch = setup_branch(&s).await;
    let rules =
        json!({"ruleItems": [{"clientAppId": "demo", "clientIpList": ["10.0.0.1"], "clientLabelList": ["canary"]}]});
    let put = s.open(Method::PUT, &format!("{NS}/branches/{branch}/rules?operator={ADMIN}"), Some(rules)).await;
    assert_eq!(put.status, 200, "{}", put.text);
    let got = s.open(Method::GET, &format!("{NS}/branches/{branch}/rules"), None).await.json();
    assert_eq!(got["branchName"], branch);
    assert_eq!(got["ruleItems"][0]["clientIpList"], json!(["10.0.0.1"]));

    // Rules without a gray release change nothing.
    assert_eq!(color(&s, "?ip=10.0.0.1").await.0, "blue");
    let gray = s
        .open(
            Method::POST,
            &format!("{NS}/branches/{branch}/releases"),
            Some(json!({"releaseTitle": "gray", "releasedBy": ADMIN})),
        )
        .await;
    assert_eq!(gray.status, 200, "{}", gray.text);
    assert_eq!(gray.json()["configurations"], json!({"color": "green", "size": "10"}));

    assert_eq!(color(&s, "?ip=10.0.0.1").await, ("green".to_string(), branch.clone()));
    assert_eq!(color(&s, "?ip=10.0.0.2&label=canary").await.0, "green");
    assert_eq!(color(&s, "?ip=10.0.0.2").await, ("blue".to_string(), "default".to_string()));
    assert_eq!(color(&s, "?ip=10.0.0.2&label=other").await.0, "blue");

    // The branch as a namespace.
    let b = s.open(Method::GET, &format!("{NS}/branches"), None).await.json();
    assert_eq!(b["clusterName"], branch);
    assert_eq!(b["items"][0]["key"], "color");

    // Abandon: everyone is back on the main release.
    let del = s.open(Method::DELETE, &format!("{NS}/branches/{branch}?operator={ADMIN}"), None).await;
    assert_eq!(del.status, 200, "{}", del.text);
    assert_eq!(color(&s, "?ip=10.0.0.1").await.0, "blue");
    assert_eq!(s.open(Method::GET, &format!("{NS}/branches"), None).await.text, "");
}

#[tokio::test]
async fn wildcard_rules_gray_delete_and_merge() {
    let s = TestServer::start().await;
    let branch = setup_branch(&s).await;
    let rules = json!({"ruleItems": [{"clientAppId": "demo", "clientIpList": ["*"]}]});
    assert_eq!(
        s.open(Method::PUT, &format!("{NS}/branches/{branch}/rules?operator={ADMIN}"), Some(rules)).await.status,
        200
    );
    let del = s
        .open(
            Method::POST,
            &format!("{NS}/branches/{branch}/gray-del-releases"),
            Some(json!({"releaseTitle": "gd", "releasedBy": ADMIN, "grayDelKeys": ["size"]})),
        )
        .await;
    assert_eq!(del.status, 200, "{}", del.text);
    let v = s.configs("DEV", "demo", "default", "application", "?ip=1.1.1.1").await.json();
    assert_eq!(v["configurations"], json!({"color": "green"}));
    // `*` matches every instance of the client app, even one that sends no ip.
    let other = s.configs("DEV", "demo", "default", "application", "").await.json();
    assert_eq!(other["configurations"]["color"], "green");

    let merged = s
        .open(
            Method::POST,
            &format!("{NS}/branches/{branch}/merge?deleteBranch=true"),
            Some(json!({"releaseTitle": "merge", "releasedBy": ADMIN})),
        )
        .await;
    assert_eq!(merged.status, 200, "{}", merged.text);
    assert_eq!(merged.json()["configurations"], json!({"color": "green", "size": "10"}));
    assert_eq!(color(&s, "?ip=9.9.9.9").await, ("green".to_string(), "default".to_string()));
    assert_eq!(s.open(Method::GET, &format!("{NS}/branches"), None).await.text, "");
    // Merged items are now the main draft.
    let item = s.open(Method::GET, &format!("{NS}/items/color"), None).await.json();
    assert_eq!(item["value"], "green");
}

#[tokio::test]
async fn gray_changes_are_announced_on_the_parent_watch_key() {
    let s = TestServer::start().await;
    let branch = setup_branch(&s).await;
    let poll = |id: i64| {
        format!(
            "/envs/DEV/notifications/v2?appId=demo&cluster=default&notifications={}",
            crate::common::enc(&json!([{"namespaceName": "application", "notificationId": id}]).to_string())
        )
    };
    let before = s.get(&poll(-1)).await.json()[0]["notificationId"].as_i64().unwrap();
    s.open(
        Method::POST,
        &format!("{NS}/branches/{branch}/releases"),
        Some(json!({"releaseTitle": "gray", "releasedBy": ADMIN})),
    )
    .await;
    let after = s.get(&poll(before)).await;
    assert_eq!(after.status, 200);
    assert!(after.json()[0]["notificationId"].as_i64().unwrap() > before);
    assert!(after.json()[0]["messages"]["details"]["demo+default+application"].is_i64());
}

#[tokio::test]
async fn a_second_branch_and_unknown_branches_are_rejected() {
    let s = TestServer::start().await;
    let branch = setup_branch(&s).await;
    s.open(Method::POST, &format!("{NS}/branches?operator={ADMIN}"), None)
        .await
        .assert_error(400, "already has a gray branch");
    s.open(Method::GET, &format!("{NS}/branches/nope/rules"), None).await.assert_error(404, "gray branch 'nope'");
    let _ = branch;
}
