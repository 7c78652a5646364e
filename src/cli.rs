//! Command-line interface: parsing and dispatch only.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::service::{Cairn, Caller};
use crate::settings::{LogFormat, Overrides, Settings};
use crate::store::Store;

/// Cairn — a configuration center in one binary, wire-compatible with Apollo clients.
///
/// Run without a command to start the server on 0.0.0.0:8080 with data in ./cairn-data.
/// Settings come from cairn.toml < CAIRN_* environment variables < flags.
#[derive(Parser, Debug)]
#[command(name = "cairn", version, about, long_about)]
pub struct Cli {
    /// Data directory (the embedded database lives here).
    #[arg(long, global = true, env = "CAIRN_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Config file (default: ./cairn.toml when present).
    #[arg(long, global = true, env = "CAIRN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, env = "CAIRN_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the server (the default command).
    Serve,
    /// Manage operators (users named in Open API calls and who sign in to the portal).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage Open API consumers (tokens).
    #[command(subcommand)]
    Consumer(ConsumerCommand),
    /// Exit 0 when the server answers /health (for container HEALTHCHECKs).
    Healthcheck {
        /// Base URL of the server (default: derived from --listen / CAIRN_LISTEN).
        #[arg(long)]
        url: Option<String>,
    },
    /// Verify every release checksum and the release-history invariants.
    Check,
    /// Sidecar / init container: keep namespaces as files, rewritten on every release.
    Agent(Box<AgentArgs>),
    /// Write a checksummed, point-in-time backup of all data to FILE.
    Backup {
        /// Backup file to write.
        file: PathBuf,
    },
    /// Restore a backup FILE into an empty data directory.
    Restore {
        /// Backup file to read.
        file: PathBuf,
    },
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address of the main listener (portal, Open API, client API).
    #[arg(long, global = true, env = "CAIRN_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Envs served, comma separated (default DEV,FAT,UAT,PRO).
    #[arg(long, global = true, env = "CAIRN_ENVS", value_delimiter = ',')]
    pub envs: Option<Vec<String>>,
    /// Env served at the root path of the main listener (clients may then omit /envs/{env}).
    #[arg(long, global = true, env = "CAIRN_DEFAULT_ENV")]
    pub default_env: Option<String>,
    /// Base URL clients reach this server at, advertised by /services/config.
    #[arg(long, global = true, env = "CAIRN_ADVERTISED_URL", value_name = "URL")]
    pub advertised_url: Option<String>,
    /// Seconds a long poll is held without changes (1..=90).
    #[arg(long, global = true, env = "CAIRN_LONG_POLL_TIMEOUT", value_name = "SECS")]
    pub long_poll_timeout: Option<u64>,
    /// Maximum item key length in characters.
    #[arg(long, global = true, env = "CAIRN_KEY_MAX")]
    pub key_max: Option<usize>,
    /// Maximum item value length in characters.
    #[arg(long, global = true, env = "CAIRN_VALUE_MAX")]
    pub value_max: Option<usize>,
    /// Maximum request body size in bytes.
    #[arg(long, global = true, env = "CAIRN_BODY_MAX")]
    pub body_max: Option<usize>,
    /// Allowed clock skew of access-key signatures, in seconds.
    #[arg(long, global = true, env = "CAIRN_ACCESS_KEY_SKEW", value_name = "SECS")]
    pub access_key_skew: Option<u64>,
    /// Envs where the last editor of a draft may not release it, comma separated.
    #[arg(long, global = true, env = "CAIRN_FOUR_EYES_ENVS", value_delimiter = ',')]
    pub four_eyes_envs: Option<Vec<String>>,
    /// Reverse proxies (IPs or CIDR networks, comma separated) whose X-Forwarded-* headers
    /// are believed; from any other peer they are ignored.
    #[arg(long, global = true, env = "CAIRN_TRUSTED_PROXIES", value_delimiter = ',', value_name = "NETS")]
    pub trusted_proxies: Option<Vec<String>>,
    /// Seconds a request body may take to arrive after its headers (else 408).
    #[arg(long, global = true, env = "CAIRN_BODY_TIMEOUT", value_name = "SECS")]
    pub body_timeout: Option<u64>,
    /// Open connections one client address may hold at once.
    #[arg(long, global = true, env = "CAIRN_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Config service URL of the env (the meta URL), e.g. http://cairn:8080/envs/PRO.
    #[arg(long, env = "CAIRN_AGENT_SERVER", value_name = "URL")]
    pub server: String,
    /// The app whose configuration is fetched.
    #[arg(long, env = "CAIRN_AGENT_APP")]
    pub app: String,
    /// Cluster (falls back to the data center, then default, on the server).
    #[arg(long, env = "CAIRN_AGENT_CLUSTER", default_value = "default")]
    pub cluster: String,
    /// Namespaces to fetch, comma separated (application, app.yaml, ...).
    #[arg(long, env = "CAIRN_AGENT_NAMESPACES", value_delimiter = ',', default_value = "application")]
    pub namespaces: Vec<String>,
    /// Directory the files are written to (application.properties, app.yaml, ...).
    #[arg(long, env = "CAIRN_AGENT_DIR", value_name = "DIR")]
    pub dir: PathBuf,
    /// File holding the app's access-key secret (when the app has enforced keys).
    #[arg(long, env = "CAIRN_AGENT_SECRET_FILE", value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// This instance's ip for gray rules and the instance list (default: as seen by Cairn).
    #[arg(long, env = "CAIRN_AGENT_IP")]
    pub ip: Option<String>,
    /// This instance's label for gray rules.
    #[arg(long, env = "CAIRN_AGENT_LABEL")]
    pub label: Option<String>,
    /// Data center, used as the fallback cluster.
    #[arg(long, env = "CAIRN_AGENT_DATA_CENTER")]
    pub data_center: Option<String>,
    /// Shell command run after files change (e.g. "nginx -s reload").
    #[arg(long, env = "CAIRN_AGENT_ON_CHANGE", value_name = "COMMAND")]
    pub on_change: Option<String>,
    /// Signal sent after files change to the process whose pid is in --pid-file (e.g. HUP).
    #[arg(long, env = "CAIRN_AGENT_SIGNAL", requires = "pid_file")]
    pub signal: Option<String>,
    /// Pid file of the process to signal.
    #[arg(long, env = "CAIRN_AGENT_PID_FILE", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Render a template for a namespace: NS=FILE.tmpl writes DIR/FILE with {{ key }} replaced.
    #[arg(long = "template", value_name = "NS=FILE")]
    pub templates: Vec<String>,
    /// Fetch once, write the files and exit (init containers); non-zero exit on failure.
    #[arg(long)]
    pub once: bool,
    /// With --once: seconds to keep retrying while Cairn is unreachable or answers 5xx.
    #[arg(long, env = "CAIRN_AGENT_WAIT", value_name = "SECS", default_value_t = 60)]
    pub wait: u64,
    /// Seconds between full refreshes of the sidecar (every namespace fetched again, long polls
    /// started over), so it catches up with a Cairn restored from a backup.
    #[arg(long, env = "CAIRN_AGENT_REFRESH", value_name = "SECS", default_value_t = 300)]
    pub refresh: u64,
    /// Directory keeping a copy of every file written (a volume that outlives the pod); with
    /// --once, the files are taken from it when Cairn stays unreachable for --wait.
    #[arg(long, env = "CAIRN_AGENT_CACHE", value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user. The password is read from the terminal, or from stdin when piped.
    Add {
        /// User name.
        name: String,
        /// Make the user a super admin.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConsumerCommand {
    /// Create an Open API consumer and print its token (shown only once).
    Create {
        /// Consumer name.
        name: String,
        /// Allow this consumer to create apps.
        #[arg(long)]
        allow_create_app: bool,
    },
    /// Grant a consumer modify + release on an app's namespace (all namespaces, as app
    /// master, when --namespace is omitted), optionally in one env.
    Grant {
        /// Consumer name.
        name: String,
        #[arg(long)]
        app: String,
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long)]
        env: Option<String>,
    },
}

/// Parses the process arguments. `cairn agent --help` lists only what the agent reads: the
/// server's global flags stay accepted there but hidden.
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut cmd = Cli::command();
    cmd.build();
    if let Some(agent) = cmd.find_subcommand_mut("agent") {
        let own: Vec<String> = <AgentArgs as clap::Args>::augment_args(clap::Command::new("agent"))
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        let foreign: Vec<String> = agent
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .filter(|id| !own.contains(id) && id != "log_format" && id != "help")
            .collect();
        let taken = std::mem::take(agent);
        *agent = taken.mut_args(|a| if foreign.iter().any(|id| a.get_id() == id.as_str()) { a.hide(true) } else { a });
    }
    Cli::from_arg_matches(&cmd.get_matches()).unwrap_or_else(|e| e.exit())
}

impl Cli {
    fn settings(&self, serve: &ServeArgs) -> anyhow::Result<Settings> {
        let o = Overrides {
            listen: serve.listen.clone(),
            data: self.data.clone(),
            envs: serve.envs.clone(),
            default_env: serve.default_env.clone(),
            advertised_url: serve.advertised_url.clone(),
            long_poll_timeout_secs: serve.long_poll_timeout,
            key_max: serve.key_max,
            value_max: serve.value_max,
            body_max: serve.body_max,
            access_key_skew_secs: serve.access_key_skew,
            four_eyes_envs: serve.four_eyes_envs.clone(),
            log_format: self.log_format,
            trusted_proxies: serve.trusted_proxies.clone(),
            body_timeout_secs: serve.body_timeout,
            max_connections_per_ip: serve.max_connections_per_ip,
        };
        Settings::load(self.config.as_deref(), o).map_err(anyhow::Error::msg)
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Every `CAIRN_*` variable Cairn reads: those clap declares for a flag (any command), and
/// the few read directly.
pub fn known_env_vars() -> Vec<String> {
    use clap::CommandFactory;
    fn collect(cmd: &clap::Command, out: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            if let Some(e) = a.get_env().and_then(|e| e.to_str()) {
                out.push(e.to_string());
            }
        }
        for sub in cmd.get_subcommands() {
            collect(sub, out);
        }
    }
    let mut known: Vec<String> = [
        "CAIRN_ADMIN_USER",
        "CAIRN_ADMIN_PASSWORD",
        "CAIRN_ADMIN_PASSWORD_FILE",
        "CAIRN_LOG",
        "CAIRN_TEST_CHROMIUM",
        "CAIRN_BROWSER_TESTS",
        "CAIRN_E2E_OUTAGE_SECS",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    collect(&Cli::command(), &mut known);
    known.sort();
    known.dedup();
    known
}

fn warn_unknown_env_vars() {
    let known = known_env_vars();
    for (k, _) in std::env::vars() {
        if k.starts_with("CAIRN_") && !known.contains(&k) {
            tracing::warn!("unknown environment variable {k} is ignored");
        }
    }
}

/// Where a command runs: on the data directory, or through the running server that holds it.
enum Target<L> {
    Local(L),
    Server(crate::server::AdminEndpoint),
}

fn is_locked(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<crate::store::StoreError>(), Some(crate::store::StoreError::Locked { .. }))
        || matches!(
            e.downcast_ref::<crate::service::ServiceError>(),
            Some(crate::service::ServiceError::Internal(crate::store::StoreError::Locked { .. }))
        )
}

/// Opens the data directory with `open`, or — when a running server holds it — finds that
/// server's local admin API through `DATA/admin.json`.
fn target_with<L>(settings: &Settings, open: impl FnOnce(&Settings) -> anyhow::Result<L>) -> anyhow::Result<Target<L>> {
    match open(settings) {
        Ok(c) => Ok(Target::Local(c)),
        Err(e) if is_locked(&e) => {
            let file = settings.data.join(crate::server::ADMIN_FILE);
            let text = std::fs::read_to_string(&file).map_err(|_| e)?;
            let endpoint = serde_json::from_str(&text).with_context(|| format!("{} is damaged", file.display()))?;
            tracing::info!("the data directory is in use by a running server; sending the command to it");
            Ok(Target::Server(endpoint))
        }
        Err(e) => Err(e),
    }
}

/// The service over the data directory, or the server holding it.
fn target(settings: &Settings) -> anyhow::Result<Target<std::sync::Arc<Cairn>>> {
    target_with(settings, crate::server::open)
}

/// The bare store (no read model: works on damaged data), or the server holding it.
fn store_target(settings: &Settings) -> anyhow::Result<Target<Store>> {
    target_with(settings, |s| Ok(Store::open(&s.data)?))
}

/// A temporary copy of the data directory, removed when dropped.
struct ScratchCopy(PathBuf);

impl Drop for ScratchCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The store to check: as [`store_target`], but a read-only data directory (which sled
/// cannot open) is copied to a temporary directory and the copy is checked, saying so.
fn check_target(settings: &Settings) -> anyhow::Result<(Target<Store>, Option<ScratchCopy>)> {
    match store_target(settings) {
        Err(e)
            if matches!(
                e.downcast_ref::<crate::store::StoreError>(),
                Some(crate::store::StoreError::ReadOnly { .. })
            ) =>
        {
            let copy = ScratchCopy(std::env::temp_dir().join(format!(
                "cairn-check-{}-{}",
                std::process::id(),
                crate::security::token::random_hex(4)
            )));
            crate::store::fs::copy_dir(&settings.data, &copy.0)?;
            out(&format!(
                "{} is read-only: checking a temporary copy at {} (removed afterwards)",
                settings.data.display(),
                copy.0.display()
            ))?;
            Ok((Target::Local(Store::open(&copy.0)?), Some(copy)))
        }
        other => Ok((other?, None)),
    }
}

/// Sends one admin request to the running server.
fn remote(
    endpoint: &crate::server::AdminEndpoint,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    actix_web::rt::System::new().block_on(async {
        let client = reqwest::Client::new();
        let url = format!("{}/admin/v1{path}", endpoint.url);
        let req = if method == "GET" { client.get(&url) } else { client.post(&url) };
        let res = req
            .header("Authorization", format!("Bearer {}", endpoint.token))
            .header("Content-Type", "application/json")
            .timeout(std::time::Duration::from_secs(300))
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("the server holding the data directory did not answer at {url}: {e}"))?;
        let ok = res.status().is_success();
        let value: serde_json::Value = match res.bytes().await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            Err(_) => serde_json::Value::Null,
        };
        if ok {
            Ok(value)
        } else {
            bail!("{}", value["message"].as_str().unwrap_or("the server refused the command"))
        }
    })
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Repeat password: ")?;
        if first != again {
            bail!("the passwords do not match");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    Ok(())
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings(&cli.serve)?;
    init_logs(settings.log_format);
    warn_unknown_env_vars();
    let system = Caller::system("cli");
    // Everything the server and the data commands create is owner-only; the agent writes
    // files for the application to read and keeps the caller's umask.
    if !matches!(cli.command, Some(Command::Agent(_))) {
        crate::store::fs::restrict_umask();
    }
    match cli.command {
        None | Some(Command::Serve) => actix_web::rt::System::new().block_on(crate::server::serve(settings)),
        Some(Command::User(UserCommand::Add { name, admin })) => {
            let target = target(&settings)?;
            let password = read_password()?;
            match target {
                Target::Local(cairn) => {
                    cairn.create_user(&system, &name, &password, admin)?;
                    cairn.flush()?;
                }
                Target::Server(ep) => {
                    remote(
                        &ep,
                        "POST",
                        "/users",
                        serde_json::json!({"name": name, "password": password, "admin": admin}),
                    )?;
                }
            }
            out(&format!("user '{name}' created{}", if admin { " (admin)" } else { "" }))
        }
        Some(Command::Consumer(ConsumerCommand::Create { name, allow_create_app })) => {
            let token = match target(&settings)? {
                Target::Local(cairn) => {
                    let (_, token) = cairn.create_consumer(&system, &name, allow_create_app)?;
                    cairn.flush()?;
                    token
                }
                Target::Server(ep) => {
                    let v = remote(
                        &ep,
                        "POST",
                        "/consumers",
                        serde_json::json!({"name": name, "allowCreateApp": allow_create_app}),
                    )?;
                    v["token"].as_str().unwrap_or_default().to_string()
                }
            };
            out(&format!("consumer '{name}' created. Its Open API token (shown only now):\n{token}"))
        }
        Some(Command::Consumer(ConsumerCommand::Grant { name, app, namespace, env })) => {
            match target(&settings)? {
                Target::Local(cairn) => {
                    cairn.grant_consumer(&system, &name, &app, namespace.as_deref(), env.as_deref())?;
                    cairn.flush()?;
                }
                Target::Server(ep) => {
                    let body = serde_json::json!({"app": app, "namespace": namespace, "env": env});
                    remote(&ep, "POST", &format!("/consumers/{name}/grants"), body)?;
                }
            }
            out(&format!(
                "consumer '{name}' may now modify and release {} of app '{app}'{}",
                namespace.as_deref().unwrap_or("every namespace"),
                env.map(|e| format!(" in {e}")).unwrap_or_default()
            ))
        }
        Some(Command::Healthcheck { url }) => healthcheck(url, &settings),
        Some(Command::Agent(a)) => {
            let a = *a;
            let secret = match &a.secret_file {
                Some(f) => Some(
                    std::fs::read_to_string(f)
                        .with_context(|| format!("cannot read {}", f.display()))?
                        .trim()
                        .to_string(),
                ),
                None => None,
            };
            let mut templates = Vec::new();
            for t in &a.templates {
                let (ns, file) = t.split_once('=').context("--template takes NS=FILE")?;
                templates.push((ns.to_string(), PathBuf::from(file)));
            }
            let opts = crate::agent::AgentOptions {
                server: a.server,
                app_id: a.app,
                cluster: a.cluster,
                namespaces: a.namespaces.into_iter().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect(),
                dir: a.dir,
                secret,
                ip: a.ip,
                label: a.label,
                data_center: a.data_center,
                on_change: a.on_change,
                signal: a.signal.zip(a.pid_file),
                templates,
                once: a.once,
                wait: std::time::Duration::from_secs(a.wait),
                cache: a.cache,
                refresh: std::time::Duration::from_secs(a.refresh.max(1)),
            };
            actix_web::rt::System::new().block_on(crate::agent::run(opts))
        }
        Some(Command::Check) => {
            let (target, _copy) = check_target(&settings)?;
            let (releases, namespaces, entries, problems) = match target {
                Target::Local(store) => {
                    let r = store.check()?;
                    (
                        r.releases,
                        r.namespaces,
                        r.history_entries,
                        r.problems.into_iter().map(|p| p.0).collect::<Vec<_>>(),
                    )
                }
                Target::Server(ep) => {
                    let v = remote(&ep, "GET", "/check", serde_json::Value::Null)?;
                    let n = |k: &str| v[k].as_u64().unwrap_or(0) as usize;
                    let problems = v["problems"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect())
                        .unwrap_or_default();
                    (n("releases"), n("namespaces"), n("historyEntries"), problems)
                }
            };
            out(&format!("checked {releases} releases, {namespaces} namespaces, {entries} history entries"))?;
            if problems.is_empty() {
                out("OK: no problems found")
            } else {
                for p in &problems {
                    out(&format!("PROBLEM: {p}"))?;
                }
                bail!("{} problem(s) found; restore the damaged data from a backup", problems.len())
            }
        }
        Some(Command::Backup { file }) => {
            let (records, bytes) = match store_target(&settings)? {
                Target::Local(store) => {
                    let now = crate::domain::time::now_ms();
                    let s = store.backup(&file, now).with_context(|| format!("backup to {} failed", file.display()))?;
                    (s.records, s.bytes)
                }
                Target::Server(ep) => {
                    let abs = std::path::absolute(&file)?;
                    let v = remote(&ep, "POST", "/backup", serde_json::json!({"path": abs}))?;
                    (v["records"].as_u64().unwrap_or(0), v["bytes"].as_u64().unwrap_or(0))
                }
            };
            out(&format!("backup written to {}: {records} records, {bytes} bytes", file.display()))
        }
        Some(Command::Restore { file }) => {
            let store = Store::open(&settings.data).map_err(|e| match e {
                crate::store::StoreError::Locked { path } => anyhow::anyhow!(
                    "{} is in use by a running server; restore into a new, empty directory (--data) and start Cairn on it",
                    path.display()
                ),
                other => other.into(),
            })?;
            let summary = store.restore(&file)?;
            out(&format!(
                "restored {} records from {} into {}; release notifications now start at {}, so every \
                 client re-fetches the restored configuration when it reconnects",
                summary.records,
                file.display(),
                settings.data.display(),
                summary.notifications_from
            ))
        }
    }
}

fn healthcheck(url: Option<String>, settings: &Settings) -> anyhow::Result<()> {
    let base = url.unwrap_or_else(|| format!("http://{}", settings.listen.replace("0.0.0.0", "127.0.0.1")));
    let target = format!("{}/health", base.trim_end_matches('/'));
    let rest = target.strip_prefix("http://").context("healthcheck supports http:// URLs only")?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut stream = std::net::TcpStream::connect(host).with_context(|| format!("cannot connect to {host}"))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response)?;
    if response.starts_with("HTTP/1.1 200") {
        out("healthy")
    } else {
        bail!("unhealthy: {}", response.lines().next().unwrap_or("no response"))
    }
}
