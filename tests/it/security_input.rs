//! Hostile input and connections: documents built to crash or flood the validators, bodies that
//! never arrive, one address opening too many connections, and reconnect storms.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::portal::Browser;
use crate::common::{eventually, portal_login, Resp, TestServer, ADMIN};

/// A block sequence nested 5,000 deep (10 KB): overflowed the validator's stack and aborted.
fn deep_yaml() -> String {
    format!("{}x", "- ".repeat(5000))
}

/// 0.6 KB of nine levels of nine aliases: grew the process to 12 GB.
fn yaml_alias_bomb() -> String {
    let lol = ["\"lol\""; 9].join(",");
    let mut doc = format!("a: &a [{lol}]\n");
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"]) {
        doc.push_str(&format!("{name}: &{name} [{}]\n", vec![format!("*{prev}"); 9].join(",")));
    }
    doc
}

async fn put_content(s: &TestServer, ns: &str, value: &str) -> Resp {
    let path = format!("/envs/DEV/apps/demo/clusters/default/namespaces/{ns}/items/content?createIfNotExists=true");
    let body =
        json!({"key": "content", "value": value, "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN});
    s.open(Method::PUT, &path, Some(body)).await
}

async fn draft_items(s: &TestServer, ns: &str) -> serde_json::Value {
    s.open(Method::GET, &format!("/envs/DEV/apps/demo/clusters/default/namespaces/{ns}"), None).await.json()["items"]
        .clone()
}

#[tokio::test]
async fn hostile_yaml_through_the_open_api_is_refused_and_the_server_keeps_serving() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.seed_namespace("demo", "x", "yaml", false).await;
    let deep = put_content(&s, "x.yaml", &deep_yaml()).await;
    deep.assert_error(400, "nesting deeper than 64 levels");
    assert!(deep.json()["message"].as_str().unwrap().contains("line 1"), "{}", deep.text);
    let started = Instant::now();
    let bomb = put_content(&s, "x.yaml", &yaml_alias_bomb()).await;
    bomb.assert_error(400, "aliases expand to more than 100000 nodes");
    assert!(started.elapsed() < Duration::from_secs(5), "the bomb took {:?}", started.elapsed());
    assert_eq!(draft_items(&s, "x.yaml").await, json!([]), "a refused write changes nothing");
    let ok = put_content(&s, "x.yaml", "base: &base {timeout: 5}\nfoo:\n  <<: *base\n  url: a\n").await;
    assert_eq!(ok.status, 200, "anchors and merge keys still work: {}", ok.text);
    assert_eq!(s.get("/health").await.status, 200);
}

#[tokio::test]
async fn hostile_yaml_through_the_portal_text_save_is_an_inline_error() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.seed_namespace("demo", "x", "yaml", false).await;
    let b = Browser::admin(&s).await;
    let (http, cookie) = (b.http.clone(), b.cookie.clone().unwrap());
    let page = "/apps/demo/envs/DEV/clusters/default/namespaces/x.yaml";
    let csrf = b.csrf(page).await;
    for (text, says) in [
        (format!("{}x", "- ".repeat(6000)), "nesting deeper than 64 levels"),
        (yaml_alias_bomb(), "aliases expand to more than 100000 nodes"),
    ] {
        let r = s
            .send(
                http.post(s.url(&format!("{page}/text")))
                    .header("Cookie", &cookie)
                    .form(&[("csrf", csrf.as_str()), ("text", text.as_str())]),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert!(r.text.contains(says), "the page says why: {}", r.text);
    }
    assert_eq!(draft_items(&s, "x.yaml").await, json!([]));
    assert_eq!(s.get("/health").await.status, 200);
}

/// Reads one response from a raw connection: head and a `Content-Length` body.
async fn read_response(sock: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0usize);
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a whole response: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Connects from a chosen loopback address (all of 127.0.0.0/8 reaches a 127.0.0.1 listener).
async fn connect_from(ip: &str, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: cairn\r\n\r\n";

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408_and_the_connection_closed() {
    let s = TestServer::start_with(|c| c.body_timeout_secs = 1).await;
    let mut stalled = Vec::new();
    for path in ["/login", "/openapi/v1/apps"] {
        let mut sock = TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: cairn\r\nAuthorization: {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\nusername=a",
            s.token
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        stalled.push(sock);
    }
    let started = Instant::now();
    for mut sock in stalled {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), sock.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "the connection was still held after 20 s");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("did not arrive within 1 s") && text.contains("RequestTimeoutException"), "{text}");
    }
    assert!(started.elapsed() < Duration::from_secs(10), "answered after {:?}", started.elapsed());
    let form = portal_login(&s, &s.http, ADMIN, "wrong", &[]).await;
    assert_eq!(form.status, StatusCode::UNAUTHORIZED, "whole bodies are read as before: {}", form.text);
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_refused_while_others_are_served() {
    let s = TestServer::start_with(|c| c.max_connections_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect_from("127.0.0.2", s.addr).await;
        c.write_all(HEALTH).await.unwrap();
        assert!(read_response(&mut c).await.starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    let mut over = connect_from("127.0.0.2", s.addr).await;
    over.write_all(HEALTH).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), over.read_to_end(&mut answer)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    assert!(
        text.contains("127.0.0.2 already holds 3 connections") && text.contains("max_connections_per_ip"),
        "{text}"
    );
    assert_eq!(s.get("/health").await.status, 200, "another address is still served");
    for c in held.iter_mut() {
        c.write_all(HEALTH).await.unwrap();
        assert!(read_response(c).await.starts_with("HTTP/1.1 200"), "admitted connections keep working");
    }
    drop(held);
    let addr = s.addr;
    eventually(Duration::from_secs(10), "a closed connection frees its slot", || async move {
        let mut c = connect_from("127.0.0.2", addr).await;
        c.write_all(HEALTH).await.unwrap();
        read_response(&mut c).await.starts_with("HTTP/1.1 200")
    })
    .await;
}

#[tokio::test]
async fn listeners_queue_a_reconnect_storm_before_accepting_it() {
    let mut settings = cairn::settings::Settings { listen: "127.0.0.1:0".into(), ..Default::default() };
    settings.envs[0].1.listen = Some("127.0.0.1:0".into());
    let (main, envs) = cairn::server::bind_all(&settings).unwrap();
    let addrs = [main.local_addr().unwrap(), envs[0].1.local_addr().unwrap()];
    for addr in addrs {
        // Nothing accepts: every handshake must complete into the kernel's accept queue. With
        // the standard library's backlog of 128, the rest waited out SYN retries (1 s, 3 s, ...).
        let connects = (0..600).map(|_| tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr)));
        let results = futures_util::future::join_all(connects).await;
        let queued = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(queued, 600, "{addr}: only {queued} of 600 connections were queued");
    }
}

/// Free text a client chooses and Cairn stores (cluster comments, an app's org and owner
/// e-mail, gray rule entries) has a length bound; before, each took up to the body limit.
#[tokio::test]
async fn stored_free_text_of_clusters_apps_and_gray_rules_is_bounded() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let long = "x".repeat(5_000);
    let cluster = s
        .open(
            Method::POST,
            "/envs/DEV/apps/demo/clusters",
            Some(json!({"name": "c1", "dataChangeCreatedBy": ADMIN, "comment": long})),
        )
        .await;
    cluster.assert_error(400, "comment");
    let short = s
        .open(
            Method::POST,
            "/envs/DEV/apps/demo/clusters",
            Some(json!({"name": "c1", "dataChangeCreatedBy": ADMIN, "comment": "x".repeat(256)})),
        )
        .await;
    assert_eq!(short.status, 200, "{}", short.text);
    for field in ["orgId", "orgName", "ownerEmail"] {
        let mut app = json!({"appId": "big", "name": "big", "orgId": "o", "orgName": "o", "ownerName": ADMIN,
                             "ownerEmail": "a@example.com"});
        app[field] = json!(long);
        let r = s
            .open(Method::POST, "/apps", Some(json!({"assignAppRoleToSelf": true, "admins": [ADMIN], "app": app})))
            .await;
        r.assert_error(400, field);
    }
    assert_eq!(s.open(Method::GET, "/apps/big", None).await.status, 404, "a refused app is not created");
    s.publish("DEV", "demo", "application", &[("k", "v")]).await;
    let ns = "/envs/DEV/apps/demo/clusters/default/namespaces/application";
    let b = s.open(Method::POST, &format!("{ns}/branches?operator={ADMIN}"), None).await;
    assert_eq!(b.status, 200, "{}", b.text);
    let branch = b.json()["clusterName"].as_str().unwrap().to_string();
    let rules_url = format!("{ns}/branches/{branch}/rules?operator={ADMIN}");
    let long_ip = json!({"ruleItems": [{"clientAppId": "demo", "clientIpList": [long], "clientLabelList": []}]});
    s.open(Method::PUT, &rules_url, Some(long_ip)).await.assert_error(400, "ip or label");
    let long_label = json!({"ruleItems": [{"clientAppId": "demo", "clientIpList": [], "clientLabelList": [long]}]});
    s.open(Method::PUT, &rules_url, Some(long_label)).await.assert_error(400, "ip or label");
    let many: Vec<_> =
        (0..201).map(|_| json!({"clientAppId": "demo", "clientIpList": ["10.0.0.1"], "clientLabelList": []})).collect();
    s.open(Method::PUT, &rules_url, Some(json!({ "ruleItems": many }))).await.assert_error(400, "rules per branch");
    let fine =
        json!({"ruleItems": [{"clientAppId": "demo", "clientIpList": ["10.0.0.1"], "clientLabelList": ["canary"]}]});
    let ok = s.open(Method::PUT, &rules_url, Some(fine)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

/// One element with 100,000 attributes (1 MB, where the value limit allows it): the parser
/// compares each attribute with all before it, which took 20 s of a worker per request.
#[tokio::test]
async fn an_xml_element_with_a_flood_of_attributes_is_refused_at_once() {
    let s = TestServer::start_with(|c| {
        c.value_max = 1_900_000;
        c.body_max = 4 * 1024 * 1024;
    })
    .await;
    s.seed_app("demo").await;
    s.seed_namespace("demo", "x", "xml", false).await;
    let attrs = |n: usize| (0..n).map(|i| format!("a{i}=\"v\"")).collect::<Vec<_>>().join(" ");
    let started = Instant::now();
    let flood = put_content(&s, "x.xml", &format!("<r {}/>", attrs(100_000))).await;
    flood.assert_error(400, "more than 256 attributes on one element");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let xmlns = (0..50_000).map(|i| format!("xmlns:n{i}=\"u{i}\"")).collect::<Vec<_>>().join(" ");
    put_content(&s, "x.xml", &format!("<r {xmlns}/>")).await.assert_error(400, "attributes on one element");
    let ok = put_content(&s, "x.xml", &format!("<r {}><c b='x=y'/></r>", attrs(256))).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

/// The portal's forms were held to actix's default of 16 KiB: the text of a namespace within
/// `value_max` (20,000 characters) could not be saved, and the refusal was a bare text line.
#[tokio::test]
async fn portal_forms_take_any_body_within_body_max_and_refuse_larger_with_a_page() {
    let s = TestServer::start_with(|c| c.body_max = 100_000).await;
    s.seed_app("demo").await;
    s.seed_namespace("demo", "x", "yaml", false).await;
    let b = Browser::admin(&s).await;
    let (http, cookie) = (b.http.clone(), b.cookie.clone().unwrap());
    let page = "/apps/demo/envs/DEV/clusters/default/namespaces/x.yaml";
    let csrf = b.csrf(page).await;
    let save = |text: String| {
        s.send(
            http.post(s.url(&format!("{page}/text")))
                .header("Cookie", &cookie)
                .form(&[("csrf", csrf.as_str()), ("text", text.as_str())]),
        )
    };
    let text = format!("list: [{}]", vec!["a b"; 3_900].join(", "));
    assert!(text.len() > 19_000 && text.len() < 20_000);
    let saved = save(text.clone()).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    assert_eq!(draft_items(&s, "x.yaml").await[0]["value"], json!(text));
    let big = save("x".repeat(150_000)).await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", big.text);
    assert!(big.content_type().starts_with("text/html"), "{}", big.content_type());
    assert!(big.text.contains("larger than 100000 bytes"), "{}", big.text);
    // Forms anyone may post stay small: anonymous connections must not each buffer body_max.
    let filler = "x".repeat(20_000);
    for path in ["/login", "/setup"] {
        let r = s.send(http.post(s.url(path)).form(&[("username", filler.as_str()), ("password", "p")])).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {}", r.text);
        let mut sock = TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        let form = format!("username={}&password=p", "x".repeat(24_000));
        for chunk in form.as_bytes().chunks(8 * 1024) {
            let _ = sock.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await;
            let _ = sock.write_all(chunk).await;
            let _ = sock.write_all(b"\r\n").await;
        }
        let _ = sock.write_all(b"0\r\n\r\n").await;
        let answer = read_response(&mut sock).await;
        // Refused as unreadable before any handler looks at it (a read form would get 403:
        // it carries no form token).
        assert!(answer.starts_with("HTTP/1.1 400"), "{path} chunked: {answer}");
        assert!(answer.contains("could not be read"), "{path} chunked: {answer}");
    }
}
