//! Random secrets and their stored digests.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A random secret of `bytes` bytes as lower-case hex (20 bytes = 160 bits = 40 hex chars,
/// the shape of Apollo's consumer tokens).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// The SHA-256 of a token as hex: what is stored instead of the token.
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// HMAC-SHA-256 of `message` under `key`, as hex (tamper-proof tokens the server issues).
pub fn hmac_sha256_hex(key: &[u8], message: &str) -> String {
    use hmac::{Hmac, Mac};
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this arm is unreachable but must not panic.
        Err(_) => String::new(),
    }
}
