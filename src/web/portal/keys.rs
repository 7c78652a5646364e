//! Client access keys per app and env (app masters) and Open API consumers (admins).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::auth::{blocking, redirect, PageCtx, PageError, PortalSession};
use super::render::{page, render, render_bad_request};
use crate::domain::model::{AccessKeyMode, Grant};
use crate::service::ServiceError;
use crate::web::AppState;

struct KeyRow {
    id: u64,
    secret: String,
    enabled: bool,
    mode: &'static str,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    ctx: PageCtx,
    app_id: String,
    base: String,
    keys: Vec<KeyRow>,
    new_secret: Option<String>,
}

/// Shows only the start of a secret after creation.
fn masked(secret: &str) -> String {
    format!("{}…", secret.chars().take(6).collect::<String>())
}

fn keys_page(
    state: &AppState,
    s: &PortalSession,
    app: &str,
    env: &str,
    new_secret: Option<String>,
) -> Result<KeysPage, PageError> {
    let env = state.cairn.env(env)?;
    let keys = state
        .cairn
        .list_access_keys(&s.caller(), &env, app)?
        .into_iter()
        .map(|k| KeyRow {
            id: k.id,
            secret: masked(&k.secret),
            enabled: k.enabled,
            mode: if k.mode == AccessKeyMode::Filter { "enforced" } else { "observe only" },
        })
        .collect();
    let app = state.cairn.app(app)?.app_id;
    Ok(KeysPage {
        ctx: s.ctx(state, &env),
        base: format!("/apps/{app}/envs/{env}/accesskeys"),
        app_id: app,
        keys,
        new_secret,
    })
}

/// `GET /apps/{app}/envs/{env}/accesskeys`.
pub async fn keys_get(
    s: PortalSession,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (app, env) = path.into_inner();
    page(&state, move |state| render(&keys_page(state, &s, &app, &env, None)?)).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct KeyForm {
    csrf: String,
    mode: i32,
}

/// `POST /apps/{app}/envs/{env}/accesskeys`: a new key; its secret is shown on the result page.
pub async fn key_create(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<KeyForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let (app, env) = path.into_inner();
    let (cairn, caller, a, e) = (state.cairn.clone(), s.caller(), app.clone(), env.clone());
    match blocking(move || cairn.create_access_key(&caller, &cairn.env(&e)?, &a)).await? {
        Ok(key) => page(&state, move |state| render(&keys_page(state, &s, &app, &env, Some(key.secret))?)).await,
        Err(e @ ServiceError::Conflict(_)) => {
            page(&state, move |state| {
                let mut keys = keys_page(state, &s, &app, &env, None)?;
                keys.ctx.flash = Some(e.to_string());
                render_bad_request(&keys)
            })
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /apps/{app}/envs/{env}/accesskeys/{id}/{action}` with action enable, disable or delete.
pub async fn key_action(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: web::Path<(String, String, u64, String)>,
    form: web::Form<KeyForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let (app, env, id, action) = path.into_inner();
    let (cairn, caller, a, e, mode) = (state.cairn.clone(), s.caller(), app.clone(), env.clone(), form.mode);
    blocking(move || {
        let env = cairn.env(&e)?;
        match action.as_str() {
            "enable" => cairn
                .set_access_key(
                    &caller,
                    &env,
                    &a,
                    id,
                    Some(AccessKeyMode::from_code(mode).unwrap_or(AccessKeyMode::Filter)),
                )
                .map(|_| ()),
            "disable" => cairn.set_access_key(&caller, &env, &a, id, None).map(|_| ()),
            "delete" => cairn.delete_access_key(&caller, &env, &a, id),
            other => Err(ServiceError::not_found(format!("no such action '{other}'"))),
        }
    })
    .await??;
    Ok(redirect(&format!("/apps/{app}/envs/{env}/accesskeys")))
}

#[derive(Template)]
#[template(path = "consumers.html")]
struct ConsumersPage {
    ctx: PageCtx,
    consumers: Vec<ConsumerRow>,
    new_token: Option<String>,
    error: Option<String>,
}

struct ConsumerRow {
    name: String,
    allow_create_app: bool,
    grants: Vec<String>,
}

fn describe(g: &Grant) -> String {
    format!(
        "{}/{} in {}",
        g.app_id,
        g.namespace.as_deref().unwrap_or("* (master)"),
        g.env.as_deref().unwrap_or("every env")
    )
}

fn consumers_page(
    state: &AppState,
    s: &PortalSession,
    new_token: Option<String>,
    error: Option<String>,
) -> Result<ConsumersPage, PageError> {
    let consumers = state
        .cairn
        .list_consumers(&s.caller())?
        .into_iter()
        .map(|c| ConsumerRow {
            grants: c.grants.iter().map(describe).collect(),
            name: c.name,
            allow_create_app: c.allow_create_app,
        })
        .collect();
    Ok(ConsumersPage { ctx: s.ctx(state, ""), consumers, new_token, error })
}

/// `GET /consumers` (admins).
pub async fn consumers_get(s: PortalSession, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    page(&state, move |state| render(&consumers_page(state, &s, None, None)?)).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConsumerForm {
    csrf: String,
    name: String,
    allow_create_app: bool,
    app: String,
    namespace: String,
    env: String,
}

/// `POST /consumers`: the token is shown once, on the result page.
pub async fn consumer_create(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    form: web::Form<ConsumerForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let f = form.into_inner();
    let (cairn, caller) = (state.cairn.clone(), s.caller());
    match blocking(move || cairn.create_consumer(&caller, f.name.trim(), f.allow_create_app)).await? {
        Ok((_, token)) => page(&state, move |state| render(&consumers_page(state, &s, Some(token), None)?)).await,
        Err(e @ (ServiceError::Invalid(_) | ServiceError::AlreadyExists(_))) => {
            let error = Some(e.to_string());
            page(&state, move |state| render_bad_request(&consumers_page(state, &s, None, error)?)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /consumers/grants`.
pub async fn consumer_grant(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    form: web::Form<ConsumerForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let f = form.into_inner();
    let (cairn, caller) = (state.cairn.clone(), s.caller());
    let result = blocking(move || {
        let ns = Some(f.namespace.trim()).filter(|n| !n.is_empty());
        let env = Some(f.env.trim()).filter(|e| !e.is_empty());
        cairn.grant_consumer(&caller, f.name.trim(), f.app.trim(), ns, env).map(|_| ())
    })
    .await?;
    match result {
        Ok(()) => Ok(redirect("/consumers")),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::NotFound(_))) => {
            let error = Some(e.to_string());
            page(&state, move |state| render_bad_request(&consumers_page(state, &s, None, error)?)).await
        }
        Err(e) => Err(e.into()),
    }
}
