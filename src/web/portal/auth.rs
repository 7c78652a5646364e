//! Sign-in, sign-out, first-run setup, own password, and the session + CSRF checks every
//! other page relies on.

use std::future::{ready, Ready};

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
        Caller { actor: Actor::User(self.user.clone()), operator: self.user.name.clone() }
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
        if !crate::security::constant_time_eq(csrf.as_bytes(), self.csrf.as_bytes()) {
            return Err(PageError::Csrf);
        }
        if let Some(origin) = req.headers().get("Origin").and_then(|v| v.to_str().ok()) {
            let host = match req.app_data::<web::Data<AppState>>() {
                Some(state) => crate::web::proxy::host(req, &state.settings),
                None => return Err(PageError::Csrf),
            };
            let same = origin.split_once("://").is_some_and(|(_, rest)| rest == host);
            if !same && origin != "null" {
                return Err(PageError::Csrf);
            }
        }
        Ok(())
    }
}

fn cookie_token(req: &HttpRequest) -> Option<String> {
    req.cookie(SECURE_COOKIE).or_else(|| req.cookie(SESSION_COOKIE)).map(|c| c.value().to_string())
}

impl FromRequest for PortalSession {
    type Error = PageError;
    type Future = Ready<Result<PortalSession, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let result = (|| {
            let state = req.app_data::<web::Data<AppState>>().ok_or(PageError::Login(String::new()))?;
            let next = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
            let token = cookie_token(req).ok_or_else(|| PageError::Login(next.clone()))?;
            let (user, session) = state.cairn.session(&token).ok_or(PageError::Login(next))?;
            Ok(PortalSession { user, csrf: session.csrf })
        })();
        ready(result)
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
            PageError::Service(ServiceError::Internal(e)) => {
                let id = crate::security::token::random_hex(6);
                tracing::error!(request_id = %id, error = %e, "internal error on a portal page");
                (500, "Something went wrong", format!("Internal error, request id {id}."))
            }
            PageError::Service(e) => (400, "Cannot do that", e.to_string()),
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

/// Runs a blocking service call (sled I/O, argon2) off the async workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::service::Result<T> + Send + 'static,
) -> Result<crate::service::Result<T>, PageError> {
    web::block(f).await.map_err(|e| PageError::Service(ServiceError::Conflict(e.to_string())))
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

/// Keeps redirects on this site.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") {
        next.to_string()
    } else {
        "/apps".to_string()
    }
}

/// `GET /login` (first run without users goes to setup).
pub async fn login_get(state: web::Data<AppState>, q: web::Query<NextQuery>) -> Result<HttpResponse, PageError> {
    if state.cairn.setup_token()?.is_some() {
        return Ok(redirect("/setup"));
    }
    html(&LoginPage { ctx: PageCtx::anonymous(&state), error: None, username: String::new(), next: safe_next(&q.next) })
}

#[derive(Deserialize)]
pub struct LoginForm {
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
    let result = blocking(move || cairn.login(&name, &password, &ip)).await?;
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
        Err(e @ (ServiceError::Unauthenticated(_) | ServiceError::Throttled(_))) => {
            let page = LoginPage {
                ctx: PageCtx::anonymous(&state),
                error: Some(e.to_string()),
                username: f.username,
                next: safe_next(&f.next),
            };
            let mut res = html(&page)?;
            *res.status_mut() = if matches!(e, ServiceError::Throttled(_)) {
                actix_web::http::StatusCode::TOO_MANY_REQUESTS
            } else {
                actix_web::http::StatusCode::UNAUTHORIZED
            };
            Ok(res)
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
pub async fn setup_get(state: web::Data<AppState>, q: web::Query<TokenQuery>) -> Result<HttpResponse, PageError> {
    if state.cairn.setup_token()?.is_none() {
        return Ok(redirect("/login"));
    }
    html(&SetupPage {
        ctx: PageCtx::anonymous(&state),
        error: None,
        token: q.into_inner().token,
        username: "admin".into(),
    })
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    username: String,
    password: String,
}

/// `POST /setup`.
pub async fn setup_post(state: web::Data<AppState>, form: web::Form<SetupForm>) -> Result<HttpResponse, PageError> {
    let f = form.into_inner();
    let cairn = state.cairn.clone();
    let (token, name, password) = (f.token.clone(), f.username.clone(), f.password);
    let result = blocking(move || cairn.first_run_admin(&token, &name, &password)).await?;
    match result {
        Ok(_) => Ok(redirect("/login")),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::Forbidden(_))) => {
            let mut res = html(&SetupPage {
                ctx: PageCtx::anonymous(&state),
                error: Some(e.to_string()),
                token: f.token,
                username: f.username,
            })?;
            *res.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            Ok(res)
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
    let result = blocking(move || cairn.change_password(&caller, &f.current, &f.new)).await?;
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
