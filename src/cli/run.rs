//! Running the parsed command line: the server, the agent, and the data commands (users,
//! consumers, check, backup, restore), which act through a running server's local admin API
//! when the data directory is locked by it.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};

use super::{init_logs, warn_unknown_env_vars, Cli, Command, ConsumerCommand, UserCommand};
use crate::service::{Cairn, Caller};
use crate::settings::Settings;
use crate::store::{Repo, StoreConfig};

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

/// An open repository.
type Store = Arc<dyn Repo>;

/// The bare store (no read model: works on damaged data), or the server holding it.
fn store_target(settings: &Settings) -> anyhow::Result<Target<Store>> {
    target_with(settings, |s| Ok(crate::store::open(&crate::server::store_config(s))?))
}

/// A temporary copy of the data directory, removed when dropped.
struct ScratchCopy(PathBuf);

impl Drop for ScratchCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The store to check: as [`store_target`], but a read-only data directory (which the
/// embedded store cannot open) is copied to a temporary directory and the copy is checked,
/// saying so.
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
            Ok((Target::Local(crate::store::open(&StoreConfig::Sled { path: copy.0.clone() })?), Some(copy)))
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
                    let r = crate::store::check(&*store)?;
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
                    let s = crate::store::backup(&*store, &file, now)
                        .with_context(|| format!("backup to {} failed", file.display()))?;
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
        Some(Command::Restore { file, keep_notification_ids }) => {
            let store = crate::store::open(&crate::server::store_config(&settings)).map_err(|e| match e {
                crate::store::StoreError::Locked { path } => anyhow::anyhow!(
                    "{} is in use by a running server; restore into a new, empty directory (--data) and start Cairn on it",
                    path.display()
                ),
                other => other.into(),
            })?;
            let options = crate::store::RestoreOptions { keep_notification_ids };
            let summary = crate::store::restore(&*store, &file, options)?;
            let ids = match summary.notification_ids {
                crate::store::NotificationIds::Advanced { from } => format!(
                    "release notifications now start at {from}, so every client re-fetches the restored \
                     configuration when it reconnects"
                ),
                crate::store::NotificationIds::Kept => {
                    "release-notification ids were kept as in the backup, so connected clients see no change".into()
                }
            };
            out(&format!(
                "restored {} records from {} into {}; {ids}",
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
