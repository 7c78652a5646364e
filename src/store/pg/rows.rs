//! Records to rows and back: one decoder per table, and the statement each [`Record`] is
//! written with. Decoding never panics: a row that does not fit is
//! [`StoreError::Corrupt`] naming the table and column.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_postgres::types::{FromSql, Json, ToSql};
use tokio_postgres::{Client, Row};

use super::conn::map_error;
use crate::domain::model::{
    AccessKey, App, AppNamespace, AuditEntry, Branch, Cluster, Commit, Consumer, HistoryEntry, InstanceConfig, Item,
    Namespace, Release, Stamp, User,
};
use crate::store::{Message, Record, StoreError};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One row of one table, read by column name.
pub(super) struct R<'a> {
    pub row: &'a Row,
    pub table: &'static str,
}

impl R<'_> {
    fn bad(&self, col: &str, why: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt { tree: self.table, key: format!("column {col}: {why}") }
    }

    pub fn get<'b, T: FromSql<'b>>(&'b self, col: &str) -> Result<T> {
        self.row.try_get(col).map_err(|e| self.bad(col, e))
    }

    pub fn u64(&self, col: &str) -> Result<u64> {
        let v: i64 = self.get(col)?;
        u64::try_from(v).map_err(|e| self.bad(col, e))
    }

    fn json<T: DeserializeOwned>(&self, col: &str) -> Result<T> {
        let Json(v): Json<T> = self.get(col)?;
        Ok(v)
    }

    /// A unit enum stored as its serde name (`publish`, `filter`, `properties`, ...).
    fn name<T: DeserializeOwned>(&self, col: &str) -> Result<T> {
        let s: String = self.get(col)?;
        serde_json::from_value(serde_json::Value::String(s)).map_err(|e| self.bad(col, e))
    }

    fn stamp(&self) -> Result<Stamp> {
        Ok(Stamp {
            created_by: self.get("created_by")?,
            created_at: self.get("created_at")?,
            modified_by: self.get("modified_by")?,
            modified_at: self.get("modified_at")?,
        })
    }
}

/// A u64 as PostgreSQL's bigint.
pub(super) fn big(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::TooLarge { what: "number" })
}

/// A unit enum's serde name.
fn name_of<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

pub(super) fn app(row: &Row) -> Result<App> {
    let r = R { row, table: "apps" };
    Ok(App {
        app_id: r.get("app_id")?,
        name: r.get("name")?,
        org_id: r.get("org_id")?,
        org_name: r.get("org_name")?,
        owner_name: r.get("owner_name")?,
        owner_email: r.get("owner_email")?,
        stamp: r.stamp()?,
    })
}

pub(super) fn app_namespace(row: &Row) -> Result<AppNamespace> {
    let r = R { row, table: "app_namespaces" };
    Ok(AppNamespace {
        app_id: r.get("app_id")?,
        name: r.get("name")?,
        format: r.name("format")?,
        is_public: r.get("is_public")?,
        comment: r.get("comment")?,
        stamp: r.stamp()?,
    })
}

pub(super) fn cluster(row: &Row) -> Result<Cluster> {
    let r = R { row, table: "clusters" };
    Ok(Cluster {
        app_id: r.get("app_id")?,
        name: r.get("name")?,
        parent: r.get("parent")?,
        comment: r.get("comment")?,
        stamp: r.stamp()?,
    })
}

pub(super) fn namespace(row: &Row) -> Result<Namespace> {
    let r = R { row, table: "namespaces" };
    let active: Vec<i64> = r.get("active_releases")?;
    Ok(Namespace {
        app_id: r.get("app_id")?,
        cluster: r.get("cluster")?,
        name: r.get("name")?,
        active_releases: active
            .into_iter()
            .map(|v| u64::try_from(v).map_err(|e| r.bad("active_releases", e)))
            .collect::<Result<_>>()?,
        history_len: r.u64("history_len")?,
        draft_editors: r.get("draft_editors")?,
        stamp: r.stamp()?,
    })
}

pub(super) fn item(row: &Row) -> Result<Item> {
    let r = R { row, table: "items" };
    let line: i64 = r.get("line_num")?;
    Ok(Item {
        key: r.get("key")?,
        value: r.get("value")?,
        comment: r.get("comment")?,
        line_num: u32::try_from(line).map_err(|e| r.bad("line_num", e))?,
        stamp: r.stamp()?,
    })
}

pub(super) fn release(row: &Row) -> Result<Release> {
    let r = R { row, table: "releases" };
    Ok(Release {
        id: r.u64("id")?,
        release_key: r.get("release_key")?,
        app_id: r.get("app_id")?,
        cluster: r.get("cluster")?,
        namespace: r.get("namespace")?,
        title: r.get("title")?,
        comment: r.get("comment")?,
        author: r.get("author")?,
        created_at: r.get("created_at")?,
        is_emergency: r.get("is_emergency")?,
        configurations: r.json("configurations")?,
        checksum: r.get("checksum")?,
    })
}

pub(super) fn history(row: &Row) -> Result<HistoryEntry> {
    let r = R { row, table: "release_history" };
    Ok(HistoryEntry {
        seq: r.u64("seq")?,
        operation: r.name("operation")?,
        release_id: r.u64("release_id")?,
        previous_release_id: r.u64("previous_release_id")?,
        branch: r.get("branch")?,
        operator: r.get("operator")?,
        time: r.get("time")?,
    })
}

pub(super) fn branch(row: &Row) -> Result<Branch> {
    let r = R { row, table: "branches" };
    Ok(Branch {
        app_id: r.get("app_id")?,
        parent_cluster: r.get("parent_cluster")?,
        namespace: r.get("namespace")?,
        name: r.get("name")?,
        rules: r.json("rules")?,
        status: r.name("status")?,
        stamp: r.stamp()?,
    })
}

pub(super) fn message(row: &Row) -> Result<Message> {
    let r = R { row, table: "release_messages" };
    Ok(Message { env: r.get("env")?, id: r.get("id")?, content: r.get("content")? })
}

pub(super) fn commit(row: &Row) -> Result<Commit> {
    let r = R { row, table: "commits" };
    Ok(Commit { id: r.u64("id")?, operator: r.get("operator")?, time: r.get("time")?, changes: r.json("changes")? })
}

pub(super) fn audit(row: &Row) -> Result<AuditEntry> {
    let r = R { row, table: "audit" };
    Ok(AuditEntry {
        id: r.u64("id")?,
        time: r.get("time")?,
        actor: r.get("actor")?,
        claimed_operator: r.get("claimed_operator")?,
        action: r.get("action")?,
        env: r.get("env")?,
        target: r.get("target")?,
        detail: r.get("detail")?,
    })
}

pub(super) fn access_key(row: &Row) -> Result<AccessKey> {
    let r = R { row, table: "access_keys" };
    Ok(AccessKey {
        id: r.u64("id")?,
        app_id: r.get("app_id")?,
        secret: r.get("secret")?,
        mode: r.name("mode")?,
        enabled: r.get("enabled")?,
        stamp: r.stamp()?,
    })
}

pub(super) fn user(row: &Row) -> Result<User> {
    let r = R { row, table: "users" };
    Ok(User {
        name: r.get("name")?,
        display_name: r.get("display_name")?,
        email: r.get("email")?,
        password_hash: r.get("password_hash")?,
        is_admin: r.get("is_admin")?,
        enabled: r.get("enabled")?,
        grants: r.json("grants")?,
        can_create_apps: r.get("can_create_apps")?,
        stamp: r.stamp()?,
    })
}

pub(super) fn consumer(row: &Row) -> Result<Consumer> {
    let r = R { row, table: "consumers" };
    Ok(Consumer {
        name: r.get("name")?,
        token_sha256: r.get("token_sha256")?,
        allow_create_app: r.get("allow_create_app")?,
        grants: r.json("grants")?,
        stamp: r.stamp()?,
    })
}

pub(super) fn instance(row: &Row) -> Result<(String, InstanceConfig)> {
    let r = R { row, table: "instances" };
    Ok((
        r.get("env")?,
        InstanceConfig {
            app_id: r.get("app_id")?,
            cluster: r.get("cluster")?,
            data_center: r.get("data_center")?,
            ip: r.get("ip")?,
            config_app_id: r.get("config_app_id")?,
            config_cluster: r.get("config_cluster")?,
            config_namespace: r.get("config_namespace")?,
            release_key: r.get("release_key")?,
            release_delivery_time: r.get("release_delivery_time")?,
            last_seen: r.get("last_seen")?,
        },
    ))
}

const STAMP: [&str; 4] = ["created_by", "created_at", "modified_by", "modified_at"];

/// `INSERT INTO table (cols) VALUES ($1..) ON CONFLICT (key) DO UPDATE SET` every other
/// column; without `key`, a plain insert (insert-only tables).
fn insert_sql(table: &str, cols: &[&str], key: Option<&[&str]>) -> String {
    let values: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ({})", cols.join(", "), values.join(", "));
    if let Some(key) = key {
        let set: Vec<String> =
            cols.iter().filter(|c| !key.contains(c)).map(|c| format!("{c} = EXCLUDED.{c}")).collect();
        sql.push_str(&format!(" ON CONFLICT ({}) DO UPDATE SET {}", key.join(", "), set.join(", ")));
    }
    sql
}

fn cols<'a>(own: &[&'a str], stamp: bool) -> Vec<&'a str> {
    let mut v = own.to_vec();
    if stamp {
        v.extend_from_slice(&STAMP);
    }
    v
}

async fn exec(client: &Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    client.execute(sql, params).await.map_err(map_error)
}

/// Inserts an insert-only record: its key taken already is [`StoreError::Duplicate`].
async fn insert_once(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    what: impl FnOnce() -> String,
) -> Result<()> {
    match client.execute(sql, params).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            Err(StoreError::Duplicate { what: what() })
        }
        Err(e) => Err(map_error(e)),
    }
}

/// Writes one record (inside the caller's transaction).
pub(super) async fn write(client: &Client, record: &Record) -> Result<()> {
    match record {
        Record::App { app } => {
            let c = cols(&["app_id", "name", "org_id", "org_name", "owner_name", "owner_email"], true);
            let s = &app.stamp;
            exec(
                client,
                &insert_sql("apps", &c, Some(&["app_id"])),
                &[
                    &app.app_id,
                    &app.name,
                    &app.org_id,
                    &app.org_name,
                    &app.owner_name,
                    &app.owner_email,
                    &s.created_by,
                    &s.created_at,
                    &s.modified_by,
                    &s.modified_at,
                ],
            )
            .await?;
        }
        Record::AppNamespace { app_namespace: a } => {
            let c = cols(&["app_id", "name", "format", "is_public", "comment"], true);
            let s = &a.stamp;
            exec(
                client,
                &insert_sql("app_namespaces", &c, Some(&["app_id", "name"])),
                &[
                    &a.app_id,
                    &a.name,
                    &a.format.as_str(),
                    &a.is_public,
                    &a.comment,
                    &s.created_by,
                    &s.created_at,
                    &s.modified_by,
                    &s.modified_at,
                ],
            )
            .await?;
        }
        Record::Cluster { env, cluster: cl } => {
            let c = cols(&["env", "app_id", "name", "parent", "comment"], true);
            let s = &cl.stamp;
            exec(
                client,
                &insert_sql("clusters", &c, Some(&["env", "app_id", "name"])),
                &[
                    env,
                    &cl.app_id,
                    &cl.name,
                    &cl.parent,
                    &cl.comment,
                    &s.created_by,
                    &s.created_at,
                    &s.modified_by,
                    &s.modified_at,
                ],
            )
            .await?;
        }
        Record::Namespace { env, namespace: n } => {
            let c =
                cols(&["env", "app_id", "cluster", "name", "active_releases", "history_len", "draft_editors"], true);
            let s = &n.stamp;
            let active = n.active_releases.iter().map(|v| big(*v)).collect::<Result<Vec<i64>>>()?;
            exec(
                client,
                &insert_sql("namespaces", &c, Some(&["env", "app_id", "cluster", "name"])),
                &[
                    env,
                    &n.app_id,
                    &n.cluster,
                    &n.name,
                    &active,
                    &big(n.history_len)?,
                    &n.draft_editors,
                    &s.created_by,
                    &s.created_at,
                    &s.modified_by,
                    &s.modified_at,
                ],
            )
            .await?;
        }
        Record::Item { ns, item: i } => {
            let c = cols(&["env", "app_id", "cluster", "namespace", "key", "value", "comment", "line_num"], true);
            let s = &i.stamp;
            exec(
                client,
                &insert_sql("items", &c, Some(&["env", "app_id", "cluster", "namespace", "key"])),
                &[
                    &ns.env,
                    &ns.app,
                    &ns.cluster,
                    &ns.ns,
                    &i.key,
                    &i.value,
                    &i.comment,
                    &i64::from(i.line_num),
                    &s.created_by,
                    &s.created_at,
                    &s.modified_by,
                    &s.modified_at,
                ],
            )
            .await?;
        }
        Record::DeleteItem { ns, key } => {
            exec(
                client,
                "DELETE FROM items WHERE env = $1 AND app_id = $2 AND cluster = $3 AND namespace = $4 AND key = $5",
                &[&ns.env, &ns.app, &ns.cluster, &ns.ns, key],
            )
            .await?;
        }
        Record::Release { env, release: r } => {
            let c = [
                "env",
                "id",
                "release_key",
                "app_id",
                "cluster",
                "namespace",
                "title",
                "comment",
                "author",
                "created_at",
                "is_emergency",
                "configurations",
                "checksum",
            ];
            insert_once(
                client,
                &insert_sql("releases", &c, None),
                &[
                    env,
                    &big(r.id)?,
                    &r.release_key,
                    &r.app_id,
                    &r.cluster,
                    &r.namespace,
                    &r.title,
                    &r.comment,
                    &r.author,
                    &r.created_at,
                    &r.is_emergency,
                    &Json(&r.configurations),
                    &r.checksum,
                ],
                || format!("release {} in {env}", r.id),
            )
            .await?;
        }
        Record::History { ns, entry: h } => {
            let c = [
                "env",
                "app_id",
                "cluster",
                "namespace",
                "seq",
                "operation",
                "release_id",
                "previous_release_id",
                "branch",
                "operator",
                "time",
            ];
            insert_once(
                client,
                &insert_sql("release_history", &c, None),
                &[
                    &ns.env,
                    &ns.app,
                    &ns.cluster,
                    &ns.ns,
                    &big(h.seq)?,
                    &name_of(&h.operation),
                    &big(h.release_id)?,
                    &big(h.previous_release_id)?,
                    &h.branch,
                    &h.operator,
                    &h.time,
                ],
                || format!("history entry {} of {}/{}/{}/{}", h.seq, ns.env, ns.app, ns.cluster, ns.ns),
            )
            .await?;
        }
        Record::Branch { env, branch: b } => {
            let c = cols(&["env", "app_id", "parent_cluster", "namespace", "name", "rules", "status"], true);
            let s = &b.stamp;
            exec(
                client,
                &insert_sql("branches", &c, Some(&["env", "app_id", "parent_cluster", "namespace"])),
                &[
                    env,
                    &b.app_id,
                    &b.parent_cluster,
                    &b.namespace,
                    &b.name,
                    &Json(&b.rules),
                    &name_of(&b.status),
                    &s.created_by,
                    &s.created_at,
                    &s.modified_by,
                    &s.modified_at,
                ],
            )
            .await?;
        }
        Record::Message { message: m } => {
            exec(
                client,
                &insert_sql("release_messages", &["env", "watch_key", "id", "content"], Some(&["env", "watch_key"])),
                &[&m.env, &m.content.to_ascii_lowercase(), &m.id, &m.content],
            )
            .await?;
        }
        Record::Commit { ns, commit: c } => {
            let cs = ["env", "app_id", "cluster", "namespace", "id", "operator", "time", "changes"];
            exec(
                client,
                &insert_sql("commits", &cs, Some(&["env", "app_id", "cluster", "namespace", "id"])),
                &[&ns.env, &ns.app, &ns.cluster, &ns.ns, &big(c.id)?, &c.operator, &c.time, &Json(&c.changes)],
            )
            .await?;
        }
        Record::Audit { entry: a } => {
            let c = ["id", "time", "actor", "claimed_operator", "action", "env", "target", "detail"];
            exec(
                client,
                &insert_sql("audit", &c, Some(&["id"])),
                &[&big(a.id)?, &a.time, &a.actor, &a.claimed_operator, &a.action, &a.env, &a.target, &a.detail],
            )
            .await?;
        }
        Record::AccessKey { env, key: k } => {
            let c = cols(&["env", "app_id", "id", "secret", "mode", "enabled"], true);
            let s = &k.stamp;
            exec(
                client,
                &insert_sql("access_keys", &c, Some(&["env", "app_id", "id"])),
                &[
                    env,
                    &k.app_id,
                    &big(k.id)?,
                    &k.secret,
                    &name_of(&k.mode),
                    &k.enabled,
                    &s.created_by,
                    &s.created_at,
                    &s.modified_by,
                    &s.modified_at,
                ],
            )
            .await?;
        }
        Record::DeleteAccessKey { env, app, id } => {
            exec(client, "DELETE FROM access_keys WHERE env = $1 AND app_id = $2 AND id = $3", &[env, app, &big(*id)?])
                .await?;
        }
        Record::User { user: u } => {
            let c = cols(
                &["name", "display_name", "email", "password_hash", "is_admin", "enabled", "grants", "can_create_apps"],
                true,
            );
            let s = &u.stamp;
            exec(
                client,
                &insert_sql("users", &c, Some(&["name"])),
                &[
                    &u.name,
                    &u.display_name,
                    &u.email,
                    &u.password_hash,
                    &u.is_admin,
                    &u.enabled,
                    &Json(&u.grants),
                    &u.can_create_apps,
                    &s.created_by,
                    &s.created_at,
                    &s.modified_by,
                    &s.modified_at,
                ],
            )
            .await?;
        }
        Record::Consumer { consumer: k } => {
            let c = cols(&["name", "token_sha256", "allow_create_app", "grants"], true);
            let s = &k.stamp;
            exec(
                client,
                &insert_sql("consumers", &c, Some(&["name"])),
                &[
                    &k.name,
                    &k.token_sha256,
                    &k.allow_create_app,
                    &Json(&k.grants),
                    &s.created_by,
                    &s.created_at,
                    &s.modified_by,
                    &s.modified_at,
                ],
            )
            .await?;
        }
        Record::Instance { env, instance: i } => {
            let c = [
                "env",
                "app_id",
                "cluster",
                "data_center",
                "ip",
                "config_app_id",
                "config_namespace",
                "config_cluster",
                "release_key",
                "release_delivery_time",
                "last_seen",
            ];
            exec(
                client,
                &insert_sql(
                    "instances",
                    &c,
                    Some(&["env", "app_id", "cluster", "data_center", "ip", "config_app_id", "config_namespace"]),
                ),
                &[
                    env,
                    &i.app_id,
                    &i.cluster,
                    &i.data_center,
                    &i.ip,
                    &i.config_app_id,
                    &i.config_namespace,
                    &i.config_cluster,
                    &i.release_key,
                    &i.release_delivery_time,
                    &i.last_seen,
                ],
            )
            .await?;
        }
        Record::DeleteInstance { env, instance: i } => {
            exec(
                client,
                "DELETE FROM instances WHERE env = $1 AND app_id = $2 AND cluster = $3 AND data_center = $4 \
                 AND ip = $5 AND config_app_id = $6 AND config_namespace = $7",
                &[env, &i.app_id, &i.cluster, &i.data_center, &i.ip, &i.config_app_id, &i.config_namespace],
            )
            .await?;
        }
        Record::Counter { counter, value } => {
            exec(
                client,
                "INSERT INTO counters (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[&counter.name(), &big(*value)?],
            )
            .await?;
        }
    }
    Ok(())
}
