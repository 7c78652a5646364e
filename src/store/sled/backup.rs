//! Cairn's own backup format: JSON lines, one record per stored key with its SHA-256, a
//! header, and a trailer with the record count and the SHA-256 of every line before it.
//! Written to a temporary file, fsynced, then renamed; restored only into an empty store.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{codec, keys, Store, StoreError, SCHEMA_VERSION, T};

const FORMAT: &str = "cairn-backup";

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    schema_version: u64,
    created_at: i64,
}

#[derive(Serialize, Deserialize)]
struct Record {
    tree: String,
    key: String,
    value: String,
    sha256: String,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    end: bool,
    records: u64,
    sha256: String,
}

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupSummary {
    pub records: u64,
    pub bytes: u64,
}

/// What a restore read.
#[derive(Debug)]
pub struct RestoreSummary {
    pub records: u64,
    /// The first release-notification id of the restored data (see [`RESTORE_ID_GAP`]).
    pub notifications_from: i64,
}

/// How far a restore moves release-notification ids ahead of the backup's. Clients keep the
/// newest id they saw and are woken only by a greater one; after a restore the backup's ids
/// are lower than what clients hold (releases made after the backup), so they would wait for
/// the counter to catch up and meanwhile keep configuration the restore took back. Moving
/// every namespace's id past the gap makes every client re-fetch the restored values at once.
pub const RESTORE_ID_GAP: i64 = 1_000_000;

/// Notification ids stay below 2^31 (clients that read them as 32-bit integers).
const NOTIFICATION_ID_MAX: i64 = i32::MAX as i64;

fn record_hash(tree: &str, key: &[u8], value: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(tree.as_bytes());
    h.update([0]);
    h.update((key.len() as u64).to_be_bytes());
    h.update(key);
    h.update(value);
    hex::encode(h.finalize())
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

fn json_line<V: Serialize>(v: &V) -> Result<String, StoreError> {
    serde_json::to_string(v)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| StoreError::Backup(e.to_string()))
}

impl Store {
    /// Writes a point-in-time backup of every tree to `path`. The caller guarantees no
    /// concurrent writer (the CLI holds the data-dir lock; the server holds its write lock).
    pub fn backup(&self, path: &Path, now_ms: i64) -> Result<BackupSummary, StoreError> {
        let tmp = path.with_extension("partial");
        let file = super::fs::create_private(&tmp).map_err(io(&tmp))?;
        let mut out = BufWriter::new(file);
        let mut whole = Sha256::new();
        let mut bytes = 0u64;
        let mut emit = |line: String, out: &mut BufWriter<File>| -> Result<(), StoreError> {
            whole.update(line.as_bytes());
            bytes += line.len() as u64;
            out.write_all(line.as_bytes()).map_err(io(&tmp))
        };
        let header = Header { format: FORMAT.into(), version: 1, schema_version: SCHEMA_VERSION, created_at: now_ms };
        emit(json_line(&header)?, &mut out)?;
        let mut records = 0u64;
        for t in T::ALL {
            for kv in self.tree(t)?.iter() {
                let (k, v) = kv?;
                let rec = Record {
                    tree: t.name().to_string(),
                    key: B64.encode(&k),
                    value: B64.encode(&v),
                    sha256: record_hash(t.name(), &k, &v),
                };
                emit(json_line(&rec)?, &mut out)?;
                records += 1;
            }
        }
        let trailer = Trailer { end: true, records, sha256: hex::encode(whole.finalize()) };
        let line = json_line(&trailer)?;
        bytes += line.len() as u64;
        out.write_all(line.as_bytes()).map_err(io(&tmp))?;
        let file = out.into_inner().map_err(|e| StoreError::Io { path: tmp.clone(), source: e.into_error() })?;
        file.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
        }
        Ok(BackupSummary { records, bytes })
    }

    /// Restores a backup into this store, which must be empty. The file is verified in full
    /// before anything is written.
    pub fn restore(&self, path: &Path) -> Result<RestoreSummary, StoreError> {
        let records = read_backup(path)?;
        let has_data =
            T::ALL.iter().filter(|t| **t != T::Meta).any(|t| self.tree(*t).is_ok_and(|tree| !tree.is_empty()));
        if has_data {
            return Err(StoreError::Backup(
                "the target data directory already holds data; restore into a new, empty --data directory".into(),
            ));
        }
        let count = records.len() as u64;
        for (t, k, v) in records {
            self.tree(t)?.insert(k, v)?;
        }
        let notifications_from = self.advance_notification_ids()?;
        self.flush()?;
        Ok(RestoreSummary { records: count, notifications_from })
    }

    /// Gives every namespace's latest release message a fresh id [`RESTORE_ID_GAP`] past the
    /// restored counter (so every client re-fetches), and moves the counter after them.
    /// Returns the first new id.
    fn advance_notification_ids(&self) -> Result<i64, StoreError> {
        let counter = i64::try_from(self.counter("message")?).unwrap_or(NOTIFICATION_ID_MAX);
        let first = counter.saturating_add(RESTORE_ID_GAP).saturating_add(1);
        let tree = self.tree(T::Messages)?;
        let mut next = first;
        for kv in tree.iter() {
            let (key, value) = kv?;
            let (_, content): (i64, String) =
                codec::decode(&value).ok_or_else(|| StoreError::corrupt(T::Messages, &key))?;
            if next >= NOTIFICATION_ID_MAX {
                return Err(StoreError::Backup(
                    "release-notification ids would pass 2^31 after this restore; restore an older backup or ask for help"
                        .into(),
                ));
            }
            tree.insert(key, codec::encode(&(next, content))?)?;
            next += 1;
        }
        let last = u64::try_from(next - 1).unwrap_or(0);
        self.tree(T::Meta)?.insert(keys::counter("message"), &last.to_be_bytes())?;
        Ok(first)
    }
}

/// One stored record: tree, key, value.
type RawRecord = (T, Vec<u8>, Vec<u8>);

fn read_backup(path: &Path) -> Result<Vec<RawRecord>, StoreError> {
    let file = File::open(path).map_err(io(path))?;
    let mut lines = BufReader::new(file).lines();
    let bad = |what: String| StoreError::Backup(what);
    let mut whole = Sha256::new();
    let first = lines.next().ok_or_else(|| bad("the file is empty".into()))?.map_err(io(path))?;
    let header: Header =
        serde_json::from_str(&first).map_err(|_| bad("the first line is not a Cairn backup header".into()))?;
    if header.format != FORMAT || header.version != 1 {
        return Err(bad(format!("unknown backup format {} version {}", header.format, header.version)));
    }
    if header.schema_version != SCHEMA_VERSION {
        return Err(bad(format!("backup has schema {}, this build reads {}", header.schema_version, SCHEMA_VERSION)));
    }
    whole.update(first.as_bytes());
    whole.update(b"\n");
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line.map_err(io(path))?;
        let lineno = n + 2;
        if let Ok(trailer) = serde_json::from_str::<Trailer>(&line) {
            if !trailer.end {
                return Err(bad(format!("line {lineno}: malformed trailer")));
            }
            let digest = hex::encode(whole.finalize());
            if trailer.sha256 != digest || trailer.records != out.len() as u64 {
                return Err(bad(
                    "the file checksum or record count does not match: the backup is truncated or altered".into(),
                ));
            }
            return Ok(out);
        }
        let rec: Record =
            serde_json::from_str(&line).map_err(|_| bad(format!("line {lineno} is not a backup record")))?;
        let t = T::by_name(&rec.tree).ok_or_else(|| bad(format!("line {lineno}: unknown tree {}", rec.tree)))?;
        let key = B64.decode(&rec.key).map_err(|_| bad(format!("line {lineno}: bad key encoding")))?;
        let value = B64.decode(&rec.value).map_err(|_| bad(format!("line {lineno}: bad value encoding")))?;
        if record_hash(&rec.tree, &key, &value) != rec.sha256 {
            return Err(bad(format!("line {lineno}: record checksum mismatch")));
        }
        whole.update(line.as_bytes());
        whole.update(b"\n");
        out.push((t, key, value));
    }
    Err(bad("the trailer is missing: the backup is truncated".into()))
}
