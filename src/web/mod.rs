//! HTTP surfaces: the Apollo client protocol (`apollo/`), the Apollo Open API (`openapi/`),
//! health and metrics. Handlers translate; services decide.

pub mod apollo;
pub mod error;
pub mod ops;
pub mod openapi;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, Service};
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpMessage, HttpRequest, HttpServer};

use crate::service::Cairn;
use crate::settings::Settings;
use error::ApiError;

/// Shared by every handler.
pub struct AppState {
    pub cairn: Arc<Cairn>,
    pub settings: Arc<Settings>,
    /// Requests served, by route pattern and status.
    pub requests: ops::RequestCounts,
}

impl AppState {
    /// State for a service and its settings.
    pub fn new(cairn: Arc<Cairn>, settings: Settings) -> AppState {
        AppState { cairn, settings: Arc::new(settings), requests: ops::RequestCounts::default() }
    }
}

/// The env a listener serves at its root path (the default env, or a dedicated env listener).
#[derive(Clone, Debug)]
pub struct RootEnv(pub Option<String>);

/// The request target as received, before path normalisation (signatures cover it).
#[derive(Clone, Debug)]
pub struct RawTarget(pub String);

/// Extra paths a request may be reached under, one per "kind" of listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listener {
    Main,
    Env,
}

fn json_error_config(limit: usize) -> (web::JsonConfig, web::QueryConfig, web::PathConfig, web::PayloadConfig) {
    let json = web::JsonConfig::default().limit(limit).content_type_required(false).error_handler(|err, _| {
        let msg = match &err {
            actix_web::error::JsonPayloadError::OverflowKnownLength { .. } | actix_web::error::JsonPayloadError::Overflow { .. } => {
                return ApiError {
                    status: actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                    message: "request body too large".into(),
                    exception: "PayloadTooLargeException",
                }
                .into();
            }
            other => format!("invalid JSON body: {other}"),
        };
        ApiError::bad_request(msg).into()
    });
    let query = web::QueryConfig::default().error_handler(|err, _| ApiError::bad_request(format!("invalid query: {err}")).into());
    let path = web::PathConfig::default().error_handler(|err, _| ApiError::bad_request(format!("invalid path: {err}")).into());
    (json, query, path, web::PayloadConfig::default().limit(limit))
}

fn build_app(
    state: web::Data<AppState>,
    root: RootEnv,
    kind: Listener,
) -> App<impl actix_web::dev::ServiceFactory<actix_web::dev::ServiceRequest, Config = (), Response = actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, Error = actix_web::Error, InitError = ()>> {
    let (json, query, path, payload) = json_error_config(state.settings.body_max);
    let mut app = App::new()
        .app_data(state)
        .app_data(json)
        .app_data(query)
        .app_data(path)
        .app_data(payload)
        .app_data(web::Data::new(root))
        .wrap(NormalizePath::new(TrailingSlash::Trim))
        .wrap_fn(|req, srv| {
            let raw = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
            req.extensions_mut().insert(RawTarget(raw));
            let metrics_state = req.app_data::<web::Data<AppState>>().cloned();
            let fut = srv.call(req);
            async move {
                let res = fut.await?;
                if let Some(s) = metrics_state {
                    let pattern = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
                    s.requests.add(&pattern, res.status().as_u16());
                }
                Ok(res.map_into_boxed_body())
            }
        })
        .configure(ops::configure);
    if kind == Listener::Main {
        app = app.service(web::scope("/openapi/v1").configure(openapi::configure)).service(web::scope("/envs/{env}").configure(apollo::configure));
    }
    app.configure(apollo::configure).default_service(web::to(not_found))
}

async fn not_found(req: HttpRequest) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", req.path()))
}

/// Starts the main listener and every dedicated env listener. Returns the servers; each
/// must be awaited (or stopped).
pub fn start(state: AppState, main: TcpListener, env_listeners: Vec<(String, TcpListener)>) -> std::io::Result<Vec<Server>> {
    let data = web::Data::new(state);
    let mut servers = Vec::new();
    let root = RootEnv(data.settings.default_env.clone());
    let d = data.clone();
    servers.push(
        HttpServer::new(move || build_app(d.clone(), root.clone(), Listener::Main))
            .workers(2)
            .backlog(4096)
            .max_connections(50_000)
            .shutdown_timeout(4)
            .disable_signals()
            .listen(main)?
            .run(),
    );
    for (env, listener) in env_listeners {
        let d = data.clone();
        let root = RootEnv(Some(env));
        servers.push(
            HttpServer::new(move || build_app(d.clone(), root.clone(), Listener::Env))
                .workers(1)
                .backlog(4096)
                .max_connections(50_000)
                .shutdown_timeout(4)
                .disable_signals()
                .listen(listener)?
                .run(),
        );
    }
    Ok(servers)
}
