//! App namespaces (global definitions) and namespace instances per cluster.

use crate::domain::model::{AppNamespace, Item, Namespace, Stamp};
use crate::domain::names;
use crate::domain::Format;
use crate::store::{NsKey, Record};

use super::apps::put_namespace;
use super::auth::Permission;
use super::{Cairn, Caller, NsRef, Result, ServiceError};

/// A new app namespace as requested.
#[derive(Debug, Clone)]
pub struct NewAppNamespace {
    pub name: String,
    pub format: Format,
    pub is_public: bool,
    pub comment: String,
    /// Prefix public names with the app's org id (Apollo's default for public namespaces).
    pub append_prefix: bool,
}

/// A namespace instance with its definition and draft items.
#[derive(Debug, Clone)]
pub struct NamespaceView {
    pub env: String,
    pub definition: AppNamespace,
    pub namespace: Namespace,
    pub items: Vec<Item>,
}

impl Cairn {
    /// The definition of `ns` as seen by `app`: its own, else the public one.
    pub fn app_namespace(&self, app: &str, ns: &str) -> Result<AppNamespace> {
        if let Some(own) = self.repo.app_namespace(app, ns)? {
            return Ok(own);
        }
        let owner = self.read_index().public.get(&ns.to_ascii_lowercase()).cloned();
        if let Some((owner, name)) = owner {
            if let Some(def) = self.repo.app_namespace(&owner, &name)? {
                return Ok(def);
            }
        }
        Err(ServiceError::not_found(format!("namespace '{ns}' is not defined for app '{app}'")))
    }

    /// Every app namespace of an app.
    pub fn list_app_namespaces(&self, app: &str) -> Result<Vec<AppNamespace>> {
        Ok(self.repo.app_namespaces(Some(app))?)
    }

    /// Creates an app namespace and an instance of it in every cluster of the app in every env.
    pub fn create_app_namespace(&self, caller: &Caller, app: &str, new: NewAppNamespace) -> Result<AppNamespace> {
        let app_rec = self.app(app)?;
        let app = app_rec.app_id.clone();
        caller.require(Permission::AppMaster { app: &app })?;
        names::check_namespace(&new.name)?;
        if new.comment.chars().count() > 256 {
            return Err(ServiceError::invalid("comment", "must be at most 256 characters"));
        }
        let mut name = new.name.clone();
        if new.is_public && new.append_prefix && !name.starts_with(&format!("{}.", app_rec.org_id)) {
            name = format!("{}.{}", app_rec.org_id, name);
        }
        if new.format.is_file() && Format::of_namespace(&name) != new.format {
            name = format!("{name}.{}", new.format.as_str());
        }
        names::check_namespace(&name)?;
        let mut c = self.change_for(caller)?;
        {
            let index = self.read_index();
            let lower = name.to_ascii_lowercase();
            let own = index.apps.get(&app.to_ascii_lowercase()).is_some_and(|a| a.namespaces.contains_key(&lower));
            if own || (new.is_public && index.public.contains_key(&lower)) {
                return Err(ServiceError::AlreadyExists(format!("namespace '{name}' already exists")));
            }
        }
        let def = AppNamespace {
            app_id: app.clone(),
            name: name.clone(),
            format: new.format,
            is_public: new.is_public,
            comment: new.comment,
            stamp: Stamp::new(&caller.operator, c.now),
        };
        c.put(Record::AppNamespace { app_namespace: def.clone() });
        for env in self.settings.envs.clone() {
            for cluster in self.clusters(&env, &app)?.into_iter().filter(|c| c.parent.is_none()) {
                put_namespace(&mut c, &env, &app, &cluster.name, &name)?;
            }
        }
        c.audit("app_namespace.create", None, &format!("{app}/{name}"), def.format.as_str())?;
        c.touch_apps();
        c.commit()?;
        Ok(def)
    }

    /// Creates the instance of an existing app namespace — the app's own or another app's
    /// public one (association) — in a cluster.
    pub fn link_namespace(&self, caller: &Caller, env: &str, app: &str, cluster: &str, ns: &str) -> Result<Namespace> {
        let app = self.app(app)?.app_id;
        caller.require(Permission::AppMaster { app: &app })?;
        self.cluster_record(env, &app, cluster)?;
        let def = self.app_namespace(&app, ns)?;
        if def.app_id != app && !def.is_public {
            return Err(ServiceError::invalid(
                "namespace",
                format!("'{ns}' is a private namespace of app '{}'", def.app_id),
            ));
        }
        let mut c = self.change_for(caller)?;
        if self.repo.namespace(&NsKey::new(env, &app, cluster, &def.name))?.is_some() {
            return Err(ServiceError::AlreadyExists(format!(
                "namespace '{}' already exists in cluster '{cluster}' of app '{app}' in {env}",
                def.name
            )));
        }
        let created = put_namespace(&mut c, env, &app, cluster, &def.name)?;
        c.audit("namespace.link", Some(env), &format!("{app}/{cluster}/{}", def.name), "")?;
        c.commit()?;
        Ok(created)
    }

    /// The namespace instance record, NotFound otherwise.
    pub(crate) fn namespace_record(&self, env: &str, app: &str, cluster: &str, ns: &str) -> Result<Namespace> {
        self.repo.namespace(&NsKey::new(env, app, cluster, ns))?.ok_or_else(|| {
            ServiceError::not_found(format!(
                "namespace '{ns}' not found in cluster '{cluster}' of app '{app}' in {env}"
            ))
        })
    }

    /// Resolves the canonical (app, namespace) of a path and checks the app exists.
    pub(crate) fn resolve_ns(&self, at: NsRef<'_>) -> Result<(String, Namespace)> {
        let app = self.app(at.app)?.app_id;
        let ns = self.read_index().normalize_namespace(&app, names::strip_properties_suffix(at.ns));
        let rec = self.namespace_record(at.env, &app, at.cluster, &ns)?;
        Ok((app, rec))
    }

    /// Draft items of a namespace, in line order.
    pub fn items_of(&self, env: &str, app: &str, cluster: &str, ns: &str) -> Result<Vec<Item>> {
        let mut items: Vec<Item> = self.repo.items(&NsKey::new(env, app, cluster, ns))?;
        items.sort_by_key(|i| i.line_num);
        Ok(items)
    }

    /// One namespace with its definition and items.
    pub fn namespace(&self, caller: &Caller, at: NsRef<'_>) -> Result<NamespaceView> {
        let env = at.env;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Read { app: &app, ns: &rec.name, env })?;
        self.view(env, rec)
    }

    fn view(&self, env: &str, rec: Namespace) -> Result<NamespaceView> {
        let definition = self.app_namespace(&rec.app_id, &rec.name)?;
        let items = self.items_of(env, &rec.app_id, &rec.cluster, &rec.name)?;
        Ok(NamespaceView { env: env.to_string(), definition, namespace: rec, items })
    }

    /// Every namespace of a cluster the caller may read.
    pub fn list_namespaces(&self, caller: &Caller, env: &str, app: &str, cluster: &str) -> Result<Vec<NamespaceView>> {
        let app = self.app(app)?.app_id;
        caller.require(Permission::SeeApp { app: &app })?;
        self.cluster_record(env, &app, cluster)?;
        let mut out = Vec::new();
        for rec in self.repo.namespaces(env, Some(&app), Some(cluster))? {
            if caller.can(Permission::Read { app: &app, ns: &rec.name, env }) {
                out.push(self.view(env, rec)?);
            }
        }
        Ok(out)
    }

    /// Who holds the edit lock of a namespace (four-eyes envs only).
    pub fn lock_owner(&self, caller: &Caller, at: NsRef<'_>) -> Result<(String, Option<String>)> {
        let env = at.env;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Read { app: &app, ns: &rec.name, env })?;
        let owner = if self.settings.four_eyes_envs.contains(env) { rec.draft_editors.first().cloned() } else { None };
        Ok((rec.name, owner))
    }

    /// True when emergency publishing is allowed in `env`.
    pub fn emergency_publish_allowed(&self, env: &str) -> bool {
        self.settings.emergency_publish_envs.contains(env)
    }
}
