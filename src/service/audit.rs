//! Reading the audit log.

use crate::domain::model::AuditEntry;
use crate::store::AuditFilter as StoredAudit;

use super::{Actor, Cairn, Caller, Result, ServiceError};

/// Audit-log filters; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Substring of the target (app, namespace, user...).
    pub target: String,
    /// Exact user.
    pub user: String,
    /// Prefix of the action (`release`, `item`, `login`...).
    pub action: String,
    /// Only entries at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
}

impl AuditFilter {
    fn matches(&self, e: &AuditEntry) -> bool {
        (self.target.is_empty() || e.target.to_ascii_lowercase().contains(&self.target.to_ascii_lowercase()))
            && (self.user.is_empty()
                || e.actor.eq_ignore_ascii_case(&self.user)
                || e.claimed_operator.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(&self.user)))
            && (self.action.is_empty() || e.action.starts_with(&self.action))
            && self.since_ms.is_none_or(|t| e.time >= t)
    }
}

impl Cairn {
    /// The newest matching audit entries, newest first, at most `limit` (admins only).
    pub fn search_audit(&self, caller: &Caller, filter: &AuditFilter, limit: usize) -> Result<Vec<AuditEntry>> {
        let all = self.audit_log(caller, 100_000)?;
        Ok(all.into_iter().filter(|e| filter.matches(e)).take(limit).collect())
    }

    /// The newest audit entries, newest first (admins only).
    pub fn audit_log(&self, caller: &Caller, limit: usize) -> Result<Vec<AuditEntry>> {
        if !matches!(caller.actor, Actor::System) && !matches!(&caller.actor, Actor::User(u) if u.is_admin) {
            return Err(ServiceError::Forbidden("only an admin may read the audit log".into()));
        }
        Ok(self.repo.audit(&StoredAudit::default(), limit)?)
    }
}

impl Cairn {
    /// A point-in-time backup while serving; the engine's export makes it one point in time
    /// (see `Repo::export`), so no change is opened here.
    pub fn backup(&self, caller: &Caller, path: &std::path::Path) -> Result<crate::store::BackupSummary> {
        if !matches!(caller.actor, Actor::System) {
            return Err(ServiceError::Forbidden("only the local administrator may take backups".into()));
        }
        self.instances.flush();
        Ok(crate::store::backup(&*self.repo, path, crate::domain::time::now_ms())?)
    }

    /// Verifies every release checksum and the history invariants (`cairn check`).
    pub fn check(&self, caller: &Caller) -> Result<crate::store::CheckReport> {
        if !matches!(caller.actor, Actor::System) {
            return Err(ServiceError::Forbidden("only the local administrator may check the store".into()));
        }
        Ok(crate::store::check(&*self.repo)?)
    }
}

/// A namespace with unpublished changes.
#[derive(Debug, Clone)]
pub struct PendingDraft {
    pub env: String,
    pub app_id: String,
    pub cluster: String,
    pub namespace: String,
    pub editors: Vec<String>,
}

impl Cairn {
    /// Recent releases, rollbacks and gray changes in apps the caller can see, newest first.
    pub fn recent_releases(&self, caller: &Caller, limit: usize) -> Result<Vec<AuditEntry>> {
        let entries = self.repo.audit(&StoredAudit::default(), 5_000)?;
        Ok(entries
            .into_iter()
            .filter(|e| e.action.starts_with("release.") || e.action.starts_with("branch."))
            .filter(|e| caller.can(super::auth::Permission::SeeApp { app: e.target.split('/').next().unwrap_or("") }))
            .take(limit)
            .collect())
    }

    /// Namespaces with unpublished changes in apps the caller can see.
    pub fn pending_drafts(&self, caller: &Caller) -> Result<Vec<PendingDraft>> {
        let mut out = Vec::new();
        for env in &self.settings.envs {
            for ns in self.repo.namespaces(env, None, None)? {
                if !ns.draft_editors.is_empty() && caller.can(super::auth::Permission::SeeApp { app: &ns.app_id }) {
                    out.push(PendingDraft {
                        env: env.clone(),
                        app_id: ns.app_id,
                        cluster: ns.cluster,
                        namespace: ns.name,
                        editors: ns.draft_editors,
                    });
                }
            }
        }
        Ok(out)
    }
}
