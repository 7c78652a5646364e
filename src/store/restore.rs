//! Restoring a backup into an empty repository of either engine: verify the whole file
//! first, then replay its records in batches of [`Tx`](super::Tx) changes, streaming both
//! times. Version 1 backups (raw sled records) are converted by the sled engine itself.

use std::path::Path;

use super::logical::{self, bad, Source};
use super::repo::Result;
use super::{Counter, Record, Repo};

/// How far a restore moves release-notification ids ahead of the backup's. Clients keep the
/// newest id they saw and are woken only by a greater one; after a restore the backup's ids
/// are lower than what clients hold (releases made after the backup), so they would wait for
/// the counter to catch up and meanwhile keep configuration the restore took back. Moving
/// every namespace's id past the gap makes every client re-fetch the restored values at once.
pub const RESTORE_ID_GAP: i64 = 1_000_000;

/// Notification ids stay below 2^31 (clients read them as 32-bit integers).
const NOTIFICATION_ID_MAX: i64 = i32::MAX as i64;

/// At most this many records per change...
const BATCH_RECORDS: usize = 2_000;
/// ...and about this many bytes of values.
const BATCH_BYTES: usize = 8 * 1024 * 1024;

/// How a restore treats release-notification ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Keep every id as it is (moving Cairn to another engine, clients still connected to
    /// the same data). By default ids move [`RESTORE_ID_GAP`] ahead instead.
    pub keep_notification_ids: bool,
}

/// What happened to the release-notification ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationIds {
    /// As in the backup.
    Kept,
    /// Every watch key got a fresh id from `from` on.
    Advanced { from: i64 },
}

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSummary {
    pub records: u64,
    pub notification_ids: NotificationIds,
}

/// What a restore needs to know about the records before writing any.
#[derive(Debug, Default, Clone)]
pub(crate) struct Facts {
    records: u64,
    message_counter: u64,
    max_message_id: i64,
    messages: u64,
}

impl Facts {
    /// Takes note of one record.
    pub(crate) fn observe(&mut self, record: &Record) {
        self.records += 1;
        match record {
            Record::Counter { counter: Counter::Message, value } => self.message_counter = *value,
            Record::Message { message } => {
                self.messages += 1;
                self.max_message_id = self.max_message_id.max(message.id);
            }
            _ => {}
        }
    }
}

/// The notification ids a restore writes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ids {
    Keep,
    /// Messages get `next`, `next + 1`, ...; the counter ends at `counter`.
    Advance {
        first: i64,
        next: i64,
        counter: u64,
        counter_written: bool,
    },
}

impl Ids {
    fn plan(facts: &Facts, options: RestoreOptions) -> Result<Ids> {
        let counter = i64::try_from(facts.message_counter).unwrap_or(i64::MAX);
        let base = counter.max(facts.max_message_id);
        if options.keep_notification_ids {
            if base >= NOTIFICATION_ID_MAX {
                return Err(bad(format!("the backup holds release-notification id {base}, not below 2^31")));
            }
            return Ok(Ids::Keep);
        }
        let first = base.saturating_add(RESTORE_ID_GAP).saturating_add(1);
        let last = first.saturating_add(i64::try_from(facts.messages).unwrap_or(i64::MAX)).saturating_sub(1);
        if last >= NOTIFICATION_ID_MAX {
            return Err(bad("release-notification ids would pass 2^31 after this restore; restore with \
                 --keep-notification-ids, restore an older backup, or ask for help"));
        }
        let counter = u64::try_from(last).unwrap_or(0);
        Ok(Ids::Advance { first, next: first, counter, counter_written: false })
    }

    /// The record as it is restored.
    fn apply(&mut self, record: Record) -> Record {
        let Ids::Advance { next, counter, counter_written, .. } = self else { return record };
        match record {
            Record::Counter { counter: Counter::Message, .. } => {
                *counter_written = true;
                Record::Counter { counter: Counter::Message, value: *counter }
            }
            Record::Message { mut message } => {
                message.id = *next;
                *next += 1;
                Record::Message { message }
            }
            other => other,
        }
    }

    /// A last record the restore must add (the message counter when the backup had none).
    fn finish(&self) -> Option<Record> {
        match self {
            Ids::Advance { counter, counter_written: false, .. } => {
                Some(Record::Counter { counter: Counter::Message, value: *counter })
            }
            _ => None,
        }
    }

    fn summary(&self) -> NotificationIds {
        match self {
            Ids::Keep => NotificationIds::Kept,
            Ids::Advance { first, .. } => NotificationIds::Advanced { from: *first },
        }
    }
}

/// Restores the backup at `path` (version 1 or 2) into `repo`, which must be empty. The
/// whole file is verified before anything is written.
pub fn restore(repo: &dyn Repo, path: &Path, options: RestoreOptions) -> Result<RestoreSummary> {
    refuse_unless_empty(repo)?;
    match logical::version_of(path)? {
        1 => {
            // Only sled knows the raw records of version 1: load them into a temporary sled
            // store and restore what it exports.
            let old = super::SledStore::from_v1_backup(path)?;
            tracing::info!("restore: {} verified (version 1); writing", path.display());
            restore_records(repo, &mut |sink| old.export(sink), options)
        }
        _ => {
            let mut facts = Facts::default();
            let verified = logical::verify(path, &mut |record| {
                facts.observe(record);
                Ok(())
            })?;
            tracing::info!(
                "restore: {} verified ({} records from {}, schema {}); writing",
                path.display(),
                verified.records,
                verified.header.engine,
                verified.header.schema_version
            );
            apply_to(repo, &mut |sink| logical::records(path, sink).map(|_| ()), &facts, options)
        }
    }
}

/// Refuses a target that holds data: a restore never merges.
fn refuse_unless_empty(repo: &dyn Repo) -> Result<()> {
    if repo.is_empty()? {
        return Ok(());
    }
    Err(bad("the target already holds data; restore into a new, empty --data directory (or an empty \
         database); nothing was changed"))
}

/// Restores the records of `source`, which must give the same records every time it is
/// called: one pass to learn what the id plan needs, one to write.
pub(crate) fn restore_records(
    repo: &dyn Repo,
    source: &mut Source<'_>,
    options: RestoreOptions,
) -> Result<RestoreSummary> {
    let mut facts = Facts::default();
    source(&mut |record| {
        facts.observe(&record);
        Ok(())
    })?;
    apply_to(repo, source, &facts, options)
}

/// Writes the records of `source` into `repo` in batches of changes.
fn apply_to(
    repo: &dyn Repo,
    source: &mut Source<'_>,
    facts: &Facts,
    options: RestoreOptions,
) -> Result<RestoreSummary> {
    let mut commit = |batch: Vec<Record>| -> Result<()> {
        let mut tx = repo.begin()?;
        for record in batch {
            tx.put(record);
        }
        tx.commit()
    };
    apply(source, facts, options, &mut commit)
}

/// Writes the records of `source`, with their ids planned, through `commit` in batches.
fn apply(
    source: &mut Source<'_>,
    facts: &Facts,
    options: RestoreOptions,
    commit: &mut dyn FnMut(Vec<Record>) -> Result<()>,
) -> Result<RestoreSummary> {
    let mut ids = Ids::plan(facts, options)?;
    let mut progress = super::progress::Progress::new("restore", Some(facts.records));
    let mut batch = Vec::new();
    let mut weight = 0usize;
    let mut written = 0u64;
    let result = source(&mut |record| {
        weight += weight_of(&record);
        batch.push(ids.apply(record));
        progress.tick();
        if batch.len() >= BATCH_RECORDS || weight >= BATCH_BYTES {
            let n = batch.len() as u64;
            commit(std::mem::take(&mut batch))?;
            written += n;
            weight = 0;
        }
        Ok(())
    })
    .and_then(|()| {
        batch.extend(ids.finish());
        let n = batch.len() as u64;
        if n > 0 {
            commit(std::mem::take(&mut batch))?;
        }
        written += n;
        Ok(())
    });
    match result {
        Ok(()) => Ok(RestoreSummary { records: progress.done(), notification_ids: ids.summary() }),
        Err(e) if written == 0 => Err(e),
        Err(e) => Err(bad(format!(
            "the restore stopped after writing {written} of {} records ({e}); the target now holds part \
             of the backup: empty it (a new --data directory, or a new database) and restore again",
            facts.records
        ))),
    }
}

/// About how many bytes a record adds to a change.
fn weight_of(record: &Record) -> usize {
    match record {
        Record::Release { release, .. } => {
            release.configurations.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + 256
        }
        Record::Item { item, .. } => item.key.len() + item.value.len() + 256,
        _ => 256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::logical::tests::sample;
    use crate::store::Message;

    fn message(id: i64, key: &str) -> Record {
        Record::Message { message: Message { env: "DEV".into(), id, content: key.into() } }
    }

    fn run(records: &[Record], options: RestoreOptions) -> (Result<RestoreSummary>, Vec<Vec<Record>>) {
        let mut source = |sink: &mut dyn FnMut(Record) -> Result<()>| records.iter().cloned().try_for_each(&mut *sink);
        let mut facts = Facts::default();
        records.iter().for_each(|r| facts.observe(r));
        let mut batches = Vec::new();
        let summary = apply(&mut source, &facts, options, &mut |b| {
            batches.push(b);
            Ok(())
        });
        (summary, batches)
    }

    #[test]
    fn by_default_every_message_moves_past_the_gap_and_the_counter_follows() {
        let mut records = sample();
        records.push(message(5, "demo+default+other"));
        let (summary, batches) = run(&records, RestoreOptions::default());
        let summary = summary.unwrap();
        assert_eq!(summary.notification_ids, NotificationIds::Advanced { from: 7 + RESTORE_ID_GAP + 1 });
        assert_eq!(summary.records, 7);
        let out: Vec<Record> = batches.concat();
        assert_eq!(out[1], Record::Counter { counter: Counter::Message, value: 7 + RESTORE_ID_GAP as u64 + 2 });
        assert_eq!(out[5], message(7 + RESTORE_ID_GAP + 1, "demo+default+application"));
        assert_eq!(out[6], message(7 + RESTORE_ID_GAP + 2, "demo+default+other"));
        assert_eq!(out.len(), 7, "nothing added when the backup had the counter");
    }

    #[test]
    fn migration_keeps_every_record_as_it_is() {
        let (summary, batches) = run(&sample(), RestoreOptions { keep_notification_ids: true });
        assert_eq!(summary.unwrap().notification_ids, NotificationIds::Kept);
        assert_eq!(batches.concat(), sample());
    }

    #[test]
    fn a_backup_without_a_message_counter_still_gets_one() {
        let records = vec![message(3, "a+b+c")];
        let (summary, batches) = run(&records, RestoreOptions::default());
        assert_eq!(summary.unwrap().notification_ids, NotificationIds::Advanced { from: 3 + RESTORE_ID_GAP + 1 });
        assert_eq!(
            batches.concat(),
            vec![
                message(3 + RESTORE_ID_GAP + 1, "a+b+c"),
                Record::Counter { counter: Counter::Message, value: 3 + RESTORE_ID_GAP as u64 + 1 }
            ]
        );
    }

    #[test]
    fn ids_never_reach_2_pow_31() {
        let records =
            vec![Record::Counter { counter: Counter::Message, value: (i32::MAX as u64) - 10 }, message(1, "a")];
        let (summary, batches) = run(&records, RestoreOptions::default());
        assert!(summary.unwrap_err().to_string().contains("2^31"));
        assert!(batches.is_empty(), "nothing written");
        let records = vec![message(i32::MAX as i64, "a")];
        let (summary, _) = run(&records, RestoreOptions { keep_notification_ids: true });
        assert!(summary.unwrap_err().to_string().contains("2^31"));
    }

    #[test]
    fn records_are_written_in_bounded_batches() {
        let records: Vec<Record> =
            (0..BATCH_RECORDS as u64 * 2 + 5).map(|i| Record::Counter { counter: Counter::Audit, value: i }).collect();
        let (summary, batches) = run(&records, RestoreOptions { keep_notification_ids: true });
        assert_eq!(summary.unwrap().records, records.len() as u64);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![BATCH_RECORDS, BATCH_RECORDS, 5]);
        let big = "x".repeat(BATCH_BYTES / 2);
        let releases: Vec<Record> = (1..=5)
            .map(|id| Record::Release {
                env: "DEV".into(),
                release: crate::store::logical::tests::release(id, "a", &big),
            })
            .collect();
        let (_, batches) = run(&releases, RestoreOptions::default());
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 2], "the last adds the counter");
    }

    #[test]
    fn a_failure_after_a_batch_says_the_target_holds_part_of_the_backup() {
        let records: Vec<Record> =
            (0..BATCH_RECORDS as u64 + 1).map(|i| Record::Counter { counter: Counter::Audit, value: i }).collect();
        let mut source = |sink: &mut dyn FnMut(Record) -> Result<()>| records.iter().cloned().try_for_each(&mut *sink);
        let mut facts = Facts::default();
        records.iter().for_each(|r| facts.observe(r));
        let mut calls = 0;
        let e = apply(&mut source, &facts, RestoreOptions::default(), &mut |_| {
            calls += 1;
            if calls == 2 {
                Err(bad("disk full"))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        let e = e.to_string();
        assert!(e.contains("after writing 2000 of 2001") && e.contains("holds part"), "{e}");
    }
}

#[cfg(test)]
mod engine_tests {
    use super::*;
    use crate::store::{open_temporary, Repo};

    fn exported(repo: &dyn Repo) -> Vec<Record> {
        let mut out = Vec::new();
        repo.export(&mut |r| {
            out.push(r);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn a_version_1_backup_restores_into_sled_and_round_trips_through_version_2() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1.backup");
        let first = open_temporary().unwrap();
        let summary = restore(&*first, &fixture, RestoreOptions { keep_notification_ids: true }).unwrap();
        assert_eq!(summary.notification_ids, NotificationIds::Kept);
        let report = crate::store::check(&*first).unwrap();
        assert_eq!((report.releases, report.namespaces, report.history_entries), (4, 4, 5));
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let messages: Vec<i64> =
            ["DEV", "PRO"].iter().flat_map(|env| first.messages(env).unwrap()).map(|m| m.id).collect();
        assert_eq!(messages, vec![2, 5]);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("v2.backup");
        let written = crate::store::backup(&*first, &file, 1).unwrap();
        assert_eq!(written.records, summary.records);
        let second = open_temporary().unwrap();
        restore(&*second, &file, RestoreOptions { keep_notification_ids: true }).unwrap();
        assert_eq!(exported(&*second), exported(&*first));

        let e = restore(&*second, &file, RestoreOptions::default()).unwrap_err().to_string();
        assert!(e.contains("already holds data"), "{e}");
    }
}
