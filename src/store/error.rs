//! Storage failures: infrastructure problems, never validation.

use std::path::{Path, PathBuf};

use super::sled::T;

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
    /// A write failed because the disk holding the data directory is full.
    #[error(
        "the disk holding {path} is full (No space left on device); free space there and \
         Cairn resumes writing by itself, without a restart"
    )]
    DiskFull { path: PathBuf },
    /// Writes fail since an I/O error and the disk still fails; reads may fail too.
    #[error("storage at {path} is unavailable since an I/O error ({reason}); Cairn retries by itself")]
    Unavailable { path: PathBuf, reason: String },
    /// An insert-only record (a release, a history entry) exists already.
    #[error("{what} exists already and is never rewritten")]
    Duplicate { what: String },
    /// The operation or engine is not available in this build or on this engine.
    #[error("{0}")]
    Unsupported(String),
}

/// What "No space left on device" looks like once sled has copied the error (it keeps the
/// kind and the text, not the OS error number).
fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.raw_os_error() == Some(28)
        || StoreError::reason_is_disk_full(&e.to_string())
}

impl StoreError {
    pub(in crate::store) fn corrupt(t: T, key: &[u8]) -> StoreError {
        StoreError::Corrupt { tree: t.name(), key: String::from_utf8_lossy(key).replace('\0', "/") }
    }

    /// A file-system error at `path`: [`StoreError::DiskFull`] when the disk is full.
    pub(crate) fn io_failure(path: &Path, source: std::io::Error) -> StoreError {
        if is_disk_full(&source) {
            StoreError::DiskFull { path: path.to_path_buf() }
        } else {
            StoreError::Io { path: path.to_path_buf(), source }
        }
    }

    /// True for failures of the disk (as opposed to bad data or a refused operation).
    pub(crate) fn is_io_failure(&self) -> bool {
        matches!(self, StoreError::Sled(sled::Error::Io(_)) | StoreError::Io { .. } | StoreError::DiskFull { .. })
    }

    /// This failure as a client should hear of it: a full disk becomes [`StoreError::DiskFull`].
    pub(crate) fn classified(self, path: &Path) -> StoreError {
        match &self {
            StoreError::Sled(sled::Error::Io(io)) if is_disk_full(io) => {
                StoreError::DiskFull { path: path.to_path_buf() }
            }
            _ => self,
        }
    }

    /// True when an error message says the disk is full.
    pub(crate) fn reason_is_disk_full(reason: &str) -> bool {
        reason.contains("No space left on device") || reason.contains("StorageFull") || reason.contains("is full")
    }

    /// True when the disk is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::DiskFull { .. } => true,
            StoreError::Sled(sled::Error::Io(io)) => is_disk_full(io),
            StoreError::Io { source, .. } => is_disk_full(source),
            _ => false,
        }
    }

    pub(crate) fn from_open(e: sled::Error, path: &Path) -> StoreError {
        match &e {
            sled::Error::Io(io) if io.to_string().contains("lock") => StoreError::Locked { path: path.to_path_buf() },
            _ => StoreError::Sled(e),
        }
    }
}
