//! The local admin API (`/admin/v1`): lets `cairn user add`, `cairn consumer ...`,
//! `cairn backup` and `cairn check` work while the server holds the data directory. Only
//! loopback peers presenting the token the server wrote to `DATA/admin.json` (mode 0600) are
//! served; everything else is 404, as if the API did not exist.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::openapi::{blocking, ok};
use super::AppState;
use crate::service::Caller;

/// Registers the admin routes (mounted at `/admin/v1`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::post().to(add_user))
        .route("/consumers", web::post().to(create_consumer))
        .route("/consumers/{name}/grants", web::post().to(grant))
        .route("/backup", web::post().to(backup))
        .route("/check", web::get().to(check));
}

fn authorize(req: &HttpRequest, state: &AppState) -> ApiResult<Caller> {
    let hidden = || ApiError::not_found(format!("no such endpoint: {}", req.path()));
    let expected = state.admin_token.as_deref().ok_or_else(hidden)?;
    if !req.peer_addr().is_some_and(|p| p.ip().is_loopback()) {
        return Err(hidden());
    }
    let given =
        req.headers().get("Authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if crate::service::secret_matches(t, expected) => Ok(Caller::system("cli")),
        _ => Err(hidden()),
    }
}

#[derive(Deserialize)]
pub struct UserBody {
    name: String,
    password: String,
    #[serde(default)]
    admin: bool,
}

async fn add_user(req: HttpRequest, state: web::Data<AppState>, body: web::Json<UserBody>) -> ApiResult<HttpResponse> {
    let caller = authorize(&req, &state)?;
    let cairn = state.cairn.clone();
    let b = body.into_inner();
    blocking(move || cairn.create_user(&caller, &b.name, &b.password, b.admin)).await?;
    Ok(ok(serde_json::json!({"created": true})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerBody {
    name: String,
    #[serde(default)]
    allow_create_app: bool,
}

async fn create_consumer(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ConsumerBody>,
) -> ApiResult<HttpResponse> {
    let caller = authorize(&req, &state)?;
    let cairn = state.cairn.clone();
    let b = body.into_inner();
    let (_, token) = blocking(move || cairn.create_consumer(&caller, &b.name, b.allow_create_app)).await?;
    Ok(ok(serde_json::json!({"token": token})))
}

#[derive(Deserialize)]
pub struct GrantBody {
    app: String,
    namespace: Option<String>,
    env: Option<String>,
}

async fn grant(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<GrantBody>,
) -> ApiResult<HttpResponse> {
    let caller = authorize(&req, &state)?;
    let cairn = state.cairn.clone();
    let b = body.into_inner();
    let name = path.into_inner();
    blocking(move || cairn.grant_consumer(&caller, &name, &b.app, b.namespace.as_deref(), b.env.as_deref())).await?;
    Ok(ok(serde_json::json!({"granted": true})))
}

#[derive(Deserialize)]
pub struct BackupBody {
    path: String,
}

async fn backup(req: HttpRequest, state: web::Data<AppState>, body: web::Json<BackupBody>) -> ApiResult<HttpResponse> {
    let caller = authorize(&req, &state)?;
    let cairn = state.cairn.clone();
    let path = std::path::PathBuf::from(body.into_inner().path);
    let summary = blocking(move || cairn.backup(&caller, &path)).await?;
    Ok(ok(serde_json::json!({"records": summary.records, "bytes": summary.bytes})))
}

async fn check(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let caller = authorize(&req, &state)?;
    let cairn = state.cairn.clone();
    let report = blocking(move || cairn.check(&caller)).await?;
    let problems: Vec<String> = report.problems.into_iter().map(|p| p.0).collect();
    Ok(ok(serde_json::json!({
        "releases": report.releases, "namespaces": report.namespaces,
        "historyEntries": report.history_entries, "problems": problems
    })))
}
