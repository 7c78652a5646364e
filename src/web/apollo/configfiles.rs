//! `/configfiles`, `/configfiles/json`, `/configfiles/raw`: the convenience reads.

use actix_web::{web, HttpRequest, HttpResponse};

use super::configs::{config_request, require_get, resolve, ConfigPath, ConfigQuery};
use crate::domain::format::CONTENT_KEY;
use crate::domain::properties;
use crate::domain::Format;
use crate::web::error::{ApiError, ApiResult};
use crate::web::AppState;

/// `/configfiles/{app}/{cluster}/{ns}` (properties text), `/configfiles/json/...` (JSON
/// object) and `/configfiles/raw/...` (the file as released).
pub async fn get_file(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<ConfigQuery>,
) -> ApiResult<HttpResponse> {
    require_get(&req)?;
    let rest = req.match_info().as_str().trim_start_matches("/configfiles/");
    let (kind, path) = match ConfigPath::parse(rest) {
        Some(p) => (Kind::Properties, p),
        None => {
            let (kind, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let kind = match kind {
                "json" => Kind::Json,
                "raw" => Kind::Raw,
                _ => return Err(ApiError::not_found(format!("no such endpoint: {}", req.path()))),
            };
            (
                kind,
                ConfigPath::parse(tail)
                    .ok_or_else(|| ApiError::not_found(format!("no such endpoint: {}", req.path())))?,
            )
        }
    };
    let env = super::client_env(&req)?;
    let creq = config_request(&req, &state, &env, path, &q)?;
    let resolved = resolve(&state, &creq)?;
    Ok(match kind {
        Kind::Properties => {
            HttpResponse::Ok().content_type("text/plain;charset=UTF-8").body(properties::write(&resolved.merged()))
        }
        Kind::Json => HttpResponse::Ok()
            .content_type("application/json;charset=UTF-8")
            .body(resolved.configurations_json().into_owned()),
        Kind::Raw => {
            let requested = Format::of_namespace(&creq.namespace);
            let merged = resolved.merged();
            let body = if Format::of_namespace(&resolved.namespace).is_file() {
                merged.into_iter().find(|(k, _)| k == CONTENT_KEY).map(|(_, v)| v).unwrap_or_default()
            } else {
                properties::write(&merged)
            };
            // A raw file is whatever an editor typed (an XHTML page with a script, say) and
            // it is served on the portal's origin: a browser must never render it as a page.
            // Apollo clients read the body and ignore these headers.
            HttpResponse::Ok()
                .content_type(requested.content_type())
                .insert_header(("X-Content-Type-Options", "nosniff"))
                .insert_header(("Content-Security-Policy", crate::web::headers::DATA_CSP))
                .insert_header(("Content-Disposition", attachment(&creq.namespace)))
                .body(body)
        }
    })
}

/// `attachment` with the namespace as file name (names are letters, digits and `._-`, but
/// anything else is dropped so the header cannot be broken out of).
fn attachment(namespace: &str) -> String {
    let name: String =
        namespace.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).collect();
    format!("attachment; filename=\"{name}\"")
}

enum Kind {
    Properties,
    Json,
    Raw,
}
