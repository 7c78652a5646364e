//! The PostgreSQL schema and its migrations.
//!
//! Tables are plain relational tables a DBA can query: one row per record, primary keys on
//! the record's identity, names compared in byte order (`COLLATE "C"`, the sled key order),
//! times in epoch milliseconds. Nested parts (release configurations, gray rules, grants,
//! commit changes) are JSONB. Migrations run at start in one transaction under an advisory
//! lock, so nodes starting together migrate once; a schema newer than this build is refused.

use tokio_postgres::Client;

use super::conn::map_error;
use crate::store::StoreError;

/// The schema version this build writes.
pub const PG_SCHEMA_VERSION: i64 = 1;

/// `pg_advisory_xact_lock` key of migrations ("cairn" in ASCII).
const MIGRATION_LOCK: i64 = 0x63_61_69_72_6e;

/// Migration `n` brings the schema from version `n` to `n + 1`.
const MIGRATIONS: [&str; 1] = [r#"
CREATE TABLE schema_version (
    id int PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO schema_version (id, version) VALUES (1, 0);

CREATE TABLE cairn_lock (id int PRIMARY KEY CHECK (id = 1));
INSERT INTO cairn_lock (id) VALUES (1);

CREATE TABLE counters (
    name text COLLATE "C" PRIMARY KEY,
    value bigint NOT NULL CHECK (value >= 0)
);
INSERT INTO counters (name, value) VALUES
    ('release', 0), ('message', 0), ('audit', 0), ('commit', 0), ('access_key', 0);

CREATE TABLE apps (
    app_id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    org_id text NOT NULL,
    org_name text NOT NULL,
    owner_name text NOT NULL,
    owner_email text NOT NULL,
    created_by text NOT NULL, created_at bigint NOT NULL,
    modified_by text NOT NULL, modified_at bigint NOT NULL
);

CREATE TABLE app_namespaces (
    app_id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    format text NOT NULL,
    is_public boolean NOT NULL,
    comment text NOT NULL,
    created_by text NOT NULL, created_at bigint NOT NULL,
    modified_by text NOT NULL, modified_at bigint NOT NULL,
    PRIMARY KEY (app_id, name)
);

CREATE TABLE clusters (
    env text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    parent text,
    comment text NOT NULL,
    created_by text NOT NULL, created_at bigint NOT NULL,
    modified_by text NOT NULL, modified_at bigint NOT NULL,
    PRIMARY KEY (env, app_id, name)
);

CREATE TABLE namespaces (
    env text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    cluster text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    active_releases bigint[] NOT NULL,
    history_len bigint NOT NULL,
    draft_editors text[] NOT NULL,
    created_by text NOT NULL, created_at bigint NOT NULL,
    modified_by text NOT NULL, modified_at bigint NOT NULL,
    PRIMARY KEY (env, app_id, cluster, name)
);

CREATE TABLE items (
    env text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    cluster text COLLATE "C" NOT NULL,
    namespace text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    value text NOT NULL,
    comment text NOT NULL,
    line_num bigint NOT NULL,
    created_by text NOT NULL, created_at bigint NOT NULL,
    modified_by text NOT NULL, modified_at bigint NOT NULL,
    PRIMARY KEY (env, app_id, cluster, namespace, key)
);

CREATE TABLE releases (
    env text COLLATE "C" NOT NULL,
    id bigint NOT NULL,
    release_key text NOT NULL,
    app_id text NOT NULL,
    cluster text NOT NULL,
    namespace text NOT NULL,
    title text NOT NULL,
    comment text NOT NULL,
    author text NOT NULL,
    created_at bigint NOT NULL,
    is_emergency boolean NOT NULL,
    configurations jsonb NOT NULL,
    checksum text NOT NULL,
    PRIMARY KEY (env, id)
);
CREATE INDEX releases_by_key ON releases (env, release_key);

CREATE TABLE release_history (
    env text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    cluster text COLLATE "C" NOT NULL,
    namespace text COLLATE "C" NOT NULL,
    seq bigint NOT NULL CHECK (seq > 0),
    operation text NOT NULL,
    release_id bigint NOT NULL,
    previous_release_id bigint NOT NULL,
    branch text,
    operator text NOT NULL,
    time bigint NOT NULL,
    PRIMARY KEY (env, app_id, cluster, namespace, seq)
);

CREATE TABLE branches (
    env text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    parent_cluster text COLLATE "C" NOT NULL,
    namespace text COLLATE "C" NOT NULL,
    name text NOT NULL,
    rules jsonb NOT NULL,
    status text NOT NULL,
    created_by text NOT NULL, created_at bigint NOT NULL,
    modified_by text NOT NULL, modified_at bigint NOT NULL,
    PRIMARY KEY (env, app_id, parent_cluster, namespace)
);

CREATE TABLE release_messages (
    env text COLLATE "C" NOT NULL,
    watch_key text COLLATE "C" NOT NULL,
    id bigint NOT NULL,
    content text NOT NULL,
    PRIMARY KEY (env, watch_key)
);

CREATE TABLE commits (
    env text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    cluster text COLLATE "C" NOT NULL,
    namespace text COLLATE "C" NOT NULL,
    id bigint NOT NULL,
    operator text NOT NULL,
    time bigint NOT NULL,
    changes jsonb NOT NULL,
    PRIMARY KEY (env, app_id, cluster, namespace, id)
);

CREATE TABLE audit (
    id bigint PRIMARY KEY,
    time bigint NOT NULL,
    actor text NOT NULL,
    claimed_operator text,
    action text NOT NULL,
    env text,
    target text NOT NULL,
    detail text NOT NULL
);

CREATE TABLE access_keys (
    env text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    id bigint NOT NULL,
    secret text NOT NULL,
    mode text NOT NULL,
    enabled boolean NOT NULL,
    created_by text NOT NULL, created_at bigint NOT NULL,
    modified_by text NOT NULL, modified_at bigint NOT NULL,
    PRIMARY KEY (env, app_id, id)
);

CREATE TABLE users (
    name text COLLATE "C" PRIMARY KEY,
    display_name text NOT NULL,
    email text NOT NULL,
    password_hash text NOT NULL,
    is_admin boolean NOT NULL,
    enabled boolean NOT NULL,
    grants jsonb NOT NULL,
    can_create_apps boolean NOT NULL,
    created_by text NOT NULL, created_at bigint NOT NULL,
    modified_by text NOT NULL, modified_at bigint NOT NULL
);

CREATE TABLE consumers (
    name text COLLATE "C" PRIMARY KEY,
    token_sha256 text NOT NULL,
    allow_create_app boolean NOT NULL,
    grants jsonb NOT NULL,
    created_by text NOT NULL, created_at bigint NOT NULL,
    modified_by text NOT NULL, modified_at bigint NOT NULL
);
CREATE UNIQUE INDEX consumers_by_token ON consumers (token_sha256) WHERE token_sha256 <> '';

CREATE TABLE instances (
    env text COLLATE "C" NOT NULL,
    app_id text COLLATE "C" NOT NULL,
    cluster text COLLATE "C" NOT NULL,
    data_center text COLLATE "C" NOT NULL,
    ip text COLLATE "C" NOT NULL,
    config_app_id text COLLATE "C" NOT NULL,
    config_namespace text COLLATE "C" NOT NULL,
    config_cluster text NOT NULL,
    release_key text NOT NULL,
    release_delivery_time bigint NOT NULL,
    last_seen bigint NOT NULL,
    PRIMARY KEY (env, app_id, cluster, data_center, ip, config_app_id, config_namespace)
);
"#];

/// Creates or upgrades the schema; refuses a schema newer than this build.
pub(super) async fn migrate(client: &Client) -> Result<(), StoreError> {
    // Migrating may take longer than a request's statement; nodes starting together wait
    // for the first one's migration.
    client
        .batch_execute("BEGIN; SET LOCAL statement_timeout = 30000; SET LOCAL lock_timeout = 30000")
        .await
        .map_err(map_error)?;
    let out = migrate_in_tx(client).await;
    match out {
        Ok(()) => client.batch_execute("COMMIT").await.map_err(map_error),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

async fn migrate_in_tx(client: &Client) -> Result<(), StoreError> {
    client.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(map_error)?;
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await
        .map_err(map_error)?
        .try_get(0)
        .map_err(map_error)?;
    let mut version: i64 = if exists {
        client
            .query_one("SELECT version FROM schema_version WHERE id = 1", &[])
            .await
            .map_err(map_error)?
            .try_get(0)
            .map_err(map_error)?
    } else {
        0
    };
    if version > PG_SCHEMA_VERSION {
        return Err(StoreError::Schema { found: version as u64, expected: PG_SCHEMA_VERSION as u64 });
    }
    while version < PG_SCHEMA_VERSION {
        let Some(sql) = usize::try_from(version).ok().and_then(|v| MIGRATIONS.get(v)) else { break };
        client.batch_execute(sql).await.map_err(map_error)?;
        version += 1;
        client.execute("UPDATE schema_version SET version = $1 WHERE id = 1", &[&version]).await.map_err(map_error)?;
        tracing::info!(version, "database schema migrated");
    }
    Ok(())
}
