//! Cairn's benchmark: `cargo bench --bench cairn_bench`.
//!
//! 1. `/configs` of a 20-key namespace with 64 keep-alive connections, 200s and 304s,
//!    side by side with a minimal actix-web handler returning the same bytes.
//! 2. 10,000 concurrent long polls: server resident memory, and how long after the
//!    publish's reply the last poll is answered.
//! 3. Publish latency through the Open API (item update + release), p50 and p95.
//! 4. Reconnect storm: 10,000 clients connecting at the same instant (as after a restart), each
//!    with a long poll; how long until all are held. Alone: `CAIRN_BENCH_ONLY=storm`.
//! 5. PostgreSQL beside sled (`CAIRN_BENCH_ONLY=pg`): its own PostgreSQL (`initdb` in a
//!    temporary directory, as the tests do, but syncing every commit), `cairn serve
//!    --database-url` and a sled `cairn serve` side by side; `/configs` 200 and 304 throughput of
//!    both (reads never touch the database: target ≥ 0.9× sled) and publish p50 / p95 of both
//!    (target on PostgreSQL: p50 < 20 ms, p95 < 50 ms). Skipped when PostgreSQL is missing.
//!
//! Everything runs on loopback against the real release binary; the report is printed and
//! written to `target/bench-report.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_cairn");
const CONNECTIONS: usize = 64;
/// The headers Apollo's Java client (`HttpURLConnection`) sends with a long poll.
const JAVA_CLIENT_HEADERS: &str = "User-Agent: Java/17.0.9\r\nHost: cairn.example:8080\r\n\
    Accept: text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2\r\nConnection: keep-alive\r\n";
const ROUND: Duration = Duration::from_secs(4);
const POLLS: usize = 10_000;
/// The bench app's namespace, on the Open API.
const NS: &str = "/envs/DEV/apps/bench/clusters/default/namespaces/application";
/// The bench app's namespace as a client fetches it.
const CONFIGS: &str = "/configs/bench/default/application?ip=10.0.0.1";

/// The PostgreSQL the tests start, shared with the benchmark.
#[allow(dead_code)]
#[path = "../tests/it/common/pg.rs"]
mod pg;

fn main() {
    if let Ok(body_file) = std::env::var("CAIRN_BENCH_BASELINE") {
        return baseline_server(&body_file);
    }
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(run());
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_addr(child: &mut Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Some(i) = line.find("listening on http://") {
                    let _ = tx.send(line[i + 20..].split_whitespace().next().unwrap().to_string());
                    sent = true;
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("server did not start")
}

/// Starts `cairn serve` on `data` with `extra` flags (such as `--database-url`).
fn start_cairn(data: &std::path::Path, extra: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["--data", data.to_str().unwrap(), "serve", "--listen", "127.0.0.1:0", "--default-env", "DEV"])
        .args(extra)
        .env("CAIRN_LOG", "warn,cairn=info")
        // Every bench client comes from 127.0.0.1: lift the per-address connection cap.
        .env("CAIRN_MAX_CONNECTIONS_PER_IP", "100000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = wait_addr(&mut child);
    Server { child, addr }
}

fn baseline_server(body_file: &str) {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let body = std::fs::read_to_string(body_file).unwrap();
    let sys = actix_web::rt::System::new();
    sys.block_on(async move {
        let body = web::Data::new(body);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(body.clone())
                .route(
                    "/configs/{app}/{cluster}/{ns}",
                    web::get().to(
                        |b: web::Data<String>, q: web::Query<std::collections::HashMap<String, String>>| async move {
                            if q.contains_key("releaseKey") {
                                HttpResponse::NotModified().finish()
                            } else {
                                HttpResponse::Ok()
                                    .content_type("application/json;charset=UTF-8")
                                    .body(b.get_ref().clone())
                            }
                        },
                    ),
                )
                // A request parked as long as a long poll would be, for the memory reference.
                .route(
                    "/hold",
                    web::get().to(|| async {
                        actix_web::rt::time::sleep(Duration::from_secs(90)).await;
                        HttpResponse::NotModified().finish()
                    }),
                )
        })
        .workers(2)
        .bind("127.0.0.1:0")
        .unwrap();
        eprintln!("baseline listening on http://{}", server.addrs()[0]);
        server.run().await.unwrap();
    });
}

fn cli(data: &std::path::Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// One HTTP/1.1 request on a kept-alive connection; returns the status code.
async fn request(stream: &mut TcpStream, req: &[u8], buf: &mut Vec<u8>) -> Option<u16> {
    stream.write_all(req).await.ok()?;
    buf.clear();
    let mut tmp = [0u8; 8192];
    loop {
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).ok()?;
            let status: u16 = head.get(9..12)?.parse().ok()?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut tmp).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            return Some(status);
        }
    }
}

/// Requests per second over `ROUND` with `CONNECTIONS` connections; every answer must be `expect`.
async fn load(addr: &str, path: &str, expect: u16) -> f64 {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes();
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (req, done, count, addr) = (req.clone(), done.clone(), count.clone(), addr.to_string());
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            let mut buf = Vec::with_capacity(16 * 1024);
            while !done.load(Ordering::Relaxed) {
                let status = request(&mut s, &req, &mut buf).await.expect("connection failed");
                assert_eq!(status, expect, "unexpected status for {addr}");
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // warm-up
    let start_count = count.load(Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(ROUND).await;
    let n = count.load(Ordering::Relaxed) - start_count;
    let secs = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / secs
}

/// Opens `n` connections that each send `req` and wait for one response.
async fn hold(
    addr: &str,
    req: &[u8],
    n: usize,
) -> (Vec<tokio::task::JoinHandle<()>>, Arc<std::sync::Mutex<Vec<(Instant, bool)>>>) {
    let answered = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n)));
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = loop {
            match TcpStream::connect(addr).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        };
        s.write_all(req).await.unwrap();
        streams.push(s);
    }
    let mut tasks = Vec::with_capacity(n);
    for mut s in streams {
        let answered = answered.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let ok = n >= 12 && &buf[9..12] == b"200";
            answered.lock().unwrap().push((Instant::now(), ok));
        }));
    }
    (tasks, answered)
}

async fn open_api(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let r = http
        .request(method, format!("{base}/openapi/v1{path}"))
        .header("Authorization", token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(serde_json::Value::Null)
}

/// A server on `data` (with `extra` flags, such as `--database-url`) holding the bench app: a
/// 20-key namespace, released; returns it with an Open API token.
async fn prepared_cairn(http: &reqwest::Client, data: &std::path::Path, extra: &[&str]) -> (Server, String) {
    use reqwest::Method;
    use serde_json::json;
    let with = |args: &[&'static str]| -> Vec<&str> { extra.iter().chain(args).copied().collect() };
    cli(data, &with(&["user", "add", "apollo", "--admin"]), "bench-password\n");
    let token = cli(data, &with(&["consumer", "create", "bench", "--allow-create-app"]), "")
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    let cairn = start_cairn(data, extra);
    let base = format!("http://{}", cairn.addr);
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "bench", "name": "bench", "ownerName": "apollo"}});
    open_api(http, &base, &token, Method::POST, "/apps", app).await;
    for i in 0..20 {
        let body = json!({"key": format!("bench.key.{i:02}"), "value": format!("value-{i}-{}", "v".repeat(20)), "dataChangeCreatedBy": "apollo"});
        open_api(http, &base, &token, Method::POST, &format!("{NS}/items"), body).await;
    }
    let release = json!({"releaseTitle": "bench", "releasedBy": "apollo"});
    open_api(http, &base, &token, Method::POST, &format!("{NS}/releases"), release).await;
    (cairn, token)
}

/// The release key a client holding the current release sends back (to get 304).
async fn release_key(http: &reqwest::Client, base: &str) -> String {
    let body: serde_json::Value = http.get(format!("{base}{CONFIGS}")).send().await.unwrap().json().await.unwrap();
    body["releaseKey"].as_str().unwrap().to_string()
}

/// p50 and p95 of a list of durations, in milliseconds.
fn percentiles(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(times[times.len() / 2]), ms(times[times.len() * 95 / 100]))
}

/// PostgreSQL beside sled in the same run: `/configs` throughput (both serve from memory) and
/// publish latency (one SQL transaction acknowledged after COMMIT, against sled's flush).
async fn postgres_beside_sled(http: &reqwest::Client, say: &mut impl FnMut(String)) {
    let Some(cluster) = pg::PgCluster::start_durable() else {
        say("postgres: skipped, PostgreSQL is not installed".into());
        return;
    };
    let url = cluster.create_database();
    let dir = tempfile::tempdir().unwrap();
    let (sled, sled_token) = prepared_cairn(http, &dir.path().join("sled"), &[]).await;
    let (pg, pg_token) = prepared_cairn(http, &dir.path().join("unused"), &["--database-url", &url]).await;
    let (sled_base, pg_base) = (format!("http://{}", sled.addr), format!("http://{}", pg.addr));
    let keys = (release_key(http, &sled_base).await, release_key(http, &pg_base).await);
    say(format!("# PostgreSQL beside sled ({CONNECTIONS} connections, {}s rounds, commits synced)", ROUND.as_secs()));
    for (label, status) in [("200", 200u16), ("304", 304u16)] {
        let path = |key: &str| if status == 304 { format!("{CONFIGS}&releaseKey={key}") } else { CONFIGS.to_string() };
        // Alternate (sled, pg, pg, sled, pg, sled, sled, pg) to spread machine noise over both.
        let (mut s, mut p) = (0.0, 0.0);
        for pg_first in [false, true] {
            for on_pg in [pg_first, !pg_first, !pg_first, pg_first] {
                if on_pg {
                    p += load(&pg.addr, &path(&keys.1), status).await / 4.0;
                } else {
                    s += load(&sled.addr, &path(&keys.0), status).await / 4.0;
                }
            }
        }
        say(format!(
            "postgres configs {label}: postgres {p:.0} req/s, sled {s:.0} req/s, ratio {:.2} (target >= 0.90)",
            p / s
        ));
    }
    let (mut on_sled, mut on_pg) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let t = Instant::now();
        update_and_release(http, &sled_base, &sled_token, NS, "bench.key.00", &format!("p{i}")).await;
        on_sled.push(t.elapsed());
        let t = Instant::now();
        update_and_release(http, &pg_base, &pg_token, NS, "bench.key.00", &format!("p{i}")).await;
        on_pg.push(t.elapsed());
    }
    let ((pg50, pg95), (sled50, sled95)) = (percentiles(on_pg), percentiles(on_sled));
    say(format!(
        "postgres publish (item update + release): p50 {pg50:.2} ms, p95 {pg95:.2} ms (target p50 < 20 ms, p95 < 50 ms); \
         sled: p50 {sled50:.2} ms, p95 {sled95:.2} ms"
    ));
}

/// Changes one item and releases the namespace through the Open API (a publish).
async fn update_and_release(http: &reqwest::Client, base: &str, token: &str, ns: &str, key: &str, value: &str) {
    use reqwest::Method;
    use serde_json::json;
    let item = json!({"key": key, "value": value, "dataChangeLastModifiedBy": "apollo"});
    open_api(http, base, token, Method::PUT, &format!("{ns}/items/{key}"), item).await;
    let release = json!({"releaseTitle": format!("set {key}"), "releasedBy": "apollo"});
    open_api(http, base, token, Method::POST, &format!("{ns}/releases"), release).await;
}

/// Render time of portal pages for an app with 20 namespaces × 200 items.
async fn portal_render(http: &reqwest::Client, base: &str, token: &str, say: &mut impl FnMut(String)) {
    use reqwest::Method;
    use serde_json::json;
    open_api(
        http,
        base,
        token,
        Method::POST,
        "/apps",
        json!({"assignAppRoleToSelf": true, "app": {"appId": "big", "name": "big", "ownerName": "apollo"}}),
    )
    .await;
    let mut names = vec!["application".to_string()];
    for n in 1..20 {
        let ns = open_api(
            http,
            base,
            token,
            Method::POST,
            "/apps/big/appnamespaces",
            json!({"name": format!("ns{n:02}"), "format": "properties", "dataChangeCreatedBy": "apollo"}),
        )
        .await;
        names.push(ns["name"].as_str().unwrap().to_string());
    }
    for ns in &names {
        let path = format!("/envs/DEV/apps/big/clusters/default/namespaces/{ns}");
        for i in 0..200 {
            let item = json!({"key": format!("key.{i:03}"), "value": format!("value {i} {}", "v".repeat(30)), "comment": "c", "dataChangeCreatedBy": "apollo"});
            open_api(http, base, token, Method::POST, &format!("{path}/items"), item).await;
        }
        open_api(
            http,
            base,
            token,
            Method::POST,
            &format!("{path}/releases"),
            json!({"releaseTitle": "r1", "releasedBy": "apollo"}),
        )
        .await;
        open_api(
            http,
            base,
            token,
            Method::PUT,
            &format!("{path}/items/key.000"),
            json!({"key": "key.000", "value": "changed", "dataChangeLastModifiedBy": "apollo"}),
        )
        .await;
    }
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // Sign in as a browser does: the form first, for its token (hidden field plus cookie).
    let form = browser.get(format!("{base}/login")).send().await.unwrap();
    let form_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("cairn_form="))
        .unwrap();
    let html = form.text().await.unwrap();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    let form_token = html[at..].split('"').next().unwrap().to_string();
    let login = browser
        .post(format!("{base}/login"))
        .header("Cookie", form_cookie)
        .form(&[("csrf", form_token.as_str()), ("username", "apollo"), ("password", "bench-password")])
        .send()
        .await
        .unwrap();
    let cookie = login.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    let ns_page = "/apps/big/envs/DEV/clusters/default/namespaces/ns10";
    let pages = [
        ("apps list", "/apps".to_string()),
        ("app (20 namespace cards)", "/apps/big?env=DEV".to_string()),
        ("namespace (200 items, diff, history)", ns_page.to_string()),
        ("text mode", format!("{ns_page}/text")),
        ("instances", format!("{ns_page}/instances")),
        ("compare DEV/FAT", "/apps/big/compare?ns=ns10&from=DEV/default&to=FAT/default".to_string()),
        ("audit log", "/audit".to_string()),
    ];
    for (label, path) in pages {
        let mut times = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let r = browser.get(format!("{base}{path}")).header("Cookie", &cookie).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            let _ = r.bytes().await.unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        say(format!(
            "portal {label}: p50 {:.1} ms, max {:.1} ms",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3
        ));
    }
}

/// The kernel's count of connections dropped because a listen queue was full.
fn listen_overflows() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else { return 0 };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "ListenOverflows")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Long polls the server holds now, from `/metrics`.
async fn polls_held(http: &reqwest::Client, base: &str) -> usize {
    let m = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    m.lines().find_map(|l| l.strip_prefix("cairn_long_polls_held ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// The bench app's current notification id of `application` (what a client polls with).
async fn current_notification_id(http: &reqwest::Client, base: &str) -> i64 {
    let state: serde_json::Value = http
        .get(format!("{base}/notifications/v2?appId=bench&cluster=default&notifications=%5B%7B%22namespaceName%22%3A%22application%22%2C%22notificationId%22%3A-1%7D%5D"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state[0]["notificationId"].as_i64().unwrap()
}

/// `POLLS` clients connect at the same instant, each sending a long poll (clients reconnecting
/// after a restart); reports how long until the server holds them all, then wakes them.
async fn storm(http: &reqwest::Client, addr: &str, base: &str, token: &str, ns: &str, say: &mut impl FnMut(String)) {
    let id = current_notification_id(http, base).await;
    let req = Arc::new(format!(
        "GET /notifications/v2?appId=bench&cluster=default&notifications=%5B%7B%22namespaceName%22%3A%22application%22%2C%22notificationId%22%3A{id}%7D%5D HTTP/1.1\r\n{JAVA_CLIENT_HEADERS}\r\n"
    ));
    let overflows_before = listen_overflows();
    let started = Instant::now();
    let tasks: Vec<_> = (0..POLLS)
        .map(|_| {
            let (addr, req) = (addr.to_string(), req.clone());
            tokio::spawn(async move {
                let mut s = TcpStream::connect(&addr).await.ok()?;
                s.write_all(req.as_bytes()).await.ok()?;
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                Some(())
            })
        })
        .collect();
    let deadline = started + Duration::from_secs(60);
    let mut held = 0;
    while held < POLLS && Instant::now() < deadline {
        held = polls_held(http, base).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    say(format!(
        "reconnect storm: {held}/{POLLS} simultaneous connects held as long polls after {:.2} s ({} listen-queue overflows)",
        took.as_secs_f64(),
        listen_overflows().saturating_sub(overflows_before)
    ));
    update_and_release(http, base, token, ns, "bench.key.02", "storm").await;
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    while polls_held(http, base).await > 0 && Instant::now() < deadline + Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Writes the report next to the build's other outputs.
fn write_report(report: &str) {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("bench-report.txt");
    let _ = std::fs::write(&out, report);
    println!("report written to {}", out.display());
}

async fn run() {
    let mut report = String::new();
    let mut say = |line: String| {
        println!("{line}");
        report.push_str(&line);
        report.push('\n');
    };
    let only = std::env::var("CAIRN_BENCH_ONLY").unwrap_or_default();
    let wants = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);
    let http = reqwest::Client::new();
    if only == "pg" {
        postgres_beside_sled(&http, &mut say).await;
        return write_report(&report);
    }
    let dir = tempfile::tempdir().unwrap();
    let (cairn, token) = prepared_cairn(&http, &dir.path().join("data"), &[]).await;
    let base = format!("http://{}", cairn.addr);
    let ns = NS;

    // The exact bytes Cairn serves, for the baseline to serve too; the release key is what a
    // client sends back to get 304 (Apollo's Open API release carries none).
    let path_200 = CONFIGS;
    let body = http.get(format!("{base}{path_200}")).send().await.unwrap().text().await.unwrap();
    let release_key = release_key(&http, &base).await;
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, &body).unwrap();
    let mut baseline_child = Command::new(std::env::current_exe().unwrap())
        .env("CAIRN_BENCH_BASELINE", &body_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let baseline_addr = wait_addr(&mut baseline_child);
    let baseline = Server { child: baseline_child, addr: baseline_addr };
    let path_304 = format!("/configs/bench/default/application?ip=10.0.0.1&releaseKey={release_key}");

    say(format!(
        "# Cairn benchmark ({} bytes per 200 body, {CONNECTIONS} connections, {}s rounds)",
        body.len(),
        ROUND.as_secs()
    ));
    let mut results = Vec::new();
    for (label, path, status) in [("200", path_200.to_string(), 200u16), ("304", path_304.clone(), 304u16)]
        .into_iter()
        .filter(|_| wants("configs"))
    {
        // Alternate to spread machine noise over both.
        let b1 = load(&baseline.addr, &path, status).await;
        let c1 = load(&cairn.addr, &path, status).await;
        let c2 = load(&cairn.addr, &path, status).await;
        let b2 = load(&baseline.addr, &path, status).await;
        let (b, c) = ((b1 + b2) / 2.0, (c1 + c2) / 2.0);
        say(format!("configs {label}: cairn {c:.0} req/s, minimal actix handler {b:.0} req/s, ratio {:.2}", c / b));
        results.push(c / b);
    }
    if wants("polls") {
        // Reference: the same number of requests parked in a minimal actix-web handler.
        let before = rss_kib(baseline.child.id());
        let req = format!("GET /hold HTTP/1.1\r\n{JAVA_CLIENT_HEADERS}\r\n");
        let (tasks, _) = hold(&baseline.addr, req.as_bytes(), POLLS).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let held = rss_kib(baseline.child.id());
        say(format!(
            "reference: minimal actix-web handler holding {POLLS} requests: {:.1} MiB (before: {:.1} MiB)",
            held as f64 / 1024.0,
            before as f64 / 1024.0
        ));
        for t in tasks {
            t.abort();
        }
    }
    drop(baseline);

    // Publish latency: item update + release through the Open API.
    let mut times = Vec::new();
    for i in (0..100).filter(|_| wants("publish")) {
        let t = Instant::now();
        update_and_release(&http, &base, &token, ns, "bench.key.00", &format!("p{i}")).await;
        times.push(t.elapsed());
    }
    times.sort();
    if !times.is_empty() {
        let (p50, p95) = (times[times.len() / 2], times[times.len() * 95 / 100]);
        say(format!(
            "publish (item update + release): p50 {:.2} ms, p95 {:.2} ms",
            p50.as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3
        ));
    }
    if wants("portal") {
        portal_render(&http, &base, &token, &mut say).await;
    }
    if wants("storm") {
        storm(&http, &cairn.addr, &base, &token, ns, &mut say).await;
    }
    if wants("pg") {
        postgres_beside_sled(&http, &mut say).await;
    }
    if !wants("polls") {
        return write_report(&report);
    }

    // 10,000 held long polls.
    let id = current_notification_id(&http, &base).await;
    let rss_before = rss_kib(cairn.child.id());
    let req = format!(
        "GET /notifications/v2?appId=bench&cluster=default&notifications=%5B%7B%22namespaceName%22%3A%22application%22%2C%22notificationId%22%3A{id}%7D%5D HTTP/1.1\r\n{JAVA_CLIENT_HEADERS}\r\n"
    )
    .into_bytes();
    let (tasks, answered) = hold(&cairn.addr, &req, POLLS).await;
    // Wait until the server holds them all.
    let metrics_url = format!("{base}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = http.get(&metrics_url).send().await.unwrap().text().await.unwrap();
        let held: i64 = m
            .lines()
            .find_map(|l| l.strip_prefix("cairn_long_polls_held "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if held as usize >= POLLS || Instant::now() > deadline {
            say(format!("long polls held: {held}"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rss_held = rss_kib(cairn.child.id());
    say(format!(
        "resident memory with {POLLS} held polls: {:.1} MiB (before: {:.1} MiB)",
        rss_held as f64 / 1024.0,
        rss_before as f64 / 1024.0
    ));
    let t = Instant::now();
    update_and_release(&http, &base, &token, ns, "bench.key.01", "changed").await;
    let replied = Instant::now();
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
    let answers = answered.lock().unwrap();
    let ok = answers.iter().filter(|(_, ok)| *ok).count();
    let last = answers.iter().map(|(t, _)| *t).max().unwrap_or(replied);
    say(format!(
        "fan-out: {ok}/{POLLS} polls answered 200; last answered {:.0} ms after the publish reply ({:.0} ms after the publish started)",
        last.saturating_duration_since(replied).as_secs_f64() * 1e3,
        last.saturating_duration_since(t).as_secs_f64() * 1e3
    ));
    drop(cairn);
    write_report(&report);
}
