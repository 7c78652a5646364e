//! Releases, rollback and gray branches.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::dto::{OpenGrayReleaseRuleDto, OpenNamespaceDto, OpenReleaseDto, ReleaseBody, RuleItemDto};
use super::{blocking, call, env_of, heavy_json, ok, ok_empty, NsPath, OpenConsumer, OperatorQuery};
use crate::service::releases::ReleaseInput;
use crate::service::NsRef;
use crate::web::error::{ApiError, ApiResult};
use crate::web::AppState;

type BranchPath = web::Path<(String, String, String, String, String)>;

fn release_input(body: &ReleaseBody) -> ReleaseInput {
    ReleaseInput {
        title: body.release_title.clone().unwrap_or_default(),
        comment: body.release_comment.clone().unwrap_or_default(),
        emergency: body.is_emergency_publish,
    }
}

/// `POST .../releases`.
pub async fn publish(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: NsPath,
    body: web::Json<ReleaseBody>,
) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns) = path.into_inner();
    let env = env_of(&state, &env)?;
    let caller = c.caller(&state, body.released_by.as_deref()).await?;
    let input = release_input(&body);
    let cairn = state.cairn.clone();
    let release =
        blocking(move || cairn.publish(&caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns }, input))
            .await?;
    Ok(ok(OpenReleaseDto::from(&release)))
}

/// `GET .../releases/latest`: the release or an empty body.
pub async fn latest(state: web::Data<AppState>, c: OpenConsumer, path: NsPath) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns) = path.into_inner();
    let env = env_of(&state, &env)?;
    let latest = call(&state, c, None, move |cairn, caller| {
        cairn.latest_release(caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns })
    })
    .await?;
    match latest {
        Some(r) => heavy_json(&state, move || OpenReleaseDto::from(&r)).await,
        None => Ok(ok_empty()),
    }
}

fn release_id(raw: &str) -> ApiResult<u64> {
    raw.parse().map_err(|_| ApiError::bad_request(format!("release id '{raw}' is not a number")))
}

/// `GET /envs/{env}/releases/{id}`.
pub async fn get_release(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, id) = path.into_inner();
    let env = env_of(&state, &env)?;
    let id = release_id(&id)?;
    let release = call(&state, c, None, move |cairn, caller| cairn.release(caller, &env, id)).await?;
    heavy_json(&state, move || OpenReleaseDto::from(&release)).await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct RollbackQuery {
    operator: Option<String>,
    to_release_id: Option<String>,
}

/// `PUT /envs/{env}/releases/{id}/rollback?operator=&toReleaseId=`.
pub async fn rollback(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: web::Path<(String, String)>,
    q: web::Query<RollbackQuery>,
) -> ApiResult<HttpResponse> {
    let (env, id) = path.into_inner();
    let env = env_of(&state, &env)?;
    let id = release_id(&id)?;
    let to = q.to_release_id.as_deref().filter(|s| !s.is_empty()).map(release_id).transpose()?;
    let caller = c.caller(&state, q.operator.as_deref()).await?;
    let cairn = state.cairn.clone();
    blocking(move || cairn.rollback(&caller, &env, id, to)).await?;
    Ok(ok_empty())
}

/// `GET .../branches`: the gray branch as a namespace, or an empty body.
pub async fn get_branch(state: web::Data<AppState>, c: OpenConsumer, path: NsPath) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns) = path.into_inner();
    let env = env_of(&state, &env)?;
    let found = call(&state, c, None, move |cairn, caller| {
        let Some(v) = cairn.branch(caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns })? else {
            return Ok(None);
        };
        let def = cairn.app_namespace(&v.branch.app_id, &v.branch.namespace)?;
        Ok(Some((v, def)))
    })
    .await?;
    Ok(match found {
        Some((v, def)) => ok(OpenNamespaceDto::of_branch(&v.branch, &def, &v.items)),
        None => ok_empty(),
    })
}

/// `POST .../branches?operator=`.
pub async fn create_branch(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: NsPath,
    q: web::Query<OperatorQuery>,
) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns) = path.into_inner();
    let env = env_of(&state, &env)?;
    let caller = c.caller(&state, q.operator.as_deref()).await?;
    let cairn = state.cairn.clone();
    let (v, def) = blocking(move || {
        let v = cairn.create_branch(&caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns })?;
        let def = cairn.app_namespace(&v.branch.app_id, &v.branch.namespace)?;
        Ok((v, def))
    })
    .await?;
    Ok(ok(OpenNamespaceDto::of_branch(&v.branch, &def, &v.items)))
}

/// `DELETE .../branches/{branch}?operator=`.
pub async fn delete_branch(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: BranchPath,
    q: web::Query<OperatorQuery>,
) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns, branch) = path.into_inner();
    let env = env_of(&state, &env)?;
    let caller = c.caller(&state, q.operator.as_deref()).await?;
    let cairn = state.cairn.clone();
    blocking(move || cairn.delete_branch(&caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns }, &branch))
        .await?;
    Ok(ok_empty())
}

/// `GET .../branches/{branch}/rules`.
pub async fn get_rules(state: web::Data<AppState>, c: OpenConsumer, path: BranchPath) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns, branch) = path.into_inner();
    let env = env_of(&state, &env)?;
    let rules = call(&state, c, None, move |cairn, caller| {
        cairn.branch_rules(caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns }, &branch)
    })
    .await?;
    Ok(ok(OpenGrayReleaseRuleDto::from(&rules)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct RulesBody {
    rule_items: Vec<RuleItemDto>,
}

/// `PUT .../branches/{branch}/rules?operator=`.
pub async fn put_rules(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: BranchPath,
    q: web::Query<OperatorQuery>,
    body: web::Json<RulesBody>,
) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns, branch) = path.into_inner();
    let env = env_of(&state, &env)?;
    let caller = c.caller(&state, q.operator.as_deref()).await?;
    let rules = body.into_inner().rule_items.into_iter().map(Into::into).collect();
    let cairn = state.cairn.clone();
    blocking(move || {
        cairn.update_branch_rules(&caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns }, &branch, rules)
    })
    .await?;
    Ok(ok_empty())
}

async fn gray(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: BranchPath,
    body: ReleaseBody,
    with_deletes: bool,
) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns, branch) = path.into_inner();
    let env = env_of(&state, &env)?;
    let caller = c.caller(&state, body.released_by.as_deref()).await?;
    let input = release_input(&body);
    let deletes = if with_deletes { body.gray_del_keys } else { Vec::new() };
    let cairn = state.cairn.clone();
    let release = blocking(move || {
        cairn.gray_publish(
            &caller,
            NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns },
            &branch,
            input,
            &deletes,
        )
    })
    .await?;
    Ok(ok(OpenReleaseDto::from(&release)))
}

/// `POST .../branches/{branch}/releases`.
pub async fn gray_publish(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: BranchPath,
    body: web::Json<ReleaseBody>,
) -> ApiResult<HttpResponse> {
    gray(state, c, path, body.into_inner(), false).await
}

/// `POST .../branches/{branch}/gray-del-releases`.
pub async fn gray_del_publish(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: BranchPath,
    body: web::Json<ReleaseBody>,
) -> ApiResult<HttpResponse> {
    gray(state, c, path, body.into_inner(), true).await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct MergeQuery {
    delete_branch: Option<bool>,
}

/// `POST .../branches/{branch}/merge?deleteBranch=`.
pub async fn merge(
    state: web::Data<AppState>,
    c: OpenConsumer,
    path: BranchPath,
    q: web::Query<MergeQuery>,
    body: web::Json<ReleaseBody>,
) -> ApiResult<HttpResponse> {
    let (env, app, cluster, ns, branch) = path.into_inner();
    let env = env_of(&state, &env)?;
    let caller = c.caller(&state, body.released_by.as_deref()).await?;
    let input = release_input(&body);
    let delete = q.delete_branch.unwrap_or(true);
    let cairn = state.cairn.clone();
    let release = blocking(move || {
        cairn.merge_branch(&caller, NsRef { env: &env, app: &app, cluster: &cluster, ns: &ns }, &branch, input, delete)
    })
    .await?;
    Ok(ok(OpenReleaseDto::from(&release)))
}
