//! The password rules every new password meets, wherever it is set (setup, user creation in
//! the portal, the CLI and the admin API, admin reset, own change, the bootstrap variables).
//! Length alone lets `password` and `12345678` through, so common passwords, simple patterns
//! and the user's own name are refused as well, each with the rule it breaks.

use super::DomainError;

/// Shortest password accepted, in characters.
pub const MIN_LENGTH: usize = 8;

/// The embedded blocklist: lower-case lines; `#` starts a comment line.
const COMMON: &str = include_str!("common_passwords.txt");

fn is_common(lower: &str) -> bool {
    COMMON.lines().any(|l| !l.starts_with('#') && l == lower)
}

/// True for one short unit repeated ("aaaaaaaa", "abababab", "123123123").
fn is_repetition(chars: &[char]) -> bool {
    (1..=4).any(|unit| chars.len() > unit && chars.chunks(unit).all(|c| c == &chars[..c.len()]))
}

/// True for a run of consecutive characters either way ("12345678", "hgfedcba").
fn is_sequence(chars: &[char]) -> bool {
    let steps: Vec<i64> = chars.windows(2).map(|w| i64::from(u32::from(w[1])) - i64::from(u32::from(w[0]))).collect();
    steps.first().is_some_and(|&s| (s == 1 || s == -1) && steps.iter().all(|&x| x == s))
}

/// Words that mark a value as a placeholder someone meant to replace ("CHANGE-ME-before-applying",
/// "<your-password>"), compared on letters and digits only.
const PLACEHOLDERS: [&str; 5] = ["changeme", "replaceme", "placeholder", "yourpassword", "passwordhere"];

/// True when the password is, or contains, a placeholder word.
fn is_placeholder(lower: &str) -> bool {
    let letters: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
    PLACEHOLDERS.iter().any(|p| letters.contains(p))
}

/// Checks a new password for `user`; the error names the rule that is broken.
pub fn check(user: &str, password: &str) -> Result<(), DomainError> {
    let reject = |reason: &str| Err(DomainError::field("password", reason));
    let chars: Vec<char> = password.chars().collect();
    if chars.len() < MIN_LENGTH {
        return reject(&format!("must be at least {MIN_LENGTH} characters; a few words with spaces make a good one"));
    }
    let lower = password.to_lowercase();
    let user = user.trim().to_lowercase();
    if !user.is_empty() && lower.contains(&user) {
        // A name plus a short suffix ("root1234") is guessed first; a long passphrase that
        // merely mentions the name is not.
        if lower.chars().count().saturating_sub(user.chars().count()) < MIN_LENGTH {
            return reject(&format!(
                "must not be the user name or the user name plus a few characters; add at least {MIN_LENGTH} \
                 characters of something else"
            ));
        }
    }
    if is_placeholder(&lower) {
        return reject("is a placeholder, meant to be replaced; choose a real password");
    }
    if is_repetition(&chars) {
        return reject("must not be one character or a short pattern repeated; choose something less regular");
    }
    if is_sequence(&chars) {
        return reject("must not be a run of consecutive characters such as 12345678; choose something less regular");
    }
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    if is_common(&lower) || (!stem.is_empty() && is_common(stem)) {
        return reject("is one of the most common passwords and is guessed first; choose another");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn common_short_regular_and_name_based_passwords_are_refused_with_their_rule() {
        let table = [
            ("password", "most common"),
            ("12345678", "consecutive"),
            ("Password1", "most common"),
            ("P@ssw0rd!", "most common"),
            ("welcome2024!", "most common"),
            ("qwertyuiop", "most common"),
            ("1q2w3e4r", "most common"),
            ("aaaaaaaa", "repeated"),
            ("abababab", "repeated"),
            ("123123123", "repeated"),
            ("hgfedcba", "consecutive"),
            ("short", "at least 8"),
            ("carol", "at least 8"),
            ("carolcarol", "user name"),
            ("Carol2024", "user name"),
            ("carol-123", "user name"),
            ("CHANGE-ME-before-applying", "placeholder"),
            ("changeme123", "placeholder"),
            ("<your-password>", "placeholder"),
            ("replace_me_now", "placeholder"),
        ];
        for (pw, rule) in table {
            let err = check("carol", pw).map(|_| ()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(rule), "{pw:?} should break the {rule:?} rule, got {err:?}");
        }
    }

    #[test]
    fn ordinary_passwords_and_passphrases_pass() {
        for pw in ["carol-password", "correct horse battery", "long-enough-1", "a-good-password", "Tr0ub4dor&3x"] {
            assert!(check("carol", pw).is_ok(), "{pw:?}");
        }
    }
}
