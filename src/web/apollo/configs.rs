//! `GET /configs/{appId}/{cluster}/{namespace}`: the authoritative config fetch.

use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{client_ip, guard, ClientEnv};
use crate::service::config_query::{ConfigRequest, Resolved};
use crate::web::error::{ApiError, ApiResult};
use crate::web::AppState;

/// Query parameters of `/configs` and `/configfiles` (`messages` is accepted and ignored: the
/// read model is always current).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigQuery {
    pub release_key: Option<String>,
    pub ip: Option<String>,
    pub label: Option<String>,
    pub data_center: Option<String>,
    #[allow(dead_code)]
    pub messages: Option<String>,
}

/// The path variables of `/configs` and `/configfiles`.
#[derive(Debug)]
pub struct ConfigPath {
    pub app_id: String,
    pub cluster: String,
    pub namespace: String,
}

impl ConfigPath {
    /// Splits `app/cluster/namespace` (no leading slash); None unless exactly three segments.
    pub fn parse(rest: &str) -> Option<ConfigPath> {
        let mut it = rest.split('/');
        let (a, c, n) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || a.is_empty() || c.is_empty() || n.is_empty() {
            return None;
        }
        Some(ConfigPath { app_id: a.to_string(), cluster: c.to_string(), namespace: n.to_string() })
    }
}

/// Rejects methods other than GET/HEAD on the client reads.
pub fn require_get(req: &HttpRequest) -> Result<(), ApiError> {
    if req.method() == actix_web::http::Method::GET || req.method() == actix_web::http::Method::HEAD {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed())
    }
}

fn no_route(req: &HttpRequest) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}; use /configs/{{appId}}/{{cluster}}/{{namespace}}", req.path()))
}

/// Builds the service request from the path and query, after the client filter.
pub fn config_request(
    req: &HttpRequest,
    state: &AppState,
    env: &ClientEnv,
    path: ConfigPath,
    q: &ConfigQuery,
) -> Result<ConfigRequest, ApiError> {
    let ConfigPath { app_id, cluster, namespace } = path;
    guard(req, state, env, Some(&app_id))?;
    Ok(ConfigRequest {
        env: env.env.clone(),
        app_id,
        cluster,
        namespace,
        data_center: q.data_center.clone().filter(|d| !d.is_empty()),
        ip: client_ip(req, &state.settings, q.ip.as_deref()),
        label: q.label.clone().filter(|l| !l.is_empty()),
    })
}

/// Resolves or answers Apollo's 404.
pub fn resolve(state: &AppState, creq: &ConfigRequest) -> Result<Resolved, ApiError> {
    let resolved = state.cairn.resolve_config(creq).ok_or_else(|| {
        ApiError::not_found(format!(
            "Could not load configurations with appId: {}, clusterName: {}, namespace: {}",
            creq.app_id, creq.cluster, creq.namespace
        ))
    })?;
    state.cairn.record_instance(creq, &resolved);
    Ok(resolved)
}

fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f) {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::Value::from(s).to_string());
    }
}

/// `application/json;charset=UTF-8`, parsed once.
pub const JSON_UTF8: HeaderValue = HeaderValue::from_static("application/json;charset=UTF-8");

/// The handler.
pub async fn get_config(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<ConfigQuery>,
) -> ApiResult<HttpResponse> {
    require_get(&req)?;
    let path =
        ConfigPath::parse(req.match_info().as_str().trim_start_matches("/configs/")).ok_or_else(|| no_route(&req))?;
    let env = super::client_env(&req)?;
    let creq = config_request(&req, &state, &env, path, &q)?;
    let resolved = resolve(&state, &creq)?;
    let release_key = resolved.release_key();
    if q.release_key.as_deref() == Some(release_key.as_str()) {
        return Ok(HttpResponse::NotModified().finish());
    }
    let configurations = resolved.configurations_json();
    let mut body = String::with_capacity(configurations.len() + release_key.len() + creq.namespace.len() + 128);
    body.push_str("{\"appId\":");
    push_json_str(&mut body, &creq.app_id);
    body.push_str(",\"cluster\":");
    push_json_str(&mut body, resolved.cluster(&creq.cluster, &creq.app_id));
    body.push_str(",\"namespaceName\":");
    push_json_str(&mut body, &creq.namespace);
    body.push_str(",\"configurations\":");
    body.push_str(&configurations);
    body.push_str(",\"releaseKey\":");
    push_json_str(&mut body, &release_key);
    body.push('}');
    Ok(HttpResponse::Ok().insert_header((CONTENT_TYPE, JSON_UTF8)).body(body))
}
