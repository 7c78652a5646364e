//! The vocabulary callers act on. Each web surface maps it once.

use crate::domain::DomainError;
use crate::store::StoreError;

/// Why a use case did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Creating something that exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The input breaks a data-model rule.
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// A request that cannot be carried out in the current state (stale, locked, limit hit).
    #[error("{0}")]
    Conflict(String),
    /// No or unknown credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Credentials are fine but lack the permission.
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed attempts; retry after this many seconds.
    #[error("too many attempts; try again in {0} s")]
    Throttled(u64),
    /// Storage failed; the message for clients is generic, the source goes to the log.
    #[error("internal storage error")]
    Internal(#[from] StoreError),
}

impl ServiceError {
    /// A [`ServiceError::NotFound`] with a formatted message.
    pub fn not_found(msg: impl Into<String>) -> Self {
        ServiceError::NotFound(msg.into())
    }

    /// A [`ServiceError::Conflict`] with a formatted message.
    pub fn conflict(msg: impl Into<String>) -> Self {
        ServiceError::Conflict(msg.into())
    }

    /// True when storage refused a write because the disk is full (HTTP 507).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, ServiceError::Internal(e) if e.is_disk_full())
    }

    /// True when storage is failing since an I/O error other than a full disk, or the
    /// database is down or frozen (HTTP 503).
    pub fn is_storage_unavailable(&self) -> bool {
        matches!(self, ServiceError::Internal(StoreError::Unavailable { .. } | StoreError::Database { .. }))
    }

    /// A field-level validation error.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ServiceError::Invalid(DomainError::field(field, reason))
    }
}

/// Result alias for service calls.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
