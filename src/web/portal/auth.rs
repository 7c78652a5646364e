//! Sign-in, sign-out, first-run setup, own password, and the session + CSRF checks every
//! other page relies on.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::LOCATION;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::domain::model::User;
use crate::service::{Actor, Caller, ServiceError};
use crate::web::AppState;

/// Name of the session cookie (`__Host-` prefixed when served over TLS).
pub const SESSION_COOKIE: &str = "cairn_session";
const SECURE_COOKIE: &str = "__Host-cairn_session";

/// Context every page template gets.
pub struct PageCtx {
    pub user: Option<String>,
    pub envs: Vec<String>,
    pub env: String,
    pub csrf: String,
    pub flash: Option<String>,
}

impl PageCtx {
    /// Context for anonymous pages.
    pub fn anonymous(state: &AppState) -> PageCtx {
        PageCtx {
            user: None,
            envs: state.cairn.settings().envs.clone(),
            env: String::new(),
            csrf: String::new(),
            flash: None,
        }
    }
}

/// A signed-in operator.
pub struct PortalSession {
    pub user: User,
    pub csrf: String,
}

impl PortalSession {
    /// The caller for service calls.
    pub fn caller(&self) -> Caller {
        Caller { actor: Actor::User(self.user.clone()), operator: self.user.name.clone(), operator_user: None }
    }

    /// The page context in `env`.
    pub fn ctx(&self, state: &AppState, env: &str) -> PageCtx {
        PageCtx {
            user: Some(self.user.name.clone()),
            envs: state.cairn.settings().envs.clone(),
            env: env.to_string(),
            csrf: self.csrf.clone(),
            flash: None,
        }
    }

    /// Checks a form's CSRF token and the request's Origin; nothing is written on failure.
    pub fn check_form(&self, req: &HttpRequest, csrf: &str) -> Result<(), PageError> {
        if !crate::service::secret_matches(csrf, &self.csrf) || !same_origin(req) {
            return Err(PageError::Csrf);
        }
        Ok(())
    }
}

/// True unless the request names an Origin other than this portal. `Origin: null` (sandboxed
/// frames, `data:` pages, some redirects) is foreign too: a real portal form never sends it.
/// Browsers that send no Origin are judged by the CSRF token alone.
/// The host compared is this server's, or behind a trusted proxy the one it forwards.
fn same_origin(req: &HttpRequest) -> bool {
    let Some(origin) = req.headers().get("Origin") else { return true };
    let Some(state) = req.app_data::<web::Data<AppState>>() else { return false };
    let host = crate::web::proxy::host(req, &state.settings);
    origin.to_str().ok().and_then(|o| o.split_once("://")).is_some_and(|(_, rest)| rest == host)
}

fn cookie_token(req: &HttpRequest) -> Option<String> {
    req.cookie(SECURE_COOKIE).or_else(|| req.cookie(SESSION_COOKIE)).map(|c| c.value().to_string())
}

impl FromRequest for PortalSession {
    type Error = PageError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<PortalSession, PageError>>>>;

    /// Reads the session's user off the async workers (a database server that is down or
    /// frozen makes the read wait out its deadline); a failed read is an error page, not a
    /// sign-out.
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let next = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
        let token = cookie_token(req);
        Box::pin(async move {
            let cairn = state.ok_or(PageError::Login(String::new()))?.cairn.clone();
            let token = token.ok_or_else(|| PageError::Login(next.clone()))?;
            let found = crate::web::heavy::off_workers(move || cairn.checked_session(&token))
                .await
                .map_err(|_| PageError::Service(ServiceError::conflict("the server is shutting down; try again")))??;
            let (user, session) = found.ok_or(PageError::Login(next))?;
            Ok(PortalSession { user, csrf: session.csrf })
        })
    }
}

/// What can go wrong on a page, mapped to what the operator sees.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in: go to the sign-in page, then back to this path.
    Login(String),
    /// Missing or wrong CSRF token, or a foreign Origin.
    Csrf,
    /// A service error.
    Service(ServiceError),
    /// A form body that could not be read: too large (413) or not a form (400).
    Form { status: u16, message: String },
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        PageError::Service(e)
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    ctx: PageCtx,
    status: u16,
    heading: String,
    message: String,
}

impl actix_web::ResponseError for PageError {
    fn error_response(&self) -> HttpResponse {
        let (status, heading, message) = match self {
            PageError::Login(next) => {
                let to =
                    if next.is_empty() { "/login".to_string() } else { format!("/login?next={}", urlencode(next)) };
                return HttpResponse::SeeOther().insert_header((LOCATION, to)).finish();
            }
            PageError::Csrf => {
                (403, "Form expired", "This form is no longer valid. Reload the page and try again.".to_string())
            }
            PageError::Service(ServiceError::Forbidden(m)) => (403, "Not allowed", m.clone()),
            PageError::Service(ServiceError::NotFound(m)) => (404, "Not found", m.clone()),
            PageError::Service(ServiceError::Unauthenticated(m)) => (401, "Sign in again", m.clone()),
            PageError::Service(ServiceError::Throttled(s)) => {
                (429, "Too many attempts", format!("Try again in {s} seconds."))
            }
            PageError::Service(ServiceError::Internal(e)) if e.is_disk_full() => {
                (507, "Disk full", format!("{e}. Nothing was changed: go back and submit again once space is freed."))
            }
            PageError::Service(se @ ServiceError::Internal(e)) if se.is_storage_unavailable() => {
                tracing::warn!(error = %e, "portal change refused: storage unavailable");
                (503, "Storage unavailable", format!("{e}. Nothing was changed: go back and submit again shortly."))
            }
            PageError::Service(ServiceError::Internal(e)) => {
                let id = crate::service::incident_id();
                tracing::error!(request_id = %id, error = %e, "internal error on a portal page");
                (500, "Something went wrong", format!("Internal error, request id {id}."))
            }
            PageError::Service(e) => (400, "Cannot do that", e.to_string()),
            PageError::Form { status: 413, message } => (413, "Too large", message.clone()),
            PageError::Form { status, message } => (*status, "Cannot read the form", message.clone()),
        };
        let page = ErrorPage {
            ctx: PageCtx { user: None, envs: Vec::new(), env: String::new(), csrf: String::new(), flash: None },
            status,
            heading: heading.to_string(),
            message,
        };
        let body = page.render().unwrap_or_else(|_| "error".to_string());
        HttpResponse::build(
            actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
        )
        .content_type("text/html; charset=utf-8")
        .body(body)
    }
}

/// Renders a template as an HTML response.
pub fn html<T: Template>(t: &T) -> Result<HttpResponse, PageError> {
    let body = t.render().map_err(|e| PageError::Service(ServiceError::Conflict(format!("template error: {e}"))))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("X-Frame-Options", "DENY"))
        .body(body))
}

/// Runs a blocking service call (storage I/O, argon2) off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::service::Result<T> + Send + 'static,
) -> Result<crate::service::Result<T>, PageError> {
    crate::web::heavy::off_workers(f).await.map_err(|e| PageError::Service(ServiceError::Conflict(e.to_string())))
}

/// A portal namespace path: (app, env, cluster, namespace).
pub type NsParts = (String, String, String, String);

/// Runs a blocking service call on the namespace a portal path names, resolving its env.
pub async fn on_namespace<T: Send + 'static>(
    state: &AppState,
    caller: Caller,
    path: &NsParts,
    f: impl FnOnce(&crate::service::Cairn, &Caller, crate::service::NsRef<'_>) -> crate::service::Result<T> + Send + 'static,
) -> Result<crate::service::Result<T>, PageError> {
    let (cairn, p) = (state.cairn.clone(), path.clone());
    blocking(move || {
        let env = cairn.env(&p.1)?;
        f(&cairn, &caller, crate::service::NsRef { env: &env, app: &p.0, cluster: &p.2, ns: &p.3 })
    })
    .await
}

/// Renders a page that shows an inline error for the operator's input, with status 400.
pub fn html_bad_request<T: Template>(t: &T) -> Result<HttpResponse, PageError> {
    let mut res = html(t)?;
    *res.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
    Ok(res)
}

/// A 303 redirect.
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((LOCATION, to.to_string())).finish()
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).map(|e| e.trim_start_matches("x=").to_string()).unwrap_or_default()
}

/// Whether the browser reached Cairn over TLS (a trusted proxy's `X-Forwarded-Proto`).
fn is_https(req: &HttpRequest, state: &AppState) -> bool {
    crate::web::proxy::scheme(req, &state.settings) == "https"
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: PageCtx,
    error: Option<String>,
    username: String,
    next: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NextQuery {
    next: String,
}

/// Keeps redirects after sign-in on this site: a path of this origin, or `/` (`/apps` when
/// none was asked for). Browsers read `/\host`, `/<TAB>/host` and `//host` as another
/// host, so backslashes, control characters, spaces and a second slash (also
/// percent-encoded) are refused outright.
fn safe_next(next: &str) -> String {
    if next.is_empty() {
        // No destination asked for: the usual landing page.
        return "/apps".to_string();
    }
    let path = next.split(['?', '#']).next().unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    let ok = path.starts_with('/')
        && next.chars().all(|c| c.is_ascii_graphic())
        && !next.contains('\\')
        && !path.contains("//")
        && !["%2f", "%5c", "%0", "%1", "%7f", "%25"].iter().any(|e| lower.contains(e));
    if ok {
        next.to_string()
    } else {
        "/".to_string()
    }
}

/// Name of the cookie carrying the sign-in/setup form token (login CSRF, double submit).
const FORM_COOKIE: &str = "cairn_form";

/// The form token to put in a sign-in or setup page: the browser's own while it is still
/// valid (so two open tabs both work), a fresh one otherwise.
fn form_token(state: &AppState, req: &HttpRequest) -> String {
    match req.cookie(FORM_COOKIE) {
        Some(c) if state.cairn.check_form_token(Some(c.value()), c.value()).is_ok() => c.value().to_string(),
        _ => state.cairn.form_token(),
    }
}

/// The short-lived, strict cookie that pairs with the form's hidden token.
fn form_cookie(req: &HttpRequest, token: &str) -> Cookie<'static> {
    let https = req.app_data::<web::Data<AppState>>().is_some_and(|state| is_https(req, state));
    Cookie::build(FORM_COOKIE, token.to_string())
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(crate::service::sessions::FORM_LIFETIME.as_secs() as i64))
        .finish()
}

/// Renders a sign-in or setup page with its form token in the page and in the cookie.
fn form_page<T: Template>(
    req: &HttpRequest,
    token: &str,
    status: actix_web::http::StatusCode,
    page: &T,
) -> Result<HttpResponse, PageError> {
    let mut res = html(page)?;
    *res.status_mut() = status;
    let _ = res.add_cookie(&form_cookie(req, token));
    Ok(res)
}

/// Login CSRF: a sign-in or setup POST must come from this origin and carry the token of
/// the form the browser was served (the hidden field equal to the cookie).
fn check_form_token(state: &AppState, req: &HttpRequest, field: &str) -> crate::service::Result<()> {
    if !same_origin(req) {
        return Err(ServiceError::Forbidden(
            "this form was sent from another site; open Cairn and submit it there".into(),
        ));
    }
    let cookie = req.cookie(FORM_COOKIE);
    state.cairn.check_form_token(cookie.as_ref().map(|c| c.value()), field)
}

/// True while no user exists (a read of storage, off the async workers: anyone may ask).
async fn setup_pending(state: &AppState) -> Result<bool, PageError> {
    let cairn = state.cairn.clone();
    Ok(blocking(move || cairn.setup_token()).await??.is_some())
}

/// `GET /login` (first run without users goes to setup).
pub async fn login_get(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<NextQuery>,
) -> Result<HttpResponse, PageError> {
    if setup_pending(&state).await? {
        return Ok(redirect("/setup"));
    }
    let token = form_token(&state, &req);
    let mut ctx = PageCtx::anonymous(&state);
    ctx.csrf = token.clone();
    let page = LoginPage { ctx, error: None, username: String::new(), next: safe_next(&q.next) };
    form_page(&req, &token, actix_web::http::StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`.
pub async fn login_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let ip = crate::web::client_ip(&req, &state.settings).map(|ip| ip.to_string()).unwrap_or_default();
    let f = form.into_inner();
    let cairn = state.cairn.clone();
    let (name, password) = (f.username.clone(), f.password);
    let result = match check_form_token(&state, &req, &f.csrf) {
        // The slot is taken before any hashing; an account's slow-down is waited out here,
        // asynchronously, so guessing cannot tie up the blocking pool with sleeping threads.
        Ok(()) => match state.cairn.take_login_slot(&f.username, &ip) {
            Ok(delay) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                blocking(move || cairn.login_in_slot(&name, &password, &ip)).await?
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match result {
        Ok((token, _)) => {
            let secure = is_https(&req, &state);
            let cookie = Cookie::build(if secure { SECURE_COOKIE } else { SESSION_COOKIE }, token)
                .path("/")
                .http_only(true)
                .secure(secure)
                .same_site(SameSite::Strict)
                .finish();
            Ok(HttpResponse::SeeOther().cookie(cookie).insert_header((LOCATION, safe_next(&f.next))).finish())
        }
        Err(e @ (ServiceError::Unauthenticated(_) | ServiceError::Throttled(_) | ServiceError::Forbidden(_))) => {
            let token = form_token(&state, &req);
            let mut ctx = PageCtx::anonymous(&state);
            ctx.csrf = token.clone();
            let page = LoginPage { ctx, error: Some(e.to_string()), username: f.username, next: safe_next(&f.next) };
            let status = match e {
                ServiceError::Throttled(_) => actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                ServiceError::Forbidden(_) => actix_web::http::StatusCode::FORBIDDEN,
                _ => actix_web::http::StatusCode::UNAUTHORIZED,
            };
            form_page(&req, &token, status, &page)
        }
        Err(e) => Err(e.into()),
    }
}

/// A form that carries nothing but its CSRF token (sign-out, discard).
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

/// `POST /logout`.
pub async fn logout_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    if let Some(token) = cookie_token(&req) {
        state.cairn.logout(&token);
    }
    let mut res = redirect("/login");
    for name in [SESSION_COOKIE, SECURE_COOKIE] {
        let mut c = Cookie::build(name, "").path("/").finish();
        c.make_removal();
        let _ = res.add_cookie(&c);
    }
    Ok(res)
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    ctx: PageCtx,
    error: Option<String>,
    token: String,
    username: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenQuery {
    token: String,
}

/// `GET /setup?token=...`: only while no user exists.
pub async fn setup_get(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<TokenQuery>,
) -> Result<HttpResponse, PageError> {
    if !setup_pending(&state).await? {
        return Ok(redirect("/login"));
    }
    let form = form_token(&state, &req);
    let mut ctx = PageCtx::anonymous(&state);
    ctx.csrf = form.clone();
    let page = SetupPage { ctx, error: None, token: q.into_inner().token, username: "admin".into() };
    form_page(&req, &form, actix_web::http::StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    csrf: String,
    token: String,
    username: String,
    password: String,
}

/// `POST /setup`.
pub async fn setup_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SetupForm>,
) -> Result<HttpResponse, PageError> {
    let f = form.into_inner();
    let cairn = state.cairn.clone();
    let (token, name, password) = (f.token.clone(), f.username.clone(), f.password);
    let result = match check_form_token(&state, &req, &f.csrf) {
        Ok(()) => blocking(move || cairn.first_run_admin(&token, &name, &password)).await?,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(redirect("/login")),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::Forbidden(_) | ServiceError::Throttled(_))) => {
            let form = form_token(&state, &req);
            let mut ctx = PageCtx::anonymous(&state);
            ctx.csrf = form.clone();
            let page = SetupPage { ctx, error: Some(e.to_string()), token: f.token, username: f.username };
            form_page(&req, &form, actix_web::http::StatusCode::BAD_REQUEST, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    ctx: PageCtx,
    error: Option<String>,
}

/// `GET /account`.
pub async fn account_get(s: PortalSession, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    html(&AccountPage { ctx: s.ctx(&state, ""), error: None })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    current: String,
    new: String,
}

/// `POST /account/password`.
pub async fn password_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let f = form.into_inner();
    let (cairn, caller) = (state.cairn.clone(), s.caller());
    let current_session = cookie_token(&req);
    let result =
        blocking(move || cairn.change_password(&caller, &f.current, &f.new, current_session.as_deref())).await?;
    match result {
        Ok(()) => {
            let mut ctx = s.ctx(&state, "");
            ctx.flash = Some("Password changed.".into());
            html(&AccountPage { ctx, error: None })
        }
        Err(e @ ServiceError::Invalid(_)) => {
            html_bad_request(&AccountPage { ctx: s.ctx(&state, ""), error: Some(e.to_string()) })
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn redirects_after_sign_in_stay_on_this_site() {
        let refused = [
            "//evil.example/x",
            "/\\evil.example/x",
            "/\\/evil.example",
            "\\\\evil.example",
            "/\t/evil.example/x",
            "/\n/evil.example",
            "/\r//evil.example",
            "/ /evil.example",
            "/%09/evil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "/%5c%5cevil.example",
            "/%252F%252Fevil.example",
            "/apps//evil.example",
            "http://evil.example/",
            "https:evil.example",
            "javascript:alert(1)",
            "evil.example",
            "?next=//evil.example",
            "/\u{0}x",
            "/\u{2028}/evil.example",
            "/apps\\..\\evil",
        ];
        for next in refused {
            assert_eq!(safe_next(next), "/", "{next:?} must fall back to /");
        }
        assert_eq!(safe_next(""), "/apps");
        let kept = [
            "/",
            "/apps",
            "/apps/demo?env=DEV",
            "/apps/demo/envs/DEV/clusters/default/namespaces/application",
            "/audit?hours=24&q=x",
            "/apps?q=http://x.example/y",
        ];
        for next in kept {
            assert_eq!(safe_next(next), next);
        }
    }
}
