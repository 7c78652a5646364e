//! The Apollo Open API: the classic endpoints, validation and token scopes.

use reqwest::Method;
use serde_json::json;

use crate::common::{TestServer, ADMIN};

const NS: &str = "/envs/DEV/apps/demo/clusters/default/namespaces/application";

#[tokio::test]
async fn apps_are_created_listed_and_have_clusters_in_every_env() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let apps = s.open(Method::GET, "/apps", None).await.json();
    assert_eq!(apps[0]["appId"], "demo");
    assert_eq!(apps[0]["orgId"], "TEST");
    assert_eq!(apps[0]["ownerName"], ADMIN);
    assert!(apps[0]["dataChangeCreatedTime"].as_str().unwrap().len() == 28, "{apps}");
    assert_eq!(s.open(Method::GET, "/apps?appIds=nope,demo", None).await.json().as_array().unwrap().len(), 1);
    assert_eq!(s.open(Method::GET, "/apps/authorized", None).await.json()[0]["appId"], "demo");
    let ec = s.open(Method::GET, "/apps/demo/envclusters", None).await.json();
    assert_eq!(
        ec,
        json!([{"env": "DEV", "clusters": ["default"]}, {"env": "FAT", "clusters": ["default"]}, {"env": "UAT", "clusters": ["default"]}, {"env": "PRO", "clusters": ["default"]}])
    );
    // Trailing slashes are tolerated.
    let again =
        s.open(Method::POST, "/apps/", Some(json!({"app": {"appId": "demo", "name": "x", "ownerName": ADMIN}}))).await;
    again.assert_error(400, "already exists");
    let cl = s.open(Method::GET, "/envs/dev/apps/demo/clusters/default/", None).await.json();
    assert_eq!(cl["name"], "default");
    assert_eq!(cl["appId"], "demo");
}

#[tokio::test]
async fn items_are_created_read_paged_updated_and_deleted() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let created = s
        .open(
            Method::POST,
            &format!("{NS}/items"),
            Some(json!({"key": "timeout", "value": "100", "comment": "ms", "dataChangeCreatedBy": ADMIN})),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.json()["key"], "timeout");
    assert_eq!(created.json()["dataChangeCreatedBy"], ADMIN);
    s.open(
        Method::POST,
        &format!("{NS}/items"),
        Some(json!({"key": "timeout", "value": "1", "dataChangeCreatedBy": ADMIN})),
    )
    .await
    .assert_error(400, "already exists");

    let item = s.open(Method::GET, &format!("{NS}/items/timeout"), None).await.json();
    assert_eq!((item["value"].as_str(), item["comment"].as_str()), (Some("100"), Some("ms")));

    let upd = s
        .open(
            Method::PUT,
            &format!("{NS}/items/timeout"),
            Some(json!({"key": "timeout", "value": "200", "dataChangeLastModifiedBy": ADMIN})),
        )
        .await;
    assert_eq!(upd.status, 200, "{}", upd.text);
    assert_eq!(upd.text, "");
    s.open(
        Method::PUT,
        &format!("{NS}/items/missing"),
        Some(json!({"key": "missing", "value": "1", "dataChangeLastModifiedBy": ADMIN})),
    )
    .await
    .assert_error(404, "missing");
    let create_put = s
        .open(
            Method::PUT,
            &format!("{NS}/items/fresh?createIfNotExists=true"),
            Some(
                json!({"key": "fresh", "value": "1", "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN}),
            ),
        )
        .await;
    assert_eq!(create_put.status, 200, "{}", create_put.text);

    // Keys with a slash go through encodedItems (URL-safe Base64).
    let key = "path/with/slash";
    let b64 = "cGF0aC93aXRoL3NsYXNo";
    let enc = s
        .open(
            Method::PUT,
            &format!("{NS}/encodedItems/{b64}?createIfNotExists=true"),
            Some(json!({"key": key, "value": "v", "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN})),
        )
        .await;
    assert_eq!(enc.status, 200, "{}", enc.text);
    assert_eq!(s.open(Method::GET, &format!("{NS}/encodedItems/{b64}"), None).await.json()["key"], key);

    let page = s.open(Method::GET, &format!("{NS}/items?page=1&size=2"), None).await.json();
    assert_eq!(page["total"], 3);
    assert_eq!(page["page"], 1);
    assert_eq!(page["content"].as_array().unwrap().len(), 1);
    assert_eq!(page["content"][0]["key"], key);
    assert_eq!(s.open(Method::GET, &format!("{NS}/items?size=0"), None).await.json()["size"], 1);

    assert_eq!(s.open(Method::DELETE, &format!("{NS}/encodedItems/{b64}?operator={ADMIN}"), None).await.status, 200);
    assert_eq!(s.open(Method::DELETE, &format!("{NS}/items/fresh?operator={ADMIN}"), None).await.status, 200);
    s.open(Method::DELETE, &format!("{NS}/items/fresh?operator={ADMIN}"), None).await.assert_error(404, "fresh");
    let ns = s.open(Method::GET, NS, None).await.json();
    assert_eq!(ns["namespaceName"], "application");
    assert_eq!(ns["format"], "properties");
    assert_eq!(ns["items"].as_array().unwrap().len(), 1);
    let list = s.open(Method::GET, "/envs/DEV/apps/demo/clusters/default/namespaces", None).await.json();
    assert_eq!(list[0]["items"][0]["value"], "200");
}

#[tokio::test]
async fn bad_items_are_rejected_and_the_draft_is_untouched() {
    let s = TestServer::start_with(|c| c.value_max = 50).await;
    s.seed_app("demo").await;
    let long_key = "k".repeat(129);
    s.open(
        Method::POST,
        &format!("{NS}/items"),
        Some(json!({"key": long_key, "value": "1", "dataChangeCreatedBy": ADMIN})),
    )
    .await
    .assert_error(400, "at most 128");
    s.open(
        Method::POST,
        &format!("{NS}/items"),
        Some(json!({"key": "v", "value": "x".repeat(51), "dataChangeCreatedBy": ADMIN})),
    )
    .await
    .assert_error(400, "at most 50");
    s.open(Method::POST, &format!("{NS}/items"), Some(json!({"key": "", "value": "1", "dataChangeCreatedBy": ADMIN})))
        .await
        .assert_error(400, "key");
    s.open(
        Method::POST,
        &format!("{NS}/items"),
        Some(json!({"key": "nul", "value": "a\u{0}b", "dataChangeCreatedBy": ADMIN})),
    )
    .await
    .assert_error(400, "NUL character");
    let missing = s.open(Method::GET, "/envs/DEV/apps/demo/clusters/default/namespaces/a%00b/items", None).await;
    assert_eq!(missing.status, 404, "a name holding NUL is not found: {}", missing.text);
    s.open(Method::POST, &format!("{NS}/items"), Some(json!({"key": "a", "value": 5, "dataChangeCreatedBy": ADMIN})))
        .await
        .assert_error(400, "invalid JSON body");
    s.open(Method::POST, &format!("{NS}/items"), None).await.assert_error(400, "invalid JSON body");
    s.open(Method::POST, &format!("{NS}/items"), Some(json!({"key": "a", "value": "1"})))
        .await
        .assert_error(400, "operator");
    s.open(
        Method::POST,
        &format!("{NS}/items"),
        Some(json!({"key": "a", "value": "1", "dataChangeCreatedBy": "ghost"})),
    )
    .await
    .assert_error(400, "ghost");

    s.seed_namespace("demo", "app", "yaml", false).await;
    let yaml_ns = "/envs/DEV/apps/demo/clusters/default/namespaces/app.yaml";
    let good = "a: 1\nb: [1, 2]\n";
    s.set_items("DEV", "demo", "default", "app.yaml", &[("content", good)]).await;
    let bad = s
        .open(
            Method::PUT,
            &format!("{yaml_ns}/items/content"),
            Some(json!({"key": "content", "value": "a: 1\nb: [1, 2\nc: 3\n", "dataChangeLastModifiedBy": ADMIN})),
        )
        .await;
    bad.assert_error(400, "yaml content is not valid at line");
    assert_eq!(s.open(Method::GET, &format!("{yaml_ns}/items/content"), None).await.json()["value"], good);
    s.open(
        Method::POST,
        &format!("{yaml_ns}/items"),
        Some(json!({"key": "other", "value": "x", "dataChangeCreatedBy": ADMIN})),
    )
    .await
    .assert_error(400, "'content'");

    s.seed_namespace("demo", "data", "json", false).await;
    s.open(
        Method::POST,
        "/envs/DEV/apps/demo/clusters/default/namespaces/data.json/items",
        Some(json!({"key": "content", "value": "{\"a\":", "dataChangeCreatedBy": ADMIN})),
    )
    .await
    .assert_error(400, "json content is not valid at line 1");
    s.seed_namespace("demo", "layout", "xml", false).await;
    s.open(
        Method::POST,
        "/envs/DEV/apps/demo/clusters/default/namespaces/layout.xml/items",
        Some(json!({"key": "content", "value": "<a><b></a>", "dataChangeCreatedBy": ADMIN})),
    )
    .await
    .assert_error(400, "xml content is not valid");
}

#[tokio::test]
async fn request_bodies_are_limited() {
    let s = TestServer::start_with(|c| c.body_max = 1024).await;
    s.seed_app("demo").await;
    let r = s
        .open(
            Method::POST,
            &format!("{NS}/items"),
            Some(json!({"key": "a", "value": "x".repeat(5000), "dataChangeCreatedBy": ADMIN})),
        )
        .await;
    r.assert_error(413, "too large");
}

#[tokio::test]
async fn releases_publish_read_and_roll_back() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    assert_eq!(s.open(Method::GET, &format!("{NS}/releases/latest"), None).await.text, "");
    s.open(Method::POST, &format!("{NS}/releases"), Some(json!({"releasedBy": ADMIN})))
        .await
        .assert_error(400, "releaseTitle");
    let r1 = s.publish("DEV", "demo", "application", &[("v", "1")]).await;
    assert_eq!(r1["name"], "t");
    assert_eq!(r1["configurations"], json!({"v": "1"}));
    assert_eq!(r1["dataChangeCreatedBy"], ADMIN);
    let r2 = s.publish("DEV", "demo", "application", &[("v", "2")]).await;
    let r3 = s.publish("DEV", "demo", "application", &[("v", "3")]).await;
    let latest = s.open(Method::GET, &format!("{NS}/releases/latest"), None).await.json();
    assert_eq!(latest["id"], r3["id"]);
    assert_eq!(
        s.open(Method::GET, &format!("/envs/DEV/releases/{}", r1["id"]), None).await.json()["configurations"]["v"],
        "1"
    );

    // Only the latest release can be rolled back.
    s.open(Method::PUT, &format!("/envs/DEV/releases/{}/rollback?operator={ADMIN}", r2["id"]), None)
        .await
        .assert_error(400, "not the latest");
    let rb = s
        .open(Method::PUT, &format!("/envs/DEV/releases/{}/rollback?operator={ADMIN}", r3["id"]), Some(json!({})))
        .await;
    assert_eq!(rb.status, 200, "{}", rb.text);
    let cfg = s.configs("DEV", "demo", "default", "application", "").await.json();
    assert_eq!(cfg["configurations"]["v"], "2");
    assert_eq!(cfg["releaseKey"], r2["releaseKey"]);

    let r4 = s.publish("DEV", "demo", "application", &[("v", "4")]).await;
    let to = s
        .open(
            Method::PUT,
            &format!("/envs/DEV/releases/{}/rollback?operator={ADMIN}&toReleaseId={}", r4["id"], r1["id"]),
            None,
        )
        .await;
    assert_eq!(to.status, 200, "{}", to.text);
    assert_eq!(s.configs("DEV", "demo", "default", "application", "").await.json()["configurations"]["v"], "1");
    s.open(Method::PUT, &format!("/envs/DEV/releases/{}/rollback?operator={ADMIN}", r1["id"]), None)
        .await
        .assert_error(400, "no earlier release");
    s.open(Method::PUT, &format!("/envs/DEV/releases/999/rollback?operator={ADMIN}"), None)
        .await
        .assert_error(404, "release 999");
    // The same id in another env is another release.
    s.open(Method::GET, &format!("/envs/PRO/releases/{}", r1["id"]), None).await.assert_error(404, "not found");
}

#[tokio::test]
async fn tokens_are_checked_and_scoped() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.seed_app("other").await;
    s.open_as("", Method::GET, "/apps", None).await.assert_error(401, "token");
    s.open_as("0123456789abcdef0123456789abcdef01234567", Method::GET, "/apps", None).await.assert_error(401, "token");

    let sys = cairn::service::Caller::system("t");
    let (_, limited) = s.cairn.create_consumer(&sys, "limited", false).unwrap();
    s.cairn.grant_consumer(&sys, "limited", "demo", Some("application"), Some("DEV")).unwrap();
    let body = json!({"key": "k", "value": "v", "dataChangeCreatedBy": ADMIN});
    assert_eq!(s.open_as(&limited, Method::POST, &format!("{NS}/items"), Some(body.clone())).await.status, 200);
    s.open_as(
        &limited,
        Method::POST,
        "/envs/PRO/apps/demo/clusters/default/namespaces/application/items",
        Some(body.clone()),
    )
    .await
    .assert_error(403, "may not modify");
    s.open_as(
        &limited,
        Method::POST,
        "/envs/DEV/apps/other/clusters/default/namespaces/application/items",
        Some(body.clone()),
    )
    .await
    .assert_error(403, "may not modify");
    s.open_as(&limited, Method::GET, "/envs/DEV/apps/other/clusters/default/namespaces/application", None)
        .await
        .assert_error(403, "may not read");
    s.open_as(
        &limited,
        Method::POST,
        "/envs/DEV/apps/demo/clusters",
        Some(json!({"name": "c2", "dataChangeCreatedBy": ADMIN})),
    )
    .await
    .assert_error(403, "master");
    s.open_as(
        &limited,
        Method::POST,
        "/apps",
        Some(json!({"app": {"appId": "mine", "name": "m", "ownerName": ADMIN}})),
    )
    .await
    .assert_error(403, "create apps");
    assert_eq!(s.open_as(&limited, Method::GET, "/apps/authorized", None).await.json().as_array().unwrap().len(), 1);
    // Nothing was written by the rejected calls.
    let other_ns =
        s.open(Method::GET, "/envs/DEV/apps/other/clusters/default/namespaces/application", None).await.json();
    assert_eq!(other_ns["items"], json!([]));

    s.open(Method::GET, "/envs/DEV/apps/nope/clusters/default/namespaces/application", None)
        .await
        .assert_error(404, "app 'nope'");
    s.open(Method::GET, "/envs/DEV/apps/demo/clusters/default/namespaces/nope", None)
        .await
        .assert_error(404, "namespace 'nope'");
    s.open(Method::DELETE, "/apps", None).await.assert_error(405, "not allowed");
    s.open(Method::GET, "/no/such/thing", None).await.assert_error(404, "no such Open API endpoint");
}

#[tokio::test]
async fn clusters_and_namespaces_are_created_with_apollo_naming() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let c = s
        .open(
            Method::POST,
            "/envs/DEV/apps/demo/clusters",
            Some(json!({"name": "SHAJQ", "appId": "demo", "dataChangeCreatedBy": ADMIN})),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.json()["name"], "SHAJQ");
    s.open(
        Method::POST,
        "/envs/DEV/apps/demo/clusters",
        Some(json!({"name": "bad name", "dataChangeCreatedBy": ADMIN})),
    )
    .await
    .assert_error(400, "cluster name");

    let public = s
        .open(Method::POST, "/apps/demo/appnamespaces", Some(json!({"name": "common", "appId": "demo", "format": "properties", "isPublic": true, "dataChangeCreatedBy": ADMIN})))
        .await;
    assert_eq!(public.status, 200, "{}", public.text);
    assert_eq!(public.json()["name"], "TEST.common");
    assert_eq!(public.json()["isPublic"], true);
    let yaml = s
        .open(
            Method::POST,
            "/apps/demo/appnamespaces",
            Some(json!({"name": "app", "format": "yaml", "dataChangeCreatedBy": ADMIN})),
        )
        .await
        .json();
    assert_eq!(yaml["name"], "app.yaml");
    s.open(
        Method::POST,
        "/apps/demo/appnamespaces",
        Some(json!({"name": "app", "format": "toml", "dataChangeCreatedBy": ADMIN})),
    )
    .await
    .assert_error(400, "format");
    // Instances exist in every cluster, including the one created before.
    let in_cluster = s.open(Method::GET, "/envs/DEV/apps/demo/clusters/SHAJQ/namespaces/app.yaml", None).await;
    assert_eq!(in_cluster.status, 200, "{}", in_cluster.text);
    assert_eq!(in_cluster.json()["format"], "yaml");
    let names: Vec<String> = s
        .open(Method::GET, "/apps/demo/appnamespaces", None)
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["TEST.common", "app.yaml", "application"]);
}

#[tokio::test]
async fn four_eyes_envs_lock_the_draft_to_its_editor_and_forbid_self_release() {
    let s = TestServer::with_four_eyes_pro(true).await;
    s.seed_app("demo").await;
    let sys = cairn::service::Caller::system("t");
    s.cairn.create_user(&sys, "bob", "bob-password", false).unwrap();
    let master =
        cairn::domain::model::Grant { app_id: "demo".into(), namespace: None, env: None, modify: true, release: true };
    s.cairn.grant_user(&sys, "bob", master).unwrap();
    let pro = "/envs/PRO/apps/demo/clusters/default/namespaces/application";
    let unlocked = s.open(Method::GET, &format!("{pro}/lock"), None).await.json();
    assert_eq!(unlocked, json!({"namespaceName": "application", "isLocked": false, "isEmergencyPublishAllowed": true}));
    s.set_items("PRO", "demo", "default", "application", &[("k", "v")]).await;
    let locked = s.open(Method::GET, &format!("{pro}/lock"), None).await.json();
    assert_eq!(locked["isLocked"], true);
    assert_eq!(locked["lockedBy"], ADMIN);
    s.open(
        Method::POST,
        &format!("{pro}/items"),
        Some(json!({"key": "x", "value": "1", "dataChangeCreatedBy": "bob"})),
    )
    .await
    .assert_error(400, "locked by");
    s.open(Method::POST, &format!("{pro}/releases"), Some(json!({"releaseTitle": "t", "releasedBy": ADMIN})))
        .await
        .assert_error(400, "four-eyes");
    // The same token naming another user is still the editor (the consumer is the actor).
    s.open(Method::POST, &format!("{pro}/releases"), Some(json!({"releaseTitle": "t", "releasedBy": "bob"})))
        .await
        .assert_error(400, "four-eyes");
    let (_, reviewer) = s.cairn.create_consumer(&sys, "reviewer", false).unwrap();
    s.cairn.grant_consumer(&sys, "reviewer", "demo", None, None).unwrap();
    let by_bob = s
        .open_as(
            &reviewer,
            Method::POST,
            &format!("{pro}/releases"),
            Some(json!({"releaseTitle": "t", "releasedBy": "bob"})),
        )
        .await;
    assert_eq!(by_bob.status, 200, "{}", by_bob.text);
    // Released: unlocked again; an emergency publish by the editor is allowed here.
    s.set_items("PRO", "demo", "default", "application", &[("k", "w")]).await;
    let emergency = s
        .open(
            Method::POST,
            &format!("{pro}/releases"),
            Some(json!({"releaseTitle": "t", "releasedBy": ADMIN, "isEmergencyPublish": true})),
        )
        .await;
    assert_eq!(emergency.status, 200, "{}", emergency.text);
    // DEV has no such rule.
    s.publish("DEV", "demo", "application", &[("k", "v")]).await;
}

#[tokio::test]
async fn envs_and_single_apps_are_listed() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    assert_eq!(s.open(Method::GET, "/envs", None).await.json(), json!(["DEV", "FAT", "UAT", "PRO"]));
    assert_eq!(s.open(Method::GET, "/apps/demo", None).await.json()["name"], "demo");
    s.open(Method::GET, "/apps/nope", None).await.assert_error(404, "app 'nope' not found");
}

#[tokio::test]
async fn concurrent_publishers_keep_history_contiguous() {
    let s = std::sync::Arc::new(TestServer::start().await);
    s.seed_app("demo").await;
    s.seed_namespace("demo", "second", "properties", false).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let ns = if i % 2 == 0 { "application" } else { "second" };
            let env = if i % 3 == 0 { "PRO" } else { "DEV" };
            s.set_items(env, "demo", "default", ns, &[("k", &i.to_string())]).await;
            s.release(env, "demo", "default", ns).await["id"].as_u64().unwrap()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 24, "release ids must be unique");
    let report = s.cairn.check(&cairn::service::Caller::system("t")).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.releases, 24);
    assert_eq!(report.history_entries, 24);
}
