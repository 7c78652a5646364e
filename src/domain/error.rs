//! Validation errors: what is wrong with the input, written for the person who sent it.

/// A rule of the data model was broken by some input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A name (app id, cluster, namespace, env, user) does not follow the naming rules.
    #[error("invalid {what} '{value}': {rule}")]
    InvalidName { what: &'static str, value: String, rule: &'static str },
    /// A field is missing, too long or otherwise unacceptable.
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// The text of a json/yaml/xml namespace does not parse.
    #[error("{format} content is not valid at line {line}, column {column}: {message}")]
    InvalidContent { format: &'static str, line: usize, column: usize, message: String },
}

impl DomainError {
    /// Shorthand for [`DomainError::InvalidField`].
    pub fn field(field: &'static str, reason: impl Into<String>) -> Self {
        DomainError::InvalidField { field, reason: reason.into() }
    }
}
