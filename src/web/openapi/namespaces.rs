//! Clusters, app namespaces, namespaces and their locks.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::dto::{OpenAppNamespaceDto, OpenClusterDto, OpenNamespaceDto, OpenNamespaceLockDto};
use super::{blocking, call, env_of, heavy_json, ok, ok_empty, NsPath, OpenConsumer, OperatorQuery};
use crate::domain::Format;
use crate::service::namespaces::NewAppNamespace;
use crate::service::NsRef;
use crate::web::error::{ApiError, ApiResult};
use crate::web::AppState;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterBody {
    name: Option<String>,
    comment: Option<String>,
    data_change_created_by: Option<String>,
}

/// `POST /envs/{env}/apps/{appId}/clusters`.
pub async fn create_cluster(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: web::Path<(String, String)>,
    body: web::Json<ClusterBody>,
) -> ApiResult<HttpResponse> {
    let (env, app) = path.into_inner();
    let env = env_of(&state, &env)?;
    let body = body.into_inner();
    let name = body.name.ok_or_else(|| ApiError::bad_request("name is required"))?;
    let caller = c.caller(&state, body.data_change_created_by.as_deref()).await?;
    caller.require_operator()?;
    let cairn = state.cairn.clone();
    let comment = body.comment.unwrap_or_default();
    let cluster = blocking(move || cairn.create_cluster(&caller, &env, &app, &name, &comment)).await?;
    Ok(ok(OpenClusterDto::from(&cluster)))
}

/// `GET /envs/{env}/apps/{appId}/clusters/{cluster}`.
pub async fn get_cluster(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: web::Path<(String, String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, app, cluster) = path.into_inner();
    let env = env_of(&state, &env)?;
    let found = call(&state, c, None, move |cairn, caller| cairn.cluster(caller, &env, &app, &cluster)).await?;
    Ok(ok(OpenClusterDto::from(&found)))
}

/// `GET .../clusters/{cluster}/namespaces`.
pub async fn list_namespaces(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: web::Path<(String, String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, app, cluster) = path.into_inner();
    let env = env_of(&state, &env)?;
    let list = call(&state, c, None, move |cairn, caller| cairn.list_namespaces(caller, &env, &app, &cluster)).await?;
    heavy_json(&state, move || list.iter().map(OpenNamespaceDto::from).collect::<Vec<_>>()).await
}

/// `GET .../namespaces/{namespace}`.
pub async fn get_namespace(state: web::Data<AppState>, c: OpenConsumer, path: NsPath) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns) = path.into_inner();
    let env = env_of(&state, &env)?;
    let view = call(&state, c, None, move |cairn, caller| {
        cairn.namespace(caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns })
    })
    .await?;
    heavy_json(&state, move || OpenNamespaceDto::from(&view)).await
}

/// `GET .../namespaces/{namespace}/lock`.
pub async fn get_lock(state: web::Data<AppState>, c: OpenConsumer, path: NsPath) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns) = path.into_inner();
    let env = env_of(&state, &env)?;
    let emergency = state.cairn.emergency_publish_allowed(&env);
    let (name, owner) = call(&state, c, None, move |cairn, caller| {
        cairn.lock_owner(caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns })
    })
    .await?;
    Ok(ok(OpenNamespaceLockDto {
        namespace_name: name,
        is_locked: owner.is_some(),
        locked_by: owner,
        is_emergency_publish_allowed: emergency,
    }))
}

/// `GET /apps/{appId}/appnamespaces`.
pub async fn list_app_namespaces(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let app = path.into_inner();
    let list = call(&state, c, None, move |cairn, caller| {
        let app = cairn.app(&app)?;
        caller.require(crate::service::auth::Permission::SeeApp { app: &app.app_id })?;
        cairn.list_app_namespaces(&app.app_id)
    })
    .await?;
    Ok(ok(list.iter().map(OpenAppNamespaceDto::from).collect::<Vec<_>>()))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct AppNamespaceBody {
    name: Option<String>,
    app_id: Option<String>,
    format: Option<String>,
    is_public: bool,
    comment: Option<String>,
    append_namespace_prefix: Option<bool>,
    data_change_created_by: Option<String>,
}

/// `POST /apps/{appId}/appnamespaces`.
pub async fn create_app_namespace(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: web::Path<String>,
    body: web::Json<AppNamespaceBody>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let app = path.into_inner();
    if body.app_id.as_deref().is_some_and(|a| !a.eq_ignore_ascii_case(&app)) {
        return Err(ApiError::bad_request("appId in the body does not match the path"));
    }
    let name = body.name.ok_or_else(|| ApiError::bad_request("name is required"))?;
    let format = Format::parse(body.format.as_deref().unwrap_or("properties"))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let caller = c.caller(&state, body.data_change_created_by.as_deref()).await?;
    caller.require_operator()?;
    let new = NewAppNamespace {
        name,
        format,
        is_public: body.is_public,
        comment: body.comment.unwrap_or_default(),
        append_prefix: body.append_namespace_prefix.unwrap_or(true),
    };
    let cairn = state.cairn.clone();
    let def = blocking(move || cairn.create_app_namespace(&caller, &app, new)).await?;
    Ok(ok(OpenAppNamespaceDto::from(&def)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkBody {
    app_id: String,
    env: String,
    cluster_name: String,
    app_namespace_name: String,
}

/// `POST /namespaces`: instantiate app namespaces (own, or another app's public one) in clusters.
pub async fn link_namespaces(
    state: web::Data<AppState>,
    c: OpenConsumer,
    q: web::Query<OperatorQuery>,
    body: web::Json<Vec<LinkBody>>,
) -> ApiResult<HttpResponse> {
    let caller = c.caller(&state, q.operator.as_deref()).await?;
    caller.require_operator()?;
    for link in body.into_inner() {
        let env = env_of(&state, &link.env)?;
        let cairn = state.cairn.clone();
        let caller = caller.clone();
        blocking(move || {
            cairn.link_namespace(&caller, &env, &link.app_id, &link.cluster_name, &link.app_namespace_name)
        })
        .await?;
    }
    Ok(ok_empty())
}
