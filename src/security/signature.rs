//! Apollo access-key signatures: Base64(HMAC-SHA1(secret, timestamp + "\n" + pathWithQuery)).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Signs `path_with_query` at `timestamp` (ms, as sent) with `secret`.
pub fn sign(timestamp: &str, path_with_query: &str, secret: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(path_with_query.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// True when `signature` equals the signature of any of `paths`, compared in constant time.
pub fn verify_any(timestamp: &str, paths: &[&str], secret: &str, signature: &str) -> bool {
    paths.iter().fold(false, |ok, path| {
        let expected = sign(timestamp, path, secret);
        super::constant_time_eq(expected.as_bytes(), signature.as_bytes()) | ok
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_worked_example_of_the_protocol() {
        let sig = super::sign("1705305600000", "/configs/SampleApp/default/application?ip=10.1.2.3", "some-secret");
        assert_eq!(sig, "uuq85qc6y5PDXxYm9UMtxFqOsng=");
    }
}
