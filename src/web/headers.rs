//! Security headers on every response of every surface, error pages and 404s included.
//! A handler that sets one of these headers itself keeps its own value (the raw config
//! files set a stricter policy; static assets set their own cache lifetime).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use actix_web::middleware::Next;
use actix_web::Error;

/// The policy of portal pages: only this origin's own script, style and images (the
/// templates and `static/` use no inline script or style), never framed, forms post here.
pub const PORTAL_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// The policy of everything that is not a portal page (API JSON, config files, assets): a
/// browser that opens one gets an inert, sandboxed document on an opaque origin.
pub const DATA_CSP: &str = "sandbox; default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Adds the security headers to a response (see the module comment).
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    // Handler and extractor errors are already responses here (actix converts them inside
    // the route), so error pages and API errors get the headers too. The request cannot be
    // kept aside for the rare error that escapes: routing needs it unshared.
    let mut res = next.call(req).await?.map_into_boxed_body();
    let html = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let headers = res.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(X_CONTENT_TYPE_OPTIONS, "nosniff");
    // `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` on
    // the portal's own form posts, which the CSRF check must refuse.
    set(REFERRER_POLICY, "same-origin");
    set(X_FRAME_OPTIONS, "DENY");
    set(CONTENT_SECURITY_POLICY, if html { PORTAL_CSP } else { DATA_CSP });
    // Nothing Cairn answers may be kept by a shared cache: pages and Open API answers show
    // tokens and secrets, client answers may be private namespaces. Apollo clients do not
    // cache over HTTP (their 304 comes from the releaseKey and notification ids they send),
    // so this changes nothing for them. Static assets set their own lifetime.
    set(CACHE_CONTROL, "no-store");
    Ok(res)
}
