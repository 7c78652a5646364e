//! `cairn check`: verifies every release checksum and the history invariants.

use std::collections::BTreeMap;

use super::{codec, keys, Store, StoreError, T};
use crate::domain::model::{HistoryEntry, Namespace, Release};

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

impl Store {
    /// Walks every release, namespace head and history; never stops at the first problem.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        let mut groups: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for kv in self.tree(T::Releases)?.iter() {
            let (k, v) = kv?;
            let split = k.len().saturating_sub(2);
            groups.entry(k[..split].to_vec()).or_default().extend_from_slice(&v);
        }
        for (prefix, bytes) in &groups {
            report.releases += 1;
            let name = String::from_utf8_lossy(&prefix[..prefix.len().saturating_sub(8)]).replace('\0', "");
            let id = prefix.len().checked_sub(8).and_then(|s| codec::u64_of(&prefix[s..])).unwrap_or(0);
            match codec::decode::<Release>(bytes) {
                None => report.problems.push(Problem(format!("release {id} in env {name} does not decode"))),
                Some(r) if !r.verify() => report.problems.push(Problem(format!(
                    "release {id} ({}/{}/{}) in env {name} fails its SHA-256 checksum",
                    r.app_id, r.cluster, r.namespace
                ))),
                Some(r) if r.id != id => {
                    report.problems.push(Problem(format!("release stored as {id} in env {name} says it is {}", r.id)))
                }
                Some(_) => {}
            }
        }
        for kv in self.tree(T::Namespaces)?.iter() {
            let (k, v) = kv?;
            report.namespaces += 1;
            let env = k.split(|b| *b == 0).next().map(|e| String::from_utf8_lossy(e).to_string()).unwrap_or_default();
            let Some(ns) = codec::decode::<Namespace>(&v) else {
                report.problems.push(Problem(format!(
                    "namespace record {} does not decode",
                    String::from_utf8_lossy(&k).replace('\0', "/")
                )));
                continue;
            };
            let label = format!("{env}/{}/{}/{}", ns.app_id, ns.cluster, ns.name);
            for id in &ns.active_releases {
                if !groups.contains_key(&keys::release(&env, *id)) {
                    report.problems.push(Problem(format!("{label}: active release {id} is missing")));
                }
            }
            let entries: Vec<(Vec<u8>, HistoryEntry)> =
                self.scan(T::History, &keys::namespace(&env, &ns.app_id, &ns.cluster, &ns.name))?;
            report.history_entries += entries.len();
            for (i, (_, e)) in entries.iter().enumerate() {
                if e.seq != i as u64 + 1 {
                    report.problems.push(Problem(format!(
                        "{label}: history entry {} found where {} was expected",
                        e.seq,
                        i + 1
                    )));
                    break;
                }
            }
            if entries.len() as u64 != ns.history_len {
                report.problems.push(Problem(format!(
                    "{label}: {} history entries stored, {} recorded",
                    entries.len(),
                    ns.history_len
                )));
            }
        }
        Ok(report)
    }
}
