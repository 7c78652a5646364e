//! `/configfiles`, `/configfiles/json`, `/configfiles/raw`: the convenience reads.

use actix_web::{web, HttpRequest, HttpResponse};

use super::configs::{config_request, resolve, ConfigPath, ConfigQuery};
use super::ClientEnv;
use crate::domain::format::CONTENT_KEY;
use crate::domain::properties;
use crate::domain::Format;
use crate::web::error::ApiResult;
use crate::web::AppState;

type P = web::Path<ConfigPath>;

/// Properties text of the configurations.
pub async fn get_properties(
    req: HttpRequest,
    state: web::Data<AppState>,
    env: ClientEnv,
    path: P,
    q: web::Query<ConfigQuery>,
) -> ApiResult<HttpResponse> {
    let creq = config_request(&req, &state, &env, path.into_inner(), &q)?;
    let resolved = resolve(&state, &creq)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain;charset=UTF-8")
        .body(properties::write(&resolved.merged())))
}

/// The configurations as a JSON object.
pub async fn get_json(
    req: HttpRequest,
    state: web::Data<AppState>,
    env: ClientEnv,
    path: P,
    q: web::Query<ConfigQuery>,
) -> ApiResult<HttpResponse> {
    let creq = config_request(&req, &state, &env, path.into_inner(), &q)?;
    let resolved = resolve(&state, &creq)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json;charset=UTF-8")
        .body(resolved.configurations_json().into_owned()))
}

/// The file as released: the `content` of json/yaml/xml/txt namespaces, properties text otherwise.
pub async fn get_raw(
    req: HttpRequest,
    state: web::Data<AppState>,
    env: ClientEnv,
    path: P,
    q: web::Query<ConfigQuery>,
) -> ApiResult<HttpResponse> {
    let creq = config_request(&req, &state, &env, path.into_inner(), &q)?;
    let resolved = resolve(&state, &creq)?;
    let requested = Format::of_namespace(&creq.namespace);
    let merged = resolved.merged();
    let body = if Format::of_namespace(&resolved.namespace).is_file() {
        merged
            .into_iter()
            .find(|(k, _)| k == CONTENT_KEY)
            .map(|(_, v)| v)
            .unwrap_or_default()
    } else {
        properties::write(&merged)
    };
    Ok(HttpResponse::Ok()
        .content_type(requested.content_type())
        .body(body))
}
