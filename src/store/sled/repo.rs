//! The sled engine behind the repository seam: typed reads over the named trees, records
//! turned into write sets, and the one serialised change ([`SledTx`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::MutexGuard;

use serde::de::DeserializeOwned;

use super::{codec, keys, Store, WriteSet, T};
use crate::domain::model::{
    AccessKey, App, AppNamespace, AuditEntry, Branch, Cluster, Commit, Consumer, HistoryEntry, InstanceConfig, Item,
    Namespace, Release, User,
};
use crate::store::repo::{AuditFilter, Counter, EngineKind, Health, Message, NsKey, Record, Repo, Result, Tx};
use crate::store::StoreError;

fn ns_prefix(ns: &NsKey) -> Vec<u8> {
    keys::namespace(&ns.env, &ns.app, &ns.cluster, &ns.ns)
}

fn instance_key(env: &str, i: &InstanceConfig) -> Vec<u8> {
    keys::instance(env, &i.app_id, &i.cluster, &i.data_center, &i.ip, &i.config_app_id, &i.config_namespace)
}

/// The first `n` NUL-terminated components of a key.
fn parts(key: &[u8], n: usize) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(n);
    let mut rest = key;
    for _ in 0..n {
        let end = rest.iter().position(|b| *b == 0)?;
        out.push(String::from_utf8(rest[..end].to_vec()).ok()?);
        rest = &rest[end + 1..];
    }
    Some(out)
}

fn env_of(t: T, key: &[u8]) -> Result<String> {
    parts(key, 1).and_then(|mut p| p.pop()).ok_or_else(|| StoreError::corrupt(t, key))
}

fn ns_of(t: T, key: &[u8]) -> Result<NsKey> {
    match parts(key, 4) {
        Some(p) if p.len() == 4 => Ok(NsKey::new(&p[0], &p[1], &p[2], &p[3])),
        _ => Err(StoreError::corrupt(t, key)),
    }
}

impl Store {
    /// Adds the puts and deletes that store `record` to `ws`.
    fn add_record(&self, ws: &mut WriteSet, record: &Record) -> Result<()> {
        match record {
            Record::App { app } => ws.put(T::Apps, keys::app(&app.app_id), app),
            Record::AppNamespace { app_namespace: n } => {
                ws.put(T::AppNamespaces, keys::app_namespace(&n.app_id, &n.name), n)
            }
            Record::Cluster { env, cluster: c } => ws.put(T::Clusters, keys::cluster(env, &c.app_id, &c.name), c),
            Record::Namespace { env, namespace: n } => {
                ws.put(T::Namespaces, keys::namespace(env, &n.app_id, &n.cluster, &n.name), n)
            }
            Record::Item { ns, item } => {
                ws.put(T::Items, keys::item(&ns.env, &ns.app, &ns.cluster, &ns.ns, &item.key), item)
            }
            Record::DeleteItem { ns, key } => {
                ws.delete(T::Items, keys::item(&ns.env, &ns.app, &ns.cluster, &ns.ns, key));
                Ok(())
            }
            Record::Release { env, release } => ws.put_release(env, release),
            Record::History { ns, entry } => {
                ws.put(T::History, keys::history(&ns.env, &ns.app, &ns.cluster, &ns.ns, entry.seq), entry)
            }
            Record::Branch { env, branch: b } => {
                ws.put(T::Branches, keys::branch(env, &b.app_id, &b.parent_cluster, &b.namespace), b)
            }
            Record::Message { message: m } => {
                ws.put(T::Messages, keys::message(&m.env, &m.content.to_ascii_lowercase()), &(m.id, &m.content))
            }
            Record::Commit { ns, commit } => {
                ws.put(T::Commits, keys::commit(&ns.env, &ns.app, &ns.cluster, &ns.ns, commit.id), commit)
            }
            Record::Audit { entry } => ws.put(T::Audit, keys::audit(entry.id), entry),
            Record::AccessKey { env, key } => ws.put(T::AccessKeys, keys::access_key(env, &key.app_id, key.id), key),
            Record::DeleteAccessKey { env, app, id } => {
                ws.delete(T::AccessKeys, keys::access_key(env, app, *id));
                Ok(())
            }
            Record::User { user } => ws.put(T::Users, keys::name(&user.name), user),
            Record::Consumer { consumer } => {
                let old: Option<Consumer> = self.get(T::Consumers, &keys::name(&consumer.name))?;
                if let Some(old) = old.filter(|o| o.token_sha256 != consumer.token_sha256) {
                    ws.delete(T::ConsumerTokens, keys::token(&old.token_sha256));
                }
                ws.put(T::Consumers, keys::name(&consumer.name), consumer)?;
                ws.put(T::ConsumerTokens, keys::token(&consumer.token_sha256), &consumer.name)
            }
            Record::Instance { env, instance } => ws.put(T::Instances, instance_key(env, instance), instance),
            Record::DeleteInstance { env, instance } => {
                ws.delete(T::Instances, instance_key(env, instance));
                Ok(())
            }
            Record::Counter { counter, value } => {
                ws.set_counter(counter.name(), *value);
                Ok(())
            }
        }
    }

    /// Refuses a change that would rewrite an insert-only record (a release, a history
    /// entry). Checked by the change holding the write lock, so nothing slips in after it.
    fn check_inserts(&self, records: &[Record]) -> Result<()> {
        for r in records {
            let duplicate = match r {
                Record::Release { env, release } => self
                    .tree(T::Releases)?
                    .scan_prefix(keys::release(env, release.id))
                    .next()
                    .is_some()
                    .then(|| format!("release {} in {env}", release.id)),
                Record::History { ns, entry } => self
                    .tree(T::History)?
                    .contains_key(keys::history(&ns.env, &ns.app, &ns.cluster, &ns.ns, entry.seq))?
                    .then(|| format!("history entry {} of {}/{}/{}/{}", entry.seq, ns.env, ns.app, ns.cluster, ns.ns)),
                _ => None,
            };
            if let Some(what) = duplicate {
                return Err(StoreError::Duplicate { what });
            }
        }
        Ok(())
    }

    fn write_set(&self, records: &[Record]) -> Result<WriteSet> {
        let mut ws = WriteSet::new();
        for r in records {
            self.add_record(&mut ws, r)?;
        }
        Ok(ws)
    }

    fn values<V: DeserializeOwned>(&self, t: T, prefix: &[u8]) -> Result<Vec<V>> {
        Ok(self.scan(t, prefix)?.into_iter().map(|(_, v)| v).collect())
    }

    /// Every record of a tree, in key order, to `f` with its key.
    fn each<V: DeserializeOwned>(&self, t: T, f: &mut dyn FnMut(&[u8], V) -> Result<()>) -> Result<()> {
        self.each_in(t, b"", f)
    }

    /// Every record of a tree under `prefix`, in key order, to `f` with its key; one at a
    /// time, so an export holds no more than one record.
    fn each_in<V: DeserializeOwned>(
        &self,
        t: T,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8], V) -> Result<()>,
    ) -> Result<()> {
        for kv in self.tree(t)?.scan_prefix(prefix) {
            let (k, v) = kv?;
            let value = codec::decode(&v).ok_or_else(|| StoreError::corrupt(t, &k))?;
            f(&k, value)?;
        }
        Ok(())
    }

    /// Every env that appears in an env-scoped tree.
    fn stored_envs(&self) -> Result<BTreeSet<String>> {
        let mut envs = BTreeSet::new();
        for t in [T::Clusters, T::Namespaces, T::Releases, T::Messages, T::AccessKeys, T::Instances] {
            let tree = self.tree(t)?;
            let mut from: Vec<u8> = Vec::new();
            // Jump from env to env instead of walking every record.
            while let Some((k, _)) = tree.range(from.clone()..).next().transpose()? {
                let env = env_of(t, &k)?;
                from = keys::env(&env);
                if let Some(last) = from.last_mut() {
                    *last = 1;
                }
                envs.insert(env);
            }
        }
        Ok(envs)
    }

    /// Exports the records of one env, tree by tree, one record at a time.
    fn export_env(&self, env: &str, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        let prefix = keys::env(env);
        let env_name = || env.to_string();
        self.each_in::<Cluster>(T::Clusters, &prefix, &mut |_, cluster| {
            sink(Record::Cluster { env: env_name(), cluster })
        })?;
        self.each_in::<Namespace>(T::Namespaces, &prefix, &mut |_, namespace| {
            sink(Record::Namespace { env: env_name(), namespace })
        })?;
        self.each_in::<Item>(T::Items, &prefix, &mut |k, item| sink(Record::Item { ns: ns_of(T::Items, k)?, item }))?;
        // A release is its chunks in key order: join them, emit it, start the next.
        let mut current: Option<(Vec<u8>, Vec<u8>)> = None;
        let emit = |(k, bytes): (Vec<u8>, Vec<u8>), sink: &mut dyn FnMut(Record) -> Result<()>| -> Result<()> {
            let release: Release = codec::decode(&bytes).ok_or_else(|| StoreError::corrupt(T::Releases, &k))?;
            // A release stored under another id than its own is damaged like one that does
            // not decode (the checksum covers the id, not the key).
            let stored_as = k.len().checked_sub(8).and_then(|at| codec::u64_of(&k[at..]));
            if stored_as != Some(release.id) {
                return Err(StoreError::corrupt(T::Releases, &k));
            }
            sink(Record::Release { env: env_name(), release })
        };
        for kv in self.tree(T::Releases)?.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let split = k.len().checked_sub(2).ok_or_else(|| StoreError::corrupt(T::Releases, &k))?;
            match &mut current {
                Some((id, bytes)) if id.as_slice() == &k[..split] => bytes.extend_from_slice(&v),
                _ => {
                    if let Some(done) = current.replace((k[..split].to_vec(), v.to_vec())) {
                        emit(done, sink)?;
                    }
                }
            }
        }
        if let Some(done) = current {
            emit(done, sink)?;
        }
        self.each_in::<HistoryEntry>(T::History, &prefix, &mut |k, entry| {
            sink(Record::History { ns: ns_of(T::History, k)?, entry })
        })?;
        self.each_in::<Branch>(T::Branches, &prefix, &mut |_, branch| {
            sink(Record::Branch { env: env_name(), branch })
        })?;
        for message in self.messages(env)? {
            sink(Record::Message { message })?;
        }
        self.each_in::<Commit>(T::Commits, &prefix, &mut |k, commit| {
            sink(Record::Commit { ns: ns_of(T::Commits, k)?, commit })
        })?;
        self.each_in::<AccessKey>(T::AccessKeys, &prefix, &mut |_, key| {
            sink(Record::AccessKey { env: env_name(), key })
        })?;
        self.each_in::<InstanceConfig>(T::Instances, &prefix, &mut |_, instance| {
            sink(Record::Instance { env: env_name(), instance })
        })
    }
}

impl Repo for Store {
    fn kind(&self) -> EngineKind {
        EngineKind::Sled
    }

    fn app(&self, app: &str) -> Result<Option<App>> {
        self.get(T::Apps, &keys::app(app))
    }

    fn apps(&self) -> Result<Vec<App>> {
        self.values(T::Apps, b"")
    }

    fn app_namespace(&self, app: &str, ns: &str) -> Result<Option<AppNamespace>> {
        self.get(T::AppNamespaces, &keys::app_namespace(app, ns))
    }

    fn app_namespaces(&self, app: Option<&str>) -> Result<Vec<AppNamespace>> {
        match app {
            Some(app) => self.values(T::AppNamespaces, &keys::app_namespaces_of(app)),
            None => self.values(T::AppNamespaces, b""),
        }
    }

    fn cluster(&self, env: &str, app: &str, cluster: &str) -> Result<Option<Cluster>> {
        self.get(T::Clusters, &keys::cluster(env, app, cluster))
    }

    fn clusters(&self, env: &str, app: &str) -> Result<Vec<Cluster>> {
        self.values(T::Clusters, &keys::clusters_of(env, app))
    }

    fn namespace(&self, ns: &NsKey) -> Result<Option<Namespace>> {
        self.get(T::Namespaces, &ns_prefix(ns))
    }

    fn namespaces(&self, env: &str, app: Option<&str>, cluster: Option<&str>) -> Result<Vec<Namespace>> {
        let all: Vec<Namespace> = match (app, cluster) {
            (Some(app), Some(cluster)) => return self.values(T::Namespaces, &keys::namespaces_of(env, app, cluster)),
            (Some(app), None) => return self.values(T::Namespaces, &keys::clusters_of(env, app)),
            (None, _) => self.values(T::Namespaces, &keys::env(env))?,
        };
        Ok(all.into_iter().filter(|n| cluster.is_none_or(|c| n.cluster == c)).collect())
    }

    fn item(&self, ns: &NsKey, key: &str) -> Result<Option<Item>> {
        self.get(T::Items, &keys::item(&ns.env, &ns.app, &ns.cluster, &ns.ns, key))
    }

    fn items(&self, ns: &NsKey) -> Result<Vec<Item>> {
        self.values(T::Items, &ns_prefix(ns))
    }

    fn release(&self, env: &str, id: u64) -> Result<Option<Release>> {
        self.get_release(env, id)
    }

    fn history(&self, ns: &NsKey, limit: usize) -> Result<Vec<HistoryEntry>> {
        self.scan_rev(T::History, &ns_prefix(ns), limit)
    }

    fn branch(&self, env: &str, app: &str, parent: &str, ns: &str) -> Result<Option<Branch>> {
        self.get(T::Branches, &keys::branch(env, app, parent, ns))
    }

    fn messages(&self, env: &str) -> Result<Vec<Message>> {
        let stored: Vec<(i64, String)> = self.values(T::Messages, &keys::env(env))?;
        Ok(stored.into_iter().map(|(id, content)| Message { env: env.to_string(), id, content }).collect())
    }

    fn commits(&self, ns: &NsKey, limit: usize) -> Result<Vec<Commit>> {
        self.scan_rev(T::Commits, &ns_prefix(ns), limit)
    }

    fn access_key(&self, env: &str, app: &str, id: u64) -> Result<Option<AccessKey>> {
        self.get(T::AccessKeys, &keys::access_key(env, app, id))
    }

    fn access_keys(&self, env: &str, app: Option<&str>) -> Result<Vec<AccessKey>> {
        match app {
            Some(app) => self.values(T::AccessKeys, &keys::access_keys_of(env, app)),
            None => self.values(T::AccessKeys, &keys::env(env)),
        }
    }

    fn user(&self, name: &str) -> Result<Option<User>> {
        self.get(T::Users, &keys::name(name))
    }

    fn users(&self) -> Result<Vec<User>> {
        self.values(T::Users, b"")
    }

    fn has_users(&self) -> Result<bool> {
        Ok(!self.tree(T::Users)?.is_empty())
    }

    fn consumer(&self, name: &str) -> Result<Option<Consumer>> {
        self.get(T::Consumers, &keys::name(name))
    }

    fn consumer_by_token(&self, token_sha256: &str) -> Result<Option<Consumer>> {
        let name: Option<String> = self.get(T::ConsumerTokens, &keys::token(token_sha256))?;
        match name {
            Some(name) => self.consumer(&name),
            None => Ok(None),
        }
    }

    fn consumers(&self) -> Result<Vec<Consumer>> {
        self.values(T::Consumers, b"")
    }

    fn audit(&self, filter: &AuditFilter, limit: usize) -> Result<Vec<AuditEntry>> {
        let tree = self.tree(T::Audit)?;
        let iter = match filter.before_id {
            Some(before) => tree.range(..keys::audit(before)),
            None => tree.range::<Vec<u8>, _>(..),
        };
        let mut out = Vec::new();
        for kv in iter.rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv?;
            let e: AuditEntry = codec::decode(&v).ok_or_else(|| StoreError::corrupt(T::Audit, &k))?;
            let keep = filter.actor.as_ref().is_none_or(|a| &e.actor == a)
                && filter.action_prefix.as_ref().is_none_or(|p| e.action.starts_with(p.as_str()))
                && filter.env.as_ref().is_none_or(|env| e.env.as_ref() == Some(env))
                && filter.target_contains.as_ref().is_none_or(|t| e.target.contains(t.as_str()));
            if keep {
                out.push(e);
            }
        }
        Ok(out)
    }

    fn instance(&self, env: &str, probe: &InstanceConfig) -> Result<Option<InstanceConfig>> {
        self.get(T::Instances, &instance_key(env, probe))
    }

    fn instances(&self, env: Option<&str>) -> Result<Vec<(String, InstanceConfig)>> {
        let prefix = env.map(keys::env).unwrap_or_default();
        self.scan::<InstanceConfig>(T::Instances, &prefix)?
            .into_iter()
            .map(|(k, i)| Ok((env_of(T::Instances, &k)?, i)))
            .collect()
    }

    fn counter(&self, counter: Counter) -> Result<u64> {
        Store::counter(self, counter.name())
    }

    fn begin(&self) -> Result<Box<dyn Tx + '_>> {
        let guard = self.write_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(Box::new(SledTx { store: self, _guard: guard, counters: HashMap::new(), records: Vec::new() }))
    }

    fn write_unlocked(&self, records: Vec<Record>) -> Result<()> {
        let ws = self.write_set(&records)?;
        self.commit(ws, false)
    }

    fn prune_audit(&self, keep: u64) -> Result<u64> {
        Store::prune_audit(self, keep)
    }

    fn health(&self) -> Health {
        let writable = self.check_writable();
        match Store::counter(self, Counter::Release.name()) {
            Ok(_) => Health { up: true, writable, reason: self.degraded_reason() },
            Err(e) => Health { up: false, writable: false, reason: Some(e.to_string()) },
        }
    }

    fn size_bytes(&self) -> u64 {
        self.size_on_disk()
    }

    fn flush(&self) -> Result<()> {
        Store::flush(self)
    }

    /// sled has no snapshots: the export holds the write mutex, so it shows one point in
    /// time and changes wait until it is done (best-effort instance records do not).
    fn export(&self, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        let _writes = self.write_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for counter in Counter::ALL {
            sink(Record::Counter { counter, value: Store::counter(self, counter.name())? })?;
        }
        self.each::<App>(T::Apps, &mut |_, app| sink(Record::App { app }))?;
        self.each::<AppNamespace>(T::AppNamespaces, &mut |_, app_namespace| {
            sink(Record::AppNamespace { app_namespace })
        })?;
        self.each::<User>(T::Users, &mut |_, user| sink(Record::User { user }))?;
        self.each::<Consumer>(T::Consumers, &mut |_, consumer| sink(Record::Consumer { consumer }))?;
        for env in self.stored_envs()? {
            self.export_env(&env, sink)?;
        }
        self.each::<AuditEntry>(T::Audit, &mut |_, entry| sink(Record::Audit { entry }))
    }

    fn is_empty(&self) -> Result<bool> {
        for t in T::ALL.into_iter().filter(|t| *t != T::Meta) {
            if !self.tree(t)?.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn sled(&self) -> Option<&Store> {
        Some(self)
    }
}

/// The one open change of a sled store: holds the write mutex, buffers records and the
/// counters it advanced, and writes them in one sled transaction with a durable flush.
struct SledTx<'a> {
    store: &'a Store,
    _guard: MutexGuard<'a, ()>,
    counters: HashMap<Counter, u64>,
    records: Vec<Record>,
}

impl Tx for SledTx<'_> {
    fn next_id(&mut self, counter: Counter) -> Result<u64> {
        let current = match self.counters.get(&counter) {
            Some(v) => *v,
            None => Store::counter(self.store, counter.name())?,
        };
        let next = current + 1;
        self.counters.insert(counter, next);
        Ok(next)
    }

    fn put(&mut self, record: Record) {
        self.records.push(record);
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty() && self.counters.is_empty()
    }

    fn commit(self: Box<Self>) -> Result<()> {
        self.store.check_inserts(&self.records)?;
        let mut ws = self.store.write_set(&self.records)?;
        for (counter, value) in &self.counters {
            ws.set_counter(counter.name(), *value);
        }
        self.store.commit(ws, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Stamp;

    fn release(id: u64) -> Release {
        let mut r = Release {
            id,
            release_key: format!("k{id}"),
            app_id: "demo".into(),
            cluster: "default".into(),
            namespace: "application".into(),
            title: String::new(),
            comment: String::new(),
            author: "a".into(),
            created_at: 0,
            is_emergency: false,
            configurations: vec![("k".into(), "v".repeat(100_000))],
            checksum: String::new(),
        };
        r.checksum = r.compute_checksum();
        r
    }

    /// Records land under the key layouts existing data directories and v1 backups use.
    #[test]
    fn records_keep_the_stored_layout() {
        let store = Store::open_temporary().unwrap();
        let message = Message { env: "DEV".into(), id: 7, content: "Demo+default+App".into() };
        let consumer = Consumer {
            name: "ci".into(),
            token_sha256: "ab".into(),
            allow_create_app: false,
            grants: Vec::new(),
            stamp: Stamp::new("a", 0),
        };
        store
            .write_unlocked(vec![
                Record::Message { message },
                Record::Consumer { consumer: consumer.clone() },
                Record::Release { env: "DEV".into(), release: release(3) },
            ])
            .unwrap();
        let stored: Option<(i64, String)> = store.get(T::Messages, b"DEV\0demo+default+app\0").unwrap();
        assert_eq!(stored, Some((7, "Demo+default+App".into())));
        let name: Option<String> = store.get(T::ConsumerTokens, b"ab").unwrap();
        assert_eq!(name.as_deref(), Some("ci"));
        let chunks = store.tree(T::Releases).unwrap().scan_prefix(keys::release("DEV", 3)).count();
        assert_eq!(chunks, 2, "a 100 kB release is two chunks");
        // A new token replaces the old one's index entry.
        store
            .write_unlocked(vec![Record::Consumer { consumer: Consumer { token_sha256: "cd".into(), ..consumer } }])
            .unwrap();
        assert!(store.consumer_by_token("ab").unwrap().is_none());
        assert_eq!(store.consumer_by_token("cd").unwrap().map(|c| c.name).as_deref(), Some("ci"));
    }

    #[test]
    fn a_change_may_not_rewrite_a_release_and_leaves_nothing_when_refused() {
        let store = Store::open_temporary().unwrap();
        let mut tx = store.begin().unwrap();
        let id = tx.next_id(Counter::Release).unwrap();
        tx.put(Record::Release { env: "DEV".into(), release: release(id) });
        tx.commit().unwrap();
        let mut tx = store.begin().unwrap();
        assert_eq!(tx.next_id(Counter::Release).unwrap(), 2);
        tx.put(Record::Release { env: "DEV".into(), release: release(1) });
        assert!(matches!(tx.commit(), Err(StoreError::Duplicate { .. })));
        assert_eq!(Repo::counter(&store, Counter::Release).unwrap(), 1);
    }

    #[test]
    fn an_export_restores_into_an_empty_store_record_for_record() {
        let store = Store::open_temporary().unwrap();
        let ns = NsKey::new("PRO", "demo", "default", "application");
        let item =
            Item { key: "k".into(), value: "v".into(), comment: String::new(), line_num: 1, stamp: Stamp::new("a", 0) };
        store
            .write_unlocked(vec![
                Record::Counter { counter: Counter::Release, value: 3 },
                Record::Item { ns, item },
                Record::Release { env: "DEV".into(), release: release(3) },
            ])
            .unwrap();
        let mut records = Vec::new();
        store
            .export(&mut |r| {
                records.push(r);
                Ok(())
            })
            .unwrap();
        let copy = Store::open_temporary().unwrap();
        assert!(copy.is_empty().unwrap());
        copy.write_unlocked(records.clone()).unwrap();
        let mut again = Vec::new();
        copy.export(&mut |r| {
            again.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(records, again);
        assert_eq!(copy.release("DEV", 3).unwrap(), Some(release(3)));
        assert!(!copy.is_empty().unwrap());
    }

    #[test]
    fn a_release_stored_under_another_id_is_reported_by_the_check() {
        let store = Store::open_temporary().unwrap();
        let release = crate::store::logical::tests::release(7, "demo", "v");
        store.put_raw(T::Releases, &keys::release_chunk("DEV", 8, 0), &codec::encode(&release).unwrap()).unwrap();
        let report = crate::store::check(&store).unwrap();
        let problems: Vec<&str> = report.problems.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("corrupt record in tree 'envrelease_chunk'"), "{problems:?}");
    }
}
