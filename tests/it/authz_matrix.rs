//! The authorization matrix: every route of the portal and of the Open API × every role ×
//! three targets (own app in DEV, own app in PRO, another app). Expectations come from the
//! access column of the route tables (`web::routes`), so a new route is in the matrix the
//! moment it is registered. Refused cells must answer 401/403 (or send a signed-out browser
//! to sign in) and write nothing; allowed cells must get past authorization.

use cairn::domain::model::Grant;
use cairn::service::{Caller, NsRef};
use cairn::web::routes::{Access, RouteSpec};
use reqwest::{redirect::Policy, Method, StatusCode};
use serde_json::json;

use crate::common::{hidden_field, portal_sign_in, TestServer, ADMIN};

const PASSWORD: &str = "Harbor-wolf-lantern-17";

/// The roles: who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Anonymous,
    NoGrants,
    /// Master of app `a`.
    MasterA,
    /// May modify `a`'s `application` namespace in DEV only.
    ModifyADev,
    /// May release `a`'s `application` namespace in DEV only.
    ReleaseADev,
    /// Master of app `b`.
    MasterB,
    /// Portal admin / an Open API consumer allowed to create apps (no grants).
    Admin,
}

const ROLES: [Role; 7] =
    [Role::Anonymous, Role::NoGrants, Role::MasterA, Role::ModifyADev, Role::ReleaseADev, Role::MasterB, Role::Admin];

/// A target: (app, env).
type Target = (&'static str, &'static str);
const TARGETS: [Target; 3] = [("a", "DEV"), ("a", "PRO"), ("b", "DEV")];

/// What the route table says: may `role` call a route needing `access` on `target`?
fn allowed(access: Access, role: Role, (app, env): Target, portal: bool) -> bool {
    use Role::*;
    let master = matches!((role, app), (MasterA, "a") | (MasterB, "b"));
    let dev_a = app == "a" && env == "DEV";
    // Open API consumers' grants always carry both rights (as Apollo's do).
    let ns_grant = matches!(role, ModifyADev | ReleaseADev);
    let (modify, release) = if portal { (role == ModifyADev, role == ReleaseADev) } else { (ns_grant, ns_grant) };
    match access {
        Access::Public => true,
        Access::Authenticated => role != Anonymous,
        // Portal admins hold every right; the Open API "admin" is a consumer that may only
        // create apps.
        Access::CreateApp => role == Admin,
        Access::Admin => portal && role == Admin,
        _ if portal && role == Admin => true,
        Access::AppMaster => master,
        Access::SeeApp => master || (app == "a" && ns_grant),
        Access::Read => master || (dev_a && ns_grant),
        Access::Modify => master || (dev_a && modify),
        Access::Release => master || (dev_a && release),
    }
}

/// The concrete path of `spec` on `target`, with the ids that exist there.
fn concrete(spec: &RouteSpec, (app, env): Target, ids: &Ids) -> String {
    let (key_id, release_id, branch) = ids.of(app, env);
    // The compare page names the places it reads in its query.
    let query = if spec.path.ends_with("/compare") && !spec.is_mutating() {
        format!("?ns=application&from={env}/default&to={env}/default")
    } else {
        String::new()
    };
    let path = spec
        .path
        .replace("{app}", app)
        .replace("{app_id}", app)
        .replace("{env}", env)
        .replace("{cluster}", "default")
        .replace("{ns}", "application")
        .replace("{namespace}", "application")
        .replace("{name}", "victim")
        .replace("{id}", &key_id.to_string())
        .replace("{action}", "disable")
        .replace("/items/{key}", "/items/a")
        // "a" in URL-safe Base64.
        .replace("/encodedItems/{key}", "/encodedItems/YQ")
        .replace("{release_id}", &release_id.to_string())
        .replace("{branch}", &branch)
        .replace("{path:.*}", "css/cairn.css");
    path + &query
}

/// Ids of the objects each target holds: access key, release, gray branch.
struct Ids(Vec<(Target, (u64, u64, String))>);

impl Ids {
    fn of(&self, app: &str, env: &str) -> (u64, u64, String) {
        self.0.iter().find(|((a, e), _)| *a == app && *e == env).map(|(_, v)| v.clone()).unwrap()
    }
}

/// Two apps, each with a published `application` namespace, an access key and a gray branch
/// in DEV and PRO; a user per role and a consumer per role.
async fn seed(s: &TestServer) -> Ids {
    let sys = Caller::system("test");
    let c = &s.cairn;
    let mut ids = Vec::new();
    for app in ["a", "b"] {
        s.seed_app(app).await;
        for env in ["DEV", "PRO"] {
            s.publish(env, app, "application", &[("a", "1")]).await;
            let release = s.cairn.latest_release(&sys, ns(env, app)).unwrap().unwrap().id;
            let key = c.create_access_key(&sys, env, app).unwrap().id;
            let branch = c.create_branch(&sys, ns(env, app)).unwrap().branch.name;
            ids.push(((app, env), (key, release, branch)));
        }
    }
    // `seed_app` lets the test consumer master both apps; the matrix uses its own principals.
    for name in ["nogrants", "master-a", "modify-a", "release-a", "master-b", "victim"] {
        c.create_user(&sys, name, PASSWORD, false).unwrap();
    }
    c.create_user(&sys, "admin2", PASSWORD, true).unwrap();
    for (who, grant) in grants() {
        c.grant_user(&sys, who, grant).unwrap();
    }
    Ids(ids)
}

fn ns<'a>(env: &'a str, app: &'a str) -> NsRef<'a> {
    NsRef { env, app, cluster: "default", ns: "application" }
}

/// The grants behind each role (users and consumers alike).
fn grants() -> Vec<(&'static str, Grant)> {
    let g = |app: &str, ns: Option<&str>, env: Option<&str>, modify, release| Grant {
        app_id: app.into(),
        namespace: ns.map(String::from),
        env: env.map(String::from),
        modify,
        release,
    };
    vec![
        ("master-a", g("a", None, None, true, true)),
        ("modify-a", g("a", Some("application"), Some("DEV"), true, false)),
        ("release-a", g("a", Some("application"), Some("DEV"), false, true)),
        ("master-b", g("b", None, None, true, true)),
    ]
}

fn user_of(role: Role) -> Option<&'static str> {
    match role {
        Role::Anonymous => None,
        Role::NoGrants => Some("nogrants"),
        Role::MasterA => Some("master-a"),
        Role::ModifyADev => Some("modify-a"),
        Role::ReleaseADev => Some("release-a"),
        Role::MasterB => Some("master-b"),
        Role::Admin => Some("admin2"),
    }
}

/// A signed-in portal client: its cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn sign_in(s: &TestServer, http: &reqwest::Client, user: &str) -> Session {
    let cookie = portal_sign_in(s, http, user, PASSWORD).await;
    let account = http.get(s.url("/account")).header("Cookie", &cookie).send().await.unwrap().text().await.unwrap();
    Session { csrf: hidden_field(&account, "csrf").unwrap(), cookie }
}

fn is_refusal(status: StatusCode, location: &str, portal: bool) -> bool {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => true,
        StatusCode::SEE_OTHER | StatusCode::FOUND => portal && location.starts_with("/login"),
        _ => false,
    }
}

/// One cell of the matrix.
struct Cell {
    method: actix_web::http::Method,
    path: String,
    access: Access,
    role: Role,
    target: Target,
    allowed: bool,
}

fn cells(specs: &[RouteSpec], ids: &Ids, portal: bool) -> Vec<Cell> {
    let mut cells: Vec<Cell> = Vec::new();
    for spec in specs {
        for role in ROLES {
            for target in TARGETS {
                let path = concrete(spec, target, ids);
                // Routes that name no app or env are the same on every target: once is enough.
                if cells.iter().any(|c| c.path == path && c.method == spec.method && c.role == role) {
                    continue;
                }
                let allowed = allowed(spec.access, role, target, portal);
                cells.push(Cell { method: spec.method.clone(), path, access: spec.access, role, target, allowed });
            }
        }
    }
    // Refused cells first (they change nothing), then the allowed ones; signing out last.
    cells.sort_by_key(|c| (c.allowed, c.path == "/logout"));
    cells
}

async fn audit_len(s: &TestServer) -> usize {
    s.cairn.audit_log(&Caller::system("test"), 1_000_000).unwrap().len()
}

#[tokio::test]
async fn every_portal_route_answers_each_role_as_its_access_says() {
    let s = TestServer::start_with(|c| c.only_granted_create_apps = true).await;
    let ids = seed(&s).await;
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let mut sessions = Vec::new();
    for role in ROLES {
        let session = match user_of(role) {
            Some(user) => Some(sign_in(&s, &http, user).await),
            None => None,
        };
        sessions.push((role, session));
    }
    let specs = cairn::web::portal::routes();
    let cells = cells(&specs, &ids, true);
    let mut wrong = Vec::new();
    let mut checked = 0;
    for cell in &cells {
        // Sign-in, first run and assets are public by design and tested on their own.
        if cell.access == Access::Public {
            continue;
        }
        let session = sessions.iter().find(|(r, _)| *r == cell.role).and_then(|(_, s)| s.as_ref());
        let method = Method::from_bytes(cell.method.as_str().as_bytes()).unwrap();
        let mut rb = http.request(method.clone(), s.url(&cell.path));
        if let Some(sess) = session {
            rb = rb.header("Cookie", &sess.cookie);
        }
        if method == Method::POST {
            let csrf = session.map(|s| s.csrf.clone()).unwrap_or_default();
            let env = cell.path.split("/envs/").nth(1).and_then(|t| t.split('/').next()).unwrap_or("DEV");
            let place = format!("{env}/default");
            // `to` names a release for rollback and a place for compare.
            let to = if cell.path.ends_with("/compare") { place.as_str() } else { "1" };
            rb = rb.form(&[
                ("csrf", csrf.as_str()),
                ("key", "a"),
                ("value", "v"),
                ("comment", ""),
                ("name", "x-app"),
                ("title", "t"),
                ("to", to),
                ("env", "DEV"),
                ("cluster", "default"),
                ("namespace", "application"),
                ("ns", "application"),
                ("from", place.as_str()),
                ("format", "properties"),
                ("app_id", "x-app"),
                ("user", "victim"),
                ("app", "a"),
                ("enabled", "false"),
                ("allowed", "true"),
                ("text", "a=2"),
                ("client_app", "a"),
                ("password", "Another-long-pass-42"),
                ("new", "Another-long-pass-42"),
            ]);
        }
        let before = if cell.allowed { 0 } else { audit_len(&s).await };
        let r = rb.send().await.unwrap();
        let mut status = r.status();
        let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let body = r.text().await.unwrap();
        checked += 1;
        if cell.path == "/logout" && cell.allowed {
            // Signing out sends the browser to sign in: it worked if the session is gone.
            let after = http.get(s.url("/account")).header("Cookie", &session.unwrap().cookie).send().await.unwrap();
            assert_eq!(after.status(), StatusCode::SEE_OTHER, "sign-out as {:?} left the session alive", cell.role);
            status = StatusCode::OK;
        }
        assert!(status.as_u16() < 500, "{} {} as {:?}: {status} {body}", cell.method, cell.path, cell.role);
        let refused = is_refusal(status, &location, true);
        if refused == cell.allowed {
            wrong.push(format!(
                "{} {} as {:?} ({:?}): {status} {location}",
                cell.method, cell.path, cell.role, cell.access
            ));
        }
        if !cell.allowed && method != Method::GET {
            assert_eq!(audit_len(&s).await, before, "refused {} {} as {:?} wrote", cell.method, cell.path, cell.role);
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} cells disagree with the route table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(checked > 500, "only {checked} cells");
}

fn token_of(role: Role, tokens: &[(Role, String)]) -> Option<String> {
    tokens.iter().find(|(r, _)| *r == role).map(|(_, t)| t.clone())
}

#[tokio::test]
async fn every_open_api_route_answers_each_consumer_as_its_access_says() {
    let s = TestServer::start().await;
    let ids = seed(&s).await;
    let sys = Caller::system("test");
    let mut tokens = Vec::new();
    for role in ROLES {
        let token = match (role, user_of(role)) {
            (Role::Anonymous, _) => "not-a-token".to_string(),
            (Role::Admin, _) => s.cairn.create_consumer(&sys, "creator", true).unwrap().1,
            (_, Some(user)) => {
                let (_, token) = s.cairn.create_consumer(&sys, &format!("c-{user}"), false).unwrap();
                for (who, g) in grants() {
                    if who == user {
                        let name = format!("c-{user}");
                        s.cairn
                            .grant_consumer(&sys, &name, &g.app_id, g.namespace.as_deref(), g.env.as_deref())
                            .unwrap();
                    }
                }
                token
            }
            _ => unreachable!(),
        };
        tokens.push((role, token));
    }
    let http = reqwest::Client::new();
    let specs = cairn::web::openapi::routes();
    let cells = cells(&specs, &ids, false);
    let mut wrong = Vec::new();
    for cell in &cells {
        let method = Method::from_bytes(cell.method.as_str().as_bytes()).unwrap();
        let url = s.url(&format!("/openapi/v1{}?operator={ADMIN}", cell.path));
        let mut rb = http.request(method.clone(), url);
        if let Some(token) = token_of(cell.role, &tokens) {
            rb = rb.header("Authorization", token);
        }
        let (app, env) = cell.target;
        if cell.path == "/namespaces" {
            let link = json!([{"appId": app, "env": env, "clusterName": "default", "appNamespaceName": "application"}]);
            rb = rb.json(&link);
        } else if method != Method::GET {
            rb = rb.json(&json!({
                "key": "a", "value": "v", "comment": "",
                "dataChangeCreatedBy": ADMIN, "dataChangeLastModifiedBy": ADMIN,
                "releaseTitle": "t", "releasedBy": ADMIN, "operator": ADMIN,
                "name": "x-ns", "appId": app, "format": "properties", "isPublic": false,
                "appendNamespacePrefix": false, "clusterName": "default", "namespaceName": "application",
                "app": {"appId": "x-app", "name": "x", "ownerName": ADMIN},
                "grayDelKeys": [], "ruleItems": [],
                "env": "DEV", "mode": 0,
            }));
        }
        let before = if cell.allowed { 0 } else { audit_len(&s).await };
        let r = rb.send().await.unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert!(status.as_u16() < 500, "{} {} as {:?}: {status} {body}", cell.method, cell.path, cell.role);
        if is_refusal(status, "", false) == cell.allowed {
            wrong.push(format!(
                "{} {} as {:?} ({:?}): {status} {}",
                cell.method,
                cell.path,
                cell.role,
                cell.access,
                body.chars().take(120).collect::<String>()
            ));
        }
        if !cell.allowed && method != Method::GET {
            assert_eq!(audit_len(&s).await, before, "refused {} {} as {:?} wrote", cell.method, cell.path, cell.role);
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cells disagree with the route table:\n{}",
        wrong.len(),
        cells.len(),
        wrong.join("\n")
    );
}
