//! The portal over plain HTTP: sign-in, sessions, CSRF, authorisation and inline errors.

use std::time::Duration;

use reqwest::StatusCode;

use crate::common::portal::{form_token, location, Browser};
use crate::common::{TestServer, ADMIN};

#[tokio::test]
async fn anonymous_visitors_are_sent_to_sign_in() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let b = Browser::new(&s);
    for path in ["/apps", "/apps/demo", "/account", "/apps/demo/envs/DEV/clusters/default/namespaces/application"] {
        let r = b.get(path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert!(location(&r).starts_with("/login?next="), "{path}: {}", location(&r));
    }
    let r = b.post("/apps", &[("csrf", "x"), ("app_id", "evil"), ("name", "evil")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(s.cairn.app("evil").is_err(), "nothing may be written");
    let login = b.get("/login").await;
    assert_eq!(login.status, 200);
    assert!(login.text.contains("<label for=\"username\">User name</label>"));
    let css = b.get("/static/css/cairn.css").await;
    assert_eq!(css.status, 200);
    assert!(css.content_type().starts_with("text/css"));
}

#[tokio::test]
async fn the_first_admin_is_created_once_with_the_logged_token() {
    let s = TestServer::start_empty().await;
    let b = Browser::new(&s);
    assert_eq!(location(&b.get("/login").await), "/setup");
    let token = s.cairn.setup_token().unwrap().unwrap();
    let setup = format!("/setup?token={token}");
    let wrong = b
        .post_form_of(&setup, "/setup", &[("token", "nope"), ("username", "root"), ("password", "a-long-password")])
        .await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.text.contains("setup token is wrong"));
    let short =
        b.post_form_of(&setup, "/setup", &[("token", &token), ("username", "root"), ("password", "short")]).await;
    assert_eq!(short.status, 400);
    assert!(short.text.contains("at least 8"));
    let ok = b
        .post_form_of(&setup, "/setup", &[("token", &token), ("username", "root"), ("password", "a-long-password")])
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert!(s.cairn.find_user("root").unwrap().unwrap().is_admin);
    // Once a user exists, setup is closed.
    let again = b
        .post_form_of("/login", "/setup", &[("token", &token), ("username", "other"), ("password", "a-long-password")])
        .await;
    assert_eq!(again.status, 400);
    assert!(again.text.contains("setup is already done"), "{}", again.text);
    assert!(s.cairn.find_user("other").unwrap().is_none());
    assert_eq!(location(&b.get("/setup").await), "/login");
}

#[tokio::test]
async fn sign_in_uses_one_message_throttles_and_sets_a_strict_http_only_cookie() {
    let s = TestServer::start().await;
    let mut b = Browser::new(&s);
    let unknown = b.login("nobody", "whatever-pass").await;
    let wrong = b.login(ADMIN, "wrong-password").await;
    assert_eq!((unknown.status, wrong.status), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    assert!(unknown.text.contains("wrong user name or password") && wrong.text.contains("wrong user name or password"));
    b.login(ADMIN, "wrong-password").await;
    b.login(ADMIN, "wrong-password").await;
    let throttled = b.login(ADMIN, "apollo-password").await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS, "{}", throttled.text);
    assert!(throttled.text.contains("try again in"));

    let s = TestServer::start().await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login(ADMIN, "one-wrong-try").await.status, StatusCode::UNAUTHORIZED);
    let ok = b.login(ADMIN, "apollo-password").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&ok), "/apps");
    let cookie = ok.headers.get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.starts_with("cairn_session="), "only the session cookie is set at sign-in: {cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"), "{cookie}");
    let apps = b.get("/apps").await;
    assert_eq!(apps.status, 200);
    assert!(apps.text.contains("Create an app"));
    let audit = s.cairn.audit_log(&cairn::service::Caller::system("t"), 50).unwrap();
    assert!(audit.iter().any(|a| a.action == "login" && a.actor == ADMIN));
    assert!(audit.iter().any(|a| a.action == "login.failed"));

    let csrf = b.csrf("/apps").await;
    assert_eq!(location(&b.post("/logout", &[("csrf", &csrf)]).await), "/login");
    assert_eq!(b.get("/apps").await.status, StatusCode::SEE_OTHER, "the old cookie no longer works");
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_or_from_another_origin_change_nothing() {
    let s = TestServer::start().await;
    let b = Browser::admin(&s).await;
    let missing = b.post("/apps", &[("app_id", "a1"), ("name", "a1")]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(missing.text.contains("Reload the page"));
    let wrong = b.post("/apps", &[("csrf", "forged"), ("app_id", "a1"), ("name", "a1")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.text.contains("Reload the page"), "{}", wrong.text);
    let csrf = b.csrf("/apps").await;
    let foreign = s
        .send(
            b.http
                .post(s.url("/apps"))
                .header("Cookie", b.cookie.clone().unwrap())
                .header("Origin", "https://evil.example")
                .form(&[("csrf", csrf.as_str()), ("app_id", "a1"), ("name", "a1")]),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(s.cairn.app("a1").is_err(), "nothing may be written");
    let ok = b.post("/apps", &[("csrf", &csrf), ("app_id", "a1"), ("name", "First app")]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&ok), "/apps/a1");
    assert_eq!(s.cairn.app("a1").unwrap().name, "First app");
    let bad = b.post("/apps", &[("csrf", &csrf), ("app_id", "bad id"), ("name", "Kept name")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("invalid appId") && bad.text.contains("value=\"Kept name\""), "{}", bad.text);
}

#[tokio::test]
async fn operators_edit_review_publish_and_roll_back() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let b = Browser::admin(&s).await;
    let page = "/apps/demo/envs/DEV/clusters/default/namespaces/application";
    let csrf = b.csrf(page).await;
    let saved = b
        .post(&format!("{page}/items"), &[("csrf", &csrf), ("key", "timeout"), ("value", "100"), ("comment", "ms")])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let html = b.get(page).await.text;
    assert!(html.contains("state-added") && html.contains("1 change against the live release"), "{html}");
    let published = b.post(&format!("{page}/publish"), &[("csrf", &csrf), ("title", "first"), ("comment", "")]).await;
    assert_eq!(published.status, StatusCode::SEE_OTHER);
    assert_eq!(s.configs("DEV", "demo", "default", "application", "").await.json()["configurations"]["timeout"], "100");
    b.post(&format!("{page}/items"), &[("csrf", &csrf), ("key", "timeout"), ("value", "200"), ("comment", "ms")]).await;
    let html = b.get(page).await.text;
    assert!(html.contains("state-changed") && html.contains("live: 100"), "{html}");
    b.post(&format!("{page}/publish"), &[("csrf", &csrf), ("title", "second"), ("comment", "")]).await;
    assert_eq!(s.configs("DEV", "demo", "default", "application", "").await.json()["configurations"]["timeout"], "200");
    let first_id = s
        .cairn
        .history(
            &cairn::service::Caller::system("t"),
            cairn::service::NsRef { env: "DEV", app: "demo", cluster: "default", ns: "application" },
            10,
        )
        .unwrap()
        .last()
        .unwrap()
        .release_id;
    let rolled = b.post(&format!("{page}/rollback"), &[("csrf", &csrf), ("to", &first_id.to_string())]).await;
    assert_eq!(rolled.status, StatusCode::SEE_OTHER, "{}", rolled.text);
    assert_eq!(s.configs("DEV", "demo", "default", "application", "").await.json()["configurations"]["timeout"], "100");
    let deleted = b.post(&format!("{page}/items/delete"), &[("csrf", &csrf), ("key", "timeout")]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(b.get(page).await.text.contains("state-deleted"));
    let app_page = b.get("/apps/demo?env=PRO").await;
    assert!(app_page.text.contains("You are looking at PRODUCTION"));
    assert!(app_page.text.contains("Never released"));
}

#[tokio::test]
async fn invalid_yaml_keeps_the_operators_text_and_points_at_the_line() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.seed_namespace("demo", "app", "yaml", false).await;
    let b = Browser::admin(&s).await;
    let page = "/apps/demo/envs/DEV/clusters/default/namespaces/app.yaml";
    let csrf = b.csrf(page).await;
    let text = "server:\n  port: [80\nname: x\n";
    let r = b
        .post(&format!("{page}/items"), &[("csrf", &csrf), ("key", "content"), ("value", text), ("comment", "")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("yaml content is not valid at line"), "{}", r.text);
    assert!(r.text.contains("server:\n  port: [80\nname: x\n"), "the operator's text must be kept");
    assert!(
        s.open(reqwest::Method::GET, "/envs/DEV/apps/demo/clusters/default/namespaces/app.yaml/items/content", None)
            .await
            .status
            == 404
    );
}

#[tokio::test]
async fn users_without_grants_see_no_publish_button_and_are_refused() {
    let s = TestServer::start_with(|c| c.only_granted_create_apps = true).await;
    s.seed_app("demo").await;
    s.cairn.create_user(&cairn::service::Caller::system("t"), "viewer", "viewer-password", false).unwrap();
    let mut b = Browser::new(&s);
    b.login("viewer", "viewer-password").await;
    let page = "/apps/demo/envs/DEV/clusters/default/namespaces/application";
    let denied = b.get(page).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(denied.text.contains("may not read"));
    let apps = b.get("/apps").await;
    assert!(!apps.text.contains("Create an app"), "viewers may not create apps");
    let csrf = b.csrf("/account").await;
    let r = b.post(&format!("{page}/publish"), &[("csrf", &csrf), ("title", "sneaky"), ("comment", "")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b.post(&format!("{page}/items"), &[("csrf", &csrf), ("key", "k"), ("value", "v"), ("comment", "")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b.post("/apps", &[("csrf", &csrf), ("app_id", "mine"), ("name", "mine")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(s.cairn.app("mine").is_err());
    let latest = s
        .open(reqwest::Method::GET, "/envs/DEV/apps/demo/clusters/default/namespaces/application/releases/latest", None)
        .await;
    assert_eq!(latest.text, "", "nothing was released");
}

#[tokio::test]
async fn operators_change_their_own_password() {
    let s = TestServer::start().await;
    let b = Browser::admin(&s).await;
    let csrf = b.csrf("/account").await;
    let wrong =
        b.post("/account/password", &[("csrf", &csrf), ("current", "nope-nope"), ("new", "another-password")]).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.text.contains("not correct"));
    let ok = b
        .post("/account/password", &[("csrf", &csrf), ("current", "apollo-password"), ("new", "another-password")])
        .await;
    assert_eq!(ok.status, 200);
    assert!(ok.text.contains("Password changed."));
    let mut fresh = Browser::new(&s);
    assert_eq!(fresh.login(ADMIN, "another-password").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn admins_manage_users_grants_and_passwords() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let b = Browser::admin(&s).await;
    let csrf = b.csrf("/users").await;
    let created = b.post("/users", &[("csrf", &csrf), ("name", "carol"), ("password", "carol-password")]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text);
    let short = b.post("/users", &[("csrf", &csrf), ("name", "dave"), ("password", "short")]).await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(short.text.contains("at least 8"));
    let granted = b
        .post(
            "/users/grants",
            &[
                ("csrf", &csrf),
                ("user", "carol"),
                ("app", "demo"),
                ("namespace", "application"),
                ("env", "DEV"),
                ("modify", "true"),
            ],
        )
        .await;
    assert_eq!(granted.status, StatusCode::SEE_OTHER, "{}", granted.text);
    let page = b.get("/users").await.text;
    assert!(page.contains("demo/application modify in DEV"), "{page}");
    let bad_grant = b.post("/users/grants", &[("csrf", &csrf), ("user", "carol"), ("app", "nope")]).await;
    assert_eq!(bad_grant.status, StatusCode::BAD_REQUEST);
    assert!(bad_grant.text.contains("app &#39;nope&#39; not found"), "{}", bad_grant.text);

    // Carol may now edit DEV but not release, and not touch PRO.
    let mut c = Browser::new(&s);
    c.login("carol", "carol-password").await;
    let ns = "/apps/demo/envs/DEV/clusters/default/namespaces/application";
    let ccsrf = c.csrf(ns).await;
    assert_eq!(
        c.post(&format!("{ns}/items"), &[("csrf", &ccsrf), ("key", "k"), ("value", "v"), ("comment", "")]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        c.post(&format!("{ns}/publish"), &[("csrf", &ccsrf), ("title", "t"), ("comment", "")]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.get("/apps/demo/envs/PRO/clusters/default/namespaces/application").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(c.get("/users").await.status, StatusCode::FORBIDDEN, "operators may not manage users");

    // Reset and disable.
    assert_eq!(
        b.post("/users/password", &[("csrf", &csrf), ("user", "carol"), ("password", "fresh-password")]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        b.post("/users/carol/enabled", &[("csrf", &csrf), ("enabled", "false")]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(c.get(ns).await.status, StatusCode::SEE_OTHER, "a disabled user's session ends");
    let mut again = Browser::new(&s);
    assert_eq!(again.login("carol", "fresh-password").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        b.post(&format!("/users/{ADMIN}/enabled"), &[("csrf", &csrf), ("enabled", "false")]).await.status,
        StatusCode::BAD_REQUEST
    );
    let audit = s.cairn.audit_log(&cairn::service::Caller::system("t"), 100).unwrap();
    for action in ["user.create", "user.grant", "user.reset_password", "user.disable"] {
        assert!(audit.iter().any(|a| a.action == action), "audit lacks {action}");
    }
}

#[tokio::test]
async fn app_masters_create_clusters_and_namespaces() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let b = Browser::admin(&s).await;
    let csrf = b.csrf("/apps/demo?env=FAT").await;
    let c = b.post("/apps/demo/clusters", &[("csrf", &csrf), ("env", "FAT"), ("name", "canary")]).await;
    assert_eq!(c.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&c), "/apps/demo?env=FAT&cluster=canary");
    assert!(b.get("/apps/demo?env=FAT&cluster=canary").await.text.contains(">canary<"));
    let n = b
        .post("/apps/demo/namespaces", &[("csrf", &csrf), ("env", "FAT"), ("name", "gateway"), ("format", "yaml")])
        .await;
    assert_eq!(n.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&n), "/apps/demo/envs/FAT/clusters/default/namespaces/gateway.yaml");
    assert_eq!(b.get(&location(&n)).await.status, 200);
    let dup = b
        .post("/apps/demo/namespaces", &[("csrf", &csrf), ("env", "FAT"), ("name", "gateway"), ("format", "yaml")])
        .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert!(dup.text.contains("already exists"));
    let forged = b.post("/apps/demo/clusters", &[("env", "FAT"), ("name", "evil")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(s.cairn.clusters("FAT", "demo").unwrap().iter().all(|c| c.name != "evil"));
}

#[tokio::test]
async fn text_mode_validates_and_discard_restores_the_live_values() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("a", "1"), ("b", "2")]).await;
    let b = Browser::admin(&s).await;
    let page = "/apps/demo/envs/DEV/clusters/default/namespaces/application";
    let text = b.get(&format!("{page}/text")).await;
    assert!(text.text.contains("a=1\nb=2\n"), "{}", text.text);
    let csrf = b.csrf(page).await;
    let saved = b.post(&format!("{page}/text"), &[("csrf", &csrf), ("text", "b=20\nc=3\n")]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert!(location(&saved).contains("done=Saved+3+changes"), "{}", location(&saved));
    let html = b.get(page).await.text;
    assert!(html.contains("state-deleted") && html.contains("state-added") && html.contains("state-changed"));
    let discard = b.post(&format!("{page}/discard"), &[("csrf", &csrf)]).await;
    assert_eq!(discard.status, StatusCode::SEE_OTHER);
    assert!(b.get(page).await.text.contains("nothing to publish"));

    s.seed_namespace("demo", "data", "json", false).await;
    let json_page = "/apps/demo/envs/DEV/clusters/default/namespaces/data.json";
    let bad = b.post(&format!("{json_page}/text"), &[("csrf", &csrf), ("text", "{\n  \"a\": 1,\n  oops\n}")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("json content is not valid at line 3"), "{}", bad.text);
    assert!(bad.text.contains("  oops"), "the operator's text is kept");
    let no_csrf = b.post(&format!("{json_page}/text"), &[("text", "{}")]).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.open(reqwest::Method::GET, "/envs/DEV/apps/demo/clusters/default/namespaces/data.json", None).await.json()
            ["items"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn instances_and_the_audit_log_are_shown() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("a", "1")]).await;
    s.configs("DEV", "demo", "default", "application", "?ip=10.1.1.1").await;
    s.publish("DEV", "demo", "application", &[("a", "2")]).await;
    s.configs("DEV", "demo", "default", "application", "?ip=10.2.2.2").await;
    let b = Browser::admin(&s).await;
    let inst = b.get("/apps/demo/envs/DEV/clusters/default/namespaces/application/instances").await;
    assert_eq!(inst.status, 200);
    assert!(inst.text.contains("10.1.1.1") && inst.text.contains("10.2.2.2"));
    assert!(inst.text.contains("1 of 2 instances"), "{}", inst.text);
    assert!(inst.text.contains("(not the latest)"));
    let audit = b.get("/audit?action=release").await;
    assert_eq!(audit.status, 200);
    assert!(audit.text.contains("release.publish") && !audit.text.contains("app.create"));
    assert!(b.get("/audit?hours=1&action=release").await.text.contains("release.publish"));
    let by_user = b.get("/audit?user=nobody").await;
    assert!(by_user.text.contains("No entries match."));
    s.cairn.create_user(&cairn::service::Caller::system("t"), "op", "op-password", false).unwrap();
    let mut op = Browser::new(&s);
    op.login("op", "op-password").await;
    assert_eq!(op.get("/audit").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn gray_forms_need_release_rights_and_csrf() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("color", "blue")]).await;
    let b = Browser::admin(&s).await;
    let page = "/apps/demo/envs/DEV/clusters/default/namespaces/application";
    let csrf = b.csrf(page).await;
    assert_eq!(b.post(&format!("{page}/gray/create"), &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(b.post(&format!("{page}/gray/create"), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        b.post(&format!("{page}/gray/items"), &[("csrf", &csrf), ("key", "color"), ("value", "green")]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        b.post(&format!("{page}/gray/rules"), &[("csrf", &csrf), ("client_app", "demo"), ("ips", "*")]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        b.post(&format!("{page}/gray/publish"), &[("csrf", &csrf), ("title", "gray")]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        s.configs("DEV", "demo", "default", "application", "?ip=1.2.3.4").await.json()["configurations"]["color"],
        "green"
    );
    assert_eq!(b.post(&format!("{page}/gray/merge"), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    let merged = s.configs("DEV", "demo", "default", "application", "").await.json();
    assert_eq!(
        (merged["configurations"]["color"].as_str(), merged["cluster"].as_str()),
        (Some("green"), Some("default"))
    );
    let again = b.post(&format!("{page}/gray/publish"), &[("csrf", &csrf), ("title", "x")]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert!(again.text.contains("no gray branch"));
}

#[tokio::test]
async fn access_keys_and_consumers_are_managed_in_the_portal() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("k", "v")]).await;
    let b = Browser::admin(&s).await;
    let keys = "/apps/demo/envs/DEV/accesskeys";
    assert!(b.get(keys).await.text.contains("No access keys"));
    let csrf = b.csrf(keys).await;
    let created = b.post(keys, &[("csrf", &csrf)]).await;
    assert_eq!(created.status, 200);
    let i = created.text.find("id=\"new-secret\">").unwrap();
    let secret = created.text[i + 16..].split('<').next().unwrap().to_string();
    assert_eq!(secret.len(), 40);
    assert!(!b.get(keys).await.text.contains(&secret), "the full secret is shown once");
    let id = s.cairn.list_access_keys(&cairn::service::Caller::system("t"), "DEV", "demo").unwrap()[0].id;
    assert_eq!(
        b.post(&format!("{keys}/{id}/enable"), &[("csrf", &csrf), ("mode", "0")]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(s.configs("DEV", "demo", "default", "application", "").await.status, 401, "the key is enforced");
    assert_eq!(b.post(&format!("{keys}/{id}/disable"), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(s.configs("DEV", "demo", "default", "application", "").await.status, 200);
    assert_eq!(b.post(&format!("{keys}/{id}/delete"), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    assert_eq!(b.post(&format!("{keys}/{id}/delete"), &[]).await.status, StatusCode::FORBIDDEN);

    let made = b.post("/consumers", &[("csrf", &csrf), ("name", "deployer")]).await;
    assert_eq!(made.status, 200);
    let i = made.text.find("id=\"new-token\">").unwrap();
    let token = made.text[i + 15..].split('<').next().unwrap().to_string();
    assert_eq!(s.open_as(&token, reqwest::Method::GET, "/apps/authorized", None).await.json(), serde_json::json!([]));
    let granted = b
        .post(
            "/consumers/grants",
            &[("csrf", &csrf), ("name", "deployer"), ("app", "demo"), ("namespace", "application"), ("env", "DEV")],
        )
        .await;
    assert_eq!(granted.status, StatusCode::SEE_OTHER);
    assert!(b.get("/consumers").await.text.contains("demo/application in DEV"));
    assert_eq!(s.open_as(&token, reqwest::Method::GET, "/apps/authorized", None).await.json()[0]["appId"], "demo");
    let dup = b.post("/consumers", &[("csrf", &csrf), ("name", "deployer")]).await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert!(dup.text.contains("already exists"), "{}", dup.text);

    s.cairn.create_user(&cairn::service::Caller::system("t"), "op", "op-password", false).unwrap();
    let mut op = Browser::new(&s);
    op.login("op", "op-password").await;
    assert_eq!(op.get("/consumers").await.status, StatusCode::FORBIDDEN);
    assert_eq!(op.get(keys).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn compare_and_copy_promote_fat_into_a_pro_draft() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.set_items("FAT", "demo", "default", "application", &[("timeout", "200"), ("feature", "on"), ("same", "x")]).await;
    s.set_items("PRO", "demo", "default", "application", &[("timeout", "100"), ("same", "x"), ("legacy", "1")]).await;
    let b = Browser::admin(&s).await;
    let page = b.get("/apps/demo/compare?ns=application&from=FAT/default&to=PRO/default").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains(">timeout<") && page.text.contains(">feature<") && page.text.contains(">legacy<"));
    assert!(!page.text.contains(">same<"), "unchanged keys are hidden");
    let csrf = b.csrf("/apps/demo/compare?ns=application&from=FAT/default&to=PRO/default").await;
    let body = format!("csrf={csrf}&ns=application&from=FAT%2Fdefault&to=PRO%2Fdefault&key=timeout&key=feature");
    let r = s
        .send(
            b.http
                .post(s.url("/apps/demo/compare"))
                .header("Cookie", b.cookie.clone().unwrap())
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(location(&r).starts_with("/apps/demo/envs/PRO/clusters/default/namespaces/application?done=Copied+2+keys"));
    let pro =
        s.open(reqwest::Method::GET, "/envs/PRO/apps/demo/clusters/default/namespaces/application", None).await.json();
    let items: std::collections::HashMap<String, String> = pro["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["key"].as_str().unwrap().to_string(), i["value"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(items["timeout"], "200");
    assert_eq!(items["feature"], "on");
    assert_eq!(items["legacy"], "1", "unchecked keys are left alone");
    assert_eq!(
        s.configs("PRO", "demo", "default", "application", "").await.status,
        404,
        "a copy is a draft, not a release"
    );
    let forged = s
        .send(
            b.http
                .post(s.url("/apps/demo/compare"))
                .header("Cookie", b.cookie.clone().unwrap())
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("ns=application&from=FAT&to=PRO&key=legacy"),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn history_shows_what_each_release_changed_and_emergency_publish_is_offered() {
    let s = TestServer::with_four_eyes_pro(true).await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("a", "1")]).await;
    s.publish("DEV", "demo", "application", &[("a", "2"), ("b", "x")]).await;
    let b = Browser::admin(&s).await;
    let dev = b.get("/apps/demo/envs/DEV/clusters/default/namespaces/application").await.text;
    assert!(dev.contains("~a: 1 → 2; +b"), "{dev}");
    assert!(!dev.contains("Emergency publish"));
    s.set_items("PRO", "demo", "default", "application", &[("k", "v")]).await;
    let pro_path = "/apps/demo/envs/PRO/clusters/default/namespaces/application";
    let pro = b.get(pro_path).await.text;
    assert!(pro.contains("Emergency publish"));
    let csrf = b.csrf(pro_path).await;
    let refused = b.post(&format!("{pro_path}/publish"), &[("csrf", &csrf), ("title", "t")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.text.contains("four-eyes rule"), "{}", refused.text);
    let ok = b.post(&format!("{pro_path}/publish"), &[("csrf", &csrf), ("title", "t"), ("emergency", "true")]).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(s.configs("PRO", "demo", "default", "application", "").await.json()["configurations"]["k"], "v");
}

#[tokio::test]
async fn a_public_namespace_is_associated_and_overridden_from_the_portal() {
    let s = TestServer::start().await;
    s.seed_app("platform").await;
    s.seed_app("demo").await;
    s.seed_namespace("platform", "FX.common", "properties", true).await;
    s.publish("DEV", "platform", "FX.common", &[("timeout", "10"), ("retries", "3")]).await;
    let b = Browser::admin(&s).await;
    let csrf = b.csrf("/apps/demo?env=DEV").await;
    let r = b
        .post("/apps/demo/link", &[("csrf", &csrf), ("env", "DEV"), ("cluster", "default"), ("namespace", "FX.common")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = location(&r);
    assert_eq!(page, "/apps/demo/envs/DEV/clusters/default/namespaces/FX.common");
    b.post(&format!("{page}/items"), &[("csrf", &csrf), ("key", "timeout"), ("value", "99"), ("comment", "")]).await;
    b.post(&format!("{page}/publish"), &[("csrf", &csrf), ("title", "override")]).await;
    let v = s.configs("DEV", "demo", "default", "FX.common", "").await.json();
    assert_eq!(v["configurations"], serde_json::json!({"timeout": "99", "retries": "3"}));
    let private = b
        .post("/apps/demo/link", &[("csrf", &csrf), ("env", "DEV"), ("cluster", "default"), ("namespace", "nope")])
        .await;
    assert_eq!(private.status, StatusCode::BAD_REQUEST);
    assert!(private.text.contains("namespace &#39;nope&#39; is not defined"), "{}", private.text);
}

#[tokio::test]
async fn sessions_end_after_the_idle_and_the_absolute_timeout() {
    // The defaults (30 min idle, 12 h absolute), checked by moving the service clock.
    let s = TestServer::start().await;
    let clock = s.cairn.clock();
    let mut b = Browser::admin(&s).await;
    assert_eq!(b.get("/apps").await.status, 200);
    clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(b.get("/apps").await.status, 200, "29 minutes idle is within the idle timeout");
    clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(b.get("/apps").await.status, StatusCode::SEE_OTHER, "idle timeout");

    b.login(ADMIN, "apollo-password").await;
    for _ in 0..(12 * 60 / 20) - 1 {
        clock.advance(Duration::from_secs(20 * 60));
        assert_eq!(b.get("/apps").await.status, 200, "a session in use lives until its absolute timeout");
    }
    clock.advance(Duration::from_secs(20 * 60));
    assert_eq!(b.get("/apps").await.status, StatusCode::SEE_OTHER, "ended by the absolute timeout although never idle");
}

#[tokio::test]
async fn app_creation_is_open_by_default_and_can_be_restricted_to_granted_users() {
    let s = TestServer::start().await;
    s.cairn.create_user(&cairn::service::Caller::system("t"), "dev", "dev-password", false).unwrap();
    let mut b = Browser::new(&s);
    b.login("dev", "dev-password").await;
    let csrf = b.csrf("/apps").await;
    assert_eq!(
        b.post("/apps", &[("csrf", &csrf), ("app_id", "mine"), ("name", "Mine")]).await.status,
        StatusCode::SEE_OTHER
    );
    // The creator masters the new app: it may publish there.
    let ns = "/apps/mine/envs/DEV/clusters/default/namespaces/application";
    b.post(&format!("{ns}/items"), &[("csrf", &csrf), ("key", "k"), ("value", "v"), ("comment", "")]).await;
    assert_eq!(
        b.post(&format!("{ns}/publish"), &[("csrf", &csrf), ("title", "t")]).await.status,
        StatusCode::SEE_OTHER
    );

    let s = TestServer::start_with(|c| c.only_granted_create_apps = true).await;
    s.cairn.create_user(&cairn::service::Caller::system("t"), "dev", "dev-password", false).unwrap();
    let mut b = Browser::new(&s);
    b.login("dev", "dev-password").await;
    let csrf = b.csrf("/apps").await;
    assert_eq!(
        b.post("/apps", &[("csrf", &csrf), ("app_id", "mine"), ("name", "Mine")]).await.status,
        StatusCode::FORBIDDEN
    );
    let mut admin = Browser::new(&s);
    admin.login(ADMIN, "apollo-password").await;
    let acsrf = admin.csrf("/users").await;
    assert_eq!(
        admin.post("/users/dev/create-apps", &[("csrf", &acsrf), ("allowed", "true")]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        b.post("/apps", &[("csrf", &csrf), ("app_id", "mine"), ("name", "Mine")]).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn behind_tls_the_session_cookie_is_host_prefixed_and_secure() {
    // The test client connects from loopback, standing in for the TLS-terminating proxy.
    let s =
        TestServer::start_with(|c| c.trusted_proxies = vec![cairn::domain::net::IpNet::parse("127.0.0.1").unwrap()])
            .await;
    let b = Browser::new(&s);
    let (cookie, token) = form_token(&b.get("/login").await);
    let r = s
        .send(b.http.post(s.url("/login")).header("X-Forwarded-Proto", "https").header("Cookie", cookie).form(&[
            ("csrf", token.as_str()),
            ("username", ADMIN),
            ("password", "apollo-password"),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap())
        .find(|c| c.contains("cairn_session="))
        .unwrap();
    assert!(
        cookie.starts_with("__Host-cairn_session=") && cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn destructive_forms_ask_for_confirmation() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("a", "1")]).await;
    s.publish("DEV", "demo", "application", &[("a", "2")]).await;
    s.set_items("DEV", "demo", "default", "application", &[("a", "3")]).await;
    let b = Browser::admin(&s).await;
    let html = b.get("/apps/demo/envs/DEV/clusters/default/namespaces/application").await.text;
    for needle in [
        "data-confirm=\"Delete a from the draft?\"",
        "data-confirm=\"Throw away every unpublished change?\"",
        "data-confirm=\"Roll DEV back to",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
    assert!(html.contains("<script src=\"/static/js/cairn.js\" defer></script>"));
    let js = b.get("/static/js/cairn.js").await;
    assert!(js.content_type().starts_with("text/javascript") && js.text.contains("data-confirm"));
}

#[tokio::test]
async fn home_lists_waiting_drafts_and_recent_releases_and_cards_show_adoption() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("a", "1")]).await;
    s.configs("DEV", "demo", "default", "application", "?ip=10.0.0.1").await;
    s.publish("DEV", "demo", "application", &[("a", "2")]).await;
    s.configs("DEV", "demo", "default", "application", "?ip=10.0.0.2").await;
    s.set_items("PRO", "demo", "default", "application", &[("b", "1")]).await;
    let b = Browser::admin(&s).await;
    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert!(
        home.text.contains("demo / PRO / default / application") && home.text.contains(&format!("edited by {ADMIN}")),
        "{}",
        home.text
    );
    assert!(home.text.contains("release.publish") && home.text.contains("DEV demo/default/application"));
    let app = b.get("/apps/demo?env=DEV").await.text;
    assert!(app.contains("1 of 2 instances on the live release"), "{app}");
}
