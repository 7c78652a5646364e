//! The repository seam: what the service layer may ask of storage, in domain terms.
//!
//! Two engines implement it: the embedded sled store (`store/sled/`, the default) and
//! PostgreSQL (`store/pg/`). The service layer names only [`Repo`], [`Tx`], [`Record`] and
//! the small key types here; keys, trees, tables and SQL stay inside each engine.
//!
//! Contract shared by both engines (the conformance suite in `tests/it/store_conformance.rs`
//! holds them to it):
//! - Reads return committed data only. Lists come in a stable order (stated per method).
//! - [`Repo::begin`] opens one serialised change: at most one [`Tx`] is open per database at
//!   a time (sled: a process mutex; PostgreSQL: a lock row taken inside the SQL
//!   transaction), so what a change reads after `begin` cannot be changed under it.
//! - Writes put into a [`Tx`] are not visible to anyone, the change itself included, until
//!   [`Tx::commit`] returns `Ok`; then they are durable (flushed / `COMMIT`ted). A `Tx`
//!   dropped without commit leaves nothing behind, ids included.
//! - Ids from [`Tx::next_id`] are gapless per [`Counter`] and in commit order.
//! - Every call has a deadline; a database that is down or frozen gives
//!   [`StoreError::Unavailable`] (sled) or [`StoreError::Database`] (PostgreSQL), both
//!   HTTP 503, never a hang.

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::domain::model::{
    AccessKey, App, AppNamespace, AuditEntry, Branch, Cluster, Commit, Consumer, HistoryEntry, InstanceConfig, Item,
    Namespace, Release, User,
};

/// Result of a storage call.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where a namespace instance lives: (env, app, cluster, namespace). For gray branches the
/// cluster is the branch name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NsKey {
    pub env: String,
    pub app: String,
    pub cluster: String,
    pub ns: String,
}

impl NsKey {
    /// A key from borrowed parts.
    pub fn new(env: &str, app: &str, cluster: &str, ns: &str) -> NsKey {
        NsKey { env: env.to_string(), app: app.to_string(), cluster: cluster.to_string(), ns: ns.to_string() }
    }
}

/// The id counters. Each is gapless and advances only inside a committed [`Tx`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counter {
    Release,
    /// Release-notification ids; clients read them as signed 32-bit integers.
    Message,
    Audit,
    Commit,
    AccessKey,
}

impl Counter {
    /// Every counter.
    pub const ALL: [Counter; 5] =
        [Counter::Release, Counter::Message, Counter::Audit, Counter::Commit, Counter::AccessKey];

    /// The counter's stored name (sled meta key, PostgreSQL `counters.name`).
    pub fn name(self) -> &'static str {
        match self {
            Counter::Release => "release",
            Counter::Message => "message",
            Counter::Audit => "audit",
            Counter::Commit => "commit",
            Counter::AccessKey => "access_key",
        }
    }
}

/// The latest release message of one watch key (`app+cluster+namespace`) in an env.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub env: String,
    pub id: i64,
    /// `app+cluster+namespace` as first written (the watch key compares case-insensitively).
    pub content: String,
}

/// One stored record. A [`Tx`] writes a list of them; a backup is a stream of them; a
/// restore replays them. `Delete*` variants only appear in changes, never in backups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    App {
        app: App,
    },
    AppNamespace {
        app_namespace: AppNamespace,
    },
    Cluster {
        env: String,
        cluster: Cluster,
    },
    Namespace {
        env: String,
        namespace: Namespace,
    },
    Item {
        ns: NsKey,
        item: Item,
    },
    DeleteItem {
        ns: NsKey,
        key: String,
    },
    /// Releases are insert-only.
    Release {
        env: String,
        release: Release,
    },
    /// History entries are insert-only, contiguous per namespace from 1.
    History {
        ns: NsKey,
        entry: HistoryEntry,
    },
    /// Keyed by (env, app, parent cluster, namespace): at most one branch each.
    Branch {
        env: String,
        branch: Branch,
    },
    /// Replaces the watch key's previous message.
    Message {
        message: Message,
    },
    Commit {
        ns: NsKey,
        commit: Commit,
    },
    Audit {
        entry: AuditEntry,
    },
    AccessKey {
        env: String,
        key: AccessKey,
    },
    DeleteAccessKey {
        env: String,
        app: String,
        id: u64,
    },
    User {
        user: User,
    },
    /// Also indexes the consumer by `token_sha256` (and drops the consumer's old token index).
    Consumer {
        consumer: Consumer,
    },
    /// Keyed by (env, app, cluster, data center, ip, config app, config namespace).
    Instance {
        env: String,
        instance: InstanceConfig,
    },
    DeleteInstance {
        env: String,
        instance: InstanceConfig,
    },
    /// Sets a counter (backups and restores; a `Tx` sets counters through `next_id`).
    Counter {
        counter: Counter,
        value: u64,
    },
}

/// Which audit entries to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries whose actor is this name.
    pub actor: Option<String>,
    /// Only entries whose action starts with this text (e.g. `release.`).
    pub action_prefix: Option<String>,
    /// Only entries of this env.
    pub env: Option<String>,
    /// Only entries whose target contains this text.
    pub target_contains: Option<String>,
    /// Only entries with an id below this (paging, newest first).
    pub before_id: Option<u64>,
}

/// How storage is doing, for `/health`, `/ready` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Reads and writes reach the database.
    pub up: bool,
    /// Writes succeed (false on a full disk or a database that refuses writes).
    pub writable: bool,
    /// Why not, for operators.
    pub reason: Option<String>,
}

/// The engine behind a [`Repo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Sled,
    Postgres,
}

/// Storage, in domain terms. Implemented by the sled and PostgreSQL engines.
pub trait Repo: Send + Sync {
    /// Which engine this is.
    fn kind(&self) -> EngineKind;

    // ---- apps -------------------------------------------------------------------------
    /// One app by its exact id.
    fn app(&self, app: &str) -> Result<Option<App>>;
    /// Every app, by app id.
    fn apps(&self) -> Result<Vec<App>>;
    /// One app namespace definition.
    fn app_namespace(&self, app: &str, ns: &str) -> Result<Option<AppNamespace>>;
    /// The app namespaces of one app (`Some`) or of every app (`None`), by (app, name).
    fn app_namespaces(&self, app: Option<&str>) -> Result<Vec<AppNamespace>>;

    // ---- clusters, namespaces, items ------------------------------------------------
    /// One cluster (gray branches are clusters with a parent).
    fn cluster(&self, env: &str, app: &str, cluster: &str) -> Result<Option<Cluster>>;
    /// The clusters of an app in an env, by name.
    fn clusters(&self, env: &str, app: &str) -> Result<Vec<Cluster>>;
    /// One namespace instance.
    fn namespace(&self, ns: &NsKey) -> Result<Option<Namespace>>;
    /// The namespaces of an env, optionally of one app and one cluster, by (app, cluster, name).
    fn namespaces(&self, env: &str, app: Option<&str>, cluster: Option<&str>) -> Result<Vec<Namespace>>;
    /// One draft item.
    fn item(&self, ns: &NsKey, key: &str) -> Result<Option<Item>>;
    /// The draft items of a namespace, by key (byte order).
    fn items(&self, ns: &NsKey) -> Result<Vec<Item>>;

    // ---- releases, history, branches, messages, commits -------------------------------
    /// One release; a missing release is `None`, a damaged one an error.
    fn release(&self, env: &str, id: u64) -> Result<Option<Release>>;
    /// The newest `limit` history entries of a namespace, newest first.
    fn history(&self, ns: &NsKey, limit: usize) -> Result<Vec<HistoryEntry>>;
    /// The gray branch of (env, app, parent cluster, namespace).
    fn branch(&self, env: &str, app: &str, parent: &str, ns: &str) -> Result<Option<Branch>>;
    /// The latest message of every watch key of an env.
    fn messages(&self, env: &str) -> Result<Vec<Message>>;
    /// The newest `limit` commits (draft change sets) of a namespace, newest first.
    fn commits(&self, ns: &NsKey, limit: usize) -> Result<Vec<Commit>>;

    // ---- access keys --------------------------------------------------------------------
    /// One access key.
    fn access_key(&self, env: &str, app: &str, id: u64) -> Result<Option<AccessKey>>;
    /// The access keys of an env, of one app (`Some`) or of all apps, by (app, id).
    fn access_keys(&self, env: &str, app: Option<&str>) -> Result<Vec<AccessKey>>;

    // ---- people -------------------------------------------------------------------------
    /// One portal user by exact name.
    fn user(&self, name: &str) -> Result<Option<User>>;
    /// Every user, by name.
    fn users(&self) -> Result<Vec<User>>;
    /// True when at least one user exists.
    fn has_users(&self) -> Result<bool>;
    /// One Open API consumer by name.
    fn consumer(&self, name: &str) -> Result<Option<Consumer>>;
    /// The consumer whose token has this SHA-256 (hex).
    fn consumer_by_token(&self, token_sha256: &str) -> Result<Option<Consumer>>;
    /// Every consumer, by name.
    fn consumers(&self) -> Result<Vec<Consumer>>;

    // ---- audit, instances ------------------------------------------------------------
    /// The newest `limit` audit entries matching `filter`, newest first.
    fn audit(&self, filter: &AuditFilter, limit: usize) -> Result<Vec<AuditEntry>>;
    /// The stored instance record with the same identity as `probe` (its release key and
    /// times are ignored).
    fn instance(&self, env: &str, probe: &InstanceConfig) -> Result<Option<InstanceConfig>>;
    /// The instance records of an env (`Some`) or of every env, with their env.
    fn instances(&self, env: Option<&str>) -> Result<Vec<(String, InstanceConfig)>>;

    // ---- counters and changes -----------------------------------------------------------
    /// The last id handed out by a counter (0 when never used).
    fn counter(&self, counter: Counter) -> Result<u64>;
    /// Opens the one serialised change (blocks while another is open, up to the deadline).
    fn begin(&self) -> Result<Box<dyn Tx + '_>>;
    /// Writes best-effort records outside any change and without a durable flush (instance
    /// records, audit pruning): no lock, no ids; lost in a crash at worst.
    fn write_unlocked(&self, records: Vec<Record>) -> Result<()>;
    /// Deletes the oldest audit entries so that at most `keep` remain; how many went.
    fn prune_audit(&self, keep: u64) -> Result<u64>;

    // ---- operations ---------------------------------------------------------------------
    /// How storage is doing (cheap; may probe the database with a deadline).
    fn health(&self) -> Health;
    /// Approximate bytes stored.
    fn size_bytes(&self) -> u64;
    /// Makes every earlier write durable (shutdown).
    fn flush(&self) -> Result<()>;
    /// Streams every stored record from one consistent point in time, one record at a time
    /// (a backup or check of any size needs little memory): counters first, then apps, app
    /// namespaces, users, consumers, and per env clusters, namespaces, items, releases,
    /// history (by seq), branches, messages, commits, access keys, instances; audit last.
    /// PostgreSQL reads a snapshot and writers go on; sled has no snapshots and holds its
    /// write mutex meanwhile, so changes wait. Must not be called with a [`Tx`] open.
    /// Stops at the first error `sink` returns.
    fn export(&self, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()>;
    /// True when nothing but counters and the schema version is stored (restore target).
    fn is_empty(&self) -> Result<bool>;

    /// The embedded sled store when that is the engine: for what only sled has (its v1
    /// backup, the blob-file sync state tests look at). Other engines keep the default.
    #[doc(hidden)]
    fn sled(&self) -> Option<&super::SledStore> {
        None
    }
}

/// One serialised, all-or-nothing change (see [`Repo::begin`]).
pub trait Tx {
    /// The next id of `counter` (1, 2, 3, ...), visible to others only after commit.
    fn next_id(&mut self, counter: Counter) -> Result<u64>;
    /// Adds a record to write at commit.
    fn put(&mut self, record: Record);
    /// True when nothing is to be written.
    fn is_empty(&self) -> bool;
    /// Writes everything in one transaction and makes it durable before returning `Ok`.
    fn commit(self: Box<Self>) -> Result<()>;
}
