//! The Apollo client protocol: meta server, `/configs`, `/configfiles`, `/notifications`.
//! Served under `/envs/{env}/` and, for the default or a dedicated env, at the root.

mod configfiles;
mod configs;
mod meta;
mod notifications;

use std::future::{ready, Ready};

use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use crate::domain::names::is_valid_name;
use crate::service::access::{ClientAuth, SignedRequest};

use super::error::ApiError;
use super::{raw_target, AppState, EnvListener, PathEnv, RootEnv};

/// Registers the client routes. `/configs` and `/configfiles` are routed by hand (a static
/// prefix plus segment splitting) because they are the hottest paths and regex routing was
/// a tenth of their cost.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let get = |path: &str, h| {
        web::resource(path.to_string()).name(path).route(h).default_service(web::to(method_not_allowed))
    };
    cfg.service(get("/services/config", web::route().to(meta::services_config)))
        .service(get("/services/admin", web::route().to(meta::services_admin)))
        .service(get("/services/meta", web::route().to(meta::services_meta)))
        .service(get("/notifications/v2", web::get().to(notifications::poll_v2)))
        .service(get("/notifications", web::get().to(notifications::poll_v1)))
        .service(web::scope("/configs").default_service(web::to(configs::get_config)))
        .service(web::scope("/configfiles").default_service(web::to(configfiles::get_file)));
}

/// Metrics labels of the hand-routed paths.
pub fn route_label(path: &str) -> Option<&'static str> {
    if path.starts_with("/configs/") {
        Some("/configs/{app_id}/{cluster}/{namespace}")
    } else if path.starts_with("/configfiles/json/") {
        Some("/configfiles/json/{app_id}/{cluster}/{namespace}")
    } else if path.starts_with("/configfiles/raw/") {
        Some("/configfiles/raw/{app_id}/{cluster}/{namespace}")
    } else if path.starts_with("/configfiles/") {
        Some("/configfiles/{app_id}/{cluster}/{namespace}")
    } else {
        None
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// The env a client request is for, and the path prefix that selected it.
#[derive(Debug, Clone)]
pub struct ClientEnv {
    pub env: String,
    /// `/envs/{env}` as the client sent it, when the env came from the path.
    pub prefix: Option<String>,
}

impl FromRequest for ClientEnv {
    type Error = ApiError;
    type Future = Ready<Result<ClientEnv, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(client_env(req))
    }
}

pub fn client_env(req: &HttpRequest) -> Result<ClientEnv, ApiError> {
    let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| ApiError::not_found("no state"))?;
    if let Some(PathEnv(env)) = req.extensions().get::<PathEnv>() {
        let canonical = state.cairn.env(env)?;
        // A dedicated env listener serves its own env only, so a network policy on its port
        // separates envs.
        if let Some(own) = req.app_data::<web::Data<EnvListener>>() {
            if own.0 != canonical {
                return Err(ApiError::not_found(format!("this listener serves env {} only", own.0)));
            }
        }
        return Ok(ClientEnv { env: canonical, prefix: Some(format!("/envs/{env}")) });
    }
    match req.app_data::<web::Data<RootEnv>>().and_then(|r| r.0.clone()) {
        Some(env) => Ok(ClientEnv { env, prefix: None }),
        None => Err(ApiError::not_found(format!(
            "no default env is served at the root path; use /envs/{{env}}{} (envs: {})",
            req.uri().path(),
            state.settings.envs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The client's IP: the `ip` parameter, else the peer (or behind a trusted proxy, the
/// client it forwards for). `X-Forwarded-For` from any other peer is ignored: it would
/// reach the instance records and gray rules unchecked.
pub fn client_ip(req: &HttpRequest, settings: &crate::settings::Settings, param: Option<&str>) -> Option<String> {
    if let Some(ip) = param.map(str::trim).filter(|ip| !ip.is_empty()) {
        return Some(ip.to_string());
    }
    super::proxy::client_ip(req, settings).map(|ip| ip.to_string())
}

/// Apollo's client filter: a valid appId (400 `InvalidAppId`), then the access-key
/// signature when the app has enforced keys (401 `RequestTimeTooSkewed` / `Unauthorized`).
pub fn guard(req: &HttpRequest, state: &AppState, env: &ClientEnv, app_id: Option<&str>) -> Result<(), ApiError> {
    let app_id = app_id.filter(|a| is_valid_name(a)).ok_or_else(|| ApiError::bad_request("InvalidAppId"))?;
    let signed = || {
        let raw = raw_target(req);
        let mut paths = vec![raw.clone()];
        if let Some(rest) = env.prefix.as_deref().and_then(|p| raw.strip_prefix(p)) {
            paths.push(rest.to_string());
        }
        if let Some(fwd) = super::proxy::prefix(req, &state.settings) {
            paths.push(format!("{fwd}{raw}"));
        }
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        SignedRequest { timestamp: header("Timestamp"), authorization: header("Authorization"), paths }
    };
    match state.cairn.authenticate_client(&env.env, app_id, signed) {
        ClientAuth::Allowed => Ok(()),
        ClientAuth::Skewed => Err(ApiError::unauthorized("RequestTimeTooSkewed")),
        ClientAuth::Unauthorized => Err(ApiError::unauthorized("Unauthorized")),
    }
}
