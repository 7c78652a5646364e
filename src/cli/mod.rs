//! Command-line interface: flags, subcommands and settings layering (this file), and
//! running the parsed commands (`run.rs`).

mod run;

pub use run::run;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::settings::{LogFormat, Overrides, Settings};

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
    /// PostgreSQL database to use instead of the data directory's embedded store
    /// (postgres://USER:PASSWORD@HOST:PORT/DATABASE).
    #[arg(long, global = true, env = "CAIRN_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
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
        /// Keep every release-notification id as in the backup (moving Cairn to another
        /// engine while clients stay connected). By default a restore moves every id a
        /// million ahead, so clients holding newer ids re-fetch the restored values.
        #[arg(long)]
        keep_notification_ids: bool,
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
            database_url: self.database_url.clone().map(crate::settings::DatabaseUrl),
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
        "CAIRN_REQUIRE_PG",
        "CAIRN_TEST_ENGINE",
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
