//! What the portal origin serves: security headers on every response, raw config files a
//! browser never renders, forwarding headers believed only from trusted proxies, owner-only
//! files, read-only data directories, and client reads that keep their latency while the
//! portal works hard.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn::domain::net::IpNet;
use cairn::service::releases::ReleaseInput;
use cairn::service::{Caller, NsRef};
use reqwest::header::HeaderMap;
use reqwest::{redirect::Policy, Method, StatusCode};
use serde_json::json;

use crate::common::process::{cli, seed_data_dir, text, Proc, BIN};
use crate::common::{portal_login, portal_sign_in, Resp, TestServer, ADMIN};

/// A client that follows no redirects.
fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Signs in as the seeded admin; returns the `Cookie` header value.
async fn admin_cookie(s: &TestServer) -> String {
    portal_sign_in(s, &client(), ADMIN, "apollo-password").await
}

async fn get_as(s: &TestServer, cookie: &str, path: &str) -> Resp {
    s.send(client().get(s.url(path)).header("Cookie", cookie)).await
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

const XHTML: &str = "<html xmlns=\"http://www.w3.org/1999/xhtml\"><body><script>\
    fetch('/users',{method:'POST'});document.title='XSSDONE'</script></body></html>";

#[tokio::test]
async fn raw_config_files_are_never_rendered_as_pages_on_the_portal_origin() {
    let s = TestServer::start().await;
    s.seed_app("xmlapp").await;
    s.seed_namespace("xmlapp", "evil", "xml", false).await;
    s.publish("DEV", "xmlapp", "evil.xml", &[("content", XHTML)]).await;
    let raw = s.get("/envs/DEV/configfiles/raw/xmlapp/default/evil.xml").await;
    assert_eq!(raw.status, 200);
    // Clients still get the file as released, with its format's content type.
    assert_eq!(raw.text, XHTML);
    assert_eq!(raw.content_type(), "application/xml;charset=UTF-8");
    // A browser downloads it; were it shown, it would be a sandbox without scripts on an
    // opaque origin, and never sniffed into something else.
    let h = &raw.headers;
    assert_eq!(header(h, "content-disposition"), "attachment; filename=\"evil.xml\"");
    let csp = header(h, "content-security-policy");
    assert!(csp.split(';').any(|d| d.trim() == "sandbox"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(header(h, "x-content-type-options"), "nosniff");
}

/// Asserts the header set every response carries; `page` marks a portal HTML page.
fn assert_security_headers(what: &str, r: &Resp, page: bool) {
    let h = &r.headers;
    assert_eq!(header(h, "x-content-type-options"), "nosniff", "{what}: {h:?}");
    assert_eq!(header(h, "referrer-policy"), "same-origin", "{what}: {h:?}");
    assert_eq!(header(h, "x-frame-options"), "DENY", "{what}: {h:?}");
    let csp = header(h, "content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    if page {
        for directive in
            ["default-src 'self'", "script-src 'self'", "style-src 'self'", "base-uri 'none'", "form-action 'self'"]
        {
            assert!(csp.contains(directive), "{what}: {directive} missing from {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        assert!(r.content_type().starts_with("text/html"), "{what}");
    } else {
        assert!(csp.starts_with("sandbox"), "{what}: {csp}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("k", "v")]).await;
    let cookie = admin_cookie(&s).await;
    let no_store = |what: &str, r: &Resp| assert_eq!(header(&r.headers, "cache-control"), "no-store", "{what}");

    let pages = [
        ("portal page", get_as(&s, &cookie, "/apps").await, 200),
        (
            "namespace page",
            get_as(&s, &cookie, "/apps/demo/envs/DEV/clusters/default/namespaces/application").await,
            200,
        ),
        ("sign-in page", s.get("/login").await, 200),
        ("portal 404 page", get_as(&s, &cookie, "/apps/nope").await, 404),
        (
            "portal error page",
            s.send(client().post(s.url("/apps")).header("Cookie", &cookie).form(&[
                ("csrf", "forged"),
                ("app_id", "x"),
                ("name", "x"),
            ]))
            .await,
            403,
        ),
    ];
    for (what, r, status) in &pages {
        assert_eq!(r.status.as_u16(), *status, "{what}: {}", r.text);
        assert_security_headers(what, r, true);
        no_store(what, r);
    }

    // A page that shows a new secret once.
    let html = get_as(&s, &cookie, "/consumers").await.text;
    let i = html.find("name=\"csrf\" value=\"").unwrap();
    let csrf = html[i + 19..].split('"').next().unwrap().to_string();
    let token_page = s
        .send(
            client()
                .post(s.url("/consumers"))
                .header("Cookie", &cookie)
                .form(&[("csrf", csrf.as_str()), ("name", "ci")]),
        )
        .await;
    assert_eq!(token_page.status, 200, "{}", token_page.text);
    assert_security_headers("new consumer token page", &token_page, true);
    no_store("new consumer token page", &token_page);

    let key = s.open(Method::POST, "/apps/demo/envs/DEV/accesskeys?operator=apollo", None).await;
    let data = [
        ("unknown route", s.get("/nope").await, 404),
        ("Open API without a token", s.send(client().get(s.url("/openapi/v1/apps"))).await, 401),
        ("Open API bad JSON", s.open(Method::POST, "/apps", Some(json!("not an app"))).await, 400),
        ("Open API answer", s.open(Method::GET, "/apps", None).await, 200),
        ("new access-key secret", key, 200),
        ("local admin API", s.get("/admin/v1/users").await, 404),
        ("client fetch", s.configs("DEV", "demo", "default", "application", "").await, 200),
        ("client 404", s.configs("DEV", "demo", "default", "missing", "").await, 404),
        ("raw file", s.get("/envs/DEV/configfiles/raw/demo/default/application").await, 200),
        ("health", s.get("/health").await, 200),
    ];
    for (what, r, status) in &data {
        assert_eq!(r.status.as_u16(), *status, "{what}: {}", r.text);
        assert_security_headers(what, r, false);
        no_store(what, r);
    }

    // Assets keep their cache lifetime but are never sniffed or framed.
    let css = s.get("/static/css/cairn.css").await;
    assert_eq!(css.status, 200);
    assert_security_headers("stylesheet", &css, false);
    assert!(header(&css.headers, "cache-control").contains("max-age"), "{:?}", css.headers);
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let s = TestServer::start().await;
    let meta = s
        .send(
            s.http
                .get(s.url("/envs/DEV/services/config"))
                .header("X-Forwarded-Host", "evil.example")
                .header("X-Forwarded-Proto", "https")
                .header("X-Forwarded-Prefix", "/evil"),
        )
        .await
        .json();
    assert_eq!(meta[0]["homepageUrl"], format!("{}/envs/DEV/", s.base));

    let login = portal_login(&s, &client(), ADMIN, "apollo-password", &[("X-Forwarded-Proto", "https")]).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    let cookie = header(&login.headers, "set-cookie");
    assert!(cookie.starts_with("cairn_session=") && !cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_are_honoured() {
    let s = TestServer::start_with(|c| c.trusted_proxies = vec![IpNet::parse("127.0.0.0/8").unwrap()]).await;
    let meta = s
        .send(
            s.http
                .get(s.url("/envs/DEV/services/config"))
                .header("X-Forwarded-Host", "cfg.example")
                .header("X-Forwarded-Proto", "https"),
        )
        .await
        .json();
    assert_eq!(meta[0]["homepageUrl"], "https://cfg.example/envs/DEV/");
    let login = portal_login(&s, &client(), ADMIN, "apollo-password", &[("X-Forwarded-Proto", "https")]).await;
    let cookie = header(&login.headers, "set-cookie");
    assert!(cookie.starts_with("__Host-cairn_session=") && cookie.contains("Secure"), "{cookie}");
}

/// Milliseconds at the given percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_reads_keep_their_latency_while_operators_open_a_huge_namespace() {
    let s = TestServer::start().await;
    s.seed_app("big").await;
    s.publish("DEV", "big", "application", &[("warm", "up")]).await;
    // 5,000 items and a few releases of them, built through the service API.
    let caller = Caller::system("test");
    let at = NsRef { env: "DEV", app: "big", cluster: "default", ns: "application" };
    for round in 0..3 {
        let text: String =
            (0..5000).map(|i| format!("key.{i:05}=value {i} of round {round} {}\n", "x".repeat(40))).collect();
        s.cairn.save_draft_text(&caller, at, &text).unwrap();
        let input = ReleaseInput { title: format!("round {round}"), comment: String::new(), emergency: false };
        s.cairn.publish(&caller, at, input).unwrap();
    }
    s.cairn.save_draft_text(&caller, at, "key.00001=changed\n").unwrap();
    let cookie = admin_cookie(&s).await;
    let page = "/apps/big/envs/DEV/clusters/default/namespaces/application";
    let first = get_as(&s, &cookie, page).await;
    assert_eq!(first.status, 200);
    assert!(first.text.contains("key.04999"), "the page lists every item");

    // Three operators keep reloading the page while a client fetches /configs back to back.
    let loads = (0..3).map(|_| {
        let (url, cookie) = (s.url(page), cookie.clone());
        tokio::spawn(async move {
            let http = client();
            for _ in 0..4 {
                let r = http.get(&url).header("Cookie", &cookie).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            }
        })
    });
    let loads: Vec<_> = loads.collect();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let configs = s.url("/envs/DEV/configs/big/default/application?ip=10.0.0.1");
    let mut samples = Vec::new();
    let started = Instant::now();
    while !loads.iter().all(|l| l.is_finished()) {
        let t = Instant::now();
        let r = http.get(&configs).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        samples.push(t.elapsed());
    }
    for l in loads {
        l.await.unwrap();
    }
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    eprintln!(
        "{} /configs fetches in {:?} while 12 namespace pages rendered: p50 {p50:.1} ms, p99 {p99:.1} ms, max {:.1} ms",
        samples.len(),
        started.elapsed(),
        percentile(&samples, 1.0)
    );
    assert!(samples.len() >= 20, "too few samples: {}", samples.len());
    assert!(p99 < 100.0, "/configs p99 {p99:.1} ms while the portal rendered (p50 {p50:.1} ms)");
}

/// Every directory and file below `dir` with a mode that lets others in.
fn open_to_others(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        let want = if meta.is_dir() { 0o700 } else { 0o600 };
        if mode & 0o077 != 0 || mode & want != mode {
            found.push(format!("{} {:o}", p.display(), mode));
        }
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    found
}

#[tokio::test]
async fn data_dir_db_and_backups_are_owner_only() {
    if crate::common::sled_only("the file modes of the embedded store's data directory") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    seed_data_dir(&data);
    assert_eq!(open_to_others(&data), Vec::<String>::new(), "after `cairn user add`");
    // An installation from before: everything world-readable. Serving tightens it.
    for p in [data.clone(), data.join("db")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(data.join("db").join("conf"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = Proc::start(&data, &[]);
    assert_eq!(open_to_others(&data), Vec::<String>::new(), "after `cairn serve` started");
    assert!(server.log.lock().unwrap().contains("made it owner-only"), "tightening is logged");

    // A backup through the running server, then one from the stopped data directory.
    let online = tmp.path().join("online.backup");
    let out = cli(&data, &["backup", online.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", text(&out));
    let (status, _) = server.terminate();
    assert!(status.success());
    let offline = tmp.path().join("offline.backup");
    let out = cli(&data, &["backup", offline.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", text(&out));
    for f in [&online, &offline] {
        assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600, "{}", f.display());
    }
    let restored = tmp.path().join("restored");
    let out = cli(&restored, &["restore", offline.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(open_to_others(&restored), Vec::<String>::new(), "after `cairn restore`");
}

/// Runs the binary so that it cannot write `data`: as root (which permission bits do not
/// stop) it runs as `nobody` over a directory `nobody` owns without write bits.
fn run_read_only(data: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = if running_as_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        std::process::Command::new(BIN)
    };
    cmd.arg("--data").arg(data).args(args).env_remove("CAIRN_LISTEN").env("TMPDIR", "/tmp").output().unwrap()
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[tokio::test]
async fn a_read_only_data_dir_is_named_and_can_still_be_checked() {
    if crate::common::sled_only("a read-only data directory of the embedded store") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    seed_data_dir(&data);
    let mut stack = vec![data.clone()];
    while let Some(p) = stack.pop() {
        if running_as_root() {
            let ok = std::process::Command::new("chown").args(["65534:65534"]).arg(&p).status().unwrap();
            assert!(ok.success());
        }
        let dir = p.is_dir();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(if dir { 0o500 } else { 0o400 })).unwrap();
        if dir {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    if running_as_root() {
        // `nobody` must reach the data directory and the binary.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("running as root: the read-only runs use setpriv as uid 65534");
    }

    let serve = run_read_only(&data, &["serve", "--listen", "127.0.0.1:0"]);
    let said = text(&serve);
    assert!(!serve.status.success(), "{said}");
    assert!(said.contains(&data.display().to_string()) && said.contains("read-only"), "{said}");
    assert!(said.contains("write access") || said.contains("read-write"), "the message says what to do: {said}");

    let check = run_read_only(&data, &["check"]);
    let said = text(&check);
    assert!(check.status.success(), "{said}");
    assert!(said.contains("read-only: checking a temporary copy"), "{said}");
    assert!(said.contains("OK: no problems found"), "{said}");
}
