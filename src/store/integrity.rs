//! `cairn check` on either engine: one pass over [`Repo::export`] verifies every release's
//! checksum and id, every namespace's active releases and its history (contiguous from 1,
//! as long as recorded, naming existing releases). It keeps ids and a few facts per
//! namespace, never whole releases, and reports every problem rather than the first.

use std::collections::{HashMap, HashSet};

use super::logical::Source;
use super::repo::Result;
use super::{Counter, NsKey, Record, Repo, StoreError};

/// One integrity problem, described for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem(pub String);

/// The result of a full check.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub releases: usize,
    pub namespaces: usize,
    pub history_entries: usize,
    pub problems: Vec<Problem>,
}

/// Checks everything `repo` stores.
pub fn check(repo: &dyn Repo) -> Result<CheckReport> {
    check_records(&mut |sink| repo.export(sink))
}

/// What the check keeps of one namespace.
#[derive(Default)]
struct Ns {
    /// Active releases and history length, once the namespace record was seen.
    record: Option<(Vec<u64>, u64)>,
    /// History entries seen, and whether they ran 1, 2, 3, ... so far.
    entries: u64,
    broken: bool,
}

/// The state of one pass.
#[derive(Default)]
struct Checker {
    report: CheckReport,
    envs: Vec<String>,
    /// (env, release id) of every release seen.
    releases: HashSet<(usize, u64)>,
    release_counter: Option<u64>,
    namespaces: HashMap<NsKey, Ns>,
    /// Releases named by history entries: (env, id) → (namespace, entry) of the first one.
    referenced: HashMap<(usize, u64), (NsKey, u64)>,
}

/// Checks the records of `source` (one pass).
pub(crate) fn check_records(source: &mut Source<'_>) -> Result<CheckReport> {
    let mut checker = Checker::default();
    let mut progress = super::progress::Progress::new("check", None);
    let result = source(&mut |record| {
        checker.observe(record);
        progress.tick();
        Ok(())
    });
    match result {
        Ok(()) => {}
        // A record that does not decode ends the engine's stream: say so, with what was seen.
        Err(e @ StoreError::Corrupt { .. }) => checker.problem(format!(
            "{e}; the check stopped there, after {} records, so later records were not checked",
            progress.done()
        )),
        Err(e) => return Err(e),
    }
    Ok(checker.finish())
}

fn label(ns: &NsKey) -> String {
    format!("{}/{}/{}/{}", ns.env, ns.app, ns.cluster, ns.ns)
}

impl Checker {
    fn problem(&mut self, text: String) {
        self.report.problems.push(Problem(text));
    }

    fn env(&mut self, env: &str) -> usize {
        match self.envs.iter().position(|e| e == env) {
            Some(i) => i,
            None => {
                self.envs.push(env.to_string());
                self.envs.len() - 1
            }
        }
    }

    fn observe(&mut self, record: Record) {
        match record {
            Record::Counter { counter: Counter::Release, value } => self.release_counter = Some(value),
            Record::Release { env, release: r } => {
                self.report.releases += 1;
                let e = self.env(&env);
                if !r.verify() {
                    self.problem(format!(
                        "release {} ({}/{}/{}) in env {env} fails its SHA-256 checksum",
                        r.id, r.app_id, r.cluster, r.namespace
                    ));
                }
                if r.id == 0 {
                    self.problem(format!(
                        "release {} ({}/{}/{}) in env {env} has id 0",
                        r.id, r.app_id, r.cluster, r.namespace
                    ));
                }
                if !self.releases.insert((e, r.id)) {
                    self.problem(format!("release {} in env {env} is stored twice", r.id));
                }
            }
            Record::Namespace { env, namespace: n } => {
                self.report.namespaces += 1;
                let key = NsKey::new(&env, &n.app_id, &n.cluster, &n.name);
                let ns = self.namespaces.entry(key.clone()).or_default();
                if ns.record.is_some() {
                    self.problem(format!("{}: the namespace is stored twice", label(&key)));
                    return;
                }
                ns.record = Some((n.active_releases, n.history_len));
            }
            Record::History { ns: key, entry } => {
                self.report.history_entries += 1;
                let e = self.env(&key.env);
                for id in [entry.release_id, entry.previous_release_id] {
                    if id != 0 {
                        self.referenced.entry((e, id)).or_insert_with(|| (key.clone(), entry.seq));
                    }
                }
                let ns = self.namespaces.entry(key.clone()).or_default();
                ns.entries += 1;
                if !ns.broken && entry.seq != ns.entries {
                    ns.broken = true;
                    let expected = ns.entries;
                    self.problem(format!(
                        "{}: history entry {} found where {expected} was expected",
                        label(&key),
                        entry.seq
                    ));
                }
            }
            _ => {}
        }
    }

    fn finish(mut self) -> CheckReport {
        if let Some(counter) = self.release_counter {
            let mut above: Vec<(usize, u64)> = self.releases.iter().filter(|(_, id)| *id > counter).copied().collect();
            above.sort_unstable();
            for (e, id) in above {
                let env = self.envs.get(e).cloned().unwrap_or_default();
                self.problem(format!("release {id} in env {env} is above the release counter ({counter})"));
            }
        }
        let mut keys: Vec<&NsKey> = self.namespaces.keys().collect();
        keys.sort_unstable();
        let mut problems = Vec::new();
        for key in keys {
            let ns = &self.namespaces[key];
            let Some((active, history_len)) = &ns.record else {
                problems.push(format!(
                    "{}: {} history entries of a namespace that is not stored",
                    label(key),
                    ns.entries
                ));
                continue;
            };
            let e = self.envs.iter().position(|e| *e == key.env);
            for id in active {
                if !e.is_some_and(|e| self.releases.contains(&(e, *id))) {
                    problems.push(format!("{}: active release {id} is missing", label(key)));
                }
            }
            if ns.entries != *history_len {
                problems.push(format!("{}: {} history entries stored, {history_len} recorded", label(key), ns.entries));
            }
        }
        let mut missing: Vec<_> = self.referenced.iter().filter(|(r, _)| !self.releases.contains(r)).collect();
        missing.sort_unstable_by(|a, b| (&a.1 .0, a.1 .1, a.0 .1).cmp(&(&b.1 .0, b.1 .1, b.0 .1)));
        for ((_, id), (key, seq)) in missing {
            problems.push(format!("{}: history entry {seq} names release {id}, which is missing", label(key)));
        }
        self.report.problems.extend(problems.into_iter().map(Problem));
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{HistoryEntry, Namespace, Operation, Stamp};
    use crate::store::logical::tests::release;

    fn namespace(active: Vec<u64>, history_len: u64) -> Record {
        Record::Namespace {
            env: "DEV".into(),
            namespace: Namespace {
                app_id: "demo".into(),
                cluster: "default".into(),
                name: "application".into(),
                active_releases: active,
                history_len,
                draft_editors: Vec::new(),
                stamp: Stamp::new("admin", 1),
            },
        }
    }

    fn history(seq: u64, release_id: u64, previous: u64) -> Record {
        Record::History {
            ns: NsKey::new("DEV", "demo", "default", "application"),
            entry: HistoryEntry {
                seq,
                operation: Operation::Publish,
                release_id,
                previous_release_id: previous,
                branch: None,
                operator: "admin".into(),
                time: 1,
            },
        }
    }

    fn rel(id: u64) -> Record {
        Record::Release { env: "DEV".into(), release: release(id, "demo", "v") }
    }

    fn run(records: Vec<Record>) -> CheckReport {
        check_records(&mut |sink| records.iter().cloned().try_for_each(&mut *sink)).unwrap()
    }

    fn problems(report: &CheckReport) -> Vec<&str> {
        report.problems.iter().map(|p| p.0.as_str()).collect()
    }

    #[test]
    fn a_sound_store_has_no_problems() {
        let report = run(vec![
            Record::Counter { counter: Counter::Release, value: 2 },
            namespace(vec![1, 2], 2),
            rel(1),
            rel(2),
            history(1, 1, 0),
            history(2, 2, 1),
        ]);
        assert_eq!(problems(&report), Vec::<&str>::new());
        assert_eq!((report.releases, report.namespaces, report.history_entries), (2, 1, 2));
    }

    #[test]
    fn every_problem_is_reported() {
        let mut tampered = release(2, "demo", "v");
        tampered.configurations[0].1 = "tampered".into();
        let report = run(vec![
            Record::Counter { counter: Counter::Release, value: 2 },
            namespace(vec![1, 3], 4),
            rel(1),
            Record::Release { env: "DEV".into(), release: tampered },
            rel(1),
            rel(9),
            history(1, 1, 0),
            history(3, 7, 1),
            history(4, 2, 7),
            Record::History {
                ns: NsKey::new("DEV", "demo", "gone", "application"),
                entry: HistoryEntry {
                    seq: 1,
                    operation: Operation::Publish,
                    release_id: 1,
                    previous_release_id: 0,
                    branch: None,
                    operator: "a".into(),
                    time: 1,
                },
            },
        ]);
        assert_eq!(
            problems(&report),
            vec![
                "release 2 (demo/default/application) in env DEV fails its SHA-256 checksum",
                "release 1 in env DEV is stored twice",
                "DEV/demo/default/application: history entry 3 found where 2 was expected",
                "release 9 in env DEV is above the release counter (2)",
                "DEV/demo/default/application: active release 3 is missing",
                "DEV/demo/default/application: 3 history entries stored, 4 recorded",
                "DEV/demo/gone/application: 1 history entries of a namespace that is not stored",
                "DEV/demo/default/application: history entry 3 names release 7, which is missing",
            ]
        );
    }

    #[test]
    fn a_record_the_engine_cannot_read_is_a_problem_not_a_failure() {
        let mut source = |sink: &mut dyn FnMut(Record) -> Result<()>| {
            sink(rel(1))?;
            Err(StoreError::Corrupt { tree: "envrelease_chunk", key: "DEV/2".into() })
        };
        let report = check_records(&mut source).unwrap();
        assert_eq!(report.releases, 1);
        assert!(report.problems[0].0.contains("corrupt record") && report.problems[0].0.contains("after 1 records"));
        let mut down = |_: &mut dyn FnMut(Record) -> Result<()>| Err(StoreError::Backup("down".into()));
        assert!(check_records(&mut down).is_err());
    }
}
