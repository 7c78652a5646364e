//! Loading the read model from the store: fully at start, per object after each change.

use std::sync::Arc;

use crate::domain::model::{AccessKey, App, AppNamespace, Branch, BranchStatus, Cluster, Namespace};
use crate::store::{keys, T};

use super::index::{live_key, AppInfo, GrayLive, Index, Live, NsInfo, Served};
use super::{Cairn, Result};

impl Cairn {
    /// Rebuilds the whole read model from the store.
    pub(crate) fn rebuild_index(&self) -> Result<()> {
        let mut index = Index::default();
        self.load_apps(&mut index)?;
        for env in &self.settings.envs {
            let prefix = keys::env(env);
            for (_, ns) in self.store.scan::<Namespace>(T::Namespaces, &prefix)? {
                self.refresh_live(&mut index, env, &ns.app_id, &ns.cluster, &ns.name)?;
            }
            let e = index.envs.entry(env.clone()).or_default();
            for (_, (id, content)) in self.store.scan::<(i64, String)>(T::Messages, &prefix)? {
                e.messages.insert(content.to_ascii_lowercase(), (id, content));
            }
            for (_, key) in self.store.scan::<AccessKey>(T::AccessKeys, &prefix)? {
                e.access_keys.entry(key.app_id.to_ascii_lowercase()).or_default().push(key);
            }
        }
        *self.write_index() = index;
        Ok(())
    }

    /// Reloads apps, app namespaces and the public-namespace map.
    pub(crate) fn load_apps(&self, index: &mut Index) -> Result<()> {
        index.apps.clear();
        index.public.clear();
        for (_, app) in self.store.scan::<App>(T::Apps, b"")? {
            index.apps.insert(app.app_id.to_ascii_lowercase(), AppInfo { app_id: app.app_id, ..Default::default() });
        }
        for (_, ns) in self.store.scan::<AppNamespace>(T::AppNamespaces, b"")? {
            let lower = ns.name.to_ascii_lowercase();
            if ns.is_public {
                index.public.insert(lower.clone(), (ns.app_id.clone(), ns.name.clone()));
            }
            if let Some(app) = index.apps.get_mut(&ns.app_id.to_ascii_lowercase()) {
                app.namespaces.insert(lower, NsInfo { name: ns.name, format: ns.format, is_public: ns.is_public });
            }
        }
        Ok(())
    }

    fn served(&self, env: &str, ns: &Namespace) -> Result<Option<Arc<Served>>> {
        let Some(id) = ns.head_release() else {
            return Ok(None);
        };
        Ok(self.store.get_release(env, id)?.map(|r| Arc::new(Served::from_release(&r))))
    }

    /// Reloads what clients of (app, cluster, ns) are served; a branch cluster refreshes its parent.
    pub(crate) fn refresh_live(&self, index: &mut Index, env: &str, app: &str, cluster: &str, ns: &str) -> Result<()> {
        let cluster_rec: Option<Cluster> = self.store.get(T::Clusters, &keys::cluster(env, app, cluster))?;
        let parent = cluster_rec.and_then(|c| c.parent).unwrap_or_else(|| cluster.to_string());
        let mut live = Live::default();
        if let Some(ns_rec) = self.store.get::<Namespace>(T::Namespaces, &keys::namespace(env, app, &parent, ns))? {
            live.release = self.served(env, &ns_rec)?;
        }
        if let Some(branch) = self.store.get::<Branch>(T::Branches, &keys::branch(env, app, &parent, ns))? {
            if branch.status == BranchStatus::Active {
                let branch_ns: Option<Namespace> =
                    self.store.get(T::Namespaces, &keys::namespace(env, app, &branch.name, ns))?;
                if let Some(release) = branch_ns.map(|b| self.served(env, &b)).transpose()?.flatten() {
                    live.gray = Some(GrayLive { branch: branch.name, rules: branch.rules, release });
                }
            }
        }
        let e = index.envs.entry(env.to_string()).or_default();
        let key = live_key(app, &parent, ns);
        if live.release.is_none() && live.gray.is_none() {
            e.live.remove(&key);
        } else {
            e.live.insert(key, live);
        }
        Ok(())
    }

    /// Reloads the access keys of an app in an env.
    pub(crate) fn refresh_access_keys(&self, index: &mut Index, env: &str, app: &str) -> Result<()> {
        let keys_of: Vec<AccessKey> = self
            .store
            .scan::<AccessKey>(T::AccessKeys, &keys::access_keys_of(env, app))?
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        let e = index.envs.entry(env.to_string()).or_default();
        e.access_keys.insert(app.to_ascii_lowercase(), keys_of);
        Ok(())
    }
}
