//! Cryptographic building blocks: argon2id passwords, random tokens, Apollo access-key
//! signatures and constant-time comparison. No imports from other Cairn layers.

pub mod password;
pub mod signature;
pub mod token;

/// Compares two byte strings in constant time (for equal lengths).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
