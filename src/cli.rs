//! Command-line interface: parsing and dispatch only.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::domain::time::now_ms;
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

fn warn_unknown_env_vars() {
    const KNOWN: [&str; 31] = [
        "CAIRN_AGENT_SERVER",
        "CAIRN_AGENT_APP",
        "CAIRN_AGENT_CLUSTER",
        "CAIRN_AGENT_NAMESPACES",
        "CAIRN_AGENT_DIR",
        "CAIRN_AGENT_SECRET_FILE",
        "CAIRN_AGENT_IP",
        "CAIRN_AGENT_LABEL",
        "CAIRN_AGENT_DATA_CENTER",
        "CAIRN_AGENT_ON_CHANGE",
        "CAIRN_AGENT_SIGNAL",
        "CAIRN_AGENT_PID_FILE",
        "CAIRN_TEST_CHROMIUM",
        "CAIRN_ADMIN_USER",
        "CAIRN_ADMIN_PASSWORD",
        "CAIRN_ADMIN_PASSWORD_FILE",
        "CAIRN_DATA",
        "CAIRN_CONFIG",
        "CAIRN_LOG_FORMAT",
        "CAIRN_LOG",
        "CAIRN_LISTEN",
        "CAIRN_ENVS",
        "CAIRN_DEFAULT_ENV",
        "CAIRN_ADVERTISED_URL",
        "CAIRN_LONG_POLL_TIMEOUT",
        "CAIRN_KEY_MAX",
        "CAIRN_VALUE_MAX",
        "CAIRN_BODY_MAX",
        "CAIRN_ACCESS_KEY_SKEW",
        "CAIRN_FOUR_EYES_ENVS",
        "CAIRN_BROWSER_TESTS",
    ];
    for (k, _) in std::env::vars() {
        if k.starts_with("CAIRN_") && !KNOWN.contains(&k.as_str()) {
            tracing::warn!("unknown environment variable {k} is ignored");
        }
    }
}

fn open_service(settings: &Settings) -> anyhow::Result<std::sync::Arc<Cairn>> {
    crate::server::open(settings)
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
    match cli.command {
        None | Some(Command::Serve) => actix_web::rt::System::new().block_on(crate::server::serve(settings)),
        Some(Command::User(UserCommand::Add { name, admin })) => {
            let cairn = open_service(&settings)?;
            let password = read_password()?;
            cairn.create_user(&system, &name, &password, admin)?;
            cairn.flush()?;
            out(&format!("user '{name}' created{}", if admin { " (admin)" } else { "" }))
        }
        Some(Command::Consumer(ConsumerCommand::Create { name, allow_create_app })) => {
            let cairn = open_service(&settings)?;
            let (_, token) = cairn.create_consumer(&system, &name, allow_create_app)?;
            cairn.flush()?;
            out(&format!("consumer '{name}' created. Its Open API token (shown only now):\n{token}"))
        }
        Some(Command::Consumer(ConsumerCommand::Grant { name, app, namespace, env })) => {
            let cairn = open_service(&settings)?;
            cairn.grant_consumer(&system, &name, &app, namespace.as_deref(), env.as_deref())?;
            cairn.flush()?;
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
            };
            actix_web::rt::System::new().block_on(crate::agent::run(opts))
        }
        Some(Command::Check) => {
            let store = Store::open(&settings.data)?;
            let report = store.check()?;
            out(&format!(
                "checked {} releases, {} namespaces, {} history entries",
                report.releases, report.namespaces, report.history_entries
            ))?;
            if report.problems.is_empty() {
                out("OK: no problems found")
            } else {
                for p in &report.problems {
                    out(&format!("PROBLEM: {}", p.0))?;
                }
                bail!("{} problem(s) found; restore the damaged data from a backup", report.problems.len())
            }
        }
        Some(Command::Backup { file }) => {
            let store = Store::open(&settings.data)?;
            let summary =
                store.backup(&file, now_ms()).with_context(|| format!("backup to {} failed", file.display()))?;
            out(&format!("backup written to {}: {} records, {} bytes", file.display(), summary.records, summary.bytes))
        }
        Some(Command::Restore { file }) => {
            let store = Store::open(&settings.data)?;
            let summary = store.restore(&file)?;
            out(&format!(
                "restored {} records from {} into {}",
                summary.records,
                file.display(),
                settings.data.display()
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
