//! HTTP surfaces: the Apollo client protocol (`apollo/`), the Apollo Open API (`openapi/`),
//! health and metrics. Handlers translate; services decide.

pub mod admin;
pub mod apollo;
pub mod error;
pub mod headers;
pub mod heavy;
pub mod limits;
pub mod openapi;
pub mod ops;
pub mod portal;
pub mod proxy;
pub mod routes;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, Service, ServiceRequest};
use actix_web::http::Uri;
use actix_web::{web, App, HttpMessage, HttpRequest, HttpServer};

use crate::service::Cairn;
use crate::settings::Settings;
use error::ApiError;
pub use proxy::client_ip;

/// Shared by every handler.
pub struct AppState {
    pub cairn: Arc<Cairn>,
    pub settings: Arc<Settings>,
    /// Requests served, by route pattern and status.
    pub requests: ops::RequestCounts,
    /// Token of the local admin API (`/admin/v1`), used by the CLI while the server runs.
    pub admin_token: Option<String>,
    /// Where portal pages and Open API calls run, off the async workers.
    pub heavy: heavy::HeavyWork,
}

impl AppState {
    /// State for a service and its settings.
    pub fn new(cairn: Arc<Cairn>, settings: Settings) -> AppState {
        AppState {
            cairn,
            settings: Arc::new(settings),
            requests: ops::RequestCounts::default(),
            admin_token: None,
            heavy: heavy::HeavyWork::default(),
        }
    }
}

/// The env a listener serves at its root path (the default env, or a dedicated env listener).
#[derive(Clone, Debug)]
pub struct RootEnv(pub Option<String>);

/// Marks a dedicated env listener (`[envs.X] listen`): it serves that env only, also under
/// `/envs/{env}` paths.
#[derive(Clone, Debug)]
pub struct EnvListener(pub String);

/// The request target as received, stored only when normalisation changed it (signatures
/// cover the target as sent).
#[derive(Clone, Debug)]
pub struct RawTarget(pub String);

/// The request target as the client sent it.
pub fn raw_target(req: &HttpRequest) -> String {
    match req.extensions().get::<RawTarget>() {
        Some(raw) => raw.0.clone(),
        None => req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default(),
    }
}

/// The env named by an `/envs/{env}` path prefix, as the client spelled it.
#[derive(Clone, Debug)]
pub struct PathEnv(pub String);

/// Rewrites the request target: collapses repeated slashes and drops a trailing slash (Apollo
/// clients build `//` from a meta URL ending in `/`; Open API callers add trailing slashes),
/// and moves an `/envs/{env}` prefix into a [`PathEnv`] so one set of client routes serves
/// every env. Costs nothing when there is nothing to rewrite.
fn rewrite_target(req: &mut ServiceRequest) {
    let path = req.path();
    let untidy = path.contains("//") || (path.len() > 1 && path.ends_with('/'));
    let prefixed = path.starts_with("/envs/");
    if !untidy && !prefixed {
        return;
    }
    let mut clean = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && clean.ends_with('/')) {
            clean.push(c);
        }
    }
    if clean.len() > 1 && clean.ends_with('/') {
        clean.pop();
    }
    let mut env = None;
    if let Some(rest) = clean.strip_prefix("/envs/") {
        let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if !name.is_empty() {
            env = Some(name.to_string());
            clean = format!("/{tail}");
        }
    }
    let raw = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let target = match req.uri().query() {
        Some(q) => format!("{clean}?{q}"),
        None => clean,
    };
    let mut parts = req.head().uri.clone().into_parts();
    parts.path_and_query = target.parse().ok();
    if let Ok(uri) = Uri::from_parts(parts) {
        req.match_info_mut().get_mut().update(&uri);
        req.head_mut().uri = uri;
        let mut ext = req.extensions_mut();
        ext.insert(RawTarget(raw));
        if let Some(env) = env {
            ext.insert(PathEnv(env));
        }
    }
}

/// The metrics label of a request: its resource name (the route pattern), or for the
/// hand-routed client reads their fixed prefix.
fn route_label(req: &HttpRequest) -> &str {
    if let Some(name) = req.match_name() {
        return name;
    }
    apollo::route_label(req.path()).unwrap_or("unmatched")
}

/// What a listener serves: the main one adds the Open API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listener {
    Main,
    Env,
}

fn json_error_config(limit: usize) -> (web::JsonConfig, web::QueryConfig, web::PathConfig, web::PayloadConfig) {
    let json = web::JsonConfig::default().limit(limit).content_type_required(false).error_handler(|err, _| {
        let msg = match &err {
            actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
            | actix_web::error::JsonPayloadError::Overflow { .. } => {
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
    let query = web::QueryConfig::default()
        .error_handler(|err, _| ApiError::bad_request(format!("invalid query: {err}")).into());
    let path =
        web::PathConfig::default().error_handler(|err, _| ApiError::bad_request(format!("invalid path: {err}")).into());
    (json, query, path, web::PayloadConfig::default().limit(limit))
}

/// Portal forms may be as large as any body (actix's default of 16 KiB refused the text of a
/// namespace well within `value_max`); a form that cannot be read is an error page.
fn form_config(limit: usize) -> web::FormConfig {
    web::FormConfig::default().limit(limit).error_handler(move |err, _| {
        let page = match &err {
            actix_web::error::UrlencodedError::Overflow { .. } => portal::PageError::Form {
                status: 413,
                message: format!(
                    "The form is larger than {limit} bytes. Split the change into smaller ones, or raise body_max."
                ),
            },
            other => portal::PageError::Form { status: 400, message: format!("The form could not be read: {other}.") },
        };
        page.into()
    })
}

fn build_app(
    state: web::Data<AppState>,
    root: RootEnv,
    kind: Listener,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<actix_web::body::BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (json, query, path, payload) = json_error_config(state.settings.body_max);
    let form = form_config(state.settings.body_max);
    let own_env = match (&root.0, kind) {
        (Some(env), Listener::Env) => Some(EnvListener(env.clone())),
        _ => None,
    };
    let body_timeout = std::time::Duration::from_secs(state.settings.body_timeout_secs);
    let mut app = App::new()
        .app_data(state)
        .app_data(json)
        .app_data(query)
        .app_data(path)
        .app_data(payload)
        .app_data(form)
        .app_data(web::Data::new(root))
        .wrap_fn(move |req, srv| limits::enforce(req, srv, body_timeout))
        .wrap_fn(|mut req, srv| {
            rewrite_target(&mut req);
            let metrics_state = req.app_data::<web::Data<AppState>>().cloned();
            let fut = srv.call(req);
            async move {
                let res = fut.await?;
                if let Some(s) = metrics_state {
                    s.requests.add(route_label(res.request()), res.status().as_u16());
                }
                Ok(res.map_into_boxed_body())
            }
        })
        .wrap(actix_web::middleware::from_fn(headers::security_headers))
        .configure(ops::configure)
        // The client API first: routes are tried in order, and client reads are the hot path.
        .configure(apollo::configure);
    if let Some(own) = own_env {
        app = app.app_data(web::Data::new(own));
    }
    if kind == Listener::Main {
        app = app
            .service(web::scope("/openapi/v1").configure(openapi::configure))
            .service(web::scope("/admin/v1").configure(admin::configure))
            .configure(portal::configure);
    }
    app.default_service(web::to(not_found))
}

async fn not_found(req: HttpRequest) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", req.path()))
}

/// Starts the main listener and every dedicated env listener. The listeners come bound
/// (`server::bind_all`, with a 4096 backlog: actix's own `backlog` applies only to addresses
/// it binds itself). Returns the servers; each
/// must be awaited (or stopped).
pub fn start(
    state: AppState,
    main: TcpListener,
    env_listeners: Vec<(String, TcpListener)>,
) -> std::io::Result<Vec<Server>> {
    let data = web::Data::new(state);
    let mut servers = Vec::new();
    let root = RootEnv(data.settings.default_env.clone());
    // One table for every listener: the cap is per client address, whichever port it uses.
    let counts = limits::ConnectionCounts::new(data.settings.max_connections_per_ip);
    let d = data.clone();
    let c = counts.clone();
    servers.push(
        HttpServer::new(move || build_app(d.clone(), root.clone(), Listener::Main))
            .on_connect(move |conn, ext| c.on_connect(conn, ext))
            .workers(2)
            .max_connections(50_000)
            .shutdown_timeout(4)
            .disable_signals()
            .listen(main)?
            .run(),
    );
    for (env, listener) in env_listeners {
        let d = data.clone();
        let root = RootEnv(Some(env));
        let c = counts.clone();
        servers.push(
            HttpServer::new(move || build_app(d.clone(), root.clone(), Listener::Env))
                .on_connect(move |conn, ext| c.on_connect(conn, ext))
                .workers(1)
                .max_connections(50_000)
                .shutdown_timeout(4)
                .disable_signals()
                .listen(listener)?
                .run(),
        );
    }
    Ok(servers)
}
