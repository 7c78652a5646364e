//! Apps and clusters.

use crate::domain::model::{App, AppNamespace, Cluster, Consumer, Grant, Namespace, Stamp};
use crate::domain::names::{self, APPLICATION_NAMESPACE, DEFAULT_CLUSTER};
use crate::domain::Format;
use crate::store::Record;

use super::auth::{Actor, Permission};
use super::change::Change;
use super::{Cairn, Caller, Result, ServiceError};

/// The fields of a new app.
#[derive(Debug, Clone, Default)]
pub struct NewApp {
    pub app_id: String,
    pub name: String,
    pub org_id: String,
    pub org_name: String,
    pub owner_name: String,
    pub owner_email: String,
}

fn require_text(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(ServiceError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ServiceError::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(())
}

/// Bounds an optional free-text field (may be empty).
fn bound_text(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(ServiceError::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(())
}

/// Longest cluster comment, as for namespace and item comments.
const COMMENT_MAX: usize = 256;

impl Cairn {
    /// Signed-in users may create apps unless creation is restricted to granted users
    /// (`only_granted_create_apps`); consumers always need "allow create app".
    pub fn may_create_apps(&self, caller: &Caller) -> bool {
        match &caller.actor {
            Actor::User(_) if !self.settings.only_granted_create_apps => true,
            _ => caller.can(Permission::CreateApp),
        }
    }

    /// Looks an app up by id (case-insensitively), NotFound otherwise.
    pub fn app(&self, app_id: &str) -> Result<App> {
        let canonical = self
            .read_index()
            .apps
            .get(&app_id.to_ascii_lowercase())
            .map(|a| a.app_id.clone())
            .ok_or_else(|| ServiceError::not_found(format!("app '{app_id}' not found")))?;
        self.repo.app(&canonical)?.ok_or_else(|| ServiceError::not_found(format!("app '{app_id}' not found")))
    }

    /// Every app, or those with the given ids.
    pub fn list_apps(&self, ids: Option<&[String]>) -> Result<Vec<App>> {
        let all = self.repo.apps()?;
        Ok(match ids {
            None => all,
            Some(ids) => all.into_iter().filter(|a| ids.iter().any(|i| i.eq_ignore_ascii_case(&a.app_id))).collect(),
        })
    }

    /// Apps the caller holds any grant on.
    pub fn authorized_apps(&self, caller: &Caller) -> Result<Vec<App>> {
        Ok(self.list_apps(None)?.into_iter().filter(|a| caller.can(Permission::SeeApp { app: &a.app_id })).collect())
    }

    /// Creates an app with its `application` namespace and `default` cluster in every env.
    /// `admins` become app masters; a consumer with `assign_to_self` gets an app-master grant.
    pub fn create_app(&self, caller: &Caller, new: NewApp, admins: &[String], assign_to_self: bool) -> Result<App> {
        if !self.may_create_apps(caller) {
            caller.require(Permission::CreateApp)?;
        }
        names::check_app_id(&new.app_id)?;
        require_text("name", &new.name, 128)?;
        require_text("ownerName", &new.owner_name, 64)?;
        bound_text("orgId", &new.org_id, 64)?;
        bound_text("orgName", &new.org_name, 128)?;
        bound_text("ownerEmail", &new.owner_email, 254)?;
        for admin in admins.iter().chain(std::iter::once(&new.owner_name)) {
            self.user(admin)?;
        }
        let mut c = self.change_for(caller)?;
        // Checked under the write lock: the index is refreshed before the lock is released,
        // so two creates of `Foo` and `foo` cannot both pass.
        if self.read_index().apps.contains_key(&new.app_id.to_ascii_lowercase())
            || self.repo.app(&new.app_id)?.is_some()
        {
            return Err(ServiceError::AlreadyExists(format!("app '{}' already exists", new.app_id)));
        }
        let stamp = Stamp::new(&caller.operator, c.now);
        let org_id = if new.org_id.is_empty() { "default".to_string() } else { new.org_id };
        let app = App {
            app_id: new.app_id,
            name: new.name,
            org_name: if new.org_name.is_empty() { org_id.clone() } else { new.org_name },
            org_id,
            owner_name: new.owner_name,
            owner_email: new.owner_email,
            stamp: stamp.clone(),
        };
        c.put(Record::App { app: app.clone() });
        let application = AppNamespace {
            app_id: app.app_id.clone(),
            name: APPLICATION_NAMESPACE.to_string(),
            format: Format::Properties,
            is_public: false,
            comment: "default app namespace".to_string(),
            stamp: stamp.clone(),
        };
        c.put(Record::AppNamespace { app_namespace: application });
        for env in self.settings.envs.clone() {
            put_cluster(&mut c, &env, &app.app_id, DEFAULT_CLUSTER, None, "")?;
            put_namespace(&mut c, &env, &app.app_id, DEFAULT_CLUSTER, APPLICATION_NAMESPACE)?;
        }
        let master = Grant { app_id: app.app_id.clone(), namespace: None, env: None, modify: true, release: true };
        for admin in admins.iter().chain(std::iter::once(&app.owner_name)) {
            if let Some(mut user) = self.find_user(admin)? {
                if !user.grants.contains(&master) {
                    user.grants.push(master.clone());
                    c.put(Record::User { user });
                }
            }
        }
        if let (true, Actor::Consumer(consumer)) = (assign_to_self, &caller.actor) {
            // The consumer in `caller` was read before the lock; a concurrent create by the
            // same consumer may have added a grant since, so the stored record is updated.
            let mut consumer: Consumer = self.repo.consumer(&consumer.name)?.ok_or_else(|| {
                ServiceError::Unauthenticated(format!("consumer '{}' no longer exists", consumer.name))
            })?;
            if !consumer.grants.contains(&master) {
                consumer.grants.push(master);
            }
            c.put(Record::Consumer { consumer });
        }
        c.audit("app.create", None, &app.app_id, app.name.clone())?;
        c.touch_apps();
        c.commit()?;
        Ok(app)
    }

    /// Clusters per env of an app (gray branches excluded).
    pub fn env_clusters(&self, caller: &Caller, app: &str) -> Result<Vec<(String, Vec<String>)>> {
        let app = self.app(app)?.app_id;
        caller.require(Permission::SeeApp { app: &app })?;
        let mut out = Vec::new();
        for env in &self.settings.envs {
            let clusters =
                self.clusters(env, &app)?.into_iter().filter(|c| c.parent.is_none()).map(|c| c.name).collect();
            out.push((env.clone(), clusters));
        }
        Ok(out)
    }

    /// Every cluster (branches included) of an app in an env.
    pub fn clusters(&self, env: &str, app: &str) -> Result<Vec<Cluster>> {
        Ok(self.repo.clusters(env, app)?)
    }

    /// One cluster, NotFound otherwise.
    pub fn cluster(&self, caller: &Caller, env: &str, app: &str, cluster: &str) -> Result<Cluster> {
        let app = self.app(app)?.app_id;
        caller.require(Permission::SeeApp { app: &app })?;
        self.cluster_record(env, &app, cluster)
    }

    pub(crate) fn cluster_record(&self, env: &str, app: &str, cluster: &str) -> Result<Cluster> {
        self.repo
            .cluster(env, app, cluster)?
            .ok_or_else(|| ServiceError::not_found(format!("cluster '{cluster}' of app '{app}' not found in {env}")))
    }

    /// Creates a cluster with an instance of every namespace the app owns.
    pub fn create_cluster(&self, caller: &Caller, env: &str, app: &str, name: &str, comment: &str) -> Result<Cluster> {
        let app = self.app(app)?.app_id;
        caller.require(Permission::AppMaster { app: &app })?;
        names::check_cluster(name).map_err(ServiceError::Invalid)?;
        bound_text("comment", comment, COMMENT_MAX)?;
        let mut c = self.change_for(caller)?;
        if self.repo.cluster(env, &app, name)?.is_some() {
            return Err(ServiceError::AlreadyExists(format!(
                "cluster '{name}' of app '{app}' already exists in {env}"
            )));
        }
        let cluster = put_cluster(&mut c, env, &app, name, None, comment)?;
        for ns in self.repo.app_namespaces(Some(&app))? {
            put_namespace(&mut c, env, &app, name, &ns.name)?;
        }
        c.audit("cluster.create", Some(env), &format!("{app}/{name}"), "")?;
        c.commit()?;
        Ok(cluster)
    }
}

pub(crate) fn put_cluster(
    c: &mut Change<'_>,
    env: &str,
    app: &str,
    name: &str,
    parent: Option<&str>,
    comment: &str,
) -> Result<Cluster> {
    let cluster = Cluster {
        app_id: app.to_string(),
        name: name.to_string(),
        parent: parent.map(str::to_string),
        comment: comment.to_string(),
        stamp: Stamp::new(&c.actor, c.now),
    };
    c.put(Record::Cluster { env: env.to_string(), cluster: cluster.clone() });
    Ok(cluster)
}

pub(crate) fn put_namespace(c: &mut Change<'_>, env: &str, app: &str, cluster: &str, ns: &str) -> Result<Namespace> {
    let namespace = Namespace {
        app_id: app.to_string(),
        cluster: cluster.to_string(),
        name: ns.to_string(),
        active_releases: Vec::new(),
        history_len: 0,
        draft_editors: Vec::new(),
        stamp: Stamp::new(&c.actor, c.now),
    };
    c.put(Record::Namespace { env: env.to_string(), namespace: namespace.clone() });
    Ok(namespace)
}
