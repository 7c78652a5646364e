//! User and role management (super admins).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::auth::{blocking, redirect, PageCtx, PageError, PortalSession};
use super::render::{page, render, render_bad_request};
use crate::domain::model::Grant;
use crate::service::ServiceError;
use crate::web::AppState;

/// A user row.
struct UserRow {
    name: String,
    can_create_apps: bool,
    is_admin: bool,
    enabled: bool,
    grants: Vec<String>,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    ctx: PageCtx,
    users: Vec<UserRow>,
    error: Option<String>,
}

fn describe(g: &Grant) -> String {
    let rights = match (g.namespace.is_none(), g.modify, g.release) {
        (true, _, _) => "master (modify+release)".to_string(),
        (false, true, true) => "modify+release".to_string(),
        (false, true, false) => "modify".to_string(),
        (false, false, true) => "release".to_string(),
        (false, false, false) => "read".to_string(),
    };
    format!(
        "{}/{} {} in {}",
        g.app_id,
        g.namespace.as_deref().unwrap_or("*"),
        rights,
        g.env.as_deref().unwrap_or("every env")
    )
}

fn users_page(state: &AppState, s: &PortalSession, error: Option<String>) -> Result<UsersPage, PageError> {
    if !s.user.is_admin {
        return Err(PageError::Service(ServiceError::Forbidden("only an admin may manage users".into())));
    }
    let users = state
        .cairn
        .list_users()?
        .into_iter()
        .map(|u| UserRow {
            grants: u.grants.iter().map(describe).collect(),
            can_create_apps: u.can_create_apps,
            name: u.name,
            is_admin: u.is_admin,
            enabled: u.enabled,
        })
        .collect();
    Ok(UsersPage { ctx: s.ctx(state, ""), users, error })
}

/// Runs a user-management call; invalid input re-renders the page with the message.
async fn act(
    state: &web::Data<AppState>,
    s: PortalSession,
    f: impl FnOnce() -> crate::service::Result<()> + Send + 'static,
) -> Result<HttpResponse, PageError> {
    match blocking(f).await? {
        Ok(()) => Ok(redirect("/users")),
        Err(
            e @ (ServiceError::Invalid(_)
            | ServiceError::AlreadyExists(_)
            | ServiceError::Conflict(_)
            | ServiceError::NotFound(_)),
        ) => {
            let error = Some(e.to_string());
            page(state, move |state| render_bad_request(&users_page(state, &s, error)?)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /users`.
pub async fn users_get(s: PortalSession, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    page(&state, move |state| render(&users_page(state, &s, None)?)).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    name: String,
    password: String,
    #[serde(default)]
    admin: bool,
}

/// `POST /users`.
pub async fn users_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let f = form.into_inner();
    let (cairn, caller) = (state.cairn.clone(), s.caller());
    act(&state, s, move || cairn.create_user(&caller, f.name.trim(), &f.password, f.admin).map(|_| ())).await
}

#[derive(Deserialize)]
pub struct EnabledForm {
    #[serde(default)]
    csrf: String,
    enabled: bool,
}

/// `POST /users/{name}/enabled`.
pub async fn enabled_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<EnabledForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let (cairn, caller, name, enabled) = (state.cairn.clone(), s.caller(), path.into_inner(), form.enabled);
    act(&state, s, move || cairn.set_user_enabled(&caller, &name, enabled).map(|_| ())).await
}

#[derive(Deserialize)]
pub struct GrantForm {
    #[serde(default)]
    csrf: String,
    user: String,
    app: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    env: String,
    #[serde(default)]
    modify: bool,
    #[serde(default)]
    release: bool,
}

/// `POST /users/grants`.
pub async fn grants_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    form: web::Form<GrantForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let f = form.into_inner();
    let grant = Grant {
        app_id: f.app.trim().to_string(),
        namespace: Some(f.namespace.trim().to_string()).filter(|n| !n.is_empty()),
        env: Some(f.env.trim().to_string()).filter(|e| !e.is_empty()),
        modify: f.modify,
        release: f.release,
    };
    let (cairn, caller, user) = (state.cairn.clone(), s.caller(), f.user.trim().to_string());
    act(&state, s, move || cairn.grant_user(&caller, &user, grant).map(|_| ())).await
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    user: String,
    password: String,
}

/// `POST /users/password`.
pub async fn password_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    form: web::Form<ResetForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let f = form.into_inner();
    let (cairn, caller) = (state.cairn.clone(), s.caller());
    act(&state, s, move || cairn.reset_password(&caller, f.user.trim(), &f.password)).await
}

#[derive(Deserialize)]
pub struct CreateAppsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    allowed: bool,
}

/// `POST /users/{name}/create-apps`: may this user create apps when creation is restricted?
pub async fn create_apps_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CreateAppsForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let (cairn, caller, name, allowed) = (state.cairn.clone(), s.caller(), path.into_inner(), form.allowed);
    act(&state, s, move || cairn.set_user_can_create_apps(&caller, &name, allowed).map(|_| ())).await
}
