//! End to end, as the Kubernetes example runs it, on loopback with real processes: two
//! instances of the example app, each fed by `cairn agent` (init `--once` with a cache, then
//! the sidecar), behind an L4 balancer with kube-proxy semantics (new connections go to the
//! current endpoints; established keep-alive connections stay where they are). Keep-alive
//! clients load it while both instances are replaced one by one, 20 releases are published,
//! Cairn is restarted with SIGTERM and crashes with kill -9, and an instance starts while
//! Cairn is down. No request may fail.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::front::FrontDoor;
use crate::common::process::{open_api, seed_data_dir, Proc, BIN};
use crate::common::{eventually, ADMIN};

/// How long Cairn stays down after the kill -9. The agent's retry pause reaches its 2 s cap
/// after about 3.5 s of failures, so any outage longer than that leaves the agent in the same
/// state as a 45 s outage; 5 s keeps the test short.
/// `CAIRN_E2E_OUTAGE_SECS=45` runs the long one.
fn outage() -> Duration {
    let secs = std::env::var("CAIRN_E2E_OUTAGE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    Duration::from_secs(secs)
}

/// A TCP balancer standing in for kube-proxy: round robin over the current endpoints for
/// new connections; removing an endpoint leaves its established connections alone.
struct Balancer {
    addr: SocketAddr,
    endpoints: Arc<Mutex<Vec<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Balancer {
    async fn start() -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let endpoints: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let eps = endpoints.clone();
        let next = AtomicUsize::new(0);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                let to = {
                    let eps = eps.lock().unwrap();
                    (!eps.is_empty()).then(|| eps[next.fetch_add(1, Ordering::Relaxed) % eps.len()])
                };
                tokio::spawn(async move {
                    let Some(to) = to else { return };
                    let Ok(mut outbound) = TcpStream::connect(to).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Balancer { addr, endpoints, task }
    }

    fn add(&self, a: SocketAddr) {
        self.endpoints.lock().unwrap().push(a);
    }

    fn remove(&self, a: SocketAddr) {
        self.endpoints.lock().unwrap().retain(|e| *e != a);
    }
}

/// A keep-alive HTTP/1.1 client with no hidden retries: it reuses its connection until the
/// server answers `Connection: close`, and every error is a failed request.
struct KeepAlive {
    to: SocketAddr,
    conn: Option<tokio::io::BufReader<TcpStream>>,
}

impl KeepAlive {
    async fn get(&mut self) -> Result<String, String> {
        if self.conn.is_none() {
            let s = TcpStream::connect(self.to).await.map_err(|e| format!("connect: {e}"))?;
            self.conn = Some(tokio::io::BufReader::new(s));
        }
        let Some(conn) = self.conn.as_mut() else { return Err("no connection".into()) };
        let res = tokio::time::timeout(Duration::from_secs(5), async {
            conn.get_mut()
                .write_all(b"GET / HTTP/1.1\r\nHost: greeter\r\n\r\n")
                .await
                .map_err(|e| format!("write: {e}"))?;
            let mut status = String::new();
            conn.read_line(&mut status).await.map_err(|e| format!("read: {e}"))?;
            if status.is_empty() {
                return Err("connection closed under the request".to_string());
            }
            let (mut len, mut close) = (0usize, false);
            loop {
                let mut line = String::new();
                conn.read_line(&mut line).await.map_err(|e| format!("read: {e}"))?;
                let l = line.trim().to_ascii_lowercase();
                if l.is_empty() {
                    break;
                }
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().map_err(|_| "bad content-length".to_string())?;
                }
                close |= l == "connection: close";
            }
            let mut body = vec![0; len];
            conn.read_exact(&mut body).await.map_err(|e| format!("body: {e}"))?;
            let body = String::from_utf8_lossy(&body).to_string();
            if !status.starts_with("HTTP/1.1 200") {
                return Err(format!("{}: {body}", status.trim()));
            }
            Ok((body, close))
        })
        .await
        .map_err(|_| "timed out".to_string())
        .and_then(|r| r);
        match res {
            Ok((body, close)) => {
                if close {
                    self.conn = None;
                }
                Ok(body)
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn greeter_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("examples").join("greeter");
    assert!(bin.exists(), "{} is missing: `cargo test` builds the examples", bin.display());
    bin
}

/// One app pod: the init agent has run, the sidecar agent and the app are running.
struct Instance {
    addr: SocketAddr,
    app: Child,
    _sidecar: Child,
}

impl Instance {
    /// Runs the pod's start sequence; `wait` is the init agent's `--wait`.
    async fn start(meta: &str, dir: &Path, cache: &Path, wait: &str) -> Instance {
        let agent = |extra: &[&str]| {
            let mut c = Command::new(BIN);
            c.args(["agent", "--server", meta, "--app", "greeter", "--dir"])
                .arg(dir)
                .arg("--cache")
                .arg(cache)
                .args(extra)
                .env("CAIRN_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            c
        };
        let mut init = agent(&["--once", "--wait", wait]);
        let out = tokio::task::spawn_blocking(move || init.output().unwrap()).await.unwrap();
        assert!(out.status.success(), "init agent: {}", String::from_utf8_lossy(&out.stderr));
        let sidecar = Child(agent(&[]).stderr(Stdio::null()).spawn().unwrap());
        let mut app = Command::new(greeter_binary())
            .env("CONFIG_FILE", dir.join("application.properties"))
            .env("LISTEN", "127.0.0.1:0")
            .env("DRAIN_SECS", "2")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(app.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let _ = tx.send(line[i + 20..].trim().to_string());
                }
            }
        });
        let addr: SocketAddr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap()
            .parse()
            .unwrap();
        let ready = format!("http://{addr}/ready");
        eventually(Duration::from_secs(10), "the instance ready", || async {
            reqwest::get(&ready).await.map(|r| r.status() == 200).unwrap_or(false)
        })
        .await;
        Instance { addr, app: Child(app), _sidecar: sidecar }
    }

    async fn greeting(&self) -> String {
        match reqwest::get(format!("http://{}/", self.addr)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Kubernetes' termination: out of the endpoints and SIGTERM at the same moment (no
    /// preStop hook); waits for the app to exit.
    async fn terminate(mut self, lb: &Balancer) -> Duration {
        lb.remove(self.addr);
        let start = Instant::now();
        Command::new("kill").args(["-TERM", &self.app.0.id().to_string()]).status().unwrap();
        let status = tokio::task::spawn_blocking(move || self.app.0.wait().unwrap()).await.unwrap();
        assert!(status.success(), "the app exited with {status}");
        start.elapsed()
    }
}

async fn release(base: &str, token: &str, greeting: &str) -> Instant {
    let ns = "/envs/DEV/apps/greeter/clusters/default/namespaces/application";
    let item =
        json!({"key": "greeting", "value": greeting, "dataChangeLastModifiedBy": ADMIN, "dataChangeCreatedBy": ADMIN});
    let path = format!("{ns}/items/greeting?createIfNotExists=true");
    assert_eq!(open_api(base, token, Method::PUT, &path, item).await.0, 200);
    let release = json!({"releaseTitle": greeting, "releasedBy": ADMIN});
    assert_eq!(open_api(base, token, Method::POST, &format!("{ns}/releases"), release).await.0, 200);
    Instant::now()
}

/// Publishes `greeting` and returns how long until every instance answers with it.
async fn release_seen(base: &str, token: &str, greeting: &str, apps: &[&Instance]) -> Duration {
    let released = release(base, token, greeting).await;
    let deadline = released + Duration::from_secs(15);
    for app in apps {
        while app.greeting().await != greeting {
            assert!(Instant::now() < deadline, "release {greeting} not seen by {}", app.addr);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    released.elapsed()
}

#[tokio::test]
async fn app_rollout_releases_and_cairn_outages_fail_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cache = dir.path().join("cache");
    let token = seed_data_dir(&data);
    let front = FrontDoor::start().await;
    let cairn = Proc::start(&data, &[]);
    front.point_to(&cairn.base);
    let meta = format!("{}/envs/DEV", front.base);
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "greeter", "name": "greeter", "ownerName": ADMIN}});
    assert_eq!(open_api(&cairn.base, &token, Method::POST, "/apps", app).await.0, 200);
    release(&cairn.base, &token, "g0").await;

    let pod = |n: &str| dir.path().join(n);
    let a = Instance::start(&meta, &pod("a"), &cache, "10").await;
    let b = Instance::start(&meta, &pod("b"), &cache, "10").await;
    let lb = Balancer::start().await;
    lb.add(a.addr);
    lb.add(b.addr);

    // Keep-alive clients, bounded to 90 s.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::<String>::new())));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed, to) = (stop.clone(), ok.clone(), failed.clone(), lb.addr);
        clients.push(tokio::spawn(async move {
            let mut c = KeepAlive { to, conn: None };
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(90) {
                match c.get().await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        failed.lock().unwrap().push(e);
                        0
                    }
                };
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }

    // 20 releases, each seen by both instances.
    let mut seen = Vec::new();
    for n in 1..=20 {
        seen.push(release_seen(&cairn.base, &token, &format!("g{n}"), &[&a, &b]).await);
    }
    let worst = seen.iter().max().copied().unwrap_or_default();
    eprintln!("release seen by both instances: worst {worst:?}, all {seen:?}");
    assert!(worst < Duration::from_secs(1), "a release took {worst:?}");

    // Rolling replacement of the first instance while Cairn is up.
    let c = Instance::start(&meta, &pod("c"), &cache, "10").await;
    lb.add(c.addr);
    let drained = a.terminate(&lb).await;
    eprintln!("first instance drained and exited in {drained:?}");

    // Cairn restarts (SIGTERM); the next release is seen within 3 s of its return.
    let (status, _) = tokio::task::spawn_blocking(move || cairn.terminate()).await.unwrap();
    assert!(status.success());
    front.point_nowhere();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cairn = Proc::start(&data, &[]);
    front.point_to(&cairn.base);
    let after_restart = release_seen(&cairn.base, &token, "g21", &[&b, &c]).await;
    eprintln!("release after the SIGTERM restart seen in {after_restart:?}");
    assert!(after_restart < Duration::from_secs(3), "{after_restart:?}");

    // Cairn crashes; while it is down the second instance is replaced by one that starts
    // from the agent's cache.
    cairn.kill9();
    front.point_nowhere();
    let down = Instant::now();
    let d = Instance::start(&meta, &pod("d"), &cache, "1").await;
    assert_eq!(d.greeting().await, "g21", "the instance started while Cairn is down serves the cached config");
    lb.add(d.addr);
    b.terminate(&lb).await;
    if let Some(left) = outage().checked_sub(down.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let cairn = Proc::start(&data, &[]);
    front.point_to(&cairn.base);
    let after_crash = release_seen(&cairn.base, &token, "g22", &[&c, &d]).await;
    eprintln!("release after a {:?} outage (kill -9) seen in {after_crash:?}", outage());
    assert!(after_crash < Duration::from_secs(3), "{after_crash:?}");

    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.lock().unwrap());
    eprintln!("{ok} requests answered, {} failed", failed.len());
    assert!(ok > 500, "only {ok} requests were made");
    assert!(failed.is_empty(), "{} of {} requests failed: {:?}", failed.len(), ok + failed.len(), failed.first());
    drop(cairn);
}
