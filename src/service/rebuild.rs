//! Loading the read model from the store: fully at start, per object after each change.

use std::sync::Arc;

use crate::domain::model::{BranchStatus, Namespace};
use crate::store::NsKey;

use super::index::{live_key, AppInfo, GrayLive, Index, Live, NsInfo, Served};
use super::{Cairn, Result};

impl Cairn {
    /// Rebuilds the whole read model from the store.
    pub(crate) fn rebuild_index(&self) -> Result<()> {
        let mut index = Index::default();
        self.load_apps(&mut index)?;
        for env in &self.settings.envs {
            for ns in self.repo.namespaces(env, None, None)? {
                self.refresh_live(&mut index, env, &ns.app_id, &ns.cluster, &ns.name)?;
            }
            let e = index.envs.entry(env.clone()).or_default();
            for m in self.repo.messages(env)? {
                e.messages.insert(m.content.to_ascii_lowercase(), (m.id, m.content));
            }
            for key in self.repo.access_keys(env, None)? {
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
        for app in self.repo.apps()? {
            index.apps.insert(app.app_id.to_ascii_lowercase(), AppInfo { app_id: app.app_id, ..Default::default() });
        }
        for ns in self.repo.app_namespaces(None)? {
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
        Ok(self.repo.release(env, id)?.map(|r| Arc::new(Served::from_release(&r))))
    }

    /// Reloads what clients of (app, cluster, ns) are served; a branch cluster refreshes its parent.
    pub(crate) fn refresh_live(&self, index: &mut Index, env: &str, app: &str, cluster: &str, ns: &str) -> Result<()> {
        let cluster_rec = self.repo.cluster(env, app, cluster)?;
        let parent = cluster_rec.and_then(|c| c.parent).unwrap_or_else(|| cluster.to_string());
        let mut live = Live::default();
        if let Some(ns_rec) = self.repo.namespace(&NsKey::new(env, app, &parent, ns))? {
            live.release = self.served(env, &ns_rec)?;
        }
        if let Some(branch) = self.repo.branch(env, app, &parent, ns)? {
            if branch.status == BranchStatus::Active {
                let branch_ns = self.repo.namespace(&NsKey::new(env, app, &branch.name, ns))?;
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
        let keys_of = self.repo.access_keys(env, Some(app))?;
        let e = index.envs.entry(env.to_string()).or_default();
        e.access_keys.insert(app.to_ascii_lowercase(), keys_of);
        Ok(())
    }
}
