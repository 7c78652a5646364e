//! The in-memory read model: latest release per (env, app, cluster, namespace) with its gray
//! branches, latest release-message ids, app namespace names and access keys. Rebuilt from
//! the store at start and refreshed by the write path *before* long polls are woken.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::model::{AccessKey, GrayRuleItem, Release};
use crate::domain::Format;

/// A release as served to clients, with its configurations pre-rendered as JSON.
#[derive(Debug)]
pub struct Served {
    pub release_id: u64,
    pub release_key: String,
    pub app_id: String,
    pub cluster: String,
    pub namespace: String,
    pub configurations: Vec<(String, String)>,
    /// `configurations` as a JSON object in item order.
    pub configurations_json: String,
}

impl Served {
    /// Builds the served form of a release.
    pub fn from_release(r: &Release) -> Served {
        Served {
            release_id: r.id,
            release_key: r.release_key.clone(),
            app_id: r.app_id.clone(),
            cluster: r.cluster.clone(),
            namespace: r.namespace.clone(),
            configurations_json: ordered_json(&r.configurations),
            configurations: r.configurations.clone(),
        }
    }
}

/// Renders ordered pairs as a JSON object, keeping their order.
pub fn ordered_json(pairs: &[(String, String)]) -> String {
    let mut out = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>() + 2);
    out.push('{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::from(k.as_str()).to_string());
        out.push(':');
        out.push_str(&serde_json::Value::from(v.as_str()).to_string());
    }
    out.push('}');
    out
}

/// An active gray branch with a release.
#[derive(Debug)]
pub struct GrayLive {
    pub branch: String,
    pub rules: Vec<GrayRuleItem>,
    pub release: Arc<Served>,
}

/// What clients of one (app, cluster, namespace) can be served.
#[derive(Debug, Default)]
pub struct Live {
    pub release: Option<Arc<Served>>,
    pub gray: Option<GrayLive>,
}

/// Per-env read model.
#[derive(Debug, Default)]
pub struct EnvIndex {
    /// Lower-case `app+cluster+namespace` → live releases.
    pub live: HashMap<String, Live>,
    /// Lower-case watch key → (latest message id, canonical watch key).
    pub messages: HashMap<String, (i64, String)>,
    /// Lower-case app id → access keys.
    pub access_keys: HashMap<String, Vec<AccessKey>>,
}

/// An app namespace as the read path needs it.
#[derive(Debug, Clone)]
pub struct NsInfo {
    pub name: String,
    pub format: Format,
    pub is_public: bool,
}

/// An app as the read path needs it.
#[derive(Debug, Clone, Default)]
pub struct AppInfo {
    pub app_id: String,
    /// Lower-case namespace name → info.
    pub namespaces: HashMap<String, NsInfo>,
}

/// The whole read model.
#[derive(Debug, Default)]
pub struct Index {
    pub envs: HashMap<String, EnvIndex>,
    /// Lower-case app id → app.
    pub apps: HashMap<String, AppInfo>,
    /// Lower-case public namespace name → (owner app id, canonical name).
    pub public: HashMap<String, (String, String)>,
}

/// The lower-case key of (app, cluster, namespace), also the watch-key form.
pub fn live_key(app: &str, cluster: &str, ns: &str) -> String {
    let mut k = String::with_capacity(app.len() + cluster.len() + ns.len() + 2);
    for (i, part) in [app, cluster, ns].iter().enumerate() {
        if i > 0 {
            k.push('+');
        }
        k.extend(part.chars().map(|c| c.to_ascii_lowercase()));
    }
    k
}

impl Index {
    /// The canonical spelling of a namespace as seen by `app`: its own app namespace, else a
    /// public namespace of any app, else unchanged.
    pub fn normalize_namespace(&self, app: &str, ns: &str) -> String {
        let lower = ns.to_ascii_lowercase();
        if let Some(info) = self.apps.get(&app.to_ascii_lowercase()).and_then(|a| a.namespaces.get(&lower)) {
            return info.name.clone();
        }
        if let Some((_, name)) = self.public.get(&lower) {
            return name.clone();
        }
        ns.to_string()
    }

    /// True when `ns` (canonical) belongs to `app` itself.
    pub fn app_owns(&self, app: &str, ns: &str) -> bool {
        ns == crate::domain::names::APPLICATION_NAMESPACE
            || self
                .apps
                .get(&app.to_ascii_lowercase())
                .is_some_and(|a| a.namespaces.contains_key(&ns.to_ascii_lowercase()))
    }

    /// The owner app of public namespace `ns`, when it is not `app` itself.
    pub fn public_owner(&self, app: &str, ns: &str) -> Option<&str> {
        if self.app_owns(app, ns) {
            return None;
        }
        self.public
            .get(&ns.to_ascii_lowercase())
            .map(|(owner, _)| owner.as_str())
            .filter(|owner| !owner.eq_ignore_ascii_case(app))
    }
}
