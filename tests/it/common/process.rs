//! The real `cairn` binary as a child process.
//!
//! On the PostgreSQL run (`it_pg`) every command and server also gets `--database-url` (unless
//! it names one): the database belongs to the data directory passed in, so a restart on the
//! same directory finds the same data, and the directory itself is never created.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_cairn");

/// The database standing for data directory `data` on the PostgreSQL run (made on first use).
pub fn database_for(data: &Path) -> Option<String> {
    static DATABASES: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());
    if !super::on_pg() {
        return None;
    }
    let mut known = DATABASES.lock().unwrap();
    if let Some(url) = known.get(data) {
        return Some(url.clone());
    }
    let url = super::pg::database()?;
    known.insert(data.to_path_buf(), url.clone());
    Some(url)
}

/// `--database-url` for `data` on the PostgreSQL run, unless `args` already name a database.
fn engine_args(data: &Path, args: &[&str]) -> Vec<String> {
    match database_for(data) {
        Some(url) if !args.contains(&"--database-url") => vec!["--database-url".into(), url],
        _ => Vec::new(),
    }
}

/// Runs a CLI command against a data dir, feeding `stdin`.
pub fn cli(data: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(engine_args(data, args))
        .args(args)
        .env_remove("CAIRN_LISTEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A running server process.
pub struct Proc {
    pub child: Child,
    pub base: String,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Proc {
    /// Starts `cairn serve` on a random port and waits for its "listening" log line.
    pub fn start(data: &Path, extra: &[&str]) -> Proc {
        let mut child = Command::new(BIN)
            .arg("--data")
            .arg(data)
            .args(engine_args(data, extra))
            .arg("serve")
            .args(if extra.contains(&"--listen") { &[][..] } else { &["--listen", "127.0.0.1:0"][..] })
            .args(extra)
            .env("CAIRN_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                log2.lock().unwrap().push_str(&line);
                log2.lock().unwrap().push('\n');
                if !sent {
                    if let Some(i) = line.find("listening on http://") {
                        let addr = line[i + "listening on ".len()..].split_whitespace().next().unwrap().to_string();
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("cairn did not start: {}", log.lock().unwrap()));
        Proc { child, base, log }
    }

    /// SIGTERM, then waits; returns the exit status and how long the exit took.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Duration) {
        let start = Instant::now();
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let status = self.child.wait().unwrap();
        (status, start.elapsed())
    }

    /// SIGKILL, then waits.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prepares a data directory for the real binary: the admin operator and an Open API consumer
/// that may create apps. Returns the consumer's token.
pub fn seed_data_dir(data: &Path) -> String {
    let user = cli(data, &["user", "add", super::ADMIN, "--admin"], "a-good-password\n");
    assert!(user.status.success(), "{}", text(&user));
    let out = cli(data, &["consumer", "create", "ci", "--allow-create-app"], "");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_string()
}

/// One Open API call against a server process: status and JSON body (null when empty).
pub async fn open_api(
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .request(method, format!("{base}/openapi/v1{path}"))
        .header("Authorization", token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

/// GETs `url` and parses the answer as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}
