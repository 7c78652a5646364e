//! One change: a pooled connection in an SQL transaction that holds the `cairn_lock` row.
//!
//! The process gate comes first, so at most one connection of this process waits for the
//! row; the row then serialises changes across processes (bounded by `lock_timeout`). Ids
//! are counter rows bumped in the transaction, so a change that never commits uses none.
//! Records are buffered and written at commit; a change dropped without commit is rolled
//! back on the engine's runtime and its connection returned to the pool.

use super::conn::{map_error, GateGuard, Pooled};
use super::{rows, PgRepo, PER_RECORD};
use crate::store::repo::{Counter, Record, Result, Tx};
use crate::store::StoreError;

/// Time a change still gets for the lock row after a long wait for the process gate.
const MIN_LEFT: std::time::Duration = std::time::Duration::from_millis(250);

/// An open change (see the module notes).
pub(super) struct PgTx<'a> {
    repo: &'a PgRepo,
    /// `None` once the connection failed: the change can only be dropped then.
    pooled: Option<Pooled>,
    records: Vec<Record>,
    _gate: GateGuard<'a>,
}

pub(super) fn begin(repo: &PgRepo) -> Result<PgTx<'_>> {
    let conn = repo.conn();
    // Waiting for this process's running change and then for the lock row share one
    // deadline, so a change refused while the database is away is refused in time.
    let deadline = conn.options.call_timeout;
    let start = std::time::Instant::now();
    let Some(guard) = repo.gate.enter(deadline) else {
        return Err(StoreError::Database {
            reason: format!("another change was still in progress after {} ms", deadline.as_millis()),
        });
    };
    let left = deadline.saturating_sub(start.elapsed()).max(MIN_LEFT);
    let checkout = conn.checkout_future();
    let pooled = conn.run(left, async move {
        let pooled = checkout.await?;
        pooled
            .client
            .batch_execute("BEGIN; SELECT id FROM cairn_lock WHERE id = 1 FOR UPDATE")
            .await
            .map_err(map_error)?;
        Ok(pooled)
    })?;
    Ok(PgTx { repo, pooled: Some(pooled), records: Vec::new(), _gate: guard })
}

impl PgTx<'_> {
    fn broken() -> StoreError {
        StoreError::Database { reason: "the change lost its database connection; nothing was written".into() }
    }
}

impl Tx for PgTx<'_> {
    fn next_id(&mut self, counter: Counter) -> Result<u64> {
        let client = match &self.pooled {
            Some(p) => p.client.clone(),
            None => return Err(PgTx::broken()),
        };
        let conn = self.repo.conn();
        let out = conn.run(conn.options.call_timeout, async move {
            let row = client
                .query_one(
                    "INSERT INTO counters (name, value) VALUES ($1, 1) \
                     ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
                    &[&counter.name()],
                )
                .await
                .map_err(map_error)?;
            rows::R { row: &row, table: "counters" }.u64("value")
        });
        if out.is_err() {
            // The transaction is aborted (or the connection gone): nothing of it may commit.
            self.pooled = None;
        }
        out
    }

    fn put(&mut self, record: Record) {
        self.records.push(record);
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        let Some(pooled) = self.pooled.take() else { return Err(PgTx::broken()) };
        let records = std::mem::take(&mut self.records);
        let conn = self.repo.conn();
        let deadline = conn.options.call_timeout + PER_RECORD * u32::try_from(records.len()).unwrap_or(u32::MAX);
        let pooled = conn.run(deadline, async move {
            for r in &records {
                rows::write(&pooled.client, r).await?;
            }
            pooled.client.batch_execute("COMMIT").await.map_err(map_error)?;
            Ok(pooled)
        })?;
        conn.give_back(pooled);
        Ok(())
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        let Some(pooled) = self.pooled.take() else { return };
        let (idle, max_idle) = self.repo.conn().idle_pool();
        self.repo.conn().detach(async move {
            if pooled.client.batch_execute("ROLLBACK").await.is_ok() {
                super::conn::give_back(&idle, pooled, max_idle);
            }
        });
    }
}
