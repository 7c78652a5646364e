//! One serialised, atomic change: allocates ids, collects records and audit entries, commits
//! them in one storage transaction with a durable flush, refreshes the read model, then
//! notifies.

use std::sync::atomic::Ordering;

use crate::domain::model::AuditEntry;
use crate::domain::time::now_ms;
use crate::store::{Counter, Message, Record, Tx};

use super::rebuild::{IndexUpdate, Pending, Source};
use super::{Cairn, Result, ServiceError};

/// Largest release-message id: clients parse it as a signed 32-bit integer.
const MAX_MESSAGE_ID: u64 = i32::MAX as u64;

pub(crate) struct Change<'a> {
    pub cairn: &'a Cairn,
    /// The open storage change; it holds the write lock until committed or dropped.
    tx: Box<dyn Tx + 'a>,
    /// What of the written records the read model is built from.
    pending: Pending,
    pub now: i64,
    /// The operator name stamped on records (Apollo's `dataChange*By`, `releasedBy`).
    pub actor: String,
    /// The authenticated identity behind an Open API change (`consumer:<name>`); the audit
    /// log attributes the change to it and keeps `actor` as the operator it claimed.
    pub principal: Option<String>,
    touched_ns: Vec<(String, String, String, String)>,
    touched_apps: bool,
    touched_keys: Vec<(String, String)>,
    messages: Vec<(String, String, i64)>,
}

impl Cairn {
    /// Starts a change by `caller`, taking the write lock until it is committed or dropped.
    pub(crate) fn change_for(&self, caller: &super::Caller) -> Result<Change<'_>> {
        let mut c = self.change(&caller.operator)?;
        c.principal = caller.principal();
        Ok(c)
    }

    /// Starts a change as `actor`, taking the write lock until it is committed or dropped.
    pub(crate) fn change(&self, actor: &str) -> Result<Change<'_>> {
        Ok(Change {
            principal: None,
            tx: self.repo.begin()?,
            pending: Pending::default(),
            cairn: self,
            now: now_ms(),
            actor: actor.to_string(),
            touched_ns: Vec::new(),
            touched_apps: false,
            touched_keys: Vec::new(),
            messages: Vec::new(),
        })
    }
}

impl Change<'_> {
    /// The next value of an id counter (1, 2, 3, ...).
    pub fn next_id(&mut self, counter: Counter) -> Result<u64> {
        Ok(self.tx.next_id(counter)?)
    }

    /// Adds a record to write at commit.
    pub fn put(&mut self, record: Record) {
        self.pending.note(&record);
        self.tx.put(record);
    }

    /// Adds an audit entry to the change.
    pub fn audit(&mut self, action: &str, env: Option<&str>, target: &str, detail: impl Into<String>) -> Result<()> {
        let id = self.next_id(Counter::Audit)?;
        let entry = AuditEntry {
            id,
            time: self.now,
            actor: self.principal.clone().unwrap_or_else(|| self.actor.clone()),
            claimed_operator: self.principal.as_ref().map(|_| self.actor.clone()),
            action: action.to_string(),
            env: env.map(str::to_string),
            target: target.to_string(),
            detail: detail.into(),
        };
        self.put(Record::Audit { entry });
        Ok(())
    }

    /// Every identity behind this change: the operator and, for Open API changes, the
    /// consumer. Four-eyes compares all of them with the draft's editors.
    pub fn identities(&self) -> Vec<String> {
        std::iter::once(self.actor.clone()).chain(self.principal.clone()).collect()
    }

    /// Records a release message for `app+cluster+ns` in `env`: clients watching it re-fetch.
    pub fn message(&mut self, env: &str, app: &str, cluster: &str, ns: &str) -> Result<i64> {
        let id = self.next_id(Counter::Message)?;
        if id > MAX_MESSAGE_ID {
            return Err(ServiceError::conflict("release message ids are exhausted (2^31); contact support"));
        }
        let content = format!("{app}+{cluster}+{ns}");
        let id = id as i64;
        self.put(Record::Message { message: Message { env: env.to_string(), id, content: content.clone() } });
        self.messages.push((env.to_string(), content, id));
        self.touch_namespace(env, app, cluster, ns);
        Ok(id)
    }

    /// Marks a namespace's served state for refresh after commit.
    pub fn touch_namespace(&mut self, env: &str, app: &str, cluster: &str, ns: &str) {
        self.touched_ns.push((env.into(), app.into(), cluster.into(), ns.into()));
    }

    /// Marks apps and app namespaces for refresh after commit.
    pub fn touch_apps(&mut self) {
        self.touched_apps = true;
    }

    /// Marks the access keys of an app in an env for refresh after commit.
    pub fn touch_access_keys(&mut self, env: &str, app: &str) {
        self.touched_keys.push((env.into(), app.into()));
    }

    /// Commits atomically and durably, swaps in the read-model entries, then wakes long
    /// polls.
    ///
    /// The entries are built before the commit, from the records this change holds and what
    /// it reads under its lock, so a failure there changes nothing. Once the commit is
    /// durable the change is done for the caller: nothing after it returns an error, the
    /// index is updated (rebuilt in full should its entries be missing) and the polls
    /// watching it are always woken.
    pub fn commit(self) -> Result<()> {
        let Change { cairn, tx, pending, touched_ns, touched_apps, touched_keys, messages, .. } = self;
        let update = if cairn.refresh_fault.swap(false, Ordering::SeqCst) {
            Err(ServiceError::conflict("read-model refresh failed on purpose (test fault)"))
        } else {
            IndexUpdate::build(
                &Source { repo: &*cairn.repo, pending: &pending },
                touched_apps,
                &touched_ns,
                &touched_keys,
            )
        };
        // Taken before the storage lock is released, so changes reach the index in commit order.
        let _order = cairn.commit_order.lock().unwrap_or_else(|p| p.into_inner());
        tx.commit()?;
        {
            let mut index = cairn.write_index();
            match update {
                Ok(update) if !cairn.index_stale.load(Ordering::SeqCst) => update.apply(&mut index),
                other => {
                    if let Err(e) = other {
                        tracing::error!(error = %e, "could not refresh the read model after a commit; rebuilding it");
                    }
                    match cairn.build_index() {
                        Ok(fresh) => {
                            *index = fresh;
                            cairn.index_stale.store(false, Ordering::SeqCst);
                        }
                        Err(e) => {
                            // Clients keep the last good entries; the next change tries again.
                            cairn.index_stale.store(true, Ordering::SeqCst);
                            tracing::error!(error = %e, "could not rebuild the read model; retrying after the next change");
                        }
                    }
                }
            }
            for (env, content, id) in &messages {
                let e = index.envs.entry(env.clone()).or_default();
                e.messages.insert(content.to_ascii_lowercase(), (*id, content.clone()));
            }
        }
        for (env, content, id) in messages {
            cairn.notifier.publish(env, content, id);
        }
        Ok(())
    }
}
