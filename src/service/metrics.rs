//! Process counters exported on `/metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters updated on the hot paths with relaxed atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    pub long_polls_held: AtomicI64,
    pub releases_published: AtomicU64,
    pub config_fetches: AtomicU64,
    /// Sum and count of the time from commit to the last woken poll answer, in microseconds.
    pub fanout_micros_sum: AtomicU64,
    pub fanout_count: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
