//! Serving clients: resolve which releases a client gets for a namespace (cluster → data
//! center → default fallback, gray rules at every step, public namespace merged under the
//! app's own values), and record the instance.

use std::sync::Arc;

use crate::domain::model::InstanceConfig;
use crate::domain::names::{strip_properties_suffix, DEFAULT_CLUSTER, NO_APP_ID_PLACEHOLDER};
use crate::domain::time::now_ms;

use super::index::{live_key, ordered_json, EnvIndex, Served};
use super::metrics::Metrics;
use super::Cairn;

/// What a client asked for.
#[derive(Debug, Clone, Default)]
pub struct ConfigRequest {
    pub env: String,
    pub app_id: String,
    pub cluster: String,
    /// As the client spelled it (`application.properties`, `FX.apollo`, ...).
    pub namespace: String,
    pub data_center: Option<String>,
    pub ip: Option<String>,
    pub label: Option<String>,
}

/// The releases a client gets: own release first, public release second.
#[derive(Debug)]
pub struct Resolved {
    pub releases: Vec<Arc<Served>>,
    /// Canonical namespace name.
    pub namespace: String,
}

impl Resolved {
    /// The `+`-joined release key clients echo back.
    pub fn release_key(&self) -> String {
        let keys: Vec<&str> = self.releases.iter().map(|r| r.release_key.as_str()).collect();
        keys.join("+")
    }

    /// The cluster reported to the client: the own release's cluster, else the requested one.
    pub fn cluster<'a>(&'a self, requested: &'a str, app: &str) -> &'a str {
        self.releases.iter().find(|r| r.app_id.eq_ignore_ascii_case(app)).map_or(requested, |r| r.cluster.as_str())
    }

    /// The merged configurations as a JSON object: public values first, own values over them.
    pub fn configurations_json(&self) -> std::borrow::Cow<'_, str> {
        match self.releases.as_slice() {
            [one] => std::borrow::Cow::Borrowed(one.configurations_json.as_str()),
            _ => std::borrow::Cow::Owned(ordered_json(&self.merged())),
        }
    }

    /// The merged configurations as ordered pairs.
    pub fn merged(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for r in self.releases.iter().rev() {
            for (k, v) in &r.configurations {
                match out.iter_mut().find(|(key, _)| key == k) {
                    Some(slot) => slot.1 = v.clone(),
                    None => out.push((k.clone(), v.clone())),
                }
            }
        }
        out
    }
}

fn find_in_cluster(
    e: &EnvIndex,
    config_app: &str,
    cluster: &str,
    ns: &str,
    req: &ConfigRequest,
) -> Option<Arc<Served>> {
    let live = e.live.get(&live_key(config_app, cluster, ns))?;
    if let Some(gray) = &live.gray {
        if gray.rules.iter().any(|r| r.matches(&req.app_id, req.ip.as_deref(), req.label.as_deref())) {
            return Some(gray.release.clone());
        }
    }
    live.release.clone()
}

fn load(e: &EnvIndex, config_app: &str, ns: &str, req: &ConfigRequest) -> Option<Arc<Served>> {
    if req.cluster != DEFAULT_CLUSTER {
        if let Some(r) = find_in_cluster(e, config_app, &req.cluster, ns, req) {
            return Some(r);
        }
    }
    if let Some(dc) = req.data_center.as_deref().filter(|d| !d.is_empty() && *d != req.cluster) {
        if let Some(r) = find_in_cluster(e, config_app, dc, ns, req) {
            return Some(r);
        }
    }
    find_in_cluster(e, config_app, DEFAULT_CLUSTER, ns, req)
}

impl Cairn {
    /// Resolves the releases for a client request; `None` when nothing is released.
    pub fn resolve_config(&self, req: &ConfigRequest) -> Option<Resolved> {
        Metrics::inc(&self.metrics.config_fetches);
        let index = self.read_index();
        let e = index.envs.get(&req.env)?;
        let requested = strip_properties_suffix(&req.namespace);
        let ns_lower = requested.to_ascii_lowercase();
        let own = index.apps.get(&req.app_id.to_ascii_lowercase()).and_then(|a| a.namespaces.get(&ns_lower));
        let public = index.public.get(&ns_lower);
        let ns = match (own, public) {
            (Some(info), _) => info.name.as_str(),
            (None, Some((_, name))) => name.as_str(),
            (None, None) => requested,
        };
        let mut releases = Vec::with_capacity(2);
        if req.app_id != NO_APP_ID_PLACEHOLDER {
            if let Some(r) = load(e, &req.app_id, ns, req) {
                releases.push(r);
            }
        }
        let owned = own.is_some() || ns == crate::domain::names::APPLICATION_NAMESPACE;
        if let Some((owner, _)) = public.filter(|(owner, _)| !owned && !owner.eq_ignore_ascii_case(&req.app_id)) {
            if let Some(r) = load(e, owner, ns, req) {
                releases.push(r);
            }
        }
        if releases.is_empty() {
            return None;
        }
        Some(Resolved { releases, namespace: ns.to_string() })
    }

    /// Records that the client of `req` was served `resolved` (instance audit).
    pub fn record_instance(&self, req: &ConfigRequest, resolved: &Resolved) {
        let Some(ip) = req.ip.as_deref().filter(|ip| !ip.is_empty()) else {
            return;
        };
        let now = now_ms();
        for r in &resolved.releases {
            self.instances.record(
                &req.env,
                InstanceConfig {
                    app_id: req.app_id.clone(),
                    cluster: req.cluster.clone(),
                    data_center: req.data_center.clone().unwrap_or_default(),
                    ip: ip.to_string(),
                    config_app_id: r.app_id.clone(),
                    config_cluster: r.cluster.clone(),
                    config_namespace: r.namespace.clone(),
                    release_key: r.release_key.clone(),
                    release_delivery_time: now,
                    last_seen: now,
                },
            );
        }
    }
}
