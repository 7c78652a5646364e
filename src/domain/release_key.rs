//! Release keys and gray-branch names: `yyyyMMddHHmmss-` + 16 lower-case hex digits, unique.

use std::sync::atomic::{AtomicU32, Ordering};

use sha2::{Digest, Sha256};

use super::time::compact;

/// Generates Apollo-shaped unique keys: 2 bytes of a hash of the namespace, 3 bytes of a
/// per-process random id, 3 bytes of a counter.
pub struct KeyGenerator {
    machine: [u8; 3],
    counter: AtomicU32,
}

impl KeyGenerator {
    /// A generator with the given per-process random seed.
    pub fn new(seed: u32) -> Self {
        let b = seed.to_be_bytes();
        KeyGenerator { machine: [b[0], b[1], b[2]], counter: AtomicU32::new(u32::from(b[3]) << 8) }
    }

    /// A new key for (app, cluster, namespace) at time `now_ms`.
    pub fn next(&self, now_ms: i64, app: &str, cluster: &str, namespace: &str) -> String {
        let hash = Sha256::digest(format!("{app}+{cluster}+{namespace}").as_bytes());
        let n = self.counter.fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff;
        let c = n.to_be_bytes();
        let bytes = [hash[0], hash[1], self.machine[0], self.machine[1], self.machine[2], c[1], c[2], c[3]];
        format!("{}-{}", compact(now_ms), hex::encode(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_shaped_like_apollo() {
        let g = KeyGenerator::new(7);
        let a = g.next(0, "a", "default", "application");
        let b = g.next(0, "a", "default", "application");
        assert_ne!(a, b);
        assert_eq!(a.len(), 14 + 1 + 16);
        assert!(a[15..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
