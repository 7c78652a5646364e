//! Namespace text mode, discarding a draft, the instance list, and the audit log.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::auth::{on_namespace, redirect, CsrfForm, PageCtx, PageError, PortalSession};
use super::render::{page, render, render_bad_request, Rendered};
use crate::domain::time::apollo_time;
use crate::service::audit::AuditFilter;
use crate::service::{NsRef, ServiceError};
use crate::web::AppState;

type NsPath = web::Path<(String, String, String, String)>;

fn base(p: &(String, String, String, String)) -> String {
    format!("/apps/{}/envs/{}/clusters/{}/namespaces/{}", p.0, p.1, p.2, p.3)
}

#[derive(Template)]
#[template(path = "namespaces/text.html")]
struct TextPage {
    ctx: PageCtx,
    app_id: String,
    cluster: String,
    ns: String,
    format: &'static str,
    base: String,
    text: String,
    error: Option<String>,
}

/// `GET .../text`: the whole draft in one textarea.
pub async fn text_get(s: PortalSession, state: web::Data<AppState>, path: NsPath) -> Result<HttpResponse, PageError> {
    let p = path.into_inner();
    page(&state, move |state| text_page(state, &s, &p)).await
}

fn text_page(state: &AppState, s: &PortalSession, p: &(String, String, String, String)) -> Result<Rendered, PageError> {
    let env = state.cairn.env(&p.1)?;
    let (format, text) =
        state.cairn.draft_text(&s.caller(), NsRef { env: &env, app: &p.0, cluster: &p.2, ns: &p.3 })?;
    render(&TextPage {
        ctx: s.ctx(state, &env),
        app_id: p.0.clone(),
        cluster: p.2.clone(),
        ns: p.3.clone(),
        format: format.as_str(),
        base: base(p),
        text,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct TextForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

/// `POST .../text`: validated before anything is written; errors keep the operator's text.
pub async fn text_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    form: web::Form<TextForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let p = path.into_inner();
    let text = form.into_inner().text.replace("\r\n", "\n");
    let t = text.clone();
    let result = on_namespace(&state, s.caller(), &p, move |c, caller, at| c.save_draft_text(caller, at, &t)).await?;
    match result {
        Ok(n) => Ok(redirect(&format!("{}?done=Saved+{n}+changes", base(&p)))),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::Conflict(_))) => {
            let error = e.to_string();
            page(&state, move |state| {
                let env = state.cairn.env(&p.1)?;
                let (format, _) =
                    state.cairn.draft_text(&s.caller(), NsRef { env: &env, app: &p.0, cluster: &p.2, ns: &p.3 })?;
                render_bad_request(&TextPage {
                    ctx: s.ctx(state, &env),
                    app_id: p.0.clone(),
                    cluster: p.2.clone(),
                    ns: p.3.clone(),
                    format: format.as_str(),
                    base: base(&p),
                    text,
                    error: Some(error),
                })
            })
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST .../discard`: back to the live values.
pub async fn discard_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let p = path.into_inner();
    let n = on_namespace(&state, s.caller(), &p, |c, caller, at| c.discard_draft(caller, at)).await??;
    Ok(redirect(&format!("{}?done=Discarded+{n}+changes", base(&p))))
}

struct InstanceRow {
    ip: String,
    app: String,
    cluster: String,
    release_key: String,
    last_seen: String,
    latest: bool,
}

#[derive(Template)]
#[template(path = "namespaces/instances.html")]
struct InstancesPage {
    ctx: PageCtx,
    app_id: String,
    cluster: String,
    ns: String,
    base: String,
    rows: Vec<InstanceRow>,
    on_latest: usize,
}

/// `GET .../instances`: which client instances run which release.
pub async fn instances_get(
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
) -> Result<HttpResponse, PageError> {
    let p = path.into_inner();
    page(&state, move |state| instances_page(state, &s, &p)).await
}

fn instances_page(
    state: &AppState,
    s: &PortalSession,
    p: &(String, String, String, String),
) -> Result<Rendered, PageError> {
    let env = state.cairn.env(&p.1)?;
    let caller = s.caller();
    let at = NsRef { env: &env, app: &p.0, cluster: &p.2, ns: &p.3 };
    let latest = state.cairn.latest_release(&caller, at)?.map(|r| r.release_key);
    let rows: Vec<InstanceRow> = state
        .cairn
        .instances(&caller, at)?
        .into_iter()
        .map(|i| InstanceRow {
            latest: Some(&i.release_key) == latest.as_ref(),
            ip: i.ip,
            app: i.app_id,
            cluster: i.config_cluster,
            release_key: i.release_key,
            last_seen: apollo_time(i.last_seen),
        })
        .collect();
    let on_latest = rows.iter().filter(|r| r.latest).count();
    render(&InstancesPage {
        ctx: s.ctx(state, &env),
        app_id: p.0.clone(),
        cluster: p.2.clone(),
        ns: p.3.clone(),
        base: base(p),
        rows,
        on_latest,
    })
}

struct AuditRow {
    time: String,
    actor: String,
    action: String,
    env: String,
    target: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    ctx: PageCtx,
    entries: Vec<AuditRow>,
    target: String,
    user: String,
    action: String,
    hours: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AuditQuery {
    target: String,
    user: String,
    action: String,
    hours: String,
}

/// `GET /audit?target=&user=&action=` (admins).
pub async fn audit_get(
    s: PortalSession,
    state: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, PageError> {
    let q = q.into_inner();
    page(&state, move |state| audit_page(state, &s, q)).await
}

fn audit_page(state: &AppState, s: &PortalSession, q: AuditQuery) -> Result<Rendered, PageError> {
    let since_ms = q.hours.parse::<i64>().ok().map(|h| crate::domain::time::now_ms() - h * 3_600_000);
    let filter = AuditFilter { target: q.target.clone(), user: q.user.clone(), action: q.action.clone(), since_ms };
    let entries = state
        .cairn
        .search_audit(&s.caller(), &filter, 500)?
        .into_iter()
        .map(|e| AuditRow {
            actor: e.display_actor(),
            time: apollo_time(e.time),
            action: e.action,
            env: e.env.unwrap_or_default(),
            target: e.target,
            detail: e.detail,
        })
        .collect();
    render(&AuditPage {
        ctx: s.ctx(state, ""),
        entries,
        target: q.target,
        user: q.user,
        action: q.action,
        hours: q.hours,
    })
}
