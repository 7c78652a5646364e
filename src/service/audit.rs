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
