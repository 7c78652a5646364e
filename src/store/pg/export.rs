//! Every record from one point in time: a REPEATABLE READ, READ ONLY transaction (writers
//! go on), read table by table through a server-side cursor, a page at a time, so memory
//! stays flat however large the database is.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, Row};

use super::conn::map_error;
use super::{rows, PgRepo};
use crate::store::repo::{Counter, NsKey, Record, Result};

/// Rows fetched per page.
const PAGE: usize = 500;

/// Releases fetched per page: a release may hold megabytes.
const RELEASE_PAGE: usize = 16;

/// Deadline of one export call. An export is maintenance, not a request: a page may take
/// longer than a request's statement, but a frozen database still fails it in bounded time.
const EXPORT_CALL: Duration = Duration::from_secs(35);

type Decode = fn(&Row) -> Result<Record>;

/// A string as an SQL literal (env names follow the name rule; quotes are doubled anyway).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn ns_of(row: &Row, table: &'static str) -> Result<NsKey> {
    let r = rows::R { row, table };
    Ok(NsKey { env: r.get("env")?, app: r.get("app_id")?, cluster: r.get("cluster")?, ns: r.get("namespace")? })
}

fn env_of(row: &Row, table: &'static str) -> Result<String> {
    rows::R { row, table }.get("env")
}

fn counter(row: &Row) -> Result<Option<Record>> {
    let r = rows::R { row, table: "counters" };
    let name: String = r.get("name")?;
    let value = r.u64("value")?;
    Ok(Counter::ALL.into_iter().find(|c| c.name() == name).map(|counter| Record::Counter { counter, value }))
}

pub(super) fn export(repo: &PgRepo, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
    let conn = repo.conn();
    let checkout = conn.checkout_future();
    let pooled = conn.run(conn.options.call_timeout, async move {
        let pooled = checkout.await?;
        pooled
            .client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = 30000")
            .await
            .map_err(map_error)?;
        Ok(pooled)
    })?;
    let client = pooled.client.clone();
    let out = export_in(repo, &client, sink);
    drop(client);
    match out {
        Ok(()) => {
            let pooled = conn.run(conn.options.call_timeout, async move {
                pooled.client.batch_execute("COMMIT").await.map_err(map_error)?;
                Ok(pooled)
            })?;
            conn.give_back(pooled);
            Ok(())
        }
        // Dropping the connection ends the snapshot.
        Err(e) => Err(e),
    }
}

fn export_in(repo: &PgRepo, client: &Arc<Client>, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
    // Counters first: a restore sets them before replaying anything that carries ids.
    // In `Counter::ALL` order, as the sled engine writes them.
    let mut counters: Vec<Record> =
        fetch_all(repo, client, "SELECT * FROM counters", counter)?.into_iter().flatten().collect();
    counters.sort_by_key(|r| match r {
        Record::Counter { counter, .. } => Counter::ALL.iter().position(|c| c == counter),
        _ => None,
    });
    for rec in counters {
        sink(rec)?;
    }
    let global: [(&str, Decode); 4] = [
        ("SELECT * FROM apps ORDER BY app_id", |r| Ok(Record::App { app: rows::app(r)? })),
        ("SELECT * FROM app_namespaces ORDER BY app_id, name", |r| {
            Ok(Record::AppNamespace { app_namespace: rows::app_namespace(r)? })
        }),
        ("SELECT * FROM users ORDER BY name", |r| Ok(Record::User { user: rows::user(r)? })),
        ("SELECT * FROM consumers ORDER BY name", |r| Ok(Record::Consumer { consumer: rows::consumer(r)? })),
    ];
    for (sql, decode) in global {
        stream(repo, client, sql, decode, PAGE, sink)?;
    }
    let envs: Vec<String> = fetch_all(
        repo,
        client,
        "SELECT env FROM clusters UNION SELECT env FROM namespaces UNION SELECT env FROM items \
         UNION SELECT env FROM releases UNION SELECT env FROM release_history UNION SELECT env FROM branches \
         UNION SELECT env FROM release_messages UNION SELECT env FROM commits UNION SELECT env FROM access_keys \
         UNION SELECT env FROM instances ORDER BY 1",
        |r| rows::R { row: r, table: "env" }.get("env"),
    )?;
    for env in envs {
        let e = literal(&env);
        let per_env: [(String, Decode); 10] = [
            (format!("SELECT * FROM clusters WHERE env = {e} ORDER BY app_id, name"), |r| {
                Ok(Record::Cluster { env: env_of(r, "clusters")?, cluster: rows::cluster(r)? })
            }),
            (format!("SELECT * FROM namespaces WHERE env = {e} ORDER BY app_id, cluster, name"), |r| {
                Ok(Record::Namespace { env: env_of(r, "namespaces")?, namespace: rows::namespace(r)? })
            }),
            (format!("SELECT * FROM items WHERE env = {e} ORDER BY app_id, cluster, namespace, key"), |r| {
                Ok(Record::Item { ns: ns_of(r, "items")?, item: rows::item(r)? })
            }),
            (format!("SELECT * FROM releases WHERE env = {e} ORDER BY id"), |r| {
                Ok(Record::Release { env: env_of(r, "releases")?, release: rows::release(r)? })
            }),
            (format!("SELECT * FROM release_history WHERE env = {e} ORDER BY app_id, cluster, namespace, seq"), |r| {
                Ok(Record::History { ns: ns_of(r, "release_history")?, entry: rows::history(r)? })
            }),
            (format!("SELECT * FROM branches WHERE env = {e} ORDER BY app_id, parent_cluster, namespace"), |r| {
                Ok(Record::Branch { env: env_of(r, "branches")?, branch: rows::branch(r)? })
            }),
            (format!("SELECT * FROM release_messages WHERE env = {e} ORDER BY watch_key"), |r| {
                Ok(Record::Message { message: rows::message(r)? })
            }),
            (format!("SELECT * FROM commits WHERE env = {e} ORDER BY app_id, cluster, namespace, id"), |r| {
                Ok(Record::Commit { ns: ns_of(r, "commits")?, commit: rows::commit(r)? })
            }),
            (format!("SELECT * FROM access_keys WHERE env = {e} ORDER BY app_id, id"), |r| {
                Ok(Record::AccessKey { env: env_of(r, "access_keys")?, key: rows::access_key(r)? })
            }),
            (
                format!(
                    "SELECT * FROM instances WHERE env = {e} \
                     ORDER BY app_id, cluster, data_center, ip, config_app_id, config_namespace"
                ),
                |r| {
                    let (env, instance) = rows::instance(r)?;
                    Ok(Record::Instance { env, instance })
                },
            ),
        ];
        for (sql, decode) in per_env {
            let page = if sql.contains("FROM releases ") { RELEASE_PAGE } else { PAGE };
            stream(repo, client, &sql, decode, page, sink)?;
        }
    }
    let audit: Decode = |r| Ok(Record::Audit { entry: rows::audit(r)? });
    stream(repo, client, "SELECT * FROM audit ORDER BY id", audit, PAGE, sink)
}

/// Runs `sql` through a cursor and hands every decoded row to `sink`, `page_rows` at a time.
fn stream(
    repo: &PgRepo,
    client: &Arc<Client>,
    sql: &str,
    decode: Decode,
    page_rows: usize,
    sink: &mut dyn FnMut(Record) -> Result<()>,
) -> Result<()> {
    let conn = repo.conn();
    let declare = format!("DECLARE cairn_export NO SCROLL CURSOR FOR {sql}");
    let c = client.clone();
    conn.run(EXPORT_CALL, async move { c.batch_execute(&declare).await.map_err(map_error) })?;
    loop {
        let c = client.clone();
        let page = conn.run(EXPORT_CALL, async move {
            let rows = c.query(&format!("FETCH {page_rows} FROM cairn_export"), &[]).await.map_err(map_error)?;
            rows.iter().map(decode).collect::<Result<Vec<Record>>>()
        })?;
        let done = page.len() < page_rows;
        for rec in page {
            sink(rec)?;
        }
        if done {
            break;
        }
    }
    let c = client.clone();
    conn.run(EXPORT_CALL, async move { c.batch_execute("CLOSE cairn_export").await.map_err(map_error) })
}

/// A small query read at once (counters, env names).
fn fetch_all<T: Send + 'static>(
    repo: &PgRepo,
    client: &Arc<Client>,
    sql: &'static str,
    decode: fn(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    let conn = repo.conn();
    let c = client.clone();
    conn.run(EXPORT_CALL, async move {
        let rows = c.query(sql, &[]).await.map_err(map_error)?;
        rows.iter().map(decode).collect::<Result<Vec<T>>>()
    })
}
