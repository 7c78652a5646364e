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
        tracing::info!("{}", self.line(self.started.elapsed()));
    }

    /// The progress line after `elapsed`.
    fn line(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(0.001);
        let rate = (self.done as f64 / secs).round() as u64;
        match self.total {
            Some(total) => {
                let left = total.saturating_sub(self.done);
                let eta = left.checked_div(rate).unwrap_or(0);
                format!("{}: {} of {total} records, {rate} records/s, about {eta} s left", self.what, self.done)
            }
            None => format!("{}: {} records, {rate} records/s", self.what, self.done),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_gives_the_rate_and_the_time_left() {
        let mut p = Progress::new("restore", Some(3_000));
        (0..1_000).for_each(|_| p.tick());
        assert_eq!(p.line(Duration::from_secs(2)), "restore: 1000 of 3000 records, 500 records/s, about 4 s left");
        let mut p = Progress::new("check", None);
        p.tick();
        assert_eq!(p.line(Duration::from_secs(1)), "check: 1 records, 1 records/s");
    }
}
