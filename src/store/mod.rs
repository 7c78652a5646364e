//! Storage behind one seam: the service layer sees [`Repo`] and [`Tx`] (domain-typed reads
//! and one serialised all-or-nothing change), never keys, trees or tables.
//!
//! Engines: the embedded sled store (`sled/`, the default) and PostgreSQL (`pg/`). Each
//! implements the traits in `repo.rs`; [`open`] picks one from a [`StoreConfig`].
//!
//! Backup, restore and check sit on top of the traits, the same for every engine: the
//! backup format in `logical.rs`, [`restore`] in `restore.rs`, [`check`] in `integrity.rs`.

mod error;
pub mod fs;
mod integrity;
mod logical;
pub mod pg;
mod progress;
mod repo;
mod restore;
mod sled;
pub mod waiting;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use self::sled::{Store as SledStore, SCHEMA_VERSION};
pub use error::StoreError;
pub use integrity::{check, CheckReport, Problem};
pub use logical::{backup, BackupSummary};
pub use repo::{AuditFilter, Counter, EngineKind, Health, Message, NsKey, Record, Repo, Result, Tx};
pub use restore::{restore, NotificationIds, RestoreOptions, RestoreSummary, RESTORE_ID_GAP};

/// Which engine to open, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded sled database in a data directory.
    Sled { path: PathBuf },
    /// A PostgreSQL database.
    Postgres { url: String },
}

impl StoreConfig {
    /// What this names, for messages: the data directory, or the database without its
    /// password (`postgres://user@host:port/db`).
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::Sled { path } => path.display().to_string(),
            StoreConfig::Postgres { url } => pg::describe_url(url),
        }
    }
}

/// Opens the configured engine.
pub fn open(config: &StoreConfig) -> Result<Arc<dyn Repo>> {
    match config {
        StoreConfig::Sled { path } => open_sled(path),
        StoreConfig::Postgres { url } => Ok(Arc::new(pg::PgRepo::open(url, pg::PgOptions::default())?)),
    }
}

/// Opens (or creates) the sled database in the data directory `path`, with its blob-file
/// sync thread. A directory held by another process gives [`StoreError::Locked`].
pub fn open_sled(path: &Path) -> Result<Arc<dyn Repo>> {
    let store = Arc::new(SledStore::open(path)?);
    SledStore::start_blob_syncer(&store);
    Ok(store)
}

/// A sled store in a temporary directory removed on drop (tests, benchmarks).
pub fn open_temporary() -> Result<Arc<dyn Repo>> {
    Ok(Arc::new(SledStore::open_temporary()?))
}
