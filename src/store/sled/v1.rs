//! Version 1 backups: one line per raw sled record (tree, key, value, each line's SHA-256),
//! a header and a trailer as in version 2. Only this engine knows what those keys mean, so
//! a v1 backup is checked and loaded into a temporary sled store, whose `export` then gives
//! the engine-neutral records a restore writes into any engine.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Store, SCHEMA_VERSION, T};
use crate::store::logical::{bad, io, FORMAT};
use crate::store::Result;

#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
    schema_version: u64,
}

#[derive(Deserialize)]
struct Line {
    tree: String,
    key: String,
    value: String,
    sha256: String,
}

#[derive(Deserialize)]
struct Trailer {
    end: bool,
    records: u64,
    sha256: String,
}

/// Where the raw records of a version 1 backup go: (tree name, key, value).
type RawSink<'a> = dyn FnMut(&str, Vec<u8>, Vec<u8>) -> Result<()> + 'a;

fn record_hash(tree: &str, key: &[u8], value: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(tree.as_bytes());
    h.update([0]);
    h.update((key.len() as u64).to_be_bytes());
    h.update(key);
    h.update(value);
    hex::encode(h.finalize())
}

/// Reads a whole version 1 backup, checking every line's checksum, the record count and the
/// file's checksum, and hands each raw record (tree name, key, value) to `sink` as it goes.
/// The caller must discard what it received when this returns an error.
fn read_v1(path: &Path, sink: &mut RawSink<'_>) -> Result<u64> {
    let file = File::open(path).map_err(io(path))?;
    let mut lines = BufReader::new(file).lines();
    let mut whole = Sha256::new();
    let first = lines.next().ok_or_else(|| bad("the file is empty"))?.map_err(io(path))?;
    let header: Header =
        serde_json::from_str(&first).map_err(|_| bad("the first line is not a Cairn backup header"))?;
    if header.format != FORMAT || header.version != 1 {
        return Err(bad(format!("unknown backup format {} version {}", header.format, header.version)));
    }
    if header.schema_version != SCHEMA_VERSION {
        return Err(bad(format!("backup has schema {}, this build reads {SCHEMA_VERSION}", header.schema_version)));
    }
    whole.update(first.as_bytes());
    whole.update(b"\n");
    for (records, (n, line)) in (0u64..).zip(lines.enumerate()) {
        let line = line.map_err(io(path))?;
        let lineno = n + 2;
        if let Ok(trailer) = serde_json::from_str::<Trailer>(&line) {
            if !trailer.end {
                return Err(bad(format!("line {lineno}: malformed trailer")));
            }
            if trailer.sha256 != hex::encode(whole.finalize()) || trailer.records != records {
                return Err(bad(
                    "the file checksum or record count does not match: the backup is truncated or altered",
                ));
            }
            return Ok(records);
        }
        let rec: Line =
            serde_json::from_str(&line).map_err(|_| bad(format!("line {lineno} is not a backup record")))?;
        let key = B64.decode(&rec.key).map_err(|_| bad(format!("line {lineno}: bad key encoding")))?;
        let value = B64.decode(&rec.value).map_err(|_| bad(format!("line {lineno}: bad value encoding")))?;
        if record_hash(&rec.tree, &key, &value) != rec.sha256 {
            return Err(bad(format!("line {lineno}: record checksum mismatch")));
        }
        whole.update(line.as_bytes());
        whole.update(b"\n");
        sink(&rec.tree, key, value)?;
    }
    Err(bad("the trailer is missing: the backup is truncated"))
}

impl Store {
    /// A temporary store holding the records of the version 1 backup at `path`, which is
    /// checked in full on the way (removed on drop).
    pub(in crate::store) fn from_v1_backup(path: &Path) -> Result<Store> {
        let store = Store::open_temporary()?;
        read_v1(path, &mut |tree, key, value| {
            let t = T::by_name(tree).ok_or_else(|| bad(format!("unknown tree {tree}")))?;
            store.put_raw(t, &key, &value)
        })?;
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1.backup")
    }

    #[test]
    fn the_version_1_fixture_reads_whole() {
        let mut trees = std::collections::BTreeSet::new();
        let n = read_v1(&fixture(), &mut |tree, _, _| {
            trees.insert(tree.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 49);
        assert!(trees.contains("envrelease_chunk") && trees.contains("meta"), "{trees:?}");
        assert_eq!(crate::store::logical::version_of(&fixture()).unwrap(), 1);
    }

    #[test]
    fn a_damaged_version_1_backup_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.backup");
        let text = std::fs::read_to_string(fixture()).unwrap();
        std::fs::write(&path, text.replacen("\"value\":\"", "\"value\":\"AAAA", 1)).unwrap();
        let e = read_v1(&path, &mut |_, _, _| Ok(())).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&path, lines[..lines.len() - 1].join("\n")).unwrap();
        let e = read_v1(&path, &mut |_, _, _| Ok(())).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
