//! Running the server: open the store, bind listeners, serve, and shut down gracefully on
//! SIGTERM/SIGINT (answer held long polls at once, finish in-flight writes, flush, exit 0).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::service::{Cairn, ServiceSettings};
use crate::settings::Settings;
use crate::web::{self, AppState};

/// File in the data directory telling local admin commands how to reach the running server.
pub const ADMIN_FILE: &str = "admin.json";

/// How the CLI reaches a running server's local admin API.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct AdminEndpoint {
    pub url: String,
    pub token: String,
}

/// Writes `admin.json` (owner-only) with a fresh token; returns the token.
fn write_admin_file(path: &std::path::Path, addr: std::net::SocketAddr) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let endpoint =
        AdminEndpoint { url: format!("http://{host}:{}", addr.port()), token: crate::security::token::random_hex(20) };
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(serde_json::to_string(&endpoint)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(endpoint.token)
}

/// Opens the store and builds the service for `settings`.
pub fn open(settings: &Settings) -> anyhow::Result<Arc<Cairn>> {
    let repo = crate::store::open(&store_config(settings))?;
    let cairn = Cairn::new(repo, service_settings(settings))?;
    Ok(cairn)
}

/// Which storage engine `settings` ask for.
pub fn store_config(settings: &Settings) -> crate::store::StoreConfig {
    match &settings.database_url {
        Some(url) => crate::store::StoreConfig::Postgres { url: url.0.clone() },
        None => crate::store::StoreConfig::Sled { path: settings.data.clone() },
    }
}

/// The service-layer view of these settings.
pub fn service_settings(settings: &Settings) -> ServiceSettings {
    ServiceSettings {
        envs: settings.envs.iter().map(|(n, _)| n.clone()).collect(),
        long_poll: std::time::Duration::from_secs(settings.long_poll_timeout_secs),
        key_max: settings.key_max,
        value_max: settings.value_max,
        access_key_skew_ms: (settings.access_key_skew_secs as i64).saturating_mul(1000),
        four_eyes_envs: settings.envs.iter().filter(|(_, s)| s.four_eyes).map(|(n, _)| n.clone()).collect(),
        emergency_publish_envs: settings
            .envs
            .iter()
            .filter(|(_, s)| s.emergency_publish)
            .map(|(n, _)| n.clone())
            .collect(),
        session_idle: std::time::Duration::from_secs(settings.session_idle_secs),
        session_max: std::time::Duration::from_secs(settings.session_max_secs),
        only_granted_create_apps: settings.only_granted_create_apps,
        instances: crate::service::instances::Limits {
            per_app: settings.instances_max_per_app,
            total: settings.instances_max_total,
            expiry_ms: i64::try_from(settings.instances_expiry_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX),
            audit_max: settings.audit_max_records,
        },
    }
}

/// Connections the kernel may queue on a listener before Cairn accepts them. The standard
/// library's `TcpListener::bind` asks for 128, and actix's `.backlog()` applies only to addresses
/// actix binds itself, so every client reconnecting after a restart overflowed the queue and
/// waited out SYN retries. Linux caps it at `net.core.somaxconn` (4096 by default).
pub const LISTEN_BACKLOG: i32 = 4096;

fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let hint = || format!("cannot listen on {addr}; is another process using it? (set --listen / CAIRN_LISTEN)");
    let mut last = None;
    for candidate in addr.to_socket_addrs().with_context(|| format!("cannot resolve listen address {addr}"))? {
        match bind_one(candidate) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => anyhow::Error::new(e).context(hint()),
        None => anyhow::anyhow!("listen address {addr} resolves to no address"),
    })
}

/// Binds like `TcpListener::bind` (with `SO_REUSEADDR`, as the standard library sets on Unix)
/// but with [`LISTEN_BACKLOG`].
fn bind_one(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Binds every listener: the main one, then one per env with a dedicated `listen`.
pub fn bind_all(settings: &Settings) -> anyhow::Result<(TcpListener, Vec<(String, TcpListener)>)> {
    let main = bind(&settings.listen)?;
    let mut envs = Vec::new();
    for (name, s) in &settings.envs {
        if let Some(listen) = &s.listen {
            envs.push((name.clone(), bind(listen)?));
        }
    }
    Ok((main, envs))
}

/// Creates the first admin from `CAIRN_ADMIN_USER` and `CAIRN_ADMIN_PASSWORD_FILE` (or
/// `CAIRN_ADMIN_PASSWORD`) when no user exists yet — how a Kubernetes Secret bootstraps Cairn.
/// There is no default password: without these variables nothing is created.
fn bootstrap_admin(cairn: &Cairn) -> anyhow::Result<()> {
    let Ok(name) = std::env::var("CAIRN_ADMIN_USER") else { return Ok(()) };
    if !cairn.list_users()?.is_empty() {
        return Ok(());
    }
    let password = match std::env::var("CAIRN_ADMIN_PASSWORD_FILE") {
        Ok(file) => {
            std::fs::read_to_string(&file).with_context(|| format!("cannot read CAIRN_ADMIN_PASSWORD_FILE {file}"))?
        }
        Err(_) => std::env::var("CAIRN_ADMIN_PASSWORD")
            .context("CAIRN_ADMIN_USER is set: also set CAIRN_ADMIN_PASSWORD_FILE or CAIRN_ADMIN_PASSWORD")?,
    };
    cairn.create_user(
        &crate::service::Caller::system("bootstrap"),
        name.trim(),
        password.trim_end_matches(['\r', '\n']),
        true,
    )?;
    tracing::info!(user = name.trim(), "created the first admin from CAIRN_ADMIN_USER");
    Ok(())
}

/// Serves until SIGTERM or SIGINT, then shuts down within a few seconds.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Nothing is served yet, so this thread may wait on storage (the index is loaded here).
    let cairn = crate::service::storage_may_wait(|| open(&settings))?;
    bootstrap_admin(&cairn)?;
    let (main, envs) = bind_all(&settings)?;
    let addr = main.local_addr()?;
    // The local admin API lets CLI commands reach a data directory the server holds; a
    // database is open to every process, so with one there is no data directory to share.
    let admin = match &settings.database_url {
        None => {
            let file = settings.data.join(ADMIN_FILE);
            let token = write_admin_file(&file, addr)?;
            Some((file, token))
        }
        Some(_) => None,
    };
    let storage = match &settings.database_url {
        Some(url) => format!("{url:?}"),
        None => settings.data.display().to_string(),
    };
    tracing::info!(storage = %storage, envs = ?service_settings(&settings).envs, "cairn listening on http://{addr}");
    for (env, l) in &envs {
        tracing::info!("env {env} listening on http://{}", l.local_addr()?);
    }
    if let Some(token) = crate::service::storage_may_wait(|| cairn.setup_token())? {
        let target = match &settings.database_url {
            Some(_) => "--database-url URL".to_string(),
            None => format!("--data {}", settings.data.display()),
        };
        tracing::warn!(
            "first run: no users yet. Open http://{addr}/setup?token={token} to create the first admin, \
             or run `cairn user add NAME --admin {target}`"
        );
    }
    let mut state = AppState::new(cairn.clone(), settings);
    state.admin_token = admin.as_ref().map(|(_, token)| token.clone());
    let servers = web::start(state, main, envs)?;
    let handles: Vec<_> = servers.iter().map(|s| s.handle()).collect();
    let mut tasks: Vec<_> = servers.into_iter().map(actix_web::rt::spawn).collect();
    wait_for_signal().await;
    tracing::info!("shutting down: answering held long polls, finishing requests");
    cairn.release_long_polls();
    let stops = handles.iter().map(|h| h.stop(true));
    let _ = tokio::time::timeout(Duration::from_secs(4), futures_join(stops)).await;
    for t in tasks.drain(..) {
        t.abort();
    }
    // Every listener has stopped: nothing else waits on this thread.
    crate::service::storage_may_wait(|| cairn.flush())?;
    if let Some((file, _)) = &admin {
        let _ = std::fs::remove_file(file);
    }
    tracing::info!("stopped");
    Ok(())
}

async fn futures_join<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    for f in futs {
        f.await;
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
