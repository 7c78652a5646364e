//! Cryptographic building blocks: argon2id passwords, random tokens, Apollo access-key
//! signatures and constant-time comparison; and the grouping of client addresses that the
//! connection cap and sign-in throttling count against. No imports from other Cairn layers.

pub mod password;
pub mod signature;
pub mod token;

use std::net::{IpAddr, Ipv6Addr};

/// The address a client is counted against (connection caps, sign-in throttling): an IPv4
/// address (an IPv4-mapped IPv6 one included) as it is, an IPv6 address by its /64 network. One host is routinely given a
/// whole /64 and can pick any address in it, so counting single IPv6 addresses would not cap
/// anything.
pub fn address_group(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Compares two byte strings in constant time (for equal lengths).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
