//! The documented move from the embedded store to PostgreSQL, through the real binary:
//! `cairn backup` of a sled data dir while its server runs, `cairn restore --database-url …
//! --keep-notification-ids`, `cairn serve --database-url …`. Clients see byte-identical
//! `/configs` answers and the same notification ids; operators and consumers carry over.

use reqwest::Method;
use serde_json::{json, Value};

use cairn::security::signature::sign;

use crate::common::pg;
use crate::common::process::{cli, open_api, seed_data_dir, text, Proc};
use crate::common::{enc, portal_sign_in_at, ADMIN};

const PASSWORD: &str = "a-good-password";

/// Namespaces of every format: (app namespace name, format, namespace, content).
const FORMATS: [(&str, &str, &str, &str); 4] = [
    ("app", "yaml", "app.yaml", "server:\n  port: 8080\n  name: \"ç\"\n"),
    ("cfg", "json", "cfg.json", "{\"a\": [1, 2], \"b\": {\"c\": null}}"),
    ("layout", "xml", "layout.xml", "<layout><pane id=\"1\">x &amp; y</pane></layout>"),
    ("notes", "txt", "notes.txt", "free text\nwith lines"),
];

/// What clients see: every `/configs` body (by request) and every notification id.
#[derive(Debug, PartialEq)]
struct Answers {
    configs: Vec<(String, String)>,
    ids: Vec<(String, Value)>,
}

/// A GET as a client would send it, signed with `(app, secret)` when its app has an enforced
/// access key.
async fn client_get(http: &reqwest::Client, base: &str, path: &str, key: Option<(&str, &str)>) -> (u16, String) {
    let mut req = http.get(format!("{base}{path}"));
    if let Some((app, secret)) = key {
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis().to_string();
        req = req.header("Authorization", format!("Apollo {app}:{}", sign(&ts, path, secret))).header("Timestamp", ts);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn answers(base: &str, secret: &str) -> Answers {
    let http = reqwest::Client::new();
    let mut configs = Vec::new();
    let mut ids = Vec::new();
    let namespaces: Vec<&str> = std::iter::once("application").chain(FORMATS.iter().map(|f| f.2)).collect();
    for (env, app) in [("DEV", "demo"), ("PRO", "demo"), ("DEV", "other"), ("PRO", "other")] {
        let key = (env, app) == ("PRO", "demo");
        let secret = key.then_some((app, secret));
        let list: Vec<&str> = if app == "demo" { namespaces.clone() } else { vec!["application"] };
        for ns in &list {
            for ip in ["10.0.0.1", "10.0.0.2"] {
                let path = format!("/envs/{env}/configs/{app}/default/{ns}?ip={ip}");
                let (status, body) = client_get(&http, base, &path, secret).await;
                assert_eq!(status, 200, "{path}: {body}");
                configs.push((path, body));
            }
        }
        let watch: Vec<Value> = list.iter().map(|ns| json!({"namespaceName": ns, "notificationId": -1})).collect();
        let path = format!(
            "/envs/{env}/notifications/v2?appId={app}&cluster=default&notifications={}",
            enc(&Value::Array(watch).to_string())
        );
        let (status, body) = client_get(&http, base, &path, secret).await;
        assert_eq!(status, 200, "{path}: {body}");
        let mut got: Vec<Value> = serde_json::from_str(&body).unwrap();
        got.sort_by_key(|n| n["namespaceName"].as_str().unwrap().to_string());
        ids.push((format!("{env}/{app}"), Value::Array(got)));
        if key {
            // The access key is enforced: an unsigned client is refused.
            let path = format!("/envs/{env}/configs/{app}/default/application");
            assert_eq!(client_get(&http, base, &path, None).await.0, 401, "{path} needs a signature");
        }
    }
    Answers { configs, ids }
}

/// Two apps in DEV and PRO, namespaces of every format, a gray branch with rules, an enforced
/// access key, a rollback; returns the consumer token and the access key's secret.
async fn seed(base: &str, token: &str) -> String {
    let call = |m: Method, p: String, b: Value| async move {
        let (status, body) = open_api(base, token, m, &p, b).await;
        assert_eq!(status, 200, "{p}: {body}");
        body
    };
    for app in ["demo", "other"] {
        call(
            Method::POST,
            "/apps".into(),
            json!({"assignAppRoleToSelf": true, "app": {"appId": app, "name": app, "ownerName": ADMIN}}),
        )
        .await;
    }
    for (name, format, _, _) in FORMATS {
        let body =
            json!({"name": name, "appId": "demo", "format": format, "isPublic": false, "dataChangeCreatedBy": ADMIN});
        call(Method::POST, "/apps/demo/appnamespaces".into(), body).await;
    }
    let set = |env: &str, app: &str, cluster: &str, ns: &str, key: &str, value: &str| {
        let path =
            format!("/envs/{env}/apps/{app}/clusters/{cluster}/namespaces/{ns}/items/{key}?createIfNotExists=true");
        let item = json!({"key": key, "value": value, "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN});
        call(Method::PUT, path, item)
    };
    let release = |env: &str, app: &str, ns: &str, title: &str| {
        let path = format!("/envs/{env}/apps/{app}/clusters/default/namespaces/{ns}/releases");
        call(Method::POST, path, json!({"releaseTitle": title, "releasedBy": ADMIN}))
    };
    for env in ["DEV", "PRO"] {
        for app in ["demo", "other"] {
            set(env, app, "default", "application", "color", &format!("blue-{env}")).await;
            set(env, app, "default", "application", "quote", "a \"quoted\" ç value").await;
            release(env, app, "application", "first").await;
        }
        for (_, _, ns, content) in FORMATS {
            set(env, "demo", "default", ns, "content", content).await;
            release(env, "demo", ns, "formats").await;
        }
    }
    // A second release in PRO, rolled back.
    set("PRO", "other", "default", "application", "color", "red").await;
    let second = release("PRO", "other", "application", "second").await;
    call(Method::PUT, format!("/envs/PRO/releases/{}/rollback?operator={ADMIN}", second["id"]), json!({})).await;

    // A gray branch in DEV serving 10.0.0.1 only.
    let ns = "/envs/DEV/apps/demo/clusters/default/namespaces/application";
    let branch = call(Method::POST, format!("{ns}/branches?operator={ADMIN}"), Value::Null).await;
    let branch = branch["clusterName"].as_str().unwrap().to_string();
    set("DEV", "demo", &branch, "application", "color", "green").await;
    let rules = json!({"ruleItems": [{"clientAppId": "demo", "clientIpList": ["10.0.0.1"]}]});
    call(Method::PUT, format!("{ns}/branches/{branch}/rules?operator={ADMIN}"), rules).await;
    let gray = json!({"releaseTitle": "gray", "releasedBy": ADMIN});
    call(Method::POST, format!("{ns}/branches/{branch}/releases"), gray).await;

    // An enforced access key on demo in PRO.
    let key = call(Method::POST, format!("/apps/demo/envs/PRO/accesskeys?operator={ADMIN}"), Value::Null).await;
    let activate = format!("/apps/demo/envs/PRO/accesskeys/{}/activation?mode=0&operator={ADMIN}", key["id"]);
    call(Method::PUT, activate, Value::Null).await;
    key["secret"].as_str().unwrap().to_string()
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn moving_from_sled_to_postgres_keeps_client_answers_ids_users_and_consumers() {
    let Some(url) = pg::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = seed_data_dir(&data);
    let sled = Proc::start(&data, &[]);
    let secret = seed(&sled.base, &token).await;
    let before = answers(&sled.base, &secret).await;
    let gray = &before.configs[0].1;
    assert!(gray.contains("green") && before.configs[1].1.contains("blue-DEV"), "{gray}");

    // 1. Back up while the sled server runs (the command goes through it).
    let file = dir.path().join("cairn.backup");
    let said = ok(cli(&data, &["backup", file.to_str().unwrap()], ""));
    assert!(said.contains("backup of"), "{said}");
    assert!(sled.terminate().0.success());

    // 2. Restore into the empty database, keeping the notification ids.
    let elsewhere = dir.path().join("unused");
    let restore = ["--database-url", &url, "restore", file.to_str().unwrap(), "--keep-notification-ids"];
    let said = ok(cli(&elsewhere, &restore, ""));
    assert!(said.contains("kept"), "{said}");

    // 3. Serve from PostgreSQL.
    let proc = Proc::start(&elsewhere, &["--database-url", &url]);
    let after = answers(&proc.base, &secret).await;
    for ((path, old), (_, new)) in before.configs.iter().zip(&after.configs) {
        assert_eq!(new, old, "{path} differs after the move");
    }
    assert_eq!(after, before, "byte-identical answers and the same notification ids");
    assert!(!elsewhere.exists(), "the PostgreSQL side uses no data directory");

    // Consumers and users carried over: the Open API token works, the operator signs in.
    let (status, apps) = open_api(&proc.base, &token, Method::GET, "/apps", Value::Null).await;
    assert_eq!(status, 200, "{apps}");
    assert_eq!(apps.as_array().unwrap().len(), 2, "{apps}");
    let ns = "/envs/DEV/apps/other/clusters/default/namespaces/application";
    let item = json!({"key": "color", "value": "after-the-move", "dataChangeLastModifiedBy": ADMIN});
    assert_eq!(open_api(&proc.base, &token, Method::PUT, &format!("{ns}/items/color"), item).await.0, 200);
    let release = json!({"releaseTitle": "after", "releasedBy": ADMIN});
    let (status, body) = open_api(&proc.base, &token, Method::POST, &format!("{ns}/releases"), release).await;
    assert_eq!(status, 200, "{body}");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = portal_sign_in_at(&proc.base, &http, ADMIN, PASSWORD).await;
    let page = http.get(format!("{}/apps/demo", proc.base)).header("Cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("app.yaml"), "the portal shows the moved namespaces");

    // The new release reaches clients with an id after the moved ones.
    let moved = after.ids.iter().find(|(k, _)| k == "DEV/other").unwrap().1[0]["notificationId"].as_i64().unwrap();
    let path = format!(
        "/envs/DEV/notifications/v2?appId=other&cluster=default&notifications={}",
        enc(&json!([{"namespaceName": "application", "notificationId": moved}]).to_string())
    );
    let (_, body) = client_get(&reqwest::Client::new(), &proc.base, &path, None).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v[0]["notificationId"].as_i64().unwrap() > moved, "{v}");
}
