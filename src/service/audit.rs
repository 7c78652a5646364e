//! Reading the audit log.

use crate::domain::model::AuditEntry;
use crate::store::T;

use super::{Actor, Cairn, Caller, Result, ServiceError};

impl Cairn {
    /// The newest audit entries, newest first (admins only).
    pub fn audit_log(&self, caller: &Caller, limit: usize) -> Result<Vec<AuditEntry>> {
        if !matches!(caller.actor, Actor::System) && !matches!(&caller.actor, Actor::User(u) if u.is_admin) {
            return Err(ServiceError::Forbidden("only an admin may read the audit log".into()));
        }
        Ok(self.store.scan_rev(T::Audit, b"", limit)?)
    }
}

impl Cairn {
    /// A point-in-time backup while serving: writes wait until it is done.
    pub fn backup(&self, caller: &Caller, path: &std::path::Path) -> Result<crate::store::BackupSummary> {
        if !matches!(caller.actor, Actor::System) {
            return Err(ServiceError::Forbidden("only the local administrator may take backups".into()));
        }
        self.instances.flush();
        let _writes = self.lock_writes();
        Ok(self.store.backup(path, crate::domain::time::now_ms())?)
    }
}
