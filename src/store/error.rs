//! Storage failures: infrastructure problems, never validation.

use std::path::{Path, PathBuf};

use super::T;

/// What can go wrong below the service layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory is open in another process.
    #[error(
        "the data directory {path} is in use by another Cairn process (a running server?). \
         Stop that process first, or point --data at another directory"
    )]
    Locked { path: PathBuf },
    /// A record does not decode or does not pass its checksum.
    #[error("corrupt record in tree '{tree}' at key {key}; restore it from a backup (`cairn restore`)")]
    Corrupt { tree: &'static str, key: String },
    /// The data was written by a newer or unknown schema.
    #[error("data schema version {found} is not supported by this build (expects {expected})")]
    Schema { found: u64, expected: u64 },
    /// A value exceeds what storage accepts.
    #[error("{what} is too large to store")]
    TooLarge { what: &'static str },
    /// The data directory (or a file in it) may not be written.
    #[error(
        "the data directory {path} is read-only ({source}); Cairn writes there: remount it read-write \
         or give the user running Cairn write access (owner rwx). `cairn check` can verify it as it is"
    )]
    ReadOnly { path: PathBuf, source: std::io::Error },
    /// A file-system error with the path involved.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A backup file is damaged or not a Cairn backup.
    #[error("invalid backup: {0}")]
    Backup(String),
    /// sled itself failed.
    #[error("storage engine error: {0}")]
    Sled(#[from] sled::Error),
}

impl StoreError {
    pub(crate) fn corrupt(t: T, key: &[u8]) -> StoreError {
        StoreError::Corrupt { tree: t.name(), key: String::from_utf8_lossy(key).replace('\0', "/") }
    }

    pub(crate) fn from_open(e: sled::Error, path: &Path) -> StoreError {
        match &e {
            sled::Error::Io(io) if io.to_string().contains("lock") => StoreError::Locked { path: path.to_path_buf() },
            _ => StoreError::Sled(e),
        }
    }
}
