//! Identifier rules shared by every surface: app ids, clusters, namespaces, envs, user names.

use super::DomainError;

/// Apollo's name pattern `[0-9a-zA-Z_-]+[0-9a-zA-Z_.-]*`, which also keeps `+` (the watch-key
/// separator) and NUL (our storage key separator) out of names.
pub fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

const NAME_RULE: &str = "use letters, digits, '_', '-' and '.', not starting with '.', at most 128 characters";

/// Longest app id, cluster, namespace or user name, in bytes.
pub const NAME_MAX: usize = 128;

fn check(what: &'static str, value: &str) -> Result<(), DomainError> {
    if value.len() <= NAME_MAX && is_valid_name(value) {
        Ok(())
    } else {
        Err(DomainError::InvalidName { what, value: value.to_string(), rule: NAME_RULE })
    }
}

/// Validates an app id.
pub fn check_app_id(value: &str) -> Result<(), DomainError> {
    check("appId", value)
}

/// Validates a cluster name.
pub fn check_cluster(value: &str) -> Result<(), DomainError> {
    check("cluster name", value)
}

/// Validates a namespace name (with its format suffix, if any).
pub fn check_namespace(value: &str) -> Result<(), DomainError> {
    check("namespace name", value)
}

/// Validates a user or consumer name.
pub fn check_user(value: &str) -> Result<(), DomainError> {
    check("user name", value)
}

/// Canonical env spelling: upper case. Envs are letters, digits, '_' and '-'.
pub fn normalize_env(value: &str) -> Result<String, DomainError> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(DomainError::InvalidName {
            what: "env",
            value: value.to_string(),
            rule: "use letters, digits, '_' and '-', at most 32 characters",
        })
    }
}

/// The name clients use for "the default cluster".
pub const DEFAULT_CLUSTER: &str = "default";
/// The namespace every app has.
pub const APPLICATION_NAMESPACE: &str = "application";
/// The appId the Java client sends when it has none: public namespaces only.
pub const NO_APP_ID_PLACEHOLDER: &str = "ApolloNoAppIdPlaceHolder";

/// Strips a trailing `.properties` (case-insensitive) from a client-supplied namespace name.
pub fn strip_properties_suffix(ns: &str) -> &str {
    let suffix = ".properties";
    // `get` rather than indexing: the cut may fall inside a multi-byte character of a hostile name.
    let cut = ns.len().saturating_sub(suffix.len());
    match (ns.get(..cut), ns.get(cut..)) {
        (Some(base), Some(tail)) if !base.is_empty() && tail.eq_ignore_ascii_case(suffix) => base,
        _ => ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_apollo_pattern() {
        assert!(is_valid_name("SampleApp"));
        assert!(is_valid_name("FX.apollo"));
        assert!(is_valid_name("app.yaml"));
        assert!(is_valid_name("-x"));
        assert!(!is_valid_name(".x"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a+b"));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name("a\0b"));
    }

    #[test]
    fn properties_suffix_is_stripped_case_insensitively() {
        assert_eq!(strip_properties_suffix("application.properties"), "application");
        assert_eq!(strip_properties_suffix("application.PROPERTIES"), "application");
        assert_eq!(strip_properties_suffix("app.yaml"), "app.yaml");
        assert_eq!(strip_properties_suffix("\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"), "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}");
        assert_eq!(strip_properties_suffix(".properties"), ".properties");
    }

    #[test]
    fn envs_are_upper_cased() {
        assert_eq!(normalize_env("pro").unwrap(), "PRO");
        assert!(normalize_env("p/ro").is_err());
    }
}
