//! Apps and envs.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::dto::{OpenAppDto, OpenEnvClusterDto};
use super::{call, heavy_json, ok, ok_empty, OpenConsumer, OperatorQuery};
use crate::service::apps::NewApp;
use crate::web::error::{ApiError, ApiResult};
use crate::web::AppState;

/// `GET /envs`.
pub async fn list_envs(state: web::Data<AppState>, _c: OpenConsumer) -> HttpResponse {
    ok(&state.cairn.settings().envs)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct AppsQuery {
    app_ids: Option<String>,
}

/// `GET /apps?appIds=a,b`.
pub async fn list_apps(
    state: web::Data<AppState>,
    c: OpenConsumer,
    q: web::Query<AppsQuery>,
) -> ApiResult<HttpResponse> {
    let ids: Option<Vec<String>> = q
        .app_ids
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let apps = call(&state, c, None, move |cairn, _| cairn.list_apps(ids.as_deref())).await?;
    heavy_json(&state, move || apps.iter().map(OpenAppDto::from).collect::<Vec<_>>()).await
}

/// `GET /apps/authorized`.
pub async fn authorized_apps(state: web::Data<AppState>, c: OpenConsumer) -> ApiResult<HttpResponse> {
    let apps = call(&state, c, None, |cairn, caller| cairn.authorized_apps(caller)).await?;
    heavy_json(&state, move || apps.iter().map(OpenAppDto::from).collect::<Vec<_>>()).await
}

/// `GET /apps/{appId}`.
pub async fn get_app(state: web::Data<AppState>, c: OpenConsumer, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let app = call(&state, c, None, move |cairn, _| cairn.app(&id)).await?;
    Ok(ok(OpenAppDto::from(&app)))
}

/// `GET /apps/{appId}/envclusters`.
pub async fn env_clusters(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let app = path.into_inner();
    let list = call(&state, c, None, move |cairn, caller| cairn.env_clusters(caller, &app)).await?;
    Ok(ok(list.into_iter().map(|(env, clusters)| OpenEnvClusterDto { env, clusters }).collect::<Vec<_>>()))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct AppBody {
    name: Option<String>,
    app_id: Option<String>,
    org_id: Option<String>,
    org_name: Option<String>,
    owner_name: Option<String>,
    owner_email: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct CreateAppBody {
    assign_app_role_to_self: bool,
    admins: Vec<String>,
    app: Option<AppBody>,
}

/// `POST /apps`.
pub async fn create_app(
    state: web::Data<AppState>,
    c: OpenConsumer,
    q: web::Query<OperatorQuery>,
    body: web::Json<CreateAppBody>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let app = body.app.ok_or_else(|| ApiError::bad_request("app is required"))?;
    let app_id = app.app_id.ok_or_else(|| ApiError::bad_request("app.appId is required"))?;
    let owner = app.owner_name.or_else(|| body.admins.first().cloned()).unwrap_or_default();
    let operator = q.operator.clone().filter(|o| !o.is_empty()).unwrap_or_else(|| owner.clone());
    let new = NewApp {
        name: app.name.unwrap_or_else(|| app_id.clone()),
        app_id,
        org_id: app.org_id.unwrap_or_default(),
        org_name: app.org_name.unwrap_or_default(),
        owner_name: owner,
        owner_email: app.owner_email.unwrap_or_default(),
    };
    let (admins, to_self) = (body.admins, body.assign_app_role_to_self);
    call(&state, c, Some(operator), move |cairn, caller| cairn.create_app(caller, new, &admins, to_self)).await?;
    Ok(ok_empty())
}
