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
