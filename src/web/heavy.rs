//! A bounded pool for heavy request work: building and rendering portal pages and Open API
//! calls run here, on blocking threads, at most a few at a time. The async workers then only
//! move bytes, so `/configs` and long polls keep their latency while operators open a
//! 5,000-item namespace or a script walks the Open API (the rest of that work queues here).
//! [`off_workers`] is the one way a handler or extractor reaches storage otherwise.

use tokio::sync::Semaphore;

/// The heavy-work pool shared by every worker of every listener.
pub struct HeavyWork {
    permits: Semaphore,
}

/// The pool could not run the job (its thread died or the server is stopping).
#[derive(Debug, thiserror::Error)]
#[error("the work pool could not run this request: {0}")]
pub struct HeavyError(String);

impl Default for HeavyWork {
    /// Half the cores (at least one) may run heavy work at once; the others stay free for
    /// the client API.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        HeavyWork::new((cores / 2).max(1))
    }
}

impl HeavyWork {
    /// A pool running at most `jobs` jobs at once.
    pub fn new(jobs: usize) -> HeavyWork {
        HeavyWork { permits: Semaphore::new(jobs.max(1)) }
    }

    /// Runs `f` on a blocking thread once a slot is free (waiting asynchronously, in arrival
    /// order).
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, HeavyError> {
        let _slot = self.permits.acquire().await.map_err(|e| HeavyError(e.to_string()))?;
        off_workers(f).await
    }
}

/// Runs `f` on a blocking thread, marked as work that may wait on storage: every service
/// call that reads or writes storage goes through here (or [`HeavyWork::run`]), so a database
/// waiting out its deadline never holds a worker that answers client fetches and polls.
pub async fn off_workers<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, HeavyError> {
    actix_web::web::block(move || crate::service::storage_may_wait(f)).await.map_err(|e| HeavyError(e.to_string()))
}
