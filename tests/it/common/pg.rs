//! A real PostgreSQL for tests: `initdb` in a temporary directory as an unprivileged user
//! (PostgreSQL refuses root), `pg_ctl start` on a free loopback port with the socket in that
//! directory, `pg_ctl stop -m immediate` on drop.
//!
//! One cluster is shared by the whole test process ([`database`] gives each test a fresh
//! database in it); fault tests start a dedicated one ([`PgCluster::start`]) they may stop,
//! freeze and restart. A watchdog process stops a cluster (and removes its directory) once
//! the test process is gone, so the shared cluster, which is never dropped, does not
//! outlive it.
//!
//! PostgreSQL missing: the tests that need it fail when `CAIRN_REQUIRE_PG=1` (CI), and
//! otherwise skip with a loud message.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// User name and password of the clusters' superuser.
pub const USER: &str = "cairn";
pub const PASSWORD: &str = "cairn-test-password";

/// A running PostgreSQL cluster owned by this test process.
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    /// The unprivileged user PostgreSQL runs as (`None`: we are not root, run as ourselves).
    run_as: Option<String>,
    pub port: u16,
    watchdog: Option<Child>,
    databases: AtomicU32,
    /// Every commit synced to disk, as in production (benchmarks); tests skip fsync.
    durable: bool,
}

/// The directory holding `initdb` and `pg_ctl`, newest version first.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0)
    });
    found.pop()
}

/// `None` (after a loud message) when PostgreSQL is missing and not required.
fn available() -> Option<PathBuf> {
    match bin_dir() {
        Some(b) => Some(b),
        None if std::env::var("CAIRN_REQUIRE_PG").is_ok_and(|v| v == "1") => {
            panic!("CAIRN_REQUIRE_PG=1 but PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
        }
        None => {
            eprintln!(
                "\n*** SKIPPED: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); \
                 install Debian's `postgresql` to run the PostgreSQL tests, CAIRN_REQUIRE_PG=1 makes this fail ***\n"
            );
            None
        }
    }
}

fn uid_of(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").arg(flag).arg(user).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok().filter(|_| out.status.success())
    };
    Some((id("-u")?, id("-g")?))
}

fn am_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl PgCluster {
    /// Starts a dedicated cluster; `None` when PostgreSQL is missing and not required.
    pub fn start() -> Option<PgCluster> {
        Self::start_with(false)
    }

    /// Starts a dedicated cluster that syncs every commit to disk as a production one does
    /// (the benchmark measures publishes on it).
    pub fn start_durable() -> Option<PgCluster> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Option<PgCluster> {
        let bin = available()?;
        let run_as = if am_root() {
            Some(
                ["postgres", "nobody"]
                    .into_iter()
                    .find(|u| uid_of(u).is_some())
                    .expect("no unprivileged user")
                    .to_string(),
            )
        } else {
            None
        };
        let dir = tempfile::Builder::new().prefix("cairn-pg-").tempdir().unwrap().keep();
        std::fs::write(dir.join("pw"), PASSWORD).unwrap();
        if let Some(user) = &run_as {
            let (uid, gid) = uid_of(user).unwrap();
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(dir.join("pw"), Some(uid), Some(gid)).unwrap();
        }
        let mut cluster =
            PgCluster { dir, bin, run_as, port: 0, watchdog: None, databases: AtomicU32::new(0), durable };
        let data = cluster.data();
        let out = cluster
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .arg(format!("--pwfile={}", cluster.dir.join("pw").display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        cluster.watchdog = Some(cluster.spawn_watchdog());
        for attempt in 0..3 {
            cluster.port = free_port();
            if cluster.pg_ctl_start() {
                return Some(cluster);
            }
            eprintln!("PostgreSQL did not start on port {} (attempt {attempt}); trying another port", cluster.port);
        }
        panic!("PostgreSQL did not start: {}", std::fs::read_to_string(cluster.dir.join("log")).unwrap_or_default());
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command from PostgreSQL's bin directory, run as the unprivileged user.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        cmd
    }

    fn pg_ctl_start(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=600{}",
            self.port,
            self.dir.display(),
            if self.durable { "" } else { " -c fsync=off -c full_page_writes=off" }
        );
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops the cluster at once, as a crash would (`pg_ctl stop -m immediate`).
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Stops the cluster as an operator would (`pg_ctl stop -m fast`: sessions are ended
    /// with an administrator-shutdown error, then the server exits cleanly).
    pub fn stop_fast(&self) {
        let ok = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "pg_ctl stop -m fast failed: {}", self.log());
    }

    /// `pg_ctl restart -m fast` on the same port: every session is ended, the server is back
    /// when this returns.
    pub fn restart_fast(&self) {
        self.stop_fast();
        self.restart();
    }

    /// Starts the cluster again on the same port, after [`PgCluster::stop`].
    pub fn restart(&self) {
        assert!(self.pg_ctl_start(), "PostgreSQL did not start again: {}", self.log());
    }

    /// Every process of the cluster: the postmaster, then its children.
    fn pids(&self) -> Vec<u32> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).unwrap_or_default();
        let Some(main) = text.lines().next().and_then(|l| l.trim().parse::<u32>().ok()) else { return Vec::new() };
        let mut pids = vec![main];
        for entry in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
            let ppid = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1));
            if ppid.and_then(|p| p.parse::<u32>().ok()) == Some(main) {
                if let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// Sends `signal` to `pids`; a backend that exited meanwhile is no error, the postmaster
    /// (first) must get it.
    fn signal(&self, signal: &str, pids: &[u32]) {
        for (i, pid) in pids.iter().enumerate() {
            let ok = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok || i > 0, "kill -{signal} {pid} (the postmaster) failed");
        }
    }

    /// Freezes every PostgreSQL process (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        let pids = self.pids();
        assert!(!pids.is_empty(), "no PostgreSQL process to freeze");
        self.signal("STOP", &pids);
    }

    /// Lets frozen processes run again (SIGCONT).
    pub fn thaw(&self) {
        let pids = self.pids();
        self.signal("CONT", &pids);
    }

    /// The server log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Creates a fresh, empty database and returns its URL.
    pub fn create_database(&self) -> String {
        let name = format!("t{}", self.databases.fetch_add(1, Ordering::SeqCst));
        let out = Command::new("psql")
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-U", USER, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"])
            .arg(format!("CREATE DATABASE {name}"))
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .unwrap();
        assert!(out.status.success(), "CREATE DATABASE failed: {}", String::from_utf8_lossy(&out.stderr));
        self.url(&name)
    }

    /// The URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{name}", self.port)
    }

    /// A process that stops the cluster and removes its directory once this test process
    /// has exited (however it exited).
    fn spawn_watchdog(&self) -> Child {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = match &self.run_as {
            Some(user) => {
                format!("runuser -u {user} -- {} -D {} -m immediate stop", pg_ctl.display(), path(&self.data()))
            }
            None => format!("{} -D {} -m immediate stop", pg_ctl.display(), path(&self.data())),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = path(&self.dir)
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

fn path(p: &Path) -> String {
    format!("'{}'", p.display())
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // A frozen cluster would ignore the stop request.
        for pid in self.pids() {
            let _ = Command::new("kill").arg("-CONT").arg(pid.to_string()).stderr(Stdio::null()).status();
        }
        self.stop();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cluster shared by this test process, started on first use.
pub fn shared() -> Option<&'static PgCluster> {
    static CLUSTER: OnceLock<Option<PgCluster>> = OnceLock::new();
    CLUSTER.get_or_init(PgCluster::start).as_ref()
}

/// A fresh, empty database on the shared cluster (its URL); `None`: skip the test.
pub fn database() -> Option<String> {
    shared().map(PgCluster::create_database)
}
