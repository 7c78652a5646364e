//! Meta server answers: where the config service of this env lives.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::ClientEnv;
use crate::web::{proxy, AppState};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceDto {
    app_name: &'static str,
    instance_id: String,
    homepage_url: String,
}

/// The absolute base URL of this env as the client reached it: configured advertised URL, or
/// the request's scheme and host (a trusted proxy's `X-Forwarded-*` only), plus the path
/// before `/services/`, ending in `/`.
fn homepage_url(req: &HttpRequest, state: &AppState, env: &ClientEnv) -> String {
    let before = env.prefix.as_deref().unwrap_or("");
    if let Some(url) = state.settings.env(&env.env).and_then(|s| s.advertised_url.as_deref()) {
        return format!("{}/", url.trim_end_matches('/'));
    }
    let base = match &state.settings.advertised_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let settings = &state.settings;
            let prefix = proxy::prefix(req, settings).unwrap_or_default();
            format!("{}://{}{prefix}", proxy::scheme(req, settings), proxy::host(req, settings))
        }
    };
    format!("{base}{before}/")
}

fn dto(req: &HttpRequest, state: &AppState, env: &ClientEnv, name: &'static str) -> ServiceDto {
    let url = homepage_url(req, state, env);
    ServiceDto { app_name: name, instance_id: format!("{name}:{url}"), homepage_url: url }
}

/// `GET /services/config`: the config service (this same base URL).
pub async fn services_config(req: HttpRequest, state: web::Data<AppState>, env: ClientEnv) -> HttpResponse {
    HttpResponse::Ok().json([dto(&req, &state, &env, "apollo-configservice")])
}

/// `GET /services/admin`: the admin service (also this process).
pub async fn services_admin(req: HttpRequest, state: web::Data<AppState>, env: ClientEnv) -> HttpResponse {
    HttpResponse::Ok().json([dto(&req, &state, &env, "apollo-adminservice")])
}

/// `GET /services/meta`: deprecated upstream, always empty.
pub async fn services_meta(_env: ClientEnv) -> HttpResponse {
    HttpResponse::Ok().json(Vec::<()>::new())
}
