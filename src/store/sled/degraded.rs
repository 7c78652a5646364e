//! Write failures: sled latches its first I/O error (a full disk, say), so a failed write
//! degrades the store; writes then probe the disk and reopen the database once it recovers.

use super::{Engine, Store, StoreError, WriteSet};

/// Why writes are failing, while they are.
#[derive(Debug, Clone)]
pub(super) struct Degraded {
    pub(super) reason: String,
    pub(super) last_probe: Option<std::time::Instant>,
}

/// Bytes written by the free-space probe: two sled segments, what a commit may need.
pub(super) const PROBE_BYTES: usize = 1024 * 1024;
/// Least time between two free-space probes while writes fail.
pub(super) const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Store {
    pub(super) fn unavailable(&self) -> StoreError {
        let reason = self.degraded_reason().unwrap_or_else(|| "the database is closed".into());
        StoreError::Unavailable { path: self.path.clone(), reason }
    }

    /// Drops the database and opens it again from disk. A temporary store cannot be
    /// reopened (its files go with it) and is left as it is.
    pub(super) fn reopen(&self) -> Result<(), StoreError> {
        if self.temporary {
            return Ok(());
        }
        let mut guard = self.engine.write().unwrap_or_else(|p| p.into_inner());
        // The old handle must be gone (its file lock released) before the new open.
        drop(guard.take());
        self.synced_blobs.lock().unwrap_or_else(|p| p.into_inner()).clear();
        match Engine::open(&self.path) {
            Ok(engine) => {
                *guard = Some(engine);
                tracing::info!(path = %self.path.display(), "database reopened after a write failure");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not reopen the database; retrying on the next request");
                Err(e)
            }
        }
    }

    /// Why writes fail now, or None when the store is healthy.
    pub fn degraded_reason(&self) -> Option<String> {
        self.degraded.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|d| d.reason.clone())
    }

    pub(super) fn set_degraded(&self, e: &StoreError) {
        let mut d = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
        if d.is_none() {
            tracing::error!(error = %e, "writes are failing; Cairn keeps serving clients and retries once the disk recovers");
        }
        *d = Some(Degraded { reason: e.to_string(), last_probe: Some(std::time::Instant::now()) });
    }

    pub(super) fn set_healthy(&self) {
        let mut d = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
        if d.take().is_some() {
            tracing::info!("writes succeed again");
        }
    }

    /// Writes and syncs a probe file of [`PROBE_BYTES`] in the data directory, then removes it.
    pub(super) fn probe_space(&self) -> Result<(), StoreError> {
        use std::io::Write;
        let path = self.path.join(".cairn-space-probe");
        let result = std::fs::File::create(&path).and_then(|mut f| {
            f.write_all(&vec![0u8; PROBE_BYTES])?;
            f.sync_all()
        });
        let _ = std::fs::remove_file(&path);
        result.map_err(|e| StoreError::io_failure(&self.path, e))
    }

    /// While degraded: false when the disk still fails the probe (or was probed less than a
    /// second ago). True when healthy or when the probe passes again.
    pub(super) fn may_write(&self) -> bool {
        if self.temporary {
            return true;
        }
        {
            let mut d = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
            let Some(state) = d.as_mut() else { return true };
            if state.last_probe.is_some_and(|t| t.elapsed() < PROBE_EVERY) {
                return false;
            }
            state.last_probe = Some(std::time::Instant::now());
        }
        match self.probe_space() {
            // The handle latched the failure: only a fresh one can write.
            Ok(()) => self.reopen().is_ok(),
            Err(e) => {
                tracing::debug!(error = %e, "disk still failing");
                false
            }
        }
    }

    /// The error a write gets while the store is degraded and the disk still fails.
    pub(super) fn degraded_error(&self) -> StoreError {
        let reason = self.degraded_reason().unwrap_or_default();
        if StoreError::reason_is_disk_full(&reason) {
            StoreError::DiskFull { path: self.path.clone() }
        } else {
            self.unavailable()
        }
    }

    /// True when writes work: healthy, or degraded but a probe and a real durable write now
    /// succeed (which ends the degraded state). For `/health`.
    pub fn check_writable(&self) -> bool {
        if self.degraded_reason().is_none() {
            return true;
        }
        let mut ws = WriteSet::new();
        ws.set_counter("health_probe", u64::try_from(crate::domain::time::now_ms()).unwrap_or(0));
        self.commit(ws, true).is_ok()
    }
}
