//! The embedded engine, the only module that touches sled: named trees, key encoding,
//! versioned values, atomic write sets, durable flushes, schema version, and reading v1
//! backups (raw sled records) into a temporary store. [`Store`] implements [`Repo`](super::Repo) (`repo.rs`).
//!
//! A change ([`super::Tx`]) holds the store's write mutex, turns its records into a
//! [`WriteSet`] and hands it to [`Store::commit`], which applies it in one sled transaction
//! over every tree and flushes before returning. Writers are serialised by that mutex, so
//! reads taken inside a change stay consistent with it.

mod blobs;
mod codec;
mod degraded;
mod keys;
mod repo;
mod v1;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{fs, StoreError};
use crate::domain::model::Release;
use degraded::{Degraded, PROBE_EVERY};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

/// The named trees. Names follow `<key>_<value>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum T {
    Meta,
    Apps,
    AppNamespaces,
    Clusters,
    Namespaces,
    Items,
    Releases,
    History,
    Branches,
    Messages,
    Commits,
    Audit,
    AccessKeys,
    Users,
    Consumers,
    ConsumerTokens,
    Instances,
}

impl T {
    /// Every tree, in storage order.
    pub(in crate::store) const ALL: [T; 17] = [
        T::Meta,
        T::Apps,
        T::AppNamespaces,
        T::Clusters,
        T::Namespaces,
        T::Items,
        T::Releases,
        T::History,
        T::Branches,
        T::Messages,
        T::Commits,
        T::Audit,
        T::AccessKeys,
        T::Users,
        T::Consumers,
        T::ConsumerTokens,
        T::Instances,
    ];

    /// The sled tree name.
    pub(in crate::store) fn name(self) -> &'static str {
        match self {
            T::Meta => "meta",
            T::Apps => "appid_app",
            T::AppNamespaces => "appns_appnamespace",
            T::Clusters => "envcluster_cluster",
            T::Namespaces => "envns_namespace",
            T::Items => "envnskey_item",
            T::Releases => "envrelease_chunk",
            T::History => "envnsseq_history",
            T::Branches => "envbranch_branch",
            T::Messages => "envwatchkey_message",
            T::Commits => "envnscommit_commit",
            T::Audit => "id_audit",
            T::AccessKeys => "envappid_accesskey",
            T::Users => "name_user",
            T::Consumers => "name_consumer",
            T::ConsumerTokens => "tokensha_consumer",
            T::Instances => "envinstance_config",
        }
    }

    fn index(self) -> usize {
        T::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    /// The tree with this sled name.
    pub(in crate::store) fn by_name(name: &str) -> Option<T> {
        T::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Largest value stored in one record; bigger releases are split into chunks so no value
/// reaches sled's unsynced blob files (reliability notes, rule 4).
const CHUNK: usize = 60 * 1024;

/// A set of puts and deletes applied atomically by [`Store::commit`].
#[derive(Default)]
pub(in crate::store) struct WriteSet {
    ops: Vec<(T, Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteSet {
    /// An empty write set.
    pub fn new() -> Self {
        WriteSet::default()
    }

    /// Stores `value` (versioned encoding) under `key`.
    pub fn put<V: Serialize>(&mut self, tree: T, key: Vec<u8>, value: &V) -> Result<(), StoreError> {
        let bytes = codec::encode(value)?;
        self.ops.push((tree, key, Some(bytes)));
        Ok(())
    }

    /// Deletes `key`.
    pub fn delete(&mut self, tree: T, key: Vec<u8>) {
        self.ops.push((tree, key, None));
    }

    /// Stores a release, split into chunks.
    pub fn put_release(&mut self, env: &str, release: &Release) -> Result<(), StoreError> {
        let bytes = codec::encode(release)?;
        for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
            let n = u16::try_from(i).map_err(|_| StoreError::TooLarge { what: "release" })?;
            self.ops.push((T::Releases, keys::release_chunk(env, release.id, n), Some(chunk.to_vec())));
        }
        Ok(())
    }

    /// Sets a counter in the meta tree.
    pub fn set_counter(&mut self, name: &str, value: u64) {
        self.ops.push((T::Meta, keys::counter(name), Some(value.to_be_bytes().to_vec())));
    }

    /// True when nothing is to be written.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// An open sled database and its trees. Replaced as a whole when the store recovers from
/// an I/O failure (see [`Store::commit`]).
struct Engine {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

impl Engine {
    fn open(path: &Path) -> Result<Engine, StoreError> {
        std::fs::create_dir_all(path).map_err(|e| StoreError::Io { path: path.to_path_buf(), source: e })?;
        let db = sled::Config::new()
            .path(path.join("db"))
            .mode(sled::Mode::LowSpace)
            .cache_capacity(64 * 1024 * 1024)
            .flush_every_ms(Some(500))
            .open()
            .map_err(|e| fs::open_error(e, path))?;
        Engine::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Engine, StoreError> {
        let trees = T::ALL.iter().map(|t| db.open_tree(t.name())).collect::<Result<Vec<_>, _>>()?;
        Ok(Engine { db, trees })
    }

    fn tree(&self, t: T) -> &sled::Tree {
        // `trees` is built from T::ALL, so every index exists.
        &self.trees[t.index()]
    }
}

/// The embedded database.
///
/// sled 0.34 latches the first I/O error of a database (a full disk, say): every later
/// write fails until the database is opened again. So a failed write degrades the store;
/// while degraded, a write first probes the disk (a 1 MiB file, at most once a second) and
/// fails fast while the probe fails. Once the probe passes, the store reopens the database
/// in-process (sled cannot open on a full disk, so the latched handle serves reads until
/// then) and writes succeed again without a restart. Reopening reloads from disk, so what a
/// failed write left in sled's memory is gone from then on.
pub struct Store {
    engine: std::sync::RwLock<Option<Engine>>,
    path: PathBuf,
    temporary: bool,
    degraded: std::sync::Mutex<Option<Degraded>>,
    /// When a closed database was last reopened on demand (see [`Store::with`]).
    last_reopen: std::sync::Mutex<Option<std::time::Instant>>,
    /// Held by the one open change ([`super::Tx`]) until it commits or is dropped.
    write_lock: std::sync::Mutex<()>,
    /// Blob files fsynced so far, with their length (see [`Store::sync_blobs`]).
    synced_blobs: std::sync::Mutex<std::collections::HashMap<std::ffi::OsString, u64>>,
    /// The blob files (name, length) the last durable commit found and synced before it was
    /// acknowledged (see [`Store::blobs_of_last_commit`]).
    last_commit_blobs: std::sync::Mutex<Vec<(String, u64)>>,
}

impl Store {
    /// Opens (or creates) the data directory. A directory held by another process gives
    /// [`StoreError::Locked`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        for p in fs::prepare_data_dir(path)? {
            tracing::warn!(path = %p.display(), "others could read this part of the data directory: made it owner-only");
        }
        let engine = Engine::open(path)?;
        Store::with_engine(engine, path.to_path_buf(), false)
    }

    /// A store in a temporary directory that is removed on drop (tests, benchmarks).
    pub fn open_temporary() -> Result<Store, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        Store::with_engine(Engine::from_db(db)?, PathBuf::new(), true)
    }

    fn with_engine(engine: Engine, path: PathBuf, temporary: bool) -> Result<Store, StoreError> {
        let store = Store {
            engine: std::sync::RwLock::new(Some(engine)),
            path,
            temporary,
            degraded: std::sync::Mutex::new(None),
            write_lock: std::sync::Mutex::new(()),
            last_reopen: std::sync::Mutex::new(None),
            synced_blobs: std::sync::Mutex::new(std::collections::HashMap::new()),
            last_commit_blobs: std::sync::Mutex::new(Vec::new()),
        };
        store.check_schema()?;
        Ok(store)
    }

    /// Runs `f` on the open engine; reopens it first when an earlier recovery could not.
    fn with<R>(&self, f: impl FnOnce(&Engine) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let missing = self.engine.read().unwrap_or_else(|p| p.into_inner()).is_none();
        if missing {
            // At most one attempt a second: every request would otherwise retry the open.
            let due = {
                let mut last = self.last_reopen.lock().unwrap_or_else(|p| p.into_inner());
                let due = last.is_none_or(|t| t.elapsed() >= PROBE_EVERY);
                if due {
                    *last = Some(std::time::Instant::now());
                }
                due
            };
            if !due {
                return Err(self.unavailable());
            }
            self.reopen()?;
        }
        let guard = self.engine.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(engine) => f(engine),
            None => Err(self.unavailable()),
        }
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        self.with(|e| {
            let meta = e.tree(T::Meta);
            match meta.get(keys::SCHEMA_VERSION)? {
                None => {
                    meta.insert(keys::SCHEMA_VERSION, &SCHEMA_VERSION.to_be_bytes())?;
                    e.db.flush()?;
                    Ok(())
                }
                Some(v) => {
                    let found =
                        codec::u64_of(&v).ok_or(StoreError::Corrupt { tree: "meta", key: "schema_version".into() })?;
                    if found == SCHEMA_VERSION {
                        Ok(())
                    } else {
                        Err(StoreError::Schema { found, expected: SCHEMA_VERSION })
                    }
                }
            }
        })
    }

    /// Where the data lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle on one tree of the open database (maintenance: backup, restore, check).
    fn tree(&self, t: T) -> Result<sled::Tree, StoreError> {
        self.with(|e| Ok(e.tree(t).clone()))
    }

    /// Reads one record.
    pub(in crate::store) fn get<V: DeserializeOwned>(&self, t: T, key: &[u8]) -> Result<Option<V>, StoreError> {
        match self.with(|e| Ok(e.tree(t).get(key)?))? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes).map(Some).ok_or_else(|| StoreError::corrupt(t, key)),
        }
    }

    /// Every record whose key starts with `prefix`, in key order.
    pub(in crate::store) fn scan<V: DeserializeOwned>(
        &self,
        t: T,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, V)>, StoreError> {
        self.with(|e| {
            e.tree(t)
                .scan_prefix(prefix)
                .map(|kv| {
                    let (k, v) = kv?;
                    let value = codec::decode(&v).ok_or_else(|| StoreError::corrupt(t, &k))?;
                    Ok((k.to_vec(), value))
                })
                .collect()
        })
    }

    /// Every record whose key starts with `prefix`, newest (highest key) first, at most `limit`.
    pub(in crate::store) fn scan_rev<V: DeserializeOwned>(
        &self,
        t: T,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<V>, StoreError> {
        self.with(|e| {
            e.tree(t)
                .scan_prefix(prefix)
                .rev()
                .take(limit)
                .map(|kv| {
                    let (k, v) = kv?;
                    codec::decode(&v).ok_or_else(|| StoreError::corrupt(t, &k))
                })
                .collect()
        })
    }

    /// Reads a counter from the meta tree (0 when never set).
    pub(in crate::store) fn counter(&self, name: &str) -> Result<u64, StoreError> {
        match self.with(|e| Ok(e.tree(T::Meta).get(keys::counter(name))?))? {
            None => Ok(0),
            Some(v) => codec::u64_of(&v).ok_or_else(|| StoreError::corrupt(T::Meta, &keys::counter(name))),
        }
    }

    /// Reads a release, joining its chunks; a missing release is `None`, a damaged one an error.
    pub(in crate::store) fn get_release(&self, env: &str, id: u64) -> Result<Option<Release>, StoreError> {
        let prefix = keys::release(env, id);
        let bytes = self.with(|e| {
            let mut bytes = Vec::new();
            for kv in e.tree(T::Releases).scan_prefix(&prefix) {
                let (_, v) = kv?;
                bytes.extend_from_slice(&v);
            }
            Ok(bytes)
        })?;
        if bytes.is_empty() {
            return Ok(None);
        }
        codec::decode::<Release>(&bytes).map(Some).ok_or_else(|| StoreError::corrupt(T::Releases, &prefix))
    }

    /// Applies a write set in one transaction; with `durable`, flushes to disk before returning.
    ///
    /// An I/O failure (a full disk) degrades the store and reopens the database, so the
    /// failed write leaves nothing behind; when the disk then passes the probe, the write is
    /// tried once more (the first failure may have been an error sled latched in the
    /// background). A write set only puts and deletes whole values, so applying it twice is
    /// the same as applying it once. A full disk is [`StoreError::DiskFull`].
    pub(in crate::store) fn commit(&self, ws: WriteSet, durable: bool) -> Result<(), StoreError> {
        if ws.is_empty() {
            return Ok(());
        }
        if !self.may_write() {
            return Err(self.degraded_error());
        }
        let mut retried = false;
        loop {
            match self.apply(&ws, durable) {
                Ok(()) => {
                    self.set_healthy();
                    return Ok(());
                }
                Err(e) if e.is_io_failure() && !self.temporary => {
                    self.set_degraded(&e);
                    // sled writes while opening, so the database can only be reopened once
                    // the disk has room; until then the latched handle keeps serving reads.
                    if retried || self.probe_space().is_err() {
                        return Err(e.classified(&self.path));
                    }
                    self.reopen()?;
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn apply(&self, ws: &WriteSet, durable: bool) -> Result<(), StoreError> {
        self.with(|e| {
            let result: Result<(), TransactionError<StoreError>> = e.trees.as_slice().transaction(|txs| {
                for (t, key, value) in &ws.ops {
                    let tx = txs.get(t.index()).ok_or(ConflictableTransactionError::Abort(StoreError::Corrupt {
                        tree: t.name(),
                        key: "transaction tree missing".into(),
                    }))?;
                    match value {
                        Some(v) => tx.insert(key.as_slice(), v.as_slice())?,
                        None => tx.remove(key.as_slice())?,
                    };
                }
                Ok(())
            });
            match result {
                Ok(()) => {}
                Err(TransactionError::Abort(e)) => return Err(e),
                Err(TransactionError::Storage(e)) => return Err(e.into()),
            }
            if durable {
                e.db.flush()?;
            }
            Ok(())
        })?;
        if durable {
            let present = self.sync_blobs()?;
            *self.last_commit_blobs.lock().unwrap_or_else(|p| p.into_inner()) = present;
        }
        Ok(())
    }

    /// Makes every previous write durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.with(|e| Ok(e.db.flush().map(|_| ())?))?;
        self.sync_blobs().map(|_| ())
    }

    /// Deletes the oldest audit entries so that at most `keep` remain (ids are gapless, so
    /// the count is the id span). Returns how many were deleted. Not durable on its own: the
    /// next flush makes it so, and a lost prune is simply redone.
    pub fn prune_audit(&self, keep: u64) -> Result<u64, StoreError> {
        let tree = self.tree(T::Audit)?;
        let id_of = |k: &[u8]| <[u8; 8]>::try_from(k).ok().map(u64::from_be_bytes);
        let (Some((first, _)), Some((last, _))) = (tree.first()?, tree.last()?) else { return Ok(0) };
        let (Some(first), Some(last)) = (id_of(&first), id_of(&last)) else {
            return Err(StoreError::corrupt(T::Audit, &first));
        };
        let count = last.saturating_sub(first).saturating_add(1);
        if count <= keep {
            return Ok(0);
        }
        let cut = last.saturating_sub(keep); // delete ids first..=cut
        let mut deleted = 0;
        let mut from = first;
        while from <= cut {
            let to = cut.min(from.saturating_add(9_999));
            let mut ws = WriteSet::new();
            for key in tree.range(keys::audit(from)..=keys::audit(to)).keys() {
                ws.delete(T::Audit, key?.to_vec());
                deleted += 1;
            }
            self.commit(ws, false)?;
            from = to.saturating_add(1);
        }
        Ok(deleted)
    }

    /// Approximate size of the data on disk, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.with(|e| Ok(e.db.size_on_disk().unwrap_or(0))).unwrap_or(0)
    }

    /// Writes raw bytes, bypassing encoding and without a flush: loading a v1 backup's
    /// records into a temporary store.
    fn put_raw(&self, t: T, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.with(|e| {
            e.tree(t).insert(key, value)?;
            Ok(())
        })
    }
}
