//! Cairn's logical backup format (version 2), the same for every engine: JSON lines.
//!
//! ```text
//! {"format":"cairn-backup","version":2,"schema_version":1,"created_at":<ms>,"engine":"sled"}
//! {"sha256":"<hex of R>","record":R}      one line per [`Record`], R its JSON
//! {"end":true,"records":<n>,"sha256":"<hex of every line before this one>"}
//! ```
//!
//! A record line is written in exactly that layout, so its checksum covers the record's bytes
//! as stored, not a re-encoding. The writer streams [`Repo::export`] into a temporary file
//! (owner-only), fsyncs it, renames it into place and fsyncs the directory; readers stream
//! too, so neither side holds more than one record in memory.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::repo::Result;
use super::{EngineKind, Record, Repo, StoreError, SCHEMA_VERSION};

/// The `format` of every Cairn backup header.
pub(crate) const FORMAT: &str = "cairn-backup";
/// The version this module writes.
pub(crate) const VERSION: u32 = 2;

const RECORD_PREFIX: &str = "{\"sha256\":\"";
const RECORD_MIDDLE: &str = "\",\"record\":";

/// The first line of a version 2 backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub schema_version: u64,
    pub created_at: i64,
    /// The engine the backup was taken from (`sled`, `postgres`).
    pub engine: String,
}

/// Just enough of a header to tell versions apart (version 1 headers have no engine).
#[derive(Deserialize)]
struct Probe {
    format: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    end: bool,
    records: u64,
    sha256: String,
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub records: u64,
    pub bytes: u64,
}

/// What a full verification found.
#[derive(Debug, Clone)]
pub struct Verified {
    pub header: Header,
    pub records: u64,
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

pub(crate) fn bad(what: impl Into<String>) -> StoreError {
    StoreError::Backup(what.into())
}

/// The name an engine has in backup headers.
pub fn engine_name(kind: EngineKind) -> &'static str {
    match kind {
        EngineKind::Sled => "sled",
        EngineKind::Postgres => "postgres",
    }
}

/// Writes a point-in-time backup of `repo` to `path`. Streams [`Repo::export`], which takes
/// no write lock: writers go on meanwhile and the backup shows the moment it started.
pub fn backup(repo: &dyn Repo, path: &Path, now_ms: i64) -> Result<BackupSummary> {
    write(repo.kind(), &mut |sink| repo.export(sink), path, now_ms)
}

/// A source of records: calls its sink once per record, in order.
pub(crate) type Source<'a> = dyn FnMut(&mut dyn FnMut(Record) -> Result<()>) -> Result<()> + 'a;

/// Writes the records of `source` as a backup at `path` (temporary file, fsync, rename,
/// directory fsync; owner-only).
pub(crate) fn write(engine: EngineKind, source: &mut Source<'_>, path: &Path, now_ms: i64) -> Result<BackupSummary> {
    let tmp = partial_path(path);
    let result = write_file(engine, source, &tmp, now_ms);
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            // Best effort: the partial file is useless, and the error says what failed.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
    }
    Ok(summary)
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

fn write_file(engine: EngineKind, source: &mut Source<'_>, tmp: &Path, now_ms: i64) -> Result<BackupSummary> {
    let file = super::fs::create_private(tmp).map_err(io(tmp))?;
    let mut out = BufWriter::new(file);
    let mut whole = Sha256::new();
    let mut bytes = 0u64;
    let mut records = 0u64;
    let mut emit = |line: &str, out: &mut BufWriter<File>| -> Result<()> {
        whole.update(line.as_bytes());
        whole.update(b"\n");
        bytes += line.len() as u64 + 1;
        out.write_all(line.as_bytes()).and_then(|()| out.write_all(b"\n")).map_err(io(tmp))
    };
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        schema_version: SCHEMA_VERSION,
        created_at: now_ms,
        engine: engine_name(engine).into(),
    };
    emit(&to_json(&header)?, &mut out)?;
    source(&mut |record| {
        emit(&record_line(&record)?, &mut out)?;
        records += 1;
        Ok(())
    })?;
    let trailer = Trailer { end: true, records, sha256: hex::encode(whole.finalize()) };
    let line = to_json(&trailer)?;
    bytes += line.len() as u64 + 1;
    out.write_all(line.as_bytes()).and_then(|()| out.write_all(b"\n")).map_err(io(tmp))?;
    let file = out.into_inner().map_err(|e| StoreError::Io { path: tmp.to_path_buf(), source: e.into_error() })?;
    file.sync_all().map_err(io(tmp))?;
    Ok(BackupSummary { records, bytes })
}

fn to_json<V: Serialize>(v: &V) -> Result<String> {
    serde_json::to_string(v).map_err(|e| bad(e.to_string()))
}

/// One record line: `{"sha256":"<hex of R>","record":R}`.
pub(crate) fn record_line(record: &Record) -> Result<String> {
    let json = to_json(record)?;
    let sha = hex::encode(Sha256::digest(json.as_bytes()));
    Ok(format!("{RECORD_PREFIX}{sha}{RECORD_MIDDLE}{json}}}"))
}

/// A record line's record, after its checksum passed.
fn parse_record(line: &str, lineno: u64) -> Result<Record> {
    let broken = || bad(format!("line {lineno} is not a backup record"));
    let rest = line.strip_prefix(RECORD_PREFIX).ok_or_else(broken)?;
    let (sha, rest) = rest.split_at_checked(64).ok_or_else(broken)?;
    let json = rest.strip_prefix(RECORD_MIDDLE).and_then(|r| r.strip_suffix('}')).ok_or_else(broken)?;
    if hex::encode(Sha256::digest(json.as_bytes())) != sha {
        return Err(bad(format!("line {lineno}: record checksum mismatch")));
    }
    serde_json::from_str(json).map_err(|e| bad(format!("line {lineno}: not a record of this Cairn version ({e})")))
}

/// The format version of the backup at `path` (1 or 2), read from its first line.
pub fn version_of(path: &Path) -> Result<u32> {
    let file = File::open(path).map_err(io(path))?;
    let mut first = String::new();
    BufReader::new(file).read_line(&mut first).map_err(io(path))?;
    if first.is_empty() {
        return Err(bad("the file is empty"));
    }
    let probe: Probe =
        serde_json::from_str(first.trim_end()).map_err(|_| bad("the first line is not a Cairn backup header"))?;
    if probe.format != FORMAT || !(1..=VERSION).contains(&probe.version) {
        return Err(bad(format!(
            "unknown backup format {} version {}; this Cairn reads {FORMAT} versions 1 and {VERSION}",
            probe.format, probe.version
        )));
    }
    Ok(probe.version)
}

/// Reads a version 2 backup from start to trailer, checking every line's checksum, the
/// record count and the whole file's checksum, and hands each record to `sink` as it goes.
/// With `verify_whole` false the trailer's digest is not compared (a second pass over a file
/// already verified still checks every line and the count).
fn read(path: &Path, verify_whole: bool, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<Verified> {
    let file = File::open(path).map_err(io(path))?;
    let mut reader = BufReader::new(file);
    let mut whole = Sha256::new();
    let mut line = String::new();
    let mut lineno = 0u64;
    let mut next = |line: &mut String, lineno: &mut u64| -> Result<bool> {
        line.clear();
        let n = reader.read_line(line).map_err(io(path))?;
        *lineno += 1;
        if n == 0 {
            return Ok(false);
        }
        if !line.ends_with('\n') {
            return Err(bad(format!("line {lineno} is cut short: the backup is truncated")));
        }
        line.pop();
        Ok(true)
    };
    if !next(&mut line, &mut lineno)? {
        return Err(bad("the file is empty"));
    }
    let header: Header = serde_json::from_str(&line).map_err(|_| bad("the first line is not a Cairn backup header"))?;
    if header.format != FORMAT || header.version != VERSION {
        return Err(bad(format!("unknown backup format {} version {}", header.format, header.version)));
    }
    if header.schema_version > SCHEMA_VERSION {
        return Err(bad(format!(
            "the backup has schema {}, newer than this Cairn's {SCHEMA_VERSION}; restore it with a newer Cairn",
            header.schema_version
        )));
    }
    whole.update(line.as_bytes());
    whole.update(b"\n");
    let mut records = 0u64;
    while next(&mut line, &mut lineno)? {
        if !line.starts_with(RECORD_PREFIX) {
            let trailer: Trailer =
                serde_json::from_str(&line).map_err(|_| bad(format!("line {lineno} is not a backup record")))?;
            if !trailer.end {
                return Err(bad(format!("line {lineno}: malformed trailer")));
            }
            let digest_ok = !verify_whole || trailer.sha256 == hex::encode(whole.finalize());
            if !digest_ok || trailer.records != records {
                return Err(bad(
                    "the file checksum or record count does not match: the backup is truncated or altered",
                ));
            }
            if next(&mut line, &mut lineno)? {
                return Err(bad(format!("line {lineno}: data after the trailer; the backup was altered")));
            }
            return Ok(Verified { header, records });
        }
        let record = parse_record(&line, lineno)?;
        whole.update(line.as_bytes());
        whole.update(b"\n");
        records += 1;
        sink(record)?;
    }
    Err(bad("the trailer is missing: the backup is truncated"))
}

/// Verifies a whole version 2 backup (every line, the count, the file's checksum), showing
/// each record to `observe`. Nothing is kept in memory.
pub fn verify(path: &Path, observe: &mut dyn FnMut(&Record) -> Result<()>) -> Result<Verified> {
    read(path, true, &mut |record| observe(&record))
}

/// Streams the records of a version 2 backup that [`verify`] already accepted.
pub(crate) fn records(path: &Path, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<u64> {
    read(path, false, sink).map(|v| v.records)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::model::{App, Release, Stamp};
    use crate::store::{Counter, Message, NsKey};

    pub(crate) fn release(id: u64, app: &str, value: &str) -> Release {
        let mut r = Release {
            id,
            release_key: format!("key-{id}"),
            app_id: app.into(),
            cluster: "default".into(),
            namespace: "application".into(),
            title: "t".into(),
            comment: String::new(),
            author: "admin".into(),
            created_at: 1,
            is_emergency: false,
            configurations: vec![("k".into(), value.into())],
            checksum: String::new(),
        };
        r.checksum = r.compute_checksum();
        r
    }

    pub(crate) fn sample() -> Vec<Record> {
        let app = App {
            app_id: "demo".into(),
            name: "Demo \"quoted\" }".into(),
            org_id: String::new(),
            org_name: String::new(),
            owner_name: "admin".into(),
            owner_email: String::new(),
            stamp: Stamp::new("admin", 1),
        };
        let _ = NsKey::new("DEV", "demo", "default", "application");
        vec![
            Record::Counter { counter: Counter::Release, value: 2 },
            Record::Counter { counter: Counter::Message, value: 7 },
            Record::App { app },
            Record::Release { env: "DEV".into(), release: release(1, "demo", "v1") },
            Record::Release { env: "DEV".into(), release: release(2, "demo", "line\nbreak") },
            Record::Message {
                message: Message { env: "DEV".into(), id: 7, content: "demo+default+application".into() },
            },
        ]
    }

    fn write_sample(dir: &Path, records: &[Record]) -> PathBuf {
        let path = dir.join("cairn.backup");
        let mut source = |sink: &mut dyn FnMut(Record) -> Result<()>| records.iter().cloned().try_for_each(&mut *sink);
        let summary = write(EngineKind::Sled, &mut source, &path, 42).unwrap();
        assert_eq!(summary.records, records.len() as u64);
        assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
        path
    }

    fn read_all(path: &Path) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        verify(path, &mut |r| {
            out.push(r.clone());
            Ok(())
        })?;
        Ok(out)
    }

    fn message(e: StoreError) -> String {
        e.to_string()
    }

    #[test]
    fn records_round_trip_through_an_owner_only_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = write_sample(dir.path(), &sample());
        assert_eq!(read_all(&path).unwrap(), sample());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!partial_path(&path).exists());
        assert_eq!(version_of(&path).unwrap(), 2);
        let first = std::fs::read_to_string(&path).unwrap().lines().next().unwrap().to_string();
        let header: Header = serde_json::from_str(&first).unwrap();
        assert_eq!((header.version, header.engine.as_str(), header.created_at), (2, "sled", 42));
        let mut second = Vec::new();
        let count = records(&path, &mut |r| {
            second.push(r);
            Ok(())
        });
        assert_eq!(count.unwrap(), 6);
        assert_eq!(second, sample());
    }

    #[test]
    fn a_tampered_line_is_refused_by_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_sample(dir.path(), &sample());
        let text = std::fs::read_to_string(&path).unwrap().replacen("\"v1\"", "\"v9\"", 1);
        std::fs::write(&path, text).unwrap();
        let e = message(read_all(&path).unwrap_err());
        assert!(e.contains("line 5: record checksum mismatch"), "{e}");
    }

    #[test]
    fn a_truncated_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_sample(dir.path(), &sample());
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Without the trailer...
        std::fs::write(&path, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
        assert!(message(read_all(&path).unwrap_err()).contains("trailer is missing"));
        // ...cut inside a line...
        std::fs::write(&path, &text[..text.len() - 30]).unwrap();
        assert!(message(read_all(&path).unwrap_err()).contains("cut short"));
        // ...and with a whole record left out.
        let mut dropped = lines.clone();
        dropped.remove(3);
        std::fs::write(&path, dropped.join("\n") + "\n").unwrap();
        assert!(message(read_all(&path).unwrap_err()).contains("record count does not match"));
    }

    #[test]
    fn a_wrong_trailer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_sample(dir.path(), &sample());
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let last = lines.len() - 1;
        let trailer: serde_json::Value = serde_json::from_str(&lines[last]).unwrap();
        let mut wrong = trailer.clone();
        wrong["sha256"] = serde_json::json!("0".repeat(64));
        lines[last] = wrong.to_string();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        assert!(message(read_all(&path).unwrap_err()).contains("checksum or record count"));
        let mut wrong = trailer.clone();
        wrong["records"] = serde_json::json!(5);
        lines[last] = wrong.to_string();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        assert!(message(read_all(&path).unwrap_err()).contains("checksum or record count"));
        lines[last] = trailer.to_string();
        lines.push(lines[1].clone());
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        assert!(message(read_all(&path).unwrap_err()).contains("after the trailer"));
    }

    #[test]
    fn an_unknown_version_or_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_sample(dir.path(), &sample());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\"version\":2", "\"version\":3", 1)).unwrap();
        assert!(message(version_of(&path).unwrap_err()).contains("version 3"));
        assert!(message(read_all(&path).unwrap_err()).contains("version 3"));
        std::fs::write(&path, text.replacen("\"schema_version\":1", "\"schema_version\":9", 1)).unwrap();
        assert!(message(read_all(&path).unwrap_err()).contains("newer than this Cairn"));
        std::fs::write(&path, "not json\n").unwrap();
        assert!(message(version_of(&path).unwrap_err()).contains("not a Cairn backup header"));
        std::fs::write(&path, "").unwrap();
        assert!(message(version_of(&path).unwrap_err()).contains("empty"));
    }

    #[test]
    fn a_failed_export_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.backup");
        let mut source = |sink: &mut dyn FnMut(Record) -> Result<()>| {
            sink(Record::Counter { counter: Counter::Audit, value: 1 })?;
            Err(bad("engine failed"))
        };
        assert!(write(EngineKind::Sled, &mut source, &path, 1).is_err());
        assert!(!path.exists() && !partial_path(&path).exists());
    }
}
