//! Building the read model: fully at start (and after a failed refresh), per object for
//! each change. A change's entries are built from committed records seen through the
//! change's own writes ([`Pending`]) *before* it commits, so that once the commit is durable
//! swapping them in cannot fail.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::model::{AccessKey, App, AppNamespace, Branch, BranchStatus, Cluster, Namespace, Release};
use crate::store::{NsKey, Record, Repo};

use super::index::{live_key, AppInfo, GrayLive, Index, Live, NsInfo, Served};
use super::{Cairn, Result};

/// The records a change writes that the read model is built from, by identity.
#[derive(Default)]
pub(crate) struct Pending {
    apps: Vec<App>,
    app_namespaces: Vec<AppNamespace>,
    clusters: HashMap<(String, String, String), Cluster>,
    namespaces: HashMap<NsKey, Namespace>,
    releases: HashMap<(String, u64), Release>,
    branches: HashMap<NsKey, Branch>,
    /// `None`: deleted.
    access_keys: HashMap<(String, String, u64), Option<AccessKey>>,
}

impl Pending {
    /// Keeps what the read model needs of a record the change writes.
    pub(crate) fn note(&mut self, record: &Record) {
        match record {
            Record::App { app } => self.apps.push(app.clone()),
            Record::AppNamespace { app_namespace } => self.app_namespaces.push(app_namespace.clone()),
            Record::Cluster { env, cluster: c } => {
                self.clusters.insert((env.clone(), c.app_id.clone(), c.name.clone()), c.clone());
            }
            Record::Namespace { env, namespace: n } => {
                self.namespaces.insert(NsKey::new(env, &n.app_id, &n.cluster, &n.name), n.clone());
            }
            Record::Release { env, release } => {
                self.releases.insert((env.clone(), release.id), release.clone());
            }
            Record::Branch { env, branch: b } => {
                self.branches.insert(NsKey::new(env, &b.app_id, &b.parent_cluster, &b.namespace), b.clone());
            }
            Record::AccessKey { env, key } => {
                self.access_keys.insert((env.clone(), key.app_id.clone(), key.id), Some(key.clone()));
            }
            Record::DeleteAccessKey { env, app, id } => {
                self.access_keys.insert((env.clone(), app.clone(), *id), None);
            }
            _ => {}
        }
    }
}

/// Committed records as a change will leave them: the repository overlaid with [`Pending`].
pub(crate) struct Source<'a> {
    pub repo: &'a dyn Repo,
    pub pending: &'a Pending,
}

impl Source<'_> {
    fn cluster(&self, env: &str, app: &str, cluster: &str) -> Result<Option<Cluster>> {
        match self.pending.clusters.get(&(env.to_string(), app.to_string(), cluster.to_string())) {
            Some(c) => Ok(Some(c.clone())),
            None => Ok(self.repo.cluster(env, app, cluster)?),
        }
    }

    fn namespace(&self, key: &NsKey) -> Result<Option<Namespace>> {
        match self.pending.namespaces.get(key) {
            Some(n) => Ok(Some(n.clone())),
            None => Ok(self.repo.namespace(key)?),
        }
    }

    fn branch(&self, key: &NsKey) -> Result<Option<Branch>> {
        match self.pending.branches.get(key) {
            Some(b) => Ok(Some(b.clone())),
            None => Ok(self.repo.branch(&key.env, &key.app, &key.cluster, &key.ns)?),
        }
    }

    /// What clients are served of a namespace record: its head release.
    fn served(&self, env: &str, ns: &Namespace) -> Result<Option<Arc<Served>>> {
        let Some(id) = ns.head_release() else {
            return Ok(None);
        };
        if let Some(r) = self.pending.releases.get(&(env.to_string(), id)) {
            return Ok(Some(Arc::new(Served::from_release(r))));
        }
        Ok(self.repo.release(env, id)?.map(|r| Arc::new(Served::from_release(&r))))
    }

    /// The access keys of an app in an env, by id.
    fn access_keys(&self, env: &str, app: &str) -> Result<Vec<AccessKey>> {
        let mut keys: Vec<AccessKey> = self.repo.access_keys(env, Some(app))?;
        for ((e, a, id), key) in &self.pending.access_keys {
            if e == env && a == app {
                keys.retain(|k| k.id != *id);
                keys.extend(key.clone());
            }
        }
        keys.sort_by_key(|k| k.id);
        Ok(keys)
    }

    /// Apps, app namespaces and the public-namespace map.
    fn apps(&self) -> Result<AppsEntry> {
        let mut apps: HashMap<String, AppInfo> = HashMap::new();
        let mut public = HashMap::new();
        for app in self.repo.apps()?.into_iter().chain(self.pending.apps.iter().cloned()) {
            apps.insert(app.app_id.to_ascii_lowercase(), AppInfo { app_id: app.app_id, ..Default::default() });
        }
        let mut defs = self.repo.app_namespaces(None)?;
        for def in &self.pending.app_namespaces {
            defs.retain(|d| !(d.app_id == def.app_id && d.name == def.name));
            defs.push(def.clone());
        }
        // Storage order, so a clash of public names resolves as at start.
        defs.sort_by(|a, b| (a.app_id.as_bytes(), a.name.as_bytes()).cmp(&(b.app_id.as_bytes(), b.name.as_bytes())));
        for ns in defs {
            let lower = ns.name.to_ascii_lowercase();
            if ns.is_public {
                public.insert(lower.clone(), (ns.app_id.clone(), ns.name.clone()));
            }
            if let Some(app) = apps.get_mut(&ns.app_id.to_ascii_lowercase()) {
                app.namespaces.insert(lower, NsInfo { name: ns.name, format: ns.format, is_public: ns.is_public });
            }
        }
        Ok(AppsEntry { apps, public })
    }

    /// What clients of (app, cluster, ns) are served, under its live key; a branch cluster
    /// stands for its parent.
    fn live(&self, env: &str, app: &str, cluster: &str, ns: &str) -> Result<(String, Option<Live>)> {
        let parent = self.cluster(env, app, cluster)?.and_then(|c| c.parent).unwrap_or_else(|| cluster.to_string());
        let mut live = Live::default();
        let parent_key = NsKey::new(env, app, &parent, ns);
        if let Some(ns_rec) = self.namespace(&parent_key)? {
            live.release = self.served(env, &ns_rec)?;
        }
        if let Some(branch) = self.branch(&parent_key)? {
            if branch.status == BranchStatus::Active {
                let branch_ns = self.namespace(&NsKey::new(env, app, &branch.name, ns))?;
                if let Some(release) = branch_ns.map(|b| self.served(env, &b)).transpose()?.flatten() {
                    live.gray = Some(GrayLive { branch: branch.name, rules: branch.rules, release });
                }
            }
        }
        let key = live_key(app, &parent, ns);
        Ok((key, (live.release.is_some() || live.gray.is_some()).then_some(live)))
    }
}

/// Apps and the public-namespace map, as the index holds them.
pub(crate) struct AppsEntry {
    apps: HashMap<String, AppInfo>,
    public: HashMap<String, (String, String)>,
}

/// The read-model entries one change replaces, built before it commits.
#[derive(Default)]
pub(crate) struct IndexUpdate {
    apps: Option<AppsEntry>,
    /// (env, live key, entry; `None` removes it).
    live: Vec<(String, String, Option<Live>)>,
    /// (env, lower-case app id, keys).
    access_keys: Vec<(String, String, Vec<AccessKey>)>,
}

impl IndexUpdate {
    /// Builds the entries for what a change touched.
    pub(crate) fn build(
        src: &Source<'_>,
        apps: bool,
        namespaces: &[(String, String, String, String)],
        access_keys: &[(String, String)],
    ) -> Result<IndexUpdate> {
        let mut update = IndexUpdate { apps: if apps { Some(src.apps()?) } else { None }, ..Default::default() };
        for (env, app, cluster, ns) in namespaces {
            let (key, live) = src.live(env, app, cluster, ns)?;
            update.live.push((env.clone(), key, live));
        }
        for (env, app) in access_keys {
            update.access_keys.push((env.clone(), app.to_ascii_lowercase(), src.access_keys(env, app)?));
        }
        Ok(update)
    }

    /// Swaps the entries in; cannot fail.
    pub(crate) fn apply(self, index: &mut Index) {
        if let Some(AppsEntry { apps, public }) = self.apps {
            index.apps = apps;
            index.public = public;
        }
        for (env, key, live) in self.live {
            let e = index.envs.entry(env).or_default();
            match live {
                Some(live) => e.live.insert(key, live),
                None => e.live.remove(&key),
            };
        }
        for (env, app, keys) in self.access_keys {
            index.envs.entry(env).or_default().access_keys.insert(app, keys);
        }
    }
}

impl Cairn {
    /// Builds the whole read model from the store.
    pub(crate) fn build_index(&self) -> Result<Index> {
        let pending = Pending::default();
        let src = Source { repo: &*self.repo, pending: &pending };
        let AppsEntry { apps, public } = src.apps()?;
        let mut index = Index { apps, public, ..Index::default() };
        for env in &self.settings.envs {
            let mut e = super::index::EnvIndex::default();
            for ns in self.repo.namespaces(env, None, None)? {
                let (key, live) = src.live(env, &ns.app_id, &ns.cluster, &ns.name)?;
                if let Some(live) = live {
                    e.live.insert(key, live);
                }
            }
            for m in self.repo.messages(env)? {
                e.messages.insert(m.content.to_ascii_lowercase(), (m.id, m.content));
            }
            for key in self.repo.access_keys(env, None)? {
                e.access_keys.entry(key.app_id.to_ascii_lowercase()).or_default().push(key);
            }
            index.envs.insert(env.clone(), e);
        }
        Ok(index)
    }

    /// Rebuilds the whole read model from the store.
    pub(crate) fn rebuild_index(&self) -> Result<()> {
        let index = self.build_index()?;
        *self.write_index() = index;
        Ok(())
    }
}
