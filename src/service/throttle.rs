//! Sign-in throttling and the bound on concurrent password checks.
//!
//! Three leaky buckets count failed sign-ins; each failure adds one and the level drains
//! steadily, so old typos are forgotten:
//! - per (account, client IP): refuses after a few failures. The right password from another
//!   IP is never refused because of it, so nobody can lock a named account out.
//! - per client IP (all accounts): refuses after more failures; a successful sign-in from the
//!   IP empties it, so behind a reverse proxy one person's typos do not lock out everyone.
//! - per account (all IPs): never refuses, only delays each check a little once many IPs fail
//!   on one account, which slows a distributed guesser without locking the owner out.
//!
//! A slot is taken (counted as a failure) under one lock *before* the password is hashed and
//! given back on success, so a burst of parallel attempts gets no more checks than sequential
//! ones. Every table has a cap and forgets drained entries. At most [`Gate`]'s bound of
//! argon2 computations run at once; the rest queue briefly, then are told to retry.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Failures per (account, IP) before sign-ins are refused; one drains every [`PAIR_LEAK`].
const PAIR_CAPACITY: f64 = 3.0;
const PAIR_LEAK: Duration = Duration::from_secs(60);
/// Failures per IP (all accounts) before sign-ins are refused; one drains every [`IP_LEAK`].
const IP_CAPACITY: f64 = 10.0;
const IP_LEAK: Duration = Duration::from_secs(10);
/// Failures per account (all IPs) after which each check is delayed by [`ACCOUNT_DELAY`].
const ACCOUNT_CAPACITY: f64 = 10.0;
const ACCOUNT_LEAK: Duration = Duration::from_secs(30);
const ACCOUNT_DELAY: Duration = Duration::from_secs(1);
/// Entries per table; past it, drained entries go first, then the least loaded.
const MAX_ENTRIES: usize = 10_000;
/// Longest account name kept in a key (longer input is refused by the user rules anyway).
const MAX_KEY_NAME: usize = 128;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

#[derive(Debug)]
struct Table {
    capacity: f64,
    leak: Duration,
    max_entries: usize,
    map: HashMap<String, Bucket>,
}

impl Table {
    fn new(capacity: f64, leak: Duration) -> Table {
        Table { capacity, leak, max_entries: MAX_ENTRIES, map: HashMap::new() }
    }

    fn level(&self, b: &Bucket, now: Instant) -> f64 {
        let drained = now.saturating_duration_since(b.at).as_secs_f64() / self.leak.as_secs_f64();
        (b.level - drained).max(0.0)
    }

    /// How long until one more failure fits, or None when it fits now.
    fn wait(&self, key: &str, now: Instant) -> Option<Duration> {
        let level = self.map.get(key).map_or(0.0, |b| self.level(b, now));
        let over = level + 1.0 - self.capacity;
        (over > 0.0).then(|| self.leak.mul_f64(over))
    }

    fn add(&mut self, key: &str, now: Instant) {
        if !self.map.contains_key(key) && self.map.len() >= self.max_entries {
            self.make_room(now);
        }
        let level = self.map.get(key).map_or(0.0, |b| self.level(b, now));
        self.map.insert(key.to_string(), Bucket { level: level + 1.0, at: now });
    }

    fn make_room(&mut self, now: Instant) {
        let drained: Vec<String> =
            self.map.iter().filter(|(_, b)| self.level(b, now) <= 0.0).map(|(k, _)| k.clone()).collect();
        for k in drained {
            self.map.remove(&k);
        }
        while self.map.len() >= self.max_entries {
            let lightest = self
                .map
                .iter()
                .min_by(|a, b| self.level(a.1, now).total_cmp(&self.level(b.1, now)))
                .map(|(k, _)| k.clone());
            match lightest {
                Some(k) => self.map.remove(&k),
                None => break,
            };
        }
    }

    fn clear(&mut self, key: &str) {
        self.map.remove(key);
    }

    fn remove_one(&mut self, key: &str, now: Instant) {
        let level = self.map.get(key).map(|b| self.level(b, now));
        if let Some(level) = level {
            self.map.insert(key.to_string(), Bucket { level: (level - 1.0).max(0.0), at: now });
        }
    }
}

#[derive(Debug)]
struct Tables {
    pair: Table,
    ip: Table,
    account: Table,
}

/// The sign-in throttle (see the module header).
#[derive(Debug)]
pub struct Throttle {
    tables: Mutex<Tables>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            tables: Mutex::new(Tables {
                pair: Table::new(PAIR_CAPACITY, PAIR_LEAK),
                ip: Table::new(IP_CAPACITY, IP_LEAK),
                account: Table::new(ACCOUNT_CAPACITY, ACCOUNT_LEAK),
            }),
        }
    }
}

fn keys(account: &str, ip: &str) -> (String, String, String) {
    let account: String = account.chars().take(MAX_KEY_NAME).collect::<String>().to_lowercase();
    // An IPv6 client counts by its /64: it can pick any address in it.
    let ip = ip.parse().map_or_else(|_| ip.to_string(), |a| crate::security::address_group(a).to_string());
    (format!("{account}\u{0}{ip}"), ip.to_string(), account)
}

/// What the throttle allows for one attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Slot {
    /// Check the password after waiting this long (zero unless the account is under attack).
    Check { delay: Duration },
    /// Refused: retry after this long.
    Refused { retry_after: Duration },
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for one attempt (counted as a failure until [`Throttle::succeeded`]).
    pub fn take(&self, account: &str, ip: &str, now: Instant) -> Slot {
        let (pair, ip, account) = keys(account, ip);
        let mut t = self.lock();
        let refused = [t.pair.wait(&pair, now), t.ip.wait(&ip, now)].into_iter().flatten().max();
        if let Some(retry_after) = refused {
            return Slot::Refused { retry_after };
        }
        let delay = if t.account.wait(&account, now).is_some() { ACCOUNT_DELAY } else { Duration::ZERO };
        t.pair.add(&pair, now);
        t.ip.add(&ip, now);
        t.account.add(&account, now);
        Slot::Check { delay }
    }

    /// A right password: forgets the failures of this account and of this IP.
    pub fn succeeded(&self, account: &str, ip: &str) {
        let (pair, ip, account) = keys(account, ip);
        let mut t = self.lock();
        t.pair.clear(&pair);
        t.ip.clear(&ip);
        t.account.clear(&account);
    }

    /// Gives back a slot whose password was never checked (the server was too busy).
    pub fn not_checked(&self, account: &str, ip: &str, now: Instant) {
        let (pair, ip, account) = keys(account, ip);
        let mut t = self.lock();
        t.pair.remove_one(&pair, now);
        t.ip.remove_one(&ip, now);
        t.account.remove_one(&account, now);
    }
}

/// Bounds how many password hashes or checks run at once (each takes 19 MiB and a core).
#[derive(Debug)]
pub struct Gate {
    busy: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

/// How long an attempt queues for a free slot before it is told to retry.
const GATE_WAIT: Duration = Duration::from_secs(10);

impl Default for Gate {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Gate::new(cores.clamp(2, 8))
    }
}

impl Gate {
    /// A gate letting `max` computations run at once.
    pub fn new(max: usize) -> Gate {
        Gate { busy: Mutex::new(0), freed: Condvar::new(), max: max.max(1) }
    }

    /// Runs `f` once a slot is free; None when none frees within the queueing time.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Option<T> {
        {
            let busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
            let (mut busy, timeout) =
                self.freed.wait_timeout_while(busy, GATE_WAIT, |b| *b >= self.max).unwrap_or_else(|p| p.into_inner());
            if timeout.timed_out() && *busy >= self.max {
                return None;
            }
            *busy += 1;
        }
        let out = f();
        *self.busy.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.freed.notify_one();
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{Gate, Slot, Table, Throttle};

    #[test]
    fn buckets_drain_over_time() {
        let mut t = Table::new(3.0, Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..3 {
            assert!(t.wait("k", now).is_none());
            t.add("k", now);
        }
        assert_eq!(t.wait("k", now), Some(Duration::from_secs(60)));
        assert!(t.wait("k", now + Duration::from_secs(61)).is_none());
    }

    #[test]
    fn tables_are_capped_and_keep_the_loaded_entries() {
        let mut t = Table::new(3.0, Duration::from_secs(60));
        t.max_entries = 100;
        let now = Instant::now();
        for _ in 0..3 {
            t.add("attacked", now);
        }
        for i in 0..1_000 {
            t.add(&format!("k{i}"), now);
        }
        assert!(t.map.len() <= 100);
        assert!(t.wait("attacked", now).is_some(), "the loaded entry was evicted");
    }

    #[test]
    fn slots_are_taken_before_the_check_and_given_back_on_success() {
        let th = Throttle::default();
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(th.take("root", "10.0.0.1", now), Slot::Check { delay: Duration::ZERO });
        }
        assert!(matches!(th.take("root", "10.0.0.1", now), Slot::Refused { .. }));
        assert!(matches!(th.take("ROOT", "10.0.0.1", now), Slot::Refused { .. }));
        assert!(matches!(th.take("root", "10.0.0.2", now), Slot::Check { .. }));
        th.succeeded("root", "10.0.0.1");
        assert!(matches!(th.take("root", "10.0.0.1", now), Slot::Check { .. }));
        th.take("root", "10.0.0.1", now);
        th.take("root", "10.0.0.1", now);
        assert!(matches!(th.take("root", "10.0.0.1", now), Slot::Refused { .. }));
        th.not_checked("root", "10.0.0.1", now);
        assert!(matches!(th.take("root", "10.0.0.1", now), Slot::Check { .. }), "an unchecked slot is given back");
    }

    #[test]
    fn the_gate_bounds_concurrent_work() {
        let gate = Arc::new(Gate::new(2));
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let (gate, now, peak) = (gate.clone(), now.clone(), peak.clone());
                std::thread::spawn(move || {
                    gate.run(|| {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        now.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap().is_some());
        }
        assert!(peak.load(Ordering::SeqCst) <= 2, "more than two ran at once");
    }
}
