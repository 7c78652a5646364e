//! The PostgreSQL engine: [`Repo`] and [`Tx`] over relational tables.
//!
//! Every call runs on the engine's own small runtime with a deadline (see `conn.rs`), so a
//! database that is down or frozen gives [`StoreError::Database`] in bounded time and the
//! engine reconnects by itself on a later call. A change holds one connection in one SQL
//! transaction that first locks the `cairn_lock` row: changes are serialised across every
//! process sharing the database, and ids come from counter rows bumped under that lock
//! (gapless, in commit order).

mod conn;
mod export;
mod rows;
mod schema;
mod tx;

use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub use conn::PgOptions;
pub use schema::PG_SCHEMA_VERSION;

use super::repo::{AuditFilter, Counter, EngineKind, Health, Message, NsKey, Record, Repo, Result, Tx};
use super::StoreError;
use crate::domain::model::{
    AccessKey, App, AppNamespace, AuditEntry, Branch, Cluster, Commit, Consumer, HistoryEntry, InstanceConfig, Item,
    Namespace, Release, User,
};
use conn::{map_error, Conn, Gate};
use rows::big;

/// An owned statement parameter (calls run on another thread).
type P = Box<dyn ToSql + Sync + Send>;

fn s(v: &str) -> P {
    Box::new(v.to_string())
}

fn n(v: i64) -> P {
    Box::new(v)
}

fn limit(v: usize) -> P {
    Box::new(i64::try_from(v).unwrap_or(i64::MAX))
}

/// Extra time a write allows per record, beyond the call deadline.
const PER_RECORD: Duration = Duration::from_millis(5);

/// A PostgreSQL database used as Cairn's storage.
pub struct PgRepo {
    conn: Conn,
    gate: Gate,
    /// The database as operators name it, without the password.
    target: String,
}

impl PgRepo {
    /// Connects to `url` (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`, or libpq's
    /// `key=value` form), creates or upgrades the schema, and checks that this build
    /// understands it. Errors are one line saying what to check.
    pub fn open(url: &str, options: PgOptions) -> Result<PgRepo> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::DatabaseOpen {
            target: "the database URL".into(),
            reason: format!("{e}; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE"),
        })?;
        config
            .application_name("cairn")
            .connect_timeout(options.call_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10));
        let target = describe(&config);
        let conn = Conn::new(config, options)
            .map_err(|e| StoreError::DatabaseOpen { target: target.clone(), reason: e.to_string() })?;
        // Connecting has the call deadline; migrating may wait for another node's migration.
        let checkout = conn.checkout_future();
        let first = conn.run(conn.options.call_timeout, checkout).and_then(|pooled| {
            conn.run(Duration::from_secs(40), async move {
                schema::migrate(&pooled.client).await?;
                Ok(pooled)
            })
        });
        match first {
            Ok(pooled) => conn.give_back(pooled),
            Err(e) => return Err(open_error(e, &target)),
        }
        Ok(PgRepo { conn, gate: Gate::new(), target })
    }

    /// The database as operators name it (`postgres://user@host:port/db`, no password).
    pub fn target(&self) -> &str {
        &self.target
    }

    fn rows<T, F>(&self, sql: impl Into<String>, params: Vec<P>, decode: F) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(&Row) -> Result<T> + Send + 'static,
    {
        let sql = sql.into();
        self.conn.call(move |client| async move {
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
            let rows = match client.query(sql.as_str(), &refs).await {
                Ok(rows) => rows,
                // A parameter PostgreSQL cannot hold as text (a name with U+0000 from a
                // request path): no stored row can match it, as on sled.
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::CHARACTER_NOT_IN_REPERTOIRE) => {
                    return Ok(Vec::new())
                }
                Err(e) => return Err(map_error(e)),
            };
            rows.iter().map(decode).collect()
        })
    }

    fn row<T, F>(&self, sql: impl Into<String>, params: Vec<P>, decode: F) -> Result<Option<T>>
    where
        T: Send + 'static,
        F: Fn(&Row) -> Result<T> + Send + 'static,
    {
        Ok(self.rows(sql, params, decode)?.into_iter().next())
    }

    fn scalar<T>(&self, sql: &'static str, params: Vec<P>) -> Result<T>
    where
        T: for<'a> tokio_postgres::types::FromSql<'a> + Send + 'static,
    {
        self.row(sql, params, |r| r.try_get::<_, T>(0).map_err(map_error))?
            .ok_or_else(|| StoreError::Query { reason: format!("no row from: {sql}") })
    }

    /// Writes records in one transaction of their own, outside the lock row.
    fn write_batch(&self, records: Vec<Record>, prefix: &'static str) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let deadline = self.conn.options.call_timeout + PER_RECORD * u32::try_from(records.len()).unwrap_or(u32::MAX);
        self.conn.call_within(deadline, move |client| async move {
            client.batch_execute(prefix).await.map_err(map_error)?;
            for r in &records {
                if let Err(e) = rows::write(&client, r).await {
                    // A connection left inside a failed transaction must not go back to
                    // the pool: a failed rollback makes the error a Database one, which
                    // discards the connection.
                    return match client.batch_execute("ROLLBACK").await {
                        Ok(()) => Err(e),
                        Err(r) => Err(StoreError::Database { reason: format!("{e}; rollback failed: {r}") }),
                    };
                }
            }
            client.batch_execute("COMMIT").await.map_err(map_error)
        })
    }
}

/// Where a database URL points, `postgres://user@host:port/db`, without its password (for
/// messages); a URL that does not parse is named only as such.
pub fn describe_url(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(config) => describe(&config),
        Err(_) => "the database URL".into(),
    }
}

/// `postgres://user@host:port/db` from a parsed URL, without the password.
fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().or(config.get_user()).unwrap_or("")
    )
}

/// A failure at start as one line: what went wrong and what to check.
fn open_error(e: StoreError, target: &str) -> StoreError {
    let reason = match e {
        StoreError::Schema { found, expected } => format!(
            "its schema is version {found}, newer than this Cairn build understands ({expected}); \
             run a Cairn release at least as new as the newest one that has used this database"
        ),
        StoreError::Query { reason } if reason.contains("(28") => {
            format!("{reason}; check the user name and password in the database URL")
        }
        StoreError::Query { reason } if reason.contains("(3D000)") => {
            format!("{reason}; create the database first (CREATE DATABASE ...) or fix its name in the URL")
        }
        StoreError::Query { reason } if reason.contains("(42501)") => {
            format!("{reason}; the user needs the right to create tables in the database (CREATE on its schema)")
        }
        StoreError::Database { reason } if reason.contains("TLS") => format!(
            "{reason}; Cairn connects to PostgreSQL without TLS: use sslmode=disable or sslmode=prefer in the URL \
             (on a trusted network, or through a TLS tunnel)"
        ),
        StoreError::Database { reason } => format!(
            "{reason}; check that PostgreSQL runs there, accepts connections from this host (listen_addresses, \
             pg_hba.conf) and is not paused"
        ),
        other => other.to_string(),
    };
    StoreError::DatabaseOpen { target: target.to_string(), reason }
}

fn ns_params(ns: &NsKey) -> Vec<P> {
    vec![s(&ns.env), s(&ns.app), s(&ns.cluster), s(&ns.ns)]
}

const NS_WHERE: &str = "env = $1 AND app_id = $2 AND cluster = $3 AND namespace = $4";

/// Tables holding data (everything but counters, the schema version and the lock row).
const DATA_TABLES: [&str; 15] = [
    "apps",
    "app_namespaces",
    "clusters",
    "namespaces",
    "items",
    "releases",
    "release_history",
    "branches",
    "release_messages",
    "commits",
    "audit",
    "access_keys",
    "users",
    "consumers",
    "instances",
];

impl Repo for PgRepo {
    fn kind(&self) -> EngineKind {
        EngineKind::Postgres
    }

    fn app(&self, app: &str) -> Result<Option<App>> {
        self.row("SELECT * FROM apps WHERE app_id = $1", vec![s(app)], rows::app)
    }

    fn apps(&self) -> Result<Vec<App>> {
        self.rows("SELECT * FROM apps ORDER BY app_id", vec![], rows::app)
    }

    fn app_namespace(&self, app: &str, ns: &str) -> Result<Option<AppNamespace>> {
        self.row(
            "SELECT * FROM app_namespaces WHERE app_id = $1 AND name = $2",
            vec![s(app), s(ns)],
            rows::app_namespace,
        )
    }

    fn app_namespaces(&self, app: Option<&str>) -> Result<Vec<AppNamespace>> {
        match app {
            Some(app) => self.rows(
                "SELECT * FROM app_namespaces WHERE app_id = $1 ORDER BY name",
                vec![s(app)],
                rows::app_namespace,
            ),
            None => self.rows("SELECT * FROM app_namespaces ORDER BY app_id, name", vec![], rows::app_namespace),
        }
    }

    fn cluster(&self, env: &str, app: &str, cluster: &str) -> Result<Option<Cluster>> {
        self.row(
            "SELECT * FROM clusters WHERE env = $1 AND app_id = $2 AND name = $3",
            vec![s(env), s(app), s(cluster)],
            rows::cluster,
        )
    }

    fn clusters(&self, env: &str, app: &str) -> Result<Vec<Cluster>> {
        self.rows(
            "SELECT * FROM clusters WHERE env = $1 AND app_id = $2 ORDER BY name",
            vec![s(env), s(app)],
            rows::cluster,
        )
    }

    fn namespace(&self, ns: &NsKey) -> Result<Option<Namespace>> {
        self.row(
            "SELECT * FROM namespaces WHERE env = $1 AND app_id = $2 AND cluster = $3 AND name = $4",
            ns_params(ns),
            rows::namespace,
        )
    }

    fn namespaces(&self, env: &str, app: Option<&str>, cluster: Option<&str>) -> Result<Vec<Namespace>> {
        let mut sql = String::from("SELECT * FROM namespaces WHERE env = $1");
        let mut params = vec![s(env)];
        if let Some(app) = app {
            params.push(s(app));
            sql.push_str(&format!(" AND app_id = ${}", params.len()));
        }
        if let Some(cluster) = cluster {
            params.push(s(cluster));
            sql.push_str(&format!(" AND cluster = ${}", params.len()));
        }
        sql.push_str(" ORDER BY app_id, cluster, name");
        self.rows(sql, params, rows::namespace)
    }

    fn item(&self, ns: &NsKey, key: &str) -> Result<Option<Item>> {
        let mut params = ns_params(ns);
        params.push(s(key));
        self.row(format!("SELECT * FROM items WHERE {NS_WHERE} AND key = $5"), params, rows::item)
    }

    fn items(&self, ns: &NsKey) -> Result<Vec<Item>> {
        self.rows(format!("SELECT * FROM items WHERE {NS_WHERE} ORDER BY key"), ns_params(ns), rows::item)
    }

    fn release(&self, env: &str, id: u64) -> Result<Option<Release>> {
        self.row("SELECT * FROM releases WHERE env = $1 AND id = $2", vec![s(env), n(big(id)?)], rows::release)
    }

    fn history(&self, ns: &NsKey, max: usize) -> Result<Vec<HistoryEntry>> {
        let mut params = ns_params(ns);
        params.push(limit(max));
        self.rows(
            format!("SELECT * FROM release_history WHERE {NS_WHERE} ORDER BY seq DESC LIMIT $5"),
            params,
            rows::history,
        )
    }

    fn branch(&self, env: &str, app: &str, parent: &str, ns: &str) -> Result<Option<Branch>> {
        self.row(
            "SELECT * FROM branches WHERE env = $1 AND app_id = $2 AND parent_cluster = $3 AND namespace = $4",
            vec![s(env), s(app), s(parent), s(ns)],
            rows::branch,
        )
    }

    fn messages(&self, env: &str) -> Result<Vec<Message>> {
        self.rows("SELECT * FROM release_messages WHERE env = $1 ORDER BY watch_key", vec![s(env)], rows::message)
    }

    fn commits(&self, ns: &NsKey, max: usize) -> Result<Vec<Commit>> {
        let mut params = ns_params(ns);
        params.push(limit(max));
        self.rows(format!("SELECT * FROM commits WHERE {NS_WHERE} ORDER BY id DESC LIMIT $5"), params, rows::commit)
    }

    fn access_key(&self, env: &str, app: &str, id: u64) -> Result<Option<AccessKey>> {
        self.row(
            "SELECT * FROM access_keys WHERE env = $1 AND app_id = $2 AND id = $3",
            vec![s(env), s(app), n(big(id)?)],
            rows::access_key,
        )
    }

    fn access_keys(&self, env: &str, app: Option<&str>) -> Result<Vec<AccessKey>> {
        match app {
            Some(app) => self.rows(
                "SELECT * FROM access_keys WHERE env = $1 AND app_id = $2 ORDER BY id",
                vec![s(env), s(app)],
                rows::access_key,
            ),
            None => self.rows(
                "SELECT * FROM access_keys WHERE env = $1 ORDER BY app_id, id",
                vec![s(env)],
                rows::access_key,
            ),
        }
    }

    fn user(&self, name: &str) -> Result<Option<User>> {
        self.row("SELECT * FROM users WHERE name = $1", vec![s(name)], rows::user)
    }

    fn users(&self) -> Result<Vec<User>> {
        self.rows("SELECT * FROM users ORDER BY name", vec![], rows::user)
    }

    fn has_users(&self) -> Result<bool> {
        self.scalar("SELECT EXISTS (SELECT 1 FROM users)", vec![])
    }

    fn consumer(&self, name: &str) -> Result<Option<Consumer>> {
        self.row("SELECT * FROM consumers WHERE name = $1", vec![s(name)], rows::consumer)
    }

    fn consumer_by_token(&self, token_sha256: &str) -> Result<Option<Consumer>> {
        if token_sha256.is_empty() {
            return Ok(None);
        }
        self.row("SELECT * FROM consumers WHERE token_sha256 = $1", vec![s(token_sha256)], rows::consumer)
    }

    fn consumers(&self) -> Result<Vec<Consumer>> {
        self.rows("SELECT * FROM consumers ORDER BY name", vec![], rows::consumer)
    }

    fn audit(&self, filter: &AuditFilter, max: usize) -> Result<Vec<AuditEntry>> {
        let mut sql = String::from("SELECT * FROM audit WHERE true");
        let mut params: Vec<P> = Vec::new();
        let mut add = |cond: &str, p: P, params: &mut Vec<P>| {
            params.push(p);
            sql.push_str(&cond.replace("$?", &format!("${}", params.len())));
        };
        if let Some(actor) = &filter.actor {
            add(" AND actor = $?", s(actor), &mut params);
        }
        if let Some(prefix) = &filter.action_prefix {
            add(" AND starts_with(action, $?)", s(prefix), &mut params);
        }
        if let Some(env) = &filter.env {
            add(" AND env = $?", s(env), &mut params);
        }
        if let Some(text) = &filter.target_contains {
            add(" AND strpos(target, $?) > 0", s(text), &mut params);
        }
        if let Some(before) = filter.before_id {
            add(" AND id < $?", n(big(before)?), &mut params);
        }
        add(" ORDER BY id DESC LIMIT $?", limit(max), &mut params);
        self.rows(sql, params, rows::audit)
    }

    fn instance(&self, env: &str, probe: &InstanceConfig) -> Result<Option<InstanceConfig>> {
        let p = probe;
        self.row(
            "SELECT * FROM instances WHERE env = $1 AND app_id = $2 AND cluster = $3 AND data_center = $4 \
             AND ip = $5 AND config_app_id = $6 AND config_namespace = $7",
            vec![
                s(env),
                s(&p.app_id),
                s(&p.cluster),
                s(&p.data_center),
                s(&p.ip),
                s(&p.config_app_id),
                s(&p.config_namespace),
            ],
            |r| rows::instance(r).map(|(_, i)| i),
        )
    }

    fn instances(&self, env: Option<&str>) -> Result<Vec<(String, InstanceConfig)>> {
        const ORDER: &str = "ORDER BY env, app_id, cluster, data_center, ip, config_app_id, config_namespace";
        match env {
            Some(env) => {
                self.rows(format!("SELECT * FROM instances WHERE env = $1 {ORDER}"), vec![s(env)], rows::instance)
            }
            None => self.rows(format!("SELECT * FROM instances {ORDER}"), vec![], rows::instance),
        }
    }

    fn counter(&self, counter: Counter) -> Result<u64> {
        let v = self.row("SELECT value FROM counters WHERE name = $1", vec![s(counter.name())], |r| {
            rows::R { row: r, table: "counters" }.u64("value")
        })?;
        Ok(v.unwrap_or(0))
    }

    fn begin(&self) -> Result<Box<dyn Tx + '_>> {
        tx::begin(self).map(|t| Box::new(t) as Box<dyn Tx + '_>)
    }

    fn write_unlocked(&self, records: Vec<Record>) -> Result<()> {
        // Best effort by contract: a crash may lose the last of these, so no flush is awaited.
        self.write_batch(records, "BEGIN; SET LOCAL synchronous_commit = off")
    }

    fn prune_audit(&self, keep: u64) -> Result<u64> {
        let bounds = self.row("SELECT min(id) AS first, max(id) AS last FROM audit", vec![], |r| {
            let r = rows::R { row: r, table: "audit" };
            Ok((r.get::<Option<i64>>("first")?, r.get::<Option<i64>>("last")?))
        })?;
        let Some((Some(first), Some(last))) = bounds else { return Ok(0) };
        // Ids are gapless and pruning takes the oldest, so the count is the id span.
        let cut = last.saturating_sub(big(keep)?);
        let mut deleted = 0;
        let mut from = first;
        while from <= cut {
            let to = cut.min(from.saturating_add(9_999));
            deleted += self.conn.call(move |client| async move {
                client.execute("DELETE FROM audit WHERE id >= $1 AND id <= $2", &[&from, &to]).await.map_err(map_error)
            })?;
            from = to.saturating_add(1);
        }
        Ok(deleted)
    }

    fn health(&self) -> Health {
        match self.scalar::<bool>("SELECT pg_is_in_recovery()", vec![]) {
            Ok(false) => Health { up: true, writable: true, reason: None },
            Ok(true) => Health {
                up: true,
                writable: false,
                reason: Some(format!("the database at {} is a read-only standby", self.target)),
            },
            Err(e) => Health { up: false, writable: false, reason: Some(e.to_string()) },
        }
    }

    fn size_bytes(&self) -> u64 {
        self.scalar::<i64>("SELECT pg_database_size(current_database())", vec![])
            .map(|v| u64::try_from(v).unwrap_or(0))
            .unwrap_or(0)
    }

    fn flush(&self) -> Result<()> {
        // Every change is acknowledged only after COMMIT (synchronous_commit on).
        Ok(())
    }

    fn export(&self, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        export::export(self, sink)
    }

    fn is_empty(&self) -> Result<bool> {
        let any: Vec<String> = DATA_TABLES.iter().map(|t| format!("EXISTS (SELECT 1 FROM {t})")).collect();
        let sql = format!("SELECT NOT ({})", any.join(" OR "));
        let v = self.row(sql, vec![], |r| r.try_get::<_, bool>(0).map_err(map_error))?;
        Ok(v.unwrap_or(false))
    }
}

/// Shared with `tx.rs` and `export.rs`.
impl PgRepo {
    fn conn(&self) -> &Conn {
        &self.conn
    }
}
