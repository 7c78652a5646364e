//! Closing sled's power-loss window: sled never fsyncs the blob files it writes for large
//! pages, so Cairn syncs them before acknowledging a durable write (docs/architecture.md).

use super::{Store, StoreError};

/// How often blob files written by sled in the background are synced.
const BLOB_SYNC_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

impl Store {
    /// fsyncs every blob file sled wrote since the last call, then the blobs directory.
    ///
    /// sled 0.34 writes a page (a tree node, up to 16 entries of up to one 60 KiB release
    /// chunk each) to its own file under `db/blobs/` when the page is larger than a quarter
    /// of a segment (128 KiB), and never fsyncs these files: `flush` only syncs the log,
    /// which points at them. Without this an acknowledged release could rest on a blob file
    /// still in the page cache when the power fails. Blob files are written once and never
    /// change, so a file synced at a given length stays synced. Returns every blob file
    /// present, with the length it is synced at.
    pub(super) fn sync_blobs(&self) -> Result<Vec<(String, u64)>, StoreError> {
        if self.temporary {
            return Ok(Vec::new());
        }
        let dir = self.path.join("db").join("blobs");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io_failure(&dir, e)),
        };
        let mut listed = Vec::new();
        let mut synced = self.synced_blobs.lock().unwrap_or_else(|p| p.into_inner());
        let mut present = std::collections::HashSet::new();
        let mut new_files = false;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io_failure(&dir, e))?;
            let name = entry.file_name();
            let path = entry.path();
            // A blob removed by sled's GC between listing and opening needs no sync.
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io_failure(&path, e)),
            };
            let len = file.metadata().map_err(|e| StoreError::io_failure(&path, e))?.len();
            present.insert(name.clone());
            listed.push((name.to_string_lossy().into_owned(), len));
            if synced.get(&name) != Some(&len) {
                file.sync_all().map_err(|e| StoreError::io_failure(&path, e))?;
                synced.insert(name, len);
                new_files = true;
            }
        }
        synced.retain(|name, _| present.contains(name));
        if new_files {
            std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io_failure(&dir, e))?;
        }
        Ok(listed)
    }

    /// Starts a thread that syncs new blob files every [`BLOB_SYNC_EVERY`] until the store is
    /// dropped. Durable commits sync blobs themselves; this covers the blobs sled writes in
    /// the background (segment cleaning relocates pages, which may land in new blob files),
    /// so an acknowledged page moved by sled is synced within that interval too.
    pub fn start_blob_syncer(store: &std::sync::Arc<Store>) {
        if store.temporary {
            return;
        }
        let weak = std::sync::Arc::downgrade(store);
        let spawned = std::thread::Builder::new().name("cairn-blob-sync".into()).spawn(move || loop {
            std::thread::sleep(BLOB_SYNC_EVERY);
            let Some(store) = weak.upgrade() else { return };
            if store.degraded_reason().is_none() {
                if let Err(e) = store.sync_blobs().map(|_| ()) {
                    tracing::warn!(error = %e, "could not sync sled blob files");
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the blob-file sync thread");
        }
    }

    /// The blob files the last durable commit found after its flush and synced (at these
    /// lengths) before it was acknowledged. For tests of the power-loss window.
    #[doc(hidden)]
    pub fn blobs_of_last_commit(&self) -> Vec<(String, u64)> {
        self.last_commit_blobs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Blob files under `db/blobs` that were fsynced, with the length synced. For tests of
    /// the power-loss window.
    #[doc(hidden)]
    pub fn synced_blob_files(&self) -> Vec<(String, u64)> {
        let synced = self.synced_blobs.lock().unwrap_or_else(|p| p.into_inner());
        synced.iter().map(|(n, l)| (n.to_string_lossy().into_owned(), *l)).collect()
    }
}
