//! The Apollo client protocol: meta server, /configs, /configfiles, env isolation.

use reqwest::Method;
use serde_json::json;

use crate::common::{TestServer, ADMIN};

#[tokio::test]
async fn services_config_advertises_an_absolute_prefixed_homepage() {
    let s = TestServer::start_with(|c| {
        c.default_env = Some("DEV".into());
        // The test client connects from loopback, standing in for the reverse proxy.
        c.trusted_proxies = vec![cairn::domain::net::IpNet::parse("127.0.0.1").unwrap()];
    })
    .await;
    let root = s.get("/services/config?appId=demo&ip=10.0.0.1").await;
    assert_eq!(root.status, 200);
    let v = root.json();
    assert_eq!(v[0]["homepageUrl"], format!("{}/", s.base));
    assert!(v[0]["appName"].is_string() && v[0]["instanceId"].is_string());

    let pro = s.get("/envs/PRO/services/config").await.json();
    assert_eq!(pro[0]["homepageUrl"], format!("{}/envs/PRO/", s.base));

    // A meta URL with a trailing slash makes the Java client send a double slash.
    let double = s.get("/envs/PRO//services/config").await;
    assert_eq!(double.status, 200, "{}", double.text);
    assert_eq!(double.json()[0]["homepageUrl"], format!("{}/envs/PRO/", s.base));

    let proxied = s
        .send(
            s.http
                .get(s.url("/envs/PRO/services/config"))
                .header("X-Forwarded-Proto", "https")
                .header("X-Forwarded-Host", "cfg.example.com")
                .header("X-Forwarded-Prefix", "/cairn"),
        )
        .await
        .json();
    assert_eq!(proxied[0]["homepageUrl"], "https://cfg.example.com/cairn/envs/PRO/");

    assert_eq!(s.get("/services/meta").await.json(), json!([]));
    assert_eq!(s.get("/envs/DEV/services/admin").await.status, 200);
}

#[tokio::test]
async fn advertised_url_is_used_verbatim() {
    let s = TestServer::start_with(|c| c.advertised_url = Some("https://config.internal/".into())).await;
    let v = s.get("/envs/FAT/services/config").await.json();
    assert_eq!(v[0]["homepageUrl"], "https://config.internal/envs/FAT/");
}

#[tokio::test]
async fn root_path_without_default_env_explains_the_env_prefix() {
    let s = TestServer::start().await;
    s.get("/configs/demo/default/application").await.assert_error(404, "/envs/{env}");
    s.get("/envs/QA/configs/demo/default/application").await.assert_error(404, "env 'QA'");
}

#[tokio::test]
async fn configs_serve_the_release_and_answer_304_for_the_same_key() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.configs("DEV", "demo", "default", "application", "")
        .await
        .assert_error(404, "Could not load configurations with appId: demo");
    let release =
        s.publish("DEV", "demo", "application", &[("timeout", "100"), ("batch", "200"), ("a.first", "x")]).await;
    let key = release["releaseKey"].as_str().unwrap().to_string();

    let r = s.configs("DEV", "demo", "default", "application", "?ip=10.1.2.3").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type().starts_with("application/json"));
    // Field order and item order are part of the contract.
    assert_eq!(
        r.text,
        format!(
            r#"{{"appId":"demo","cluster":"default","namespaceName":"application","configurations":{{"timeout":"100","batch":"200","a.first":"x"}},"releaseKey":"{key}"}}"#
        )
    );
    let same = s.configs("DEV", "demo", "default", "application", &format!("?releaseKey={key}&ip=10.1.2.3")).await;
    assert_eq!(same.status, 304);
    assert_eq!(same.text, "");
    let other = s.configs("DEV", "demo", "default", "application", "?releaseKey=undefined&ip=undefined").await;
    assert_eq!(other.status, 200);
    // `messages` is accepted, even when it is not valid JSON.
    let with_messages = s.configs("DEV", "demo", "default", "application", "?messages=%7Bnot-json").await;
    assert_eq!(with_messages.status, 200);
}

#[tokio::test]
async fn namespace_names_are_normalised_and_echoed() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.seed_namespace("demo", "Datasource", "properties", false).await;
    s.publish("DEV", "demo", "Datasource", &[("url", "jdbc:x")]).await;
    let r = s.configs("DEV", "demo", "default", "datasource.properties", "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["namespaceName"], "datasource.properties");
    assert_eq!(v["configurations"]["url"], "jdbc:x");
    let upper = s.configs("DEV", "demo", "default", "DATASOURCE", "").await;
    assert_eq!(upper.json()["namespaceName"], "DATASOURCE");
    s.configs("DEV", "demo", "default", "nope", "").await.assert_error(404, "namespace: nope");
    s.configs("DEV", "unknown-app", "default", "application", "").await.assert_error(404, "unknown-app");
}

#[tokio::test]
async fn cluster_falls_back_to_data_center_then_default() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    for cluster in ["SHAJQ", "canary"] {
        let r = s
            .open(
                Method::POST,
                "/envs/DEV/apps/demo/clusters",
                Some(json!({"name": cluster, "appId": "demo", "dataChangeCreatedBy": ADMIN})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    s.publish("DEV", "demo", "application", &[("where", "default")]).await;
    s.set_items("DEV", "demo", "SHAJQ", "application", &[("where", "idc")]).await;
    s.release("DEV", "demo", "SHAJQ", "application").await;

    let idc = s.configs("DEV", "demo", "canary", "application", "?dataCenter=SHAJQ").await.json();
    assert_eq!(idc["configurations"]["where"], "idc");
    assert_eq!(idc["cluster"], "SHAJQ");
    let dflt = s.configs("DEV", "demo", "canary", "application", "").await.json();
    assert_eq!(dflt["configurations"]["where"], "default");
    assert_eq!(dflt["cluster"], "default");
    let own = s.configs("DEV", "demo", "SHAJQ", "application", "").await.json();
    assert_eq!(own["cluster"], "SHAJQ");
}

#[tokio::test]
async fn public_namespace_is_merged_under_the_apps_own_values() {
    let s = TestServer::start().await;
    s.seed_app("platform").await;
    s.seed_app("demo").await;
    s.seed_namespace("platform", "FX.apollo", "properties", true).await;
    let public = s.publish("DEV", "platform", "FX.apollo", &[("fx.timeout", "10"), ("fx.retries", "3")]).await;

    // Without an association, demo gets the public release as is.
    let plain = s.configs("DEV", "demo", "default", "FX.apollo", "").await.json();
    assert_eq!(plain["configurations"], json!({"fx.timeout": "10", "fx.retries": "3"}));
    assert_eq!(plain["releaseKey"], public["releaseKey"]);

    // Associate and override one key.
    let link = s
        .open(
            Method::POST,
            &format!("/namespaces?operator={ADMIN}"),
            Some(json!([{"appId": "demo", "env": "DEV", "clusterName": "default", "appNamespaceName": "FX.apollo"}])),
        )
        .await;
    assert_eq!(link.status, 200, "{}", link.text);
    let own = s.publish("DEV", "demo", "FX.apollo", &[("fx.timeout", "99"), ("sample.only", "x")]).await;
    let merged = s.configs("DEV", "demo", "default", "fx.apollo", "").await;
    let v = merged.json();
    assert_eq!(
        v["releaseKey"],
        format!("{}+{}", own["releaseKey"].as_str().unwrap(), public["releaseKey"].as_str().unwrap())
    );
    assert!(
        merged.text.contains(r#""configurations":{"fx.timeout":"99","fx.retries":"3","sample.only":"x"}"#),
        "{}",
        merged.text
    );
    let key = v["releaseKey"].as_str().unwrap();
    let again =
        s.configs("DEV", "demo", "default", "FX.apollo", &format!("?releaseKey={}", crate::common::enc(key))).await;
    assert_eq!(again.status, 304);
}

#[tokio::test]
async fn configfiles_serve_properties_json_and_raw_files() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("timeout", "100"), ("url", "http://a:1/#x=y")]).await;
    let props = s.get("/envs/DEV/configfiles/demo/default/application").await;
    assert_eq!(props.status, 200);
    assert!(props.content_type().starts_with("text/plain"));
    assert_eq!(props.text, "timeout=100\nurl=http\\://a\\:1/\\#x\\=y\n");
    let json = s.get("/envs/DEV/configfiles/json/demo/default/application?ip=1.2.3.4").await;
    assert!(json.content_type().starts_with("application/json"));
    assert_eq!(json.json(), serde_json::json!({"timeout": "100", "url": "http://a:1/#x=y"}));

    s.seed_namespace("demo", "app", "yaml", false).await;
    let yaml = "server:\n  port: 8080\n";
    s.publish("DEV", "demo", "app.yaml", &[("content", yaml)]).await;
    let raw = s.get("/envs/DEV/configfiles/raw/demo/default/app.yaml").await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.content_type(), "application/yaml;charset=UTF-8");
    assert_eq!(raw.text, yaml);
    let as_json = s.get("/envs/DEV/configfiles/json/demo/default/app.yaml").await.json();
    assert_eq!(as_json["content"], yaml);
    s.get("/envs/DEV/configfiles/raw/demo/default/missing.yaml").await.assert_error(404, "missing.yaml");
}

#[tokio::test]
async fn a_pro_release_is_never_visible_under_dev() {
    let s = TestServer::start_with(|c| c.default_env = Some("DEV".into())).await;
    s.seed_app("demo").await;
    s.publish("PRO", "demo", "application", &[("db.password", "prod-secret")]).await;
    let pro = s.configs("PRO", "demo", "default", "application", "").await;
    assert_eq!(pro.json()["configurations"]["db.password"], "prod-secret");
    for path in [
        "/envs/DEV/configs/demo/default/application",
        "/configs/demo/default/application",
        "/envs/DEV/configfiles/json/demo/default/application",
        "/envs/FAT/configfiles/demo/default/application",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert!(!r.text.contains("prod-secret"));
    }
}

#[tokio::test]
async fn dedicated_env_listener_serves_that_env_at_the_root() {
    let s = TestServer::start_with(|c| {
        for (name, e) in c.envs.iter_mut() {
            if name == "PRO" {
                e.listen = Some("127.0.0.1:0".into());
            }
        }
    })
    .await;
    s.seed_app("demo").await;
    s.publish("PRO", "demo", "application", &[("k", "pro")]).await;
    let pro_addr = s.env_addrs.iter().find(|(n, _)| n == "PRO").unwrap().1;
    let r = s.http.get(format!("http://{pro_addr}/configs/demo/default/application")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["configurations"]["k"], "pro");
    let meta = s
        .http
        .get(format!("http://{pro_addr}/services/config"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(meta[0]["homepageUrl"], format!("http://{pro_addr}/"));
    // The env listener does not expose the Open API.
    let open = s.http.get(format!("http://{pro_addr}/openapi/v1/apps")).send().await.unwrap();
    assert_eq!(open.status(), 404);
    // ...nor any other env: a network policy on PRO's port must not let DEV read PRO or back.
    s.publish("DEV", "demo", "application", &[("k", "dev")]).await;
    for path in ["/envs/DEV/configs/demo/default/application", "/envs/dev/configfiles/json/demo/default/application"] {
        let r = s.http.get(format!("http://{pro_addr}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert!(!r.text().await.unwrap().contains("dev\""), "{path}");
    }
    let own = s.http.get(format!("http://{pro_addr}/envs/PRO/configs/demo/default/application")).send().await.unwrap();
    assert_eq!(own.status(), 200);
}

#[tokio::test]
async fn wrong_method_is_405_and_client_errors_use_apollos_shape() {
    let s = TestServer::start().await;
    let r = s.send(s.http.post(s.url("/envs/DEV/configs/demo/default/application"))).await;
    r.assert_error(405, "not allowed");
    s.get("/envs/DEV/configs/bad+app/default/application").await.assert_error(400, "InvalidAppId");
}

#[tokio::test]
async fn instances_are_recorded_for_the_releases_served() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let rel = s.publish("DEV", "demo", "application", &[("k", "v")]).await;
    s.configs("DEV", "demo", "default", "application", "?ip=10.9.8.7").await;
    let list = s
        .cairn
        .instances(
            &cairn::service::Caller::system("t"),
            cairn::service::NsRef { env: "DEV", app: "demo", cluster: "default", ns: "application" },
        )
        .unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].ip, "10.9.8.7");
    assert_eq!(list[0].release_key, rel["releaseKey"].as_str().unwrap());
}

#[tokio::test]
async fn the_no_appid_placeholder_gets_public_namespaces_only() {
    let s = TestServer::start().await;
    s.seed_app("platform").await;
    s.seed_namespace("platform", "FX.shared", "properties", true).await;
    s.publish("DEV", "platform", "FX.shared", &[("shared", "yes")]).await;
    let v = s.configs("DEV", "ApolloNoAppIdPlaceHolder", "default", "FX.shared", "").await.json();
    assert_eq!(v["configurations"]["shared"], "yes");
    s.configs("DEV", "ApolloNoAppIdPlaceHolder", "default", "application", "")
        .await
        .assert_error(404, "ApolloNoAppIdPlaceHolder");
}
