//! Client access keys of an app in an env.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::dto::OpenAccessKeyDto;
use super::{blocking, call, env_of, ok, ok_empty, OpenConsumer, OperatorQuery};
use crate::domain::model::AccessKeyMode;
use crate::web::error::{ApiError, ApiResult};
use crate::web::AppState;

type KeyPath = web::Path<(String, String, String)>;

fn key_id(raw: &str) -> ApiResult<u64> {
    raw.parse().map_err(|_| ApiError::bad_request(format!("access key id '{raw}' is not a number")))
}

/// `GET /apps/{appId}/envs/{env}/accesskeys`.
pub async fn list(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (app, env) = path.into_inner();
    let env = env_of(&state, &env)?;
    let keys = call(&state, c, None, move |cairn, caller| cairn.list_access_keys(caller, &env, &app)).await?;
    Ok(ok(keys.iter().map(OpenAccessKeyDto::from).collect::<Vec<_>>()))
}

/// `POST /apps/{appId}/envs/{env}/accesskeys?operator=`.
pub async fn create(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: web::Path<(String, String)>,
    q: web::Query<OperatorQuery>,
) -> ApiResult<HttpResponse> {
    let (app, env) = path.into_inner();
    let env = env_of(&state, &env)?;
    let caller = c.caller(&state, q.operator.as_deref()).await?;
    caller.require_operator()?;
    let cairn = state.cairn.clone();
    let key = blocking(move || cairn.create_access_key(&caller, &env, &app)).await?;
    Ok(ok(OpenAccessKeyDto::from(&key)))
}

/// `DELETE /apps/{appId}/envs/{env}/accesskeys/{id}?operator=`.
pub async fn delete(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: KeyPath,
    q: web::Query<OperatorQuery>,
) -> ApiResult<HttpResponse> {
    let (app, env, id) = path.into_inner();
    let env = env_of(&state, &env)?;
    let id = key_id(&id)?;
    let caller = c.caller(&state, q.operator.as_deref()).await?;
    caller.require_operator()?;
    let cairn = state.cairn.clone();
    blocking(move || cairn.delete_access_key(&caller, &env, &app, id)).await?;
    Ok(ok_empty())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ModeQuery {
    mode: Option<i32>,
    operator: Option<String>,
}

/// `PUT .../accesskeys/{id}/activation?mode=0|1&operator=`.
pub async fn activate(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: KeyPath,
    q: web::Query<ModeQuery>,
) -> ApiResult<HttpResponse> {
    let (app, env, id) = path.into_inner();
    let env = env_of(&state, &env)?;
    let id = key_id(&id)?;
    let mode = AccessKeyMode::from_code(q.mode.unwrap_or(0))
        .ok_or_else(|| ApiError::bad_request("mode must be 0 (filter) or 1 (observer)"))?;
    let caller = c.caller(&state, q.operator.as_deref()).await?;
    caller.require_operator()?;
    let cairn = state.cairn.clone();
    blocking(move || cairn.set_access_key(&caller, &env, &app, id, Some(mode))).await?;
    Ok(ok_empty())
}

/// `PUT .../accesskeys/{id}/deactivation?operator=`.
pub async fn deactivate(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: KeyPath,
    q: web::Query<OperatorQuery>,
) -> ApiResult<HttpResponse> {
    let (app, env, id) = path.into_inner();
    let env = env_of(&state, &env)?;
    let id = key_id(&id)?;
    let caller = c.caller(&state, q.operator.as_deref()).await?;
    caller.require_operator()?;
    let cairn = state.cairn.clone();
    blocking(move || cairn.set_access_key(&caller, &env, &app, id, None)).await?;
    Ok(ok_empty())
}
