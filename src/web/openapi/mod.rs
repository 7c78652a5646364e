//! The Apollo Open API (`/openapi/v1`), authenticated by a consumer token in `Authorization`.
//! Every response is 200 on success; errors use Apollo's JSON shape.

mod accesskeys;
mod apps;
pub mod dto;
mod items;
mod namespaces;
mod releases;

use std::future::{ready, Ready};

use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::domain::model::Consumer;
use crate::service::{Caller, Result as ServiceResult};

use super::error::{ApiError, ApiResult};
use super::AppState;

/// The consumer behind the request's token.
pub struct OpenConsumer(pub Consumer);

impl FromRequest for OpenConsumer {
    type Error = ApiError;
    type Future = Ready<Result<OpenConsumer, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let result = (|| {
            let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| ApiError::unauthorized("no state"))?;
            let header = req.headers().get("Authorization").and_then(|v| v.to_str().ok()).unwrap_or("").trim();
            let token = header.strip_prefix("Bearer ").unwrap_or(header).trim();
            Ok(OpenConsumer(state.cairn.consumer_by_token(token)?))
        })();
        ready(result)
    }
}

impl OpenConsumer {
    /// The caller acting for `operator` (which must be an existing user when given).
    pub fn caller(self, state: &AppState, operator: Option<&str>) -> ApiResult<Caller> {
        Ok(state.cairn.consumer_caller(self.0, operator)?)
    }
}

/// Runs a blocking service call (sled I/O, flush) off the async workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ServiceResult<T> + Send + 'static) -> ApiResult<T> {
    match web::block(f).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(ApiError {
            status: actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("internal error: {e}"),
            exception: "InternalServerError",
        }),
    }
}

/// Builds a 200 JSON answer in the heavy-work pool: reads of big namespaces and releases
/// (thousands of items, megabytes of JSON) must not run on the workers serving clients.
pub async fn heavy_json<T: Serialize>(
    state: &web::Data<AppState>,
    build: impl FnOnce(&AppState) -> ApiResult<T> + Send + 'static,
) -> ApiResult<HttpResponse> {
    let st = state.clone();
    let body = state
        .heavy
        .run(move || build(&st).and_then(|v| serde_json::to_string(&v).map_err(|e| internal(&e))))
        .await
        .map_err(|e| internal(&e))??;
    Ok(HttpResponse::Ok().content_type("application/json;charset=UTF-8").body(body))
}

/// A 500 whose cause goes to the log, not to the caller.
fn internal(cause: &dyn std::fmt::Display) -> ApiError {
    let id = crate::security::token::random_hex(6);
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

/// Registers the Open API routes (mounted at `/openapi/v1`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(res("/envs").route(web::get().to(apps::list_envs)))
        .service(res("/apps").route(web::get().to(apps::list_apps)).route(web::post().to(apps::create_app)))
        .service(res("/apps/authorized").route(web::get().to(apps::authorized_apps)))
        .service(res("/apps/{app_id}").route(web::get().to(apps::get_app)))
        .service(res("/apps/{app_id}/envclusters").route(web::get().to(apps::env_clusters)))
        .service(
            res("/apps/{app_id}/appnamespaces")
                .route(web::get().to(namespaces::list_app_namespaces))
                .route(web::post().to(namespaces::create_app_namespace)),
        )
        .service(res("/namespaces").route(web::post().to(namespaces::link_namespaces)))
        .service(
            res("/apps/{app_id}/envs/{env}/accesskeys")
                .route(web::get().to(accesskeys::list))
                .route(web::post().to(accesskeys::create)),
        )
        .service(res("/apps/{app_id}/envs/{env}/accesskeys/{id}").route(web::delete().to(accesskeys::delete)))
        .service(res("/apps/{app_id}/envs/{env}/accesskeys/{id}/activation").route(web::put().to(accesskeys::activate)))
        .service(
            res("/apps/{app_id}/envs/{env}/accesskeys/{id}/deactivation").route(web::put().to(accesskeys::deactivate)),
        )
        .service(res("/envs/{env}/apps/{app_id}/clusters").route(web::post().to(namespaces::create_cluster)))
        .service(res("/envs/{env}/apps/{app_id}/clusters/{cluster}").route(web::get().to(namespaces::get_cluster)))
        .service(
            res("/envs/{env}/apps/{app_id}/clusters/{cluster}/namespaces")
                .route(web::get().to(namespaces::list_namespaces)),
        )
        .service(res(NS).route(web::get().to(namespaces::get_namespace)))
        .service(res(&format!("{NS}/lock")).route(web::get().to(namespaces::get_lock)))
        .service(
            res(&format!("{NS}/items"))
                .route(web::get().to(items::list_items))
                .route(web::post().to(items::create_item)),
        )
        .service(
            res(&format!("{NS}/items/{{key}}"))
                .route(web::get().to(items::get_item))
                .route(web::put().to(items::update_item))
                .route(web::delete().to(items::delete_item)),
        )
        .service(
            res(&format!("{NS}/encodedItems/{{key}}"))
                .route(web::get().to(items::get_encoded_item))
                .route(web::put().to(items::update_encoded_item))
                .route(web::delete().to(items::delete_encoded_item)),
        )
        .service(res(&format!("{NS}/releases")).route(web::post().to(releases::publish)))
        .service(res(&format!("{NS}/releases/latest")).route(web::get().to(releases::latest)))
        .service(res("/envs/{env}/releases/{release_id}").route(web::get().to(releases::get_release)))
        .service(res("/envs/{env}/releases/{release_id}/rollback").route(web::put().to(releases::rollback)))
        .service(
            res(&format!("{NS}/branches"))
                .route(web::get().to(releases::get_branch))
                .route(web::post().to(releases::create_branch)),
        )
        .service(res(&format!("{NS}/branches/{{branch}}")).route(web::delete().to(releases::delete_branch)))
        .service(
            res(&format!("{NS}/branches/{{branch}}/rules"))
                .route(web::get().to(releases::get_rules))
                .route(web::put().to(releases::put_rules)),
        )
        .service(res(&format!("{NS}/branches/{{branch}}/releases")).route(web::post().to(releases::gray_publish)))
        .service(
            res(&format!("{NS}/branches/{{branch}}/gray-del-releases"))
                .route(web::post().to(releases::gray_del_publish)),
        )
        .service(res(&format!("{NS}/branches/{{branch}}/merge")).route(web::post().to(releases::merge)))
        .default_service(web::to(|req: HttpRequest| async move {
            ApiError::not_found(format!("no such Open API endpoint: {}", req.path()))
        }));
}

/// Path of a namespace: (env, app, cluster, namespace).
pub type NsPath = web::Path<(String, String, String, String)>;

/// Canonical env or 404.
pub fn env_of(state: &AppState, env: &str) -> ApiResult<String> {
    Ok(state.cairn.env(env)?)
}
