//! Items, by plain key or by URL-safe Base64 key (`encodedItems`).

use actix_web::{web, HttpResponse};
use base64::Engine;
use serde::Deserialize;

use super::dto::{ItemBody, OpenItemDto, OpenItemPageDto};
use super::{call, env_of, heavy_json, ok, ok_empty, NsPath, OpenConsumer, OperatorQuery};
use crate::service::items::{ItemInput, Upsert};
use crate::service::NsRef;
use crate::web::error::{ApiError, ApiResult};
use crate::web::AppState;

type ItemPath = web::Path<(String, String, String, String, String)>;

fn decode_key(encoded: &str) -> ApiResult<String> {
    let engines = [
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::STANDARD,
    ];
    engines
        .iter()
        .find_map(|e| e.decode(encoded).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad_request(format!("'{encoded}' is not a URL-safe Base64 item key")))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PageQuery {
    page: Option<usize>,
    size: Option<usize>,
}

/// `GET .../items?page=0&size=50`.
pub async fn list_items(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: NsPath,
    q: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns) = path.into_inner();
    let env = env_of(&state, &env)?;
    let (page, size) = (q.page.unwrap_or(0), q.size.unwrap_or(50));
    let page = call(&state, c, None, move |cairn, caller| {
        cairn.item_page(caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns }, page, size)
    })
    .await?;
    heavy_json(&state, move || OpenItemPageDto {
        content: page.items.iter().map(Into::into).collect(),
        page: page.page,
        size: page.size,
        total: page.total,
    })
    .await
}

async fn get(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: (String, String, String, String, String),
    key: String,
) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns, _) = path;
    let env = env_of(&state, &env)?;
    let item = call(&state, c, None, move |cairn, caller| {
        cairn.item(caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns }, &key)
    })
    .await?;
    Ok(ok(OpenItemDto::from(&item)))
}

/// `GET .../items/{key}`.
pub async fn get_item(state: web::Data<AppState>, c: OpenConsumer, path: ItemPath) -> ApiResult<HttpResponse> {
    let path = path.into_inner();
    let key = path.4.clone();
    get(state, c, path, key).await
}

/// `GET .../encodedItems/{key}`.
pub async fn get_encoded_item(state: web::Data<AppState>, c: OpenConsumer, path: ItemPath) -> ApiResult<HttpResponse> {
    let path = path.into_inner();
    let key = decode_key(&path.4)?;
    get(state, c, path, key).await
}

/// `POST .../items`.
pub async fn create_item(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: NsPath,
    body: web::Json<ItemBody>,
) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns) = path.into_inner();
    let env = env_of(&state, &env)?;
    let body = body.into_inner();
    let key = body.key.ok_or_else(|| ApiError::bad_request("key is required"))?;
    let input = ItemInput { key, value: body.value.unwrap_or_default(), comment: body.comment };
    let item = call(&state, c, body.data_change_created_by, move |cairn, caller| {
        cairn.upsert_item(caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns }, input, Upsert::CreateOnly)
    })
    .await?;
    Ok(ok(OpenItemDto::from(&item)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct UpdateQuery {
    create_if_not_exists: bool,
}

async fn update(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: (String, String, String, String, String),
    key: String,
    q: UpdateQuery,
    body: ItemBody,
) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns, _) = path;
    let env = env_of(&state, &env)?;
    if body.key.as_deref().is_some_and(|k| k != key) {
        return Err(ApiError::bad_request(format!(
            "key in the body ('{}') does not match the path ('{key}')",
            body.key.unwrap_or_default()
        )));
    }
    let operator = body.data_change_last_modified_by.clone().or(body.data_change_created_by.clone());
    let value = body.value.ok_or_else(|| ApiError::bad_request("value is required"))?;
    let input = ItemInput { key, value, comment: body.comment };
    let mode = if q.create_if_not_exists { Upsert::Either } else { Upsert::UpdateOnly };
    call(&state, c, operator, move |cairn, caller| {
        cairn.upsert_item(caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns }, input, mode)
    })
    .await?;
    Ok(ok_empty())
}

/// `PUT .../items/{key}?createIfNotExists=`.
pub async fn update_item(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: ItemPath,
    q: web::Query<UpdateQuery>,
    body: web::Json<ItemBody>,
) -> ApiResult<HttpResponse> {
    let path = path.into_inner();
    let key = path.4.clone();
    update(state, c, path, key, q.into_inner(), body.into_inner()).await
}

/// `PUT .../encodedItems/{key}`.
pub async fn update_encoded_item(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: ItemPath,
    q: web::Query<UpdateQuery>,
    body: web::Json<ItemBody>,
) -> ApiResult<HttpResponse> {
    let path = path.into_inner();
    let key = decode_key(&path.4)?;
    update(state, c, path, key, q.into_inner(), body.into_inner()).await
}

async fn delete(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: (String, String, String, String, String),
    key: String,
    operator: Option<String>,
) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns, _) = path;
    let env = env_of(&state, &env)?;
    call(&state, c, operator, move |cairn, caller| {
        cairn.delete_item(caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns }, &key)
    })
    .await?;
    Ok(ok_empty())
}

/// `DELETE .../items/{key}?operator=`.
pub async fn delete_item(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: ItemPath,
    q: web::Query<OperatorQuery>,
) -> ApiResult<HttpResponse> {
    let path = path.into_inner();
    let key = path.4.clone();
    delete(state, c, path, key, q.into_inner().operator).await
}

/// `DELETE .../encodedItems/{key}?operator=`.
pub async fn delete_encoded_item(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: ItemPath,
    q: web::Query<OperatorQuery>,
) -> ApiResult<HttpResponse> {
    let path = path.into_inner();
    let key = decode_key(&path.4)?;
    delete(state, c, path, key, q.into_inner().operator).await
}
