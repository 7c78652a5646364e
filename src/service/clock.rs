//! The monotonic clock sessions, sign-in throttling and sign-in form tokens read. It runs with
//! the system's monotonic clock; [`Clock::advance`] moves it forward so that timeouts of
//! minutes or hours can be checked without waiting for them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Monotonic time plus an offset that only grows.
#[derive(Debug)]
pub struct Clock {
    origin: Instant,
    ahead_ms: AtomicU64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock { origin: Instant::now(), ahead_ms: AtomicU64::new(0) }
    }
}

impl Clock {
    /// The current instant.
    pub fn now(&self) -> Instant {
        let now = Instant::now();
        now.checked_add(Duration::from_millis(self.ahead_ms.load(Ordering::Relaxed))).unwrap_or(now)
    }

    /// Time since this clock started (stable across calls; used in signed tokens).
    pub fn since_start(&self) -> Duration {
        self.now().saturating_duration_since(self.origin)
    }

    /// Moves the clock forward by `by`: everything that expires with time sees it pass.
    /// Nothing in a running server calls this; it exists so timeouts can be verified.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self.ahead_ms.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_add(ms)));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn advancing_moves_now_forward() {
        let clock = super::Clock::default();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now().duration_since(before) >= Duration::from_secs(3600));
        assert!(clock.since_start() >= Duration::from_secs(3600));
    }
}
