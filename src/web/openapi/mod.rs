//! The Apollo Open API (`/openapi/v1`), authenticated by a consumer token in `Authorization`.
//! Every response is 200 on success; errors use Apollo's JSON shape.

mod accesskeys;
mod apps;
pub mod dto;
mod items;
mod namespaces;
mod releases;

use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::domain::model::Consumer;
use crate::service::{Cairn, Caller, Result as ServiceResult};

use super::error::{ApiError, ApiResult};
use super::routes::{delete, get, post, put, Access, RouteSpec};
use super::AppState;

/// The consumer behind the request's token.
pub struct OpenConsumer(pub Consumer);

impl FromRequest for OpenConsumer {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<OpenConsumer, ApiError>>>>;

    /// Looks the token up off the async workers: with a database server that is down or
    /// frozen the lookup waits out its deadline, and the workers must go on answering
    /// client fetches and polls meanwhile.
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req.headers().get("Authorization").and_then(|v| v.to_str().ok()).unwrap_or("").trim();
        let token = header.strip_prefix("Bearer ").unwrap_or(header).trim().to_string();
        Box::pin(async move {
            let cairn = state.ok_or_else(|| ApiError::unauthorized("no state"))?.cairn.clone();
            Ok(OpenConsumer(blocking(move || cairn.consumer_by_token(&token)).await?))
        })
    }
}

impl OpenConsumer {
    /// The caller acting for `operator`, which must be an existing user when given (read off
    /// the async workers).
    pub async fn caller(self, state: &AppState, operator: Option<&str>) -> ApiResult<Caller> {
        let (cairn, operator) = (state.cairn.clone(), operator.map(str::to_string));
        blocking(move || cairn.consumer_caller(self.0, operator.as_deref())).await
    }
}

/// Runs a service call for the consumer, acting for `operator` (an existing user when
/// given), off the async workers: the operator's record and whatever the call reads or
/// writes come from storage, which on a database server may wait out its deadline.
pub async fn call<T: Send + 'static>(
    state: &AppState,
    consumer: OpenConsumer,
    operator: Option<String>,
    f: impl FnOnce(&Cairn, &Caller) -> ServiceResult<T> + Send + 'static,
) -> ApiResult<T> {
    let cairn = state.cairn.clone();
    blocking(move || {
        let caller = cairn.consumer_caller(consumer.0, operator.as_deref())?;
        f(&cairn, &caller)
    })
    .await
}

/// Runs a blocking service call (storage I/O, flush) off the async workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ServiceResult<T> + Send + 'static) -> ApiResult<T> {
    match super::heavy::off_workers(f).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(ApiError {
            status: actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("internal error: {e}"),
            exception: "InternalServerError",
        }),
    }
}

/// Builds and serializes a 200 JSON answer in the heavy-work pool: big namespaces and
/// releases (thousands of items, megabytes of JSON) must not be built on the workers serving
/// clients. What it is built from is read before, through [`call`]: waiting on storage holds
/// no heavy slot.
pub async fn heavy_json<T: Serialize>(
    state: &AppState,
    build: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<HttpResponse> {
    let body = state
        .heavy
        .run(move || serde_json::to_string(&build()).map_err(|e| internal(&e)))
        .await
        .map_err(|e| internal(&e))??;
    Ok(HttpResponse::Ok().content_type("application/json;charset=UTF-8").body(body))
}

/// A 500 whose cause goes to the log, not to the caller.
fn internal(cause: &dyn std::fmt::Display) -> ApiError {
    let id = crate::service::incident_id();
    tracing::error!(request_id = %id, error = %cause, "internal error");
    ApiError {
        status: actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("internal error, request id {id}"),
        exception: "InternalServerError",
    }
}

/// 200 with a JSON body.
pub fn ok<T: Serialize>(body: T) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json;charset=UTF-8").json(body)
}

/// 200 with no body.
pub fn ok_empty() -> HttpResponse {
    HttpResponse::Ok().finish()
}

/// Query carrying the operator.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct OperatorQuery {
    pub operator: Option<String>,
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

fn res(path: &str) -> actix_web::Resource {
    web::resource(path.to_string()).name(path).default_service(web::to(method_not_allowed))
}

const NS: &str = "/envs/{env}/apps/{app_id}/clusters/{cluster}/namespaces/{namespace}";

/// Every Open API route (relative to `/openapi/v1`) with the right it needs (see
/// `web::routes`). Every route needs a valid token.
pub fn routes() -> Vec<RouteSpec> {
    use Access::*;
    let ns = |tail: &str| format!("{NS}{tail}");
    vec![
        get("/envs", Authenticated, apps::list_envs),
        get("/apps", Authenticated, apps::list_apps),
        post("/apps", CreateApp, apps::create_app),
        get("/apps/authorized", Authenticated, apps::authorized_apps),
        get("/apps/{app_id}", Authenticated, apps::get_app),
        get("/apps/{app_id}/envclusters", SeeApp, apps::env_clusters),
        get("/apps/{app_id}/appnamespaces", SeeApp, namespaces::list_app_namespaces),
        post("/apps/{app_id}/appnamespaces", AppMaster, namespaces::create_app_namespace),
        post("/namespaces", AppMaster, namespaces::link_namespaces),
        get("/apps/{app_id}/envs/{env}/accesskeys", AppMaster, accesskeys::list),
        post("/apps/{app_id}/envs/{env}/accesskeys", AppMaster, accesskeys::create),
        delete("/apps/{app_id}/envs/{env}/accesskeys/{id}", AppMaster, accesskeys::delete),
        put("/apps/{app_id}/envs/{env}/accesskeys/{id}/activation", AppMaster, accesskeys::activate),
        put("/apps/{app_id}/envs/{env}/accesskeys/{id}/deactivation", AppMaster, accesskeys::deactivate),
        post("/envs/{env}/apps/{app_id}/clusters", AppMaster, namespaces::create_cluster),
        get("/envs/{env}/apps/{app_id}/clusters/{cluster}", SeeApp, namespaces::get_cluster),
        get("/envs/{env}/apps/{app_id}/clusters/{cluster}/namespaces", SeeApp, namespaces::list_namespaces),
        get(NS, Read, namespaces::get_namespace),
        get(&ns("/lock"), Read, namespaces::get_lock),
        get(&ns("/items"), Read, items::list_items),
        post(&ns("/items"), Modify, items::create_item),
        get(&ns("/items/{key}"), Read, items::get_item),
        put(&ns("/items/{key}"), Modify, items::update_item),
        delete(&ns("/items/{key}"), Modify, items::delete_item),
        get(&ns("/encodedItems/{key}"), Read, items::get_encoded_item),
        put(&ns("/encodedItems/{key}"), Modify, items::update_encoded_item),
        delete(&ns("/encodedItems/{key}"), Modify, items::delete_encoded_item),
        post(&ns("/releases"), Release, releases::publish),
        get(&ns("/releases/latest"), Read, releases::latest),
        get("/envs/{env}/releases/{release_id}", Read, releases::get_release),
        put("/envs/{env}/releases/{release_id}/rollback", Release, releases::rollback),
        get(&ns("/branches"), Read, releases::get_branch),
        post(&ns("/branches"), Modify, releases::create_branch),
        delete(&ns("/branches/{branch}"), Release, releases::delete_branch),
        get(&ns("/branches/{branch}/rules"), Read, releases::get_rules),
        put(&ns("/branches/{branch}/rules"), Release, releases::put_rules),
        post(&ns("/branches/{branch}/releases"), Release, releases::gray_publish),
        post(&ns("/branches/{branch}/gray-del-releases"), Release, releases::gray_del_publish),
        post(&ns("/branches/{branch}/merge"), Release, releases::merge),
    ]
}

/// Registers the Open API routes (mounted at `/openapi/v1`): one resource per path, so a
/// known path with another method answers 405.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut specs = routes();
    let mut paths: Vec<String> = Vec::new();
    for spec in &specs {
        if !paths.contains(&spec.path) {
            paths.push(spec.path.clone());
        }
    }
    for path in paths {
        let mut resource = res(&path);
        for spec in specs.iter_mut().filter(|s| s.path == path) {
            if let Some(route) = spec.take_route() {
                resource = resource.route(route);
            }
        }
        cfg.service(resource);
    }
    cfg.default_service(web::to(|req: HttpRequest| async move {
        ApiError::not_found(format!("no such Open API endpoint: {}", req.path()))
    }));
}

/// Path of a namespace: (env, app, cluster, namespace).
pub type NsPath = web::Path<(String, String, String, String)>;

/// Canonical env or 404.
pub fn env_of(state: &AppState, env: &str) -> ApiResult<String> {
    Ok(state.cairn.env(env)?)
}
