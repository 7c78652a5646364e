//! Storage behind one seam: the service layer sees [`Repo`] and [`Tx`] (domain-typed reads
//! and one serialised all-or-nothing change), never keys, trees or tables.
//!
//! Engines: the embedded sled store (`sled/`, the default) and PostgreSQL (`pg/`). Each
//! implements the traits in `repo.rs`; [`open`] picks one from a [`StoreConfig`].

mod error;
pub mod fs;
pub mod pg;
mod repo;
mod sled;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use self::sled::{BackupSummary, CheckReport, Problem, RestoreSummary, Store as SledStore, SCHEMA_VERSION};
pub use error::StoreError;
pub use repo::{AuditFilter, Counter, EngineKind, Health, Message, NsKey, Record, Repo, Result, Tx};

/// Which engine to open, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded sled database in a data directory.
    Sled { path: PathBuf },
    /// A PostgreSQL database.
    Postgres { url: String },
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

/// The sled store behind `repo`, or an error naming the operation sled alone offers.
fn sled_of<'a>(repo: &'a dyn Repo, what: &str) -> Result<&'a SledStore> {
    repo.sled().ok_or_else(|| StoreError::Unsupported(format!("{what} works on the embedded (sled) store only")))
}

/// Writes a point-in-time v1 backup (raw sled records). The caller keeps writers out.
pub fn backup(repo: &dyn Repo, path: &Path, now_ms: i64) -> Result<BackupSummary> {
    sled_of(repo, "this backup")?.backup(path, now_ms)
}

/// Restores a v1 backup into an empty store.
pub fn restore(repo: &dyn Repo, path: &Path) -> Result<RestoreSummary> {
    sled_of(repo, "this restore")?.restore(path)
}

/// Verifies every release checksum and the history invariants.
pub fn check(repo: &dyn Repo) -> Result<CheckReport> {
    sled_of(repo, "this check")?.check()
}
