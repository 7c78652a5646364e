//! Progress of long storage operations (restore, check): a log line every few seconds with
//! the records done, the rate and, when the total is known, the time left.

use std::time::{Duration, Instant};

/// How often a running operation logs its progress.
const EVERY: Duration = Duration::from_secs(5);

/// Counts records and logs now and then.
pub(crate) struct Progress {
    what: &'static str,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last: Instant,
}

impl Progress {
    /// Starts counting `what` (e.g. "restore"); `total` when known in advance.
    pub(crate) fn new(what: &'static str, total: Option<u64>) -> Progress {
        let now = Instant::now();
        Progress { what, total, done: 0, started: now, last: now }
    }

    /// One more record; logs when the last line is [`EVERY`] old.
    pub(crate) fn tick(&mut self) {
        self.done += 1;
        // Reading the clock on every record would cost more than the records themselves.
        if self.done % 256 == 0 && self.last.elapsed() >= EVERY {
            self.last = Instant::now();
            self.log();
        }
    }

    /// Records counted so far.
    pub(crate) fn done(&self) -> u64 {
        self.done
    }

    fn log(&self) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = (self.done as f64 / secs).round() as u64;
        match self.total {
            Some(total) => {
                let left = total.saturating_sub(self.done);
                let eta = left.checked_div(rate).unwrap_or(0);
                tracing::info!(
                    "{}: {} of {} records, {} records/s, about {} s left",
                    self.what,
                    self.done,
                    total,
                    rate,
                    eta
                );
            }
            None => tracing::info!("{}: {} records, {} records/s", self.what, self.done, rate),
        }
    }
}
