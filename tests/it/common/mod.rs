//! Test harness: a real Cairn (real actix server on 127.0.0.1:0), an HTTP client, and
//! builders that read like the operations they perform.
//!
//! The engine comes from the test binary: `it` runs every server on sled in a temporary
//! directory, `it_pg` (the same groups, `tests/it_pg/main.rs`) on a fresh database of the
//! shared PostgreSQL cluster ([`pg::database`]). Sled-specific tests skip themselves there
//! with [`sled_only`].

#![allow(dead_code)]

pub mod front;
pub mod pg;
pub mod portal;
pub mod process;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn::service::{Cairn, Caller};
use cairn::settings::Settings;
use cairn::web::{self, AppState};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The admin operator every test server has.
pub const ADMIN: &str = "apollo";

/// True in the test binary that runs the suite on PostgreSQL.
pub fn on_pg() -> bool {
    env!("CARGO_CRATE_NAME") == "it_pg"
}

/// A fresh database for one test server, or `None` for sled (the `it` binary, or PostgreSQL
/// missing and not required: [`pg::database`] has said so loudly, and the test runs on sled).
pub fn engine_database() -> Option<String> {
    if on_pg() {
        pg::database()
    } else {
        None
    }
}

/// Skips a test that is about the embedded store's files on the PostgreSQL run: returns true
/// (after saying why) when the caller should return.
pub fn sled_only(why: &str) -> bool {
    if on_pg() {
        eprintln!("skipped on PostgreSQL: {why}");
    }
    on_pg()
}

/// A running server owned by one test.
pub struct TestServer {
    pub base: String,
    pub addr: SocketAddr,
    pub env_addrs: Vec<(String, SocketAddr)>,
    pub cairn: Arc<Cairn>,
    /// Open API token of a consumer that may create apps (and masters what it creates).
    pub token: String,
    pub http: reqwest::Client,
    /// The server's PostgreSQL database (`None`: sled, in a temporary directory).
    pub database_url: Option<String>,
    system: actix_web::rt::System,
    _dir: tempfile::TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.system.stop();
    }
}

/// A response: status and body text.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn content_type(&self) -> String {
        self.headers.get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }

    /// Asserts an Apollo-shaped error body with this status.
    pub fn assert_error(&self, status: u16, message_part: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        let v = self.json();
        assert_eq!(v["status"], status, "{v}");
        assert!(v["timestamp"].is_string(), "{v}");
        assert!(v["exception"].is_string(), "{v}");
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains(message_part), "message {msg:?} lacks {message_part:?}");
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> TestServer {
        Self::start_inner(tweak, true).await
    }

    /// A server whose PRO env has the four-eyes rule (and optionally emergency publish).
    pub async fn with_four_eyes_pro(emergency_publish: bool) -> TestServer {
        Self::start_with(|c| {
            for (name, e) in c.envs.iter_mut() {
                if name == "PRO" {
                    e.four_eyes = true;
                    e.emergency_publish = emergency_publish;
                }
            }
        })
        .await
    }

    /// A server with no users at all (first run).
    pub async fn start_empty() -> TestServer {
        Self::start_inner(|_| {}, false).await
    }

    async fn start_inner(tweak: impl FnOnce(&mut Settings), with_users: bool) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let database_url = engine_database();
        let mut settings = Settings {
            listen: "127.0.0.1:0".into(),
            data: dir.path().join("data"),
            database_url: database_url.clone().map(cairn::settings::DatabaseUrl),
            ..Settings::default()
        };
        tweak(&mut settings);
        let cairn = cairn::server::open(&settings).unwrap();
        let system_caller = Caller::system("test");
        if with_users {
            cairn.create_user(&system_caller, ADMIN, "apollo-password", true).unwrap();
        }
        let (_, token) = cairn.create_consumer(&system_caller, "tester", true).unwrap();
        let (main, envs) = cairn::server::bind_all(&settings).unwrap();
        let addr = main.local_addr().unwrap();
        let env_addrs = envs.iter().map(|(n, l)| (n.clone(), l.local_addr().unwrap())).collect();
        let state = AppState::new(cairn.clone(), settings);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let servers = web::start(state, main, envs).unwrap();
                tx.send(actix_web::rt::System::current()).unwrap();
                for s in servers {
                    actix_web::rt::spawn(s);
                }
            });
            // Until the test drops its server; then the state goes, and with it the
            // engine's connections (a PostgreSQL run would otherwise keep them all).
            let _ = system.run();
        });
        let system = rx.recv().unwrap();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
        TestServer {
            base: format!("http://{addr}"),
            addr,
            env_addrs,
            cairn,
            token,
            http,
            database_url,
            system,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Long polls the server holds right now.
    pub fn held_polls(&self) -> i64 {
        self.cairn.metrics().long_polls_held.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until the server holds exactly `n` long polls.
    pub async fn wait_held_polls(&self, n: i64) {
        eventually(Duration::from_secs(10), &format!("{n} held long polls"), || async { self.held_polls() == n }).await;
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        Resp { status, headers, text: r.text().await.unwrap() }
    }

    /// An Open API call with this server's token.
    pub async fn open(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.open_as(&self.token.clone(), method, path, body).await
    }

    pub async fn open_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut rb = self.http.request(method, self.url(&format!("/openapi/v1{path}"))).header("Authorization", token);
        if let Some(b) = body {
            rb = rb.header("Content-Type", "application/json;charset=UTF-8").body(b.to_string());
        }
        self.send(rb).await
    }

    /// Creates an app through the Open API (the consumer becomes its master).
    pub async fn seed_app(&self, app: &str) {
        let r = self
            .open(
                Method::POST,
                "/apps",
                Some(json!({"assignAppRoleToSelf": true, "admins": [ADMIN], "app": {"appId": app, "name": app, "orgId": "TEST", "orgName": "Test", "ownerName": ADMIN, "ownerEmail": "a@example.com"}})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    pub fn ns_path(env: &str, app: &str, cluster: &str, ns: &str) -> String {
        format!("/envs/{env}/apps/{app}/clusters/{cluster}/namespaces/{ns}")
    }

    /// Upserts items (in order) in a namespace draft.
    pub async fn set_items(&self, env: &str, app: &str, cluster: &str, ns: &str, items: &[(&str, &str)]) {
        for (k, v) in items {
            let path = format!("{}/items/{k}?createIfNotExists=true", Self::ns_path(env, app, cluster, ns));
            let r = self
                .open(
                    Method::PUT,
                    &path,
                    Some(
                        json!({"key": k, "value": v, "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN}),
                    ),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }

    /// Publishes a namespace; returns the release JSON plus its `releaseKey`, which the Open
    /// API does not send (Apollo's `OpenReleaseDTO` has none), read from the service.
    pub async fn release(&self, env: &str, app: &str, cluster: &str, ns: &str) -> Value {
        let path = format!("{}/releases", Self::ns_path(env, app, cluster, ns));
        let r = self.open(Method::POST, &path, Some(json!({"releaseTitle": "t", "releasedBy": ADMIN}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let mut v = r.json();
        let id = v["id"].as_u64().unwrap();
        let stored = self.cairn.release(&Caller::system("test"), env, id).unwrap();
        v["releaseKey"] = json!(stored.release_key);
        v
    }

    /// Sets items and publishes in the default cluster.
    pub async fn publish(&self, env: &str, app: &str, ns: &str, items: &[(&str, &str)]) -> Value {
        self.set_items(env, app, "default", ns, items).await;
        self.release(env, app, "default", ns).await
    }

    /// Creates an app namespace.
    pub async fn seed_namespace(&self, app: &str, name: &str, format: &str, public: bool) -> Value {
        let r = self
            .open(
                Method::POST,
                &format!("/apps/{app}/appnamespaces"),
                Some(json!({"name": name, "appId": app, "format": format, "isPublic": public, "appendNamespacePrefix": false, "dataChangeCreatedBy": ADMIN})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }

    /// A client fetch of `/configs` in an env.
    pub async fn configs(&self, env: &str, app: &str, cluster: &str, ns: &str, query: &str) -> Resp {
        self.get(&format!("/envs/{env}/configs/{app}/{cluster}/{ns}{query}")).await
    }
}

/// Polls `cond` until it holds or `deadline` passes.
pub async fn eventually<F, Fut>(deadline: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < deadline {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} did not happen within {deadline:?}");
}

/// URL-encodes a query value.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The `name=value` pairs a response sets as cookies.
pub fn cookies_of(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string()).collect()
}

/// The value of the hidden form field `name` in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let i = html.find(&needle)?;
    Some(html[i + needle.len()..].split('"').next()?.to_string())
}

/// Posts the portal's sign-in form of the server at `base` (its own token and cookie
/// included) with extra request headers; returns the answer. `http` must not follow redirects.
pub async fn portal_login_at(
    base: &str,
    http: &reqwest::Client,
    user: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> Resp {
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    let form_cookies = cookies_of(page.headers()).join("; ");
    let html = page.text().await.unwrap();
    let token = hidden_field(&html, "csrf").expect("the sign-in page has a form token");
    let form = [("username", user), ("password", password), ("csrf", token.as_str())];
    let mut rb = http.post(format!("{base}/login")).header("Cookie", form_cookies).form(&form);
    for (name, value) in headers {
        rb = rb.header(*name, *value);
    }
    let r = rb.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    Resp { status, headers, text: r.text().await.unwrap() }
}

/// [`portal_login_at`] on a test server.
pub async fn portal_login(
    s: &TestServer,
    http: &reqwest::Client,
    user: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> Resp {
    portal_login_at(&s.base, http, user, password, headers).await
}

/// Signs in through the portal's form at `base` and returns the session cookie pair.
pub async fn portal_sign_in_at(base: &str, http: &reqwest::Client, user: &str, password: &str) -> String {
    let r = portal_login_at(base, http, user, password, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{user} could not sign in: {}", r.text);
    cookies_of(&r.headers).into_iter().find(|c| c.contains("session=")).expect("a session cookie")
}

/// [`portal_sign_in_at`] on a test server.
pub async fn portal_sign_in(s: &TestServer, http: &reqwest::Client, user: &str, password: &str) -> String {
    portal_sign_in_at(&s.base, http, user, password).await
}
