//! Use cases: edit, publish, roll back, gray release, serve clients, authorise, notify.
//! Rules live here; handlers only translate. The only way into the store for the web layer.
//!
//! Writes are serialised by storage: a use case opens one change (`store::Tx`, which holds
//! the write lock), reads what it needs, puts typed records, commits them in one transaction
//! (durably), refreshes the in-memory [`index::Index`], and only then wakes long polls.

pub mod access;
pub mod apps;
pub mod audit;
pub mod auth;
mod change;
pub mod clock;
pub mod config_query;
pub mod error;
pub mod gray;
pub mod index;
pub mod instances;
pub mod items;
pub mod metrics;
pub mod namespaces;
pub mod notify;
mod rebuild;
pub mod releases;
pub mod sessions;
pub mod throttle;
pub mod users;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

pub use auth::{Actor, Caller};
pub use error::{Result, ServiceError};

use crate::domain::release_key::KeyGenerator;
use crate::store::Repo;

/// A short random id that ties an error answer to its log line.
pub fn incident_id() -> String {
    crate::security::token::random_hex(6)
}

/// True when a presented secret (a token, a CSRF token) equals the expected one; compared
/// in constant time.
pub fn secret_matches(given: &str, expected: &str) -> bool {
    crate::security::constant_time_eq(given.as_bytes(), expected.as_bytes())
}

/// Runs `f` as work that may wait on storage: on a blocking thread, never an async worker
/// (debug builds log a database call made on a worker outside this mark).
pub fn storage_may_wait<T>(f: impl FnOnce() -> T) -> T {
    crate::store::waiting::allowed(f)
}

/// The group a client address counts in for per-client limits: an IPv4 address itself, an
/// IPv6 address its /64.
pub fn client_group(ip: std::net::IpAddr) -> std::net::IpAddr {
    crate::security::address_group(ip)
}

/// Where a namespace instance lives: (env, app, cluster, namespace). For gray-branch calls
/// `cluster` is the parent cluster.
#[derive(Debug, Clone, Copy)]
pub struct NsRef<'a> {
    pub env: &'a str,
    pub app: &'a str,
    pub cluster: &'a str,
    pub ns: &'a str,
}

/// What the service layer needs to know of the configuration.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Env names, upper case, in display order.
    pub envs: Vec<String>,
    /// How long `/notifications/v2` holds a request without changes.
    pub long_poll: Duration,
    /// Maximum item key length, in characters.
    pub key_max: usize,
    /// Maximum item value length, in characters.
    pub value_max: usize,
    /// Allowed clock skew of access-key signatures, in milliseconds.
    pub access_key_skew_ms: i64,
    /// Envs where the last editor of a draft may not release it.
    pub four_eyes_envs: HashSet<String>,
    /// Envs where an emergency publish may bypass the four-eyes rule.
    pub emergency_publish_envs: HashSet<String>,
    /// A portal session ends after this long without a request.
    pub session_idle: Duration,
    /// A portal session ends this long after sign-in.
    pub session_max: Duration,
    /// Only admins and users granted it may create apps in the portal.
    pub only_granted_create_apps: bool,
    /// Bounds of the client-instance records.
    pub instances: instances::Limits,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            envs: ["DEV", "FAT", "UAT", "PRO"].map(String::from).to_vec(),
            long_poll: Duration::from_secs(60),
            key_max: 128,
            value_max: 20_000,
            access_key_skew_ms: 60_000,
            four_eyes_envs: HashSet::new(),
            emergency_publish_envs: HashSet::new(),
            session_idle: sessions::IDLE,
            session_max: sessions::ABSOLUTE,
            only_granted_create_apps: false,
            instances: instances::Limits::default(),
        }
    }
}

/// The service layer: one per process, shared by every handler.
pub struct Cairn {
    repo: Arc<dyn Repo>,
    settings: ServiceSettings,
    /// Held from a change's commit until its read-model entries are in, so changes reach
    /// the index in commit order.
    commit_order: Mutex<()>,
    /// The index missed a change it could not be rebuilt for; the next change rebuilds it.
    index_stale: AtomicBool,
    /// Makes the next change's read-model refresh fail (tests of the commit's second half).
    refresh_fault: AtomicBool,
    index: RwLock<index::Index>,
    notifier: notify::Notifier,
    keys: KeyGenerator,
    instances: instances::InstanceRecorder,
    metrics: metrics::Metrics,
    sessions: sessions::Sessions,
    clock: clock::Clock,
}

impl Cairn {
    /// Builds the service over an open repository and loads the read model.
    pub fn new(repo: Arc<dyn Repo>, settings: ServiceSettings) -> Result<Arc<Cairn>> {
        let cairn = Cairn {
            instances: instances::InstanceRecorder::start(repo.clone(), settings.instances),
            repo,
            settings,
            commit_order: Mutex::new(()),
            index_stale: AtomicBool::new(false),
            refresh_fault: AtomicBool::new(false),
            index: RwLock::new(index::Index::default()),
            notifier: notify::Notifier::new(),
            keys: KeyGenerator::new(rand::random()),
            metrics: metrics::Metrics::default(),
            sessions: sessions::Sessions::default(),
            clock: clock::Clock::default(),
        };
        cairn.rebuild_index()?;
        Ok(Arc::new(cairn))
    }

    /// The settings this service runs with.
    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    /// The repository, for tests that look at engine state (the embedded store's synced
    /// blob files).
    #[doc(hidden)]
    pub fn repo(&self) -> &dyn Repo {
        &*self.repo
    }

    /// The clock sessions and sign-in throttling read (advanced only to verify timeouts).
    pub fn clock(&self) -> &clock::Clock {
        &self.clock
    }

    /// Counters for `/metrics`.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// The canonical spelling of an env served here, or NotFound.
    pub fn env(&self, env: &str) -> Result<String> {
        let upper = env.to_ascii_uppercase();
        if self.settings.envs.contains(&upper) {
            Ok(upper)
        } else {
            Err(ServiceError::not_found(format!(
                "env '{env}' is not served here; known envs: {}",
                self.settings.envs.join(", ")
            )))
        }
    }

    fn read_index(&self) -> RwLockReadGuard<'_, index::Index> {
        self.index.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_index(&self) -> RwLockWriteGuard<'_, index::Index> {
        self.index.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes every held long poll with "not modified" and refuses new holds (shutdown).
    pub fn release_long_polls(&self) {
        self.notifier.shut_down();
    }

    /// How storage is doing: up, writable, and why not (for `/health`, `/ready`, `/metrics`).
    pub fn storage_health(&self) -> crate::store::Health {
        self.repo.health()
    }

    /// True when storage is a database server (PostgreSQL) rather than the embedded store:
    /// its outages are the database's, and clients keep being served from memory meanwhile.
    pub fn storage_is_database(&self) -> bool {
        self.repo.kind() == crate::store::EngineKind::Postgres
    }

    /// Approximate bytes stored (for `/metrics`).
    pub fn storage_size_bytes(&self) -> u64 {
        self.repo.size_bytes()
    }

    /// Makes the next change's read-model refresh fail once, as a failed read would: the
    /// change must still be answered as committed, its polls woken and the index rebuilt.
    #[doc(hidden)]
    pub fn fail_next_index_refresh(&self) {
        self.refresh_fault.store(true, Ordering::SeqCst);
    }

    /// Flushes everything (shutdown).
    pub fn flush(&self) -> Result<()> {
        self.instances.flush();
        Ok(self.repo.flush()?)
    }
}
