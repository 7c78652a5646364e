//! Connections: a small tokio runtime owned by the engine, a bounded pool of clients, and a
//! deadline on every call.
//!
//! Callers are synchronous and may sit on any thread, an async worker included, so no call
//! ever runs a runtime on the caller's thread: the work is spawned on the engine's runtime
//! and the caller waits on a std channel with a timeout. The spawned work carries the same
//! deadline, so a call to a frozen database is dropped (and its connection with it) instead
//! of piling up. A closed or timed-out connection is discarded; the next call connects anew.

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, NoTls};

use crate::store::StoreError;

/// Deadlines and sizes of the engine's connections.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections open at most (a change holds one; reads use the others).
    pub pool_size: usize,
    /// How long a caller waits for one call (connecting included) before giving up.
    pub call_timeout: Duration,
    /// PostgreSQL's `statement_timeout` on every connection (below `call_timeout`, so a
    /// slow statement fails cleanly and the connection is kept).
    pub statement_timeout: Duration,
    /// PostgreSQL's `lock_timeout`: how long a change waits for another process's change.
    pub lock_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 8,
            call_timeout: Duration::from_millis(1500),
            statement_timeout: Duration::from_millis(1200),
            lock_timeout: Duration::from_millis(1000),
        }
    }
}

/// A client checked out of the pool, with its slot.
pub(super) struct Pooled {
    pub client: Arc<Client>,
    _slot: OwnedSemaphorePermit,
}

/// The engine's runtime and pool.
pub(super) struct Conn {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    config: tokio_postgres::Config,
    setup: String,
    idle: Arc<Mutex<Vec<Arc<Client>>>>,
    slots: Arc<Semaphore>,
    pub options: PgOptions,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which tokio refuses inside another runtime (an engine
        // dropped by an async worker); shut it down without waiting instead.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Conn {
    pub fn new(config: tokio_postgres::Config, options: PgOptions) -> Result<Conn, std::io::Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cairn-pg")
            .enable_io()
            .enable_time()
            .build()?;
        let setup = format!(
            "SET statement_timeout = {}; SET lock_timeout = {}; SET idle_in_transaction_session_timeout = 60000",
            options.statement_timeout.as_millis(),
            options.lock_timeout.as_millis()
        );
        Ok(Conn {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            config,
            setup,
            idle: Arc::new(Mutex::new(Vec::new())),
            slots: Arc::new(Semaphore::new(options.pool_size.max(2))),
            options,
        })
    }

    /// Runs `work` on the engine's runtime and waits for it, at most `deadline`.
    pub fn run<T, F>(&self, deadline: Duration, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        #[cfg(debug_assertions)]
        if crate::store::waiting::on_async_worker() {
            let site = crate::store::waiting::call_site();
            tracing::error!(call_site = %site, "database call on an async worker: run it off the workers");
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let out = match tokio::time::timeout(deadline, work).await {
                Ok(out) => out,
                Err(_) => Err(timed_out(deadline)),
            };
            let _ = tx.send(out);
        });
        match rx.recv_timeout(deadline + Duration::from_millis(250)) {
            Ok(out) => out,
            Err(_) => Err(timed_out(deadline)),
        }
    }

    /// Runs `f` with a pooled client, within the call deadline.
    pub fn call<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Client>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send,
    {
        self.call_within(self.options.call_timeout, f)
    }

    /// Runs `f` with a pooled client, within `deadline`.
    pub fn call_within<T, F, Fut>(&self, deadline: Duration, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Client>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send,
    {
        let checkout = self.checkout_future();
        let idle = self.idle.clone();
        let max_idle = self.options.pool_size;
        self.run(deadline, async move {
            let pooled = checkout.await?;
            let out = f(pooled.client.clone()).await;
            // A failure of the database (as opposed to a refused statement) may have broken
            // the connection; a fresh one costs little.
            if !matches!(out, Err(StoreError::Database { .. })) {
                give_back(&idle, pooled, max_idle);
            }
            out
        })
    }

    /// A future that takes a pool slot and an idle or new client.
    pub fn checkout_future(&self) -> impl Future<Output = Result<Pooled, StoreError>> + Send + 'static {
        let slots = self.slots.clone();
        let idle = self.idle.clone();
        let config = self.config.clone();
        let setup = self.setup.clone();
        async move {
            let slot = slots
                .acquire_owned()
                .await
                .map_err(|_| StoreError::Database { reason: "the engine is shutting down".into() })?;
            loop {
                let found = idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
                match found {
                    Some(c) if c.is_closed() => continue,
                    Some(client) => return Ok(Pooled { client, _slot: slot }),
                    None => break,
                }
            }
            let client = connect(&config, &setup).await?;
            Ok(Pooled { client: Arc::new(client), _slot: slot })
        }
    }

    /// Returns a healthy client to the pool (from a change that ended cleanly).
    pub fn give_back(&self, pooled: Pooled) {
        give_back(&self.idle, pooled, self.options.pool_size);
    }

    /// Spawns `work` without waiting for it (rolling back an abandoned change).
    pub fn detach<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let deadline = self.options.call_timeout;
        self.handle.spawn(async move {
            let _ = tokio::time::timeout(deadline, work).await;
        });
    }

    /// The pool, for detached work that returns a client.
    pub fn idle_pool(&self) -> (Arc<Mutex<Vec<Arc<Client>>>>, usize) {
        (self.idle.clone(), self.options.pool_size)
    }
}

pub(super) fn give_back(idle: &Mutex<Vec<Arc<Client>>>, pooled: Pooled, max_idle: usize) {
    if pooled.client.is_closed() || Arc::strong_count(&pooled.client) > 1 {
        return;
    }
    let mut idle = idle.lock().unwrap_or_else(|p| p.into_inner());
    if idle.len() < max_idle {
        idle.push(pooled.client);
    }
}

/// Opens one connection and applies the session settings (timeouts).
pub(super) async fn connect(config: &tokio_postgres::Config, setup: &str) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(map_error)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "database connection ended");
        }
    });
    client.batch_execute(setup).await.map_err(map_error)?;
    Ok(client)
}

fn timed_out(deadline: Duration) -> StoreError {
    StoreError::Database { reason: format!("no answer within {} ms", deadline.as_millis()) }
}

/// A driver error as storage reports it: the database being away or refusing work for now
/// is [`StoreError::Database`] (HTTP 503); a refused statement is [`StoreError::Query`].
pub(super) fn map_error(e: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    let Some(db) = e.as_db_error() else {
        let text = e.to_string();
        if text.contains("serializing") || text.contains("deserializing") {
            return StoreError::Query { reason: text };
        }
        let reason = match std::error::Error::source(&e) {
            Some(source) => format!("{text}: {source}"),
            None => text,
        };
        return StoreError::Database { reason };
    };
    let code = db.code();
    let class = code.code().get(..2).unwrap_or("");
    let passing = matches!(class, "08" | "53" | "57" | "58" | "40")
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION;
    let reason = format!("{} ({})", db.message(), code.code());
    if passing {
        StoreError::Database { reason }
    } else {
        StoreError::Query { reason }
    }
}

/// A process-wide gate: at most one change of this process waits for, or holds, the
/// database's lock row, so waiting changes do not tie up the pool the holder reads through.
pub(super) struct Gate {
    busy: Mutex<bool>,
    free: Condvar,
}

/// Holding the [`Gate`]; leaving it on drop.
pub(super) struct GateGuard<'a>(&'a Gate);

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        *self.0.busy.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.0.free.notify_one();
    }
}

impl Gate {
    pub fn new() -> Gate {
        Gate { busy: Mutex::new(false), free: Condvar::new() }
    }

    /// Enters, waiting at most `timeout` for the current holder.
    pub fn enter(&self, timeout: Duration) -> Option<GateGuard<'_>> {
        let busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let (mut busy, _) = self.free.wait_timeout_while(busy, timeout, |b| *b).unwrap_or_else(|p| p.into_inner());
        if *busy {
            return None;
        }
        *busy = true;
        Some(GateGuard(self))
    }
}
