//! The malformed-input corpus against the real binary: over 500 generated hostile requests
//! (bad, truncated and invalid-UTF-8 JSON, huge and deep documents in every format through the
//! Open API and the portal, traversal and odd names in every path shape, garbage queries, bad
//! ids, oversize headers, broken framing, slow bodies). None may get a 5xx, the process must
//! survive with bounded memory, and client reads must still be served afterwards.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::process::{open_api, seed_data_dir, Proc};
use crate::common::{portal_sign_in_at, ADMIN};

/// One raw request and whether the server may close the connection without an answer
/// (unparseable framing, or a body cut off once it is refused).
struct Case {
    label: String,
    bytes: Vec<u8>,
    may_close: bool,
    /// Sent in two parts with the connection then left silent (a slow body).
    stall: bool,
}

fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: cairn.test\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends a case; returns the status, or `None` when the connection closed without one.
async fn send(addr: String, case: &Case) -> Option<u16> {
    let mut sock = TcpStream::connect(&addr).await.ok()?;
    if case.stall {
        let cut = case.bytes.len() / 2;
        sock.write_all(&case.bytes[..cut]).await.ok()?;
    } else {
        // The server may answer and close before reading a refused body; read all the same.
        let _ = sock.write_all(&case.bytes).await;
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), sock.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "{}: no answer within 30 s", case.label);
    let head = String::from_utf8_lossy(answer.get(..12)?).to_string();
    head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Hostile namespace contents: deep in every syntax, alias and entity bombs, oversize, broken.
fn hostile_documents() -> Vec<(&'static str, String)> {
    let lol = ["\"lol\""; 9].join(",");
    let mut yaml_bomb = format!("a: &a [{lol}]\n");
    for (p, n) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"]) {
        yaml_bomb.push_str(&format!("{n}: &{n} [{}]\n", vec![format!("*{p}"); 9].join(",")));
    }
    let mut xml_bomb = String::from("<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY l0 \"lol\">");
    for i in 1..10 {
        xml_bomb.push_str(&format!("<!ENTITY l{i} \"{}\">", format!("&l{};", i - 1).repeat(10)));
    }
    xml_bomb.push_str("]><l>&l9;</l>");
    vec![
        ("yaml-deep-block", format!("{}x", "- ".repeat(5000))),
        ("yaml-deep-block-6000", format!("{}x", "- ".repeat(6000))),
        ("yaml-deep-flow", "[".repeat(10_000)),
        ("yaml-deep-map", (0..300).map(|i| format!("{}k:\n", " ".repeat(i))).collect()),
        ("yaml-alias-bomb", yaml_bomb),
        ("yaml-self-alias", "a: &a [1, *a]\n".into()),
        ("yaml-unknown-alias", "a: *nope\n".into()),
        ("yaml-tabs-and-tags", "a:\t!!binary x\n\t- !custom {".into()),
        ("json-deep-array", "[".repeat(15_000)),
        ("json-deep-object", "{\"a\":".repeat(3000)),
        ("json-truncated", "{\"a\": [1, 2, {\"b\": ".into()),
        ("json-huge-number", "1e999999".into()),
        ("xml-deep", "<a>".repeat(5000)),
        ("xml-billion-laughs", xml_bomb),
        ("xml-xxe", "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>".into()),
        ("nul-and-controls", "a\u{0}b\u{1}\u{7f}\u{202e}".into()),
        ("over-value-max", "v".repeat(25_000)),
        ("empty", String::new()),
    ]
}

/// Odd names for every path segment.
fn odd_names() -> Vec<String> {
    [
        "..",
        "../../etc/passwd",
        "%2e%2e",
        "%2e%2e%2f%2e%2e%2fetc",
        "a%00b",
        "a%0d%0aSet-Cookie:x",
        "%ff%fe",
        "%c0%ae%c0%ae",
        "raw",
        "json",
        "a%20b",
        "%E2%80%AE",
        "app%2Fb",
        "CON",
        ".hidden",
        "-",
        "%",
        "%zz",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["x".repeat(5000), "%41".repeat(300)])
    .collect()
}

fn build_corpus(token: &str, cookie: &str, csrf: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |label: String, bytes: Vec<u8>, may_close: bool| {
        cases.push(Case { label, bytes, may_close, stall: false });
    };
    let json_h: [(&str, &str); 2] = [("Authorization", token), ("Content-Type", "application/json;charset=UTF-8")];
    let ns = |name: &str| format!("/openapi/v1/envs/DEV/apps/demo/clusters/default/namespaces/{name}");

    // Hostile documents in every format, through the Open API and the portal text save.
    for format_ns in ["x.yaml", "x.yml", "x.json", "x.xml", "application"] {
        for (what, doc) in hostile_documents() {
            let key = if format_ns == "application" { "k" } else { "content" };
            let body =
                json!({"key": key, "value": doc, "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN});
            let target = format!("{}/items/{key}?createIfNotExists=true", ns(format_ns));
            add(
                format!("openapi put {format_ns} {what}"),
                request("PUT", &target, &json_h, body.to_string().as_bytes()),
                false,
            );
            let target = format!("/apps/demo/envs/DEV/clusters/default/namespaces/{format_ns}/text");
            let form = serde_urlencoded::to_string([("csrf", csrf), ("text", doc.as_str())]).unwrap();
            let h = [("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded")];
            add(format!("portal text {format_ns} {what}"), request("POST", &target, &h, form.as_bytes()), false);
        }
    }

    // Bad JSON bodies on every Open API write.
    let bad_bodies: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", b"{\"key\": \"a\", \"value\": ".to_vec()),
        ("invalid-utf8", b"{\"key\": \"\xff\xfe\", \"value\": \"\xc0\xae\"}".to_vec()),
        ("nul", b"{\"key\": \"a\0\", \"value\": \"b\"}".to_vec()),
        ("bom", b"\xef\xbb\xbf{\"key\": \"a\", \"value\": \"b\"}".to_vec()),
        ("wrong-types", b"{\"key\": 1, \"value\": [], \"dataChangeCreatedBy\": {}}".to_vec()),
        ("array", b"[1,2,3]".to_vec()),
        ("null", b"null".to_vec()),
        ("empty", Vec::new()),
        ("deep", "[".repeat(100_000).into_bytes()),
        ("deep-object", "{\"a\":".repeat(20_000).into_bytes()),
        ("huge-number", b"{\"key\": 1e999999}".to_vec()),
        ("duplicate-keys", b"{\"key\": \"a\", \"key\": \"b\", \"value\": \"c\"}".to_vec()),
        (
            "long-key",
            format!("{{\"key\": \"{}\", \"value\": \"v\", \"dataChangeCreatedBy\": \"{ADMIN}\"}}", "k".repeat(100_000))
                .into_bytes(),
        ),
        ("unknown-operator", b"{\"key\": \"a\", \"value\": \"b\", \"dataChangeCreatedBy\": \"../root\"}".to_vec()),
        ("binary", (0u8..=255).cycle().take(4096).collect()),
        ("three-megabytes", vec![b' '; 3 * 1024 * 1024]),
    ];
    let writes = [
        ("POST", format!("{}/items", ns("application"))),
        ("PUT", format!("{}/items/k?createIfNotExists=true", ns("application"))),
        ("POST", format!("{}/releases", ns("application"))),
        ("POST", "/openapi/v1/apps".to_string()),
        ("POST", "/openapi/v1/apps/demo/appnamespaces".to_string()),
        ("PUT", format!("{}/branches/b/rules", ns("application"))),
    ];
    for (method, target) in &writes {
        for (what, body) in &bad_bodies {
            let big = body.len() > 2 * 1024 * 1024;
            add(format!("{method} {target} {what}"), request(method, target, &json_h, body), big);
        }
    }

    // Odd names in every path shape, on the client API, the Open API and the portal.
    let shapes = [
        "/configs/{}/default/application",
        "/configs/demo/{}/application",
        "/configs/demo/default/{}",
        "/envs/{}/configs/demo/default/application",
        "/configfiles/json/demo/default/{}",
        "/configfiles/raw/demo/default/{}",
        "/configfiles/{}/default/application",
        "/openapi/v1/envs/DEV/apps/{}/clusters/default/namespaces/application",
        "/openapi/v1/envs/{}/apps/demo/clusters/default",
        "/openapi/v1/envs/DEV/apps/demo/clusters/default/namespaces/{}/items",
        "/apps/{}",
        "/apps/demo/envs/DEV/clusters/default/namespaces/{}",
    ];
    for name in odd_names() {
        for shape in shapes {
            let target = shape.replace("{}", &name);
            let h = [("Authorization", token), ("Cookie", cookie)];
            add(format!("GET {target}"), request("GET", &target, &h, b""), false);
        }
        let body = json!({"key": name, "value": "v", "dataChangeCreatedBy": ADMIN});
        add(
            format!("POST item named {name}"),
            request("POST", &format!("{}/items", ns("application")), &json_h, body.to_string().as_bytes()),
            false,
        );
    }

    // Garbage query strings and bad ids.
    let notifications = [
        "%5B",
        "[[[[[[[[[[",
        "[{\"namespaceName\":1}]",
        "[{\"namespaceName\":\"application\",\"notificationId\":-9223372036854775808}]",
        "[{\"namespaceName\":\"application\",\"notificationId\":1.5}]",
        "[{\"namespaceName\":\"application\",\"notificationId\":\"x\"}]",
        "\"string\"",
        "null",
        "%ff%fe",
    ];
    for n in notifications {
        let target = format!("/notifications/v2?appId=demo&cluster=default&notifications={n}");
        add(format!("GET {target}"), request("GET", &target, &[], b""), false);
    }
    let queries = [
        "?ip=%ff",
        "?releaseKey=%00%01",
        "?messages=%7Bgarbage",
        "?&&&&&&=&=&",
        "?a=%zz",
        "?ip=1&ip=2&ip=3",
        "?label=%0d%0a",
        "?dataCenter=..%2f..",
        "?=",
        "?%",
    ];
    for q in queries {
        for base in
            ["/configs/demo/default/application", "/configfiles/json/demo/default/application", "/services/config"]
        {
            let target = format!("{base}{q}");
            add(format!("GET {target}"), request("GET", &target, &[], b""), false);
        }
    }
    let repeated = format!("/configs/demo/default/application?{}", "a=1&".repeat(2000));
    add("GET 2000 query params".into(), request("GET", &repeated, &[], b""), true);
    for id in ["-1", "0", "99999999999999999999", "1.5", "abc", "%00", "1e3", "-9223372036854775809"] {
        for target in [
            format!("/openapi/v1/envs/DEV/releases/{id}"),
            format!("/openapi/v1/envs/DEV/releases/{id}/rollback?operator={ADMIN}"),
            format!("/openapi/v1/apps/demo/envs/DEV/accesskeys/{id}"),
            format!("{}/items?page={id}&size={id}", ns("application")),
            format!("/audit?hours={id}"),
            format!("/apps/demo/envs/DEV/clusters/default/namespaces/application/releases?page={id}"),
        ] {
            let method = if target.contains("rollback") { "PUT" } else { "GET" };
            let h = [("Authorization", token), ("Cookie", cookie)];
            add(format!("{method} {target}"), request(method, &target, &h, b""), false);
        }
    }

    // Framing and headers the HTTP layer must refuse.
    let raw: Vec<(&str, Vec<u8>)> = vec![
        ("70 KB header", request("GET", "/health", &[("X-Big", &"a".repeat(70_000))], b"")),
        ("200 headers", {
            let mut r = b"GET /health HTTP/1.1\r\nHost: x\r\n".to_vec();
            for i in 0..200 {
                r.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
            }
            r.extend_from_slice(b"Connection: close\r\n\r\n");
            r
        }),
        ("invalid utf-8 target", b"GET /configs/\xff\xfe/default/application HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec()),
        ("binary auth header", b"GET /openapi/v1/apps HTTP/1.1\r\nHost: x\r\nAuthorization: \xff\x00\xfe\r\nConnection: close\r\n\r\n".to_vec()),
        ("HTTP/9.9", b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n".to_vec()),
        ("HTTP/0.9", b"GET /health\r\n\r\n".to_vec()),
        ("random bytes", (0u8..=255).rev().cycle().take(2000).collect()),
        ("TLS ClientHello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec()),
        ("100 KB request line", format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000)).into_bytes()),
        ("negative length", b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nabc".to_vec()),
        ("two lengths", b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 9\r\n\r\nabc".to_vec()),
        ("TE and CL", b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc".to_vec()),
        ("bad chunk", b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".to_vec()),
        ("lying length", b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nusername=a&password=b".to_vec()),
        ("method override", request("POST", "/openapi/v1/apps", &[("X-HTTP-Method-Override", "DELETE"), ("Authorization", token)], b"{}")),
        ("unknown method", request("BREW", "/health", &[], b"")),
        ("absolute target", request("GET", "http://evil.example/health", &[], b"")),
        ("asterisk target", request("OPTIONS", "*", &[], b"")),
    ];
    for (what, bytes) in raw {
        add(format!("raw {what}"), bytes, true);
    }
    // Slow bodies: half sent, then silence, on anonymous and authenticated routes.
    for target in ["/login", "/openapi/v1/apps", "/apps", &format!("{}/items", ns("application"))] {
        let h = [("Authorization", token), ("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded")];
        let bytes = request("POST", target, &h, &[b'a'; 4000]);
        cases.push(Case { label: format!("slow body {target}"), bytes, may_close: false, stall: true });
    }
    cases
}

#[tokio::test]
async fn five_hundred_malformed_requests_get_no_5xx_and_leave_the_process_well() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = seed_data_dir(&data);
    let mut proc = Proc::start(&data, &["--body-timeout", "2", "--long-poll-timeout", "1"]);
    let base = proc.base.clone();
    let addr = base.trim_start_matches("http://").to_string();
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "demo", "name": "demo", "ownerName": ADMIN}});
    assert_eq!(open_api(&base, &token, reqwest::Method::POST, "/apps", app).await.0, 200);
    for (name, format) in [("x", "yaml"), ("x", "yml"), ("x", "json"), ("x", "xml")] {
        let body =
            json!({"name": name, "appId": "demo", "format": format, "isPublic": false, "dataChangeCreatedBy": ADMIN});
        assert_eq!(open_api(&base, &token, reqwest::Method::POST, "/apps/demo/appnamespaces", body).await.0, 200);
    }
    let ns = "/envs/DEV/apps/demo/clusters/default/namespaces/application";
    let item = json!({"key": "kept", "value": "1", "dataChangeCreatedBy": ADMIN});
    assert_eq!(open_api(&base, &token, reqwest::Method::POST, &format!("{ns}/items"), item).await.0, 200);
    let release = json!({"releaseTitle": "r1", "releasedBy": ADMIN});
    assert_eq!(open_api(&base, &token, reqwest::Method::POST, &format!("{ns}/releases"), release).await.0, 200);

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cookie = portal_sign_in_at(&base, &http, ADMIN, "a-good-password").await;
    let page =
        http.get(format!("{base}/apps/demo")).header("Cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let i = page.find("name=\"csrf\" value=\"").expect("page has a CSRF field");
    let csrf = page[i + 19..].split('"').next().unwrap().to_string();

    let pid = proc.child.id();
    let rss_before = rss_kib(pid);
    let corpus = build_corpus(&token, &cookie, &csrf);
    assert!(corpus.len() >= 500, "the corpus has only {} requests", corpus.len());
    let outcomes: Vec<(String, bool, Option<u16>)> = futures_util::stream::iter(corpus.iter())
        .map(|case| {
            let addr = addr.clone();
            async move { (case.label.clone(), case.may_close, send(addr, case).await) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let rss_after = rss_kib(pid);

    let server_errors: Vec<_> = outcomes.iter().filter(|(_, _, s)| s.is_some_and(|s| s >= 500)).collect();
    assert!(server_errors.is_empty(), "5xx answers: {server_errors:?}\nlog: {}", proc.log.lock().unwrap());
    let unanswered: Vec<_> = outcomes.iter().filter(|(_, may_close, s)| s.is_none() && !may_close).collect();
    assert!(unanswered.is_empty(), "closed without an answer: {unanswered:?}\nlog: {}", proc.log.lock().unwrap());
    assert!(proc.child.try_wait().unwrap().is_none(), "the server exited: {}", proc.log.lock().unwrap());
    let log = proc.log.lock().unwrap().clone();
    assert!(!log.contains("panicked"), "a request panicked a worker: {log}");
    let mut statuses = std::collections::BTreeMap::new();
    for (_, _, s) in &outcomes {
        *statuses.entry(*s).or_insert(0) += 1;
    }
    eprintln!("{} malformed requests: {statuses:?}; RSS {rss_before} -> {rss_after} KiB", outcomes.len());
    assert!(
        rss_after < rss_before + 128 * 1024,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB over {} requests",
        outcomes.len()
    );
    let configs = http.get(format!("{base}/envs/DEV/configs/demo/default/application")).send().await.unwrap();
    assert_eq!(configs.status(), 200);
    assert!(configs.text().await.unwrap().contains("\"kept\":\"1\""), "the released value is still served");
    let stalled = outcomes.iter().filter(|(l, _, s)| l.starts_with("slow body") && *s == Some(408)).count();
    assert_eq!(stalled, 4, "every slow body is answered 408: {outcomes:?}");
}
