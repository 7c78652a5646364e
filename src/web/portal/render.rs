//! Pages are built and rendered in the heavy-work pool (`web::heavy`), never on the async
//! workers that answer client requests and hold long polls: a 5,000-item namespace page is
//! tens of milliseconds of CPU, and a few operators opening it must not starve `/configs`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::auth::PageError;
use crate::service::ServiceError;
use crate::web::AppState;

/// A rendered page, ready to be sent.
pub struct Rendered {
    status: StatusCode,
    body: String,
}

/// Renders a template (status 200).
pub fn render<T: Template>(t: &T) -> Result<Rendered, PageError> {
    let body = t.render().map_err(|e| PageError::Service(ServiceError::Conflict(format!("template error: {e}"))))?;
    Ok(Rendered { status: StatusCode::OK, body })
}

/// Renders a page that shows an inline error for the operator's input (status 400).
pub fn render_bad_request<T: Template>(t: &T) -> Result<Rendered, PageError> {
    Ok(Rendered { status: StatusCode::BAD_REQUEST, ..render(t)? })
}

/// Builds and renders a page in the heavy-work pool and answers with it.
pub async fn page(
    state: &web::Data<AppState>,
    build: impl FnOnce(&AppState) -> Result<Rendered, PageError> + Send + 'static,
) -> Result<HttpResponse, PageError> {
    let st = state.clone();
    let rendered = state
        .heavy
        .run(move || build(&st))
        .await
        .map_err(|e| PageError::Service(ServiceError::Conflict(e.to_string())))??;
    Ok(HttpResponse::build(rendered.status).content_type("text/html; charset=utf-8").body(rendered.body))
}
