//! Compare a namespace between envs or clusters and copy chosen keys into the other draft:
//! promotion from FAT to PRO in a few clicks (the copy is a draft; releasing stays explicit).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::auth::{blocking, redirect, PageCtx, PageError, PortalSession};
use super::render::{page, render, Rendered};
use crate::domain::diff::State;
use crate::service::{NsRef, ServiceError};
use crate::web::AppState;

struct Row {
    key: String,
    state: &'static str,
    from_value: String,
    to_value: String,
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    ctx: PageCtx,
    app_id: String,
    ns: String,
    from: String,
    to: String,
    rows: Vec<Row>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CompareQuery {
    ns: String,
    from: String,
    to: String,
}

/// `env/cluster` → (canonical env, cluster), cluster defaulting to `default`.
fn place(state: &AppState, spec: &str) -> Result<(String, String), ServiceError> {
    let (env, cluster) = spec.split_once('/').unwrap_or((spec, "default"));
    Ok((state.cairn.env(env.trim())?, cluster.trim().to_string()))
}

/// `GET /apps/{app}/compare?ns=&from=FAT/default&to=PRO/default`.
pub async fn compare_get(
    s: PortalSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<CompareQuery>,
) -> Result<HttpResponse, PageError> {
    let (path, q) = (path.into_inner(), q.into_inner());
    page(&state, move |state| compare_page(state, &s, &path, q)).await
}

fn compare_page(state: &AppState, s: &PortalSession, path: &str, mut q: CompareQuery) -> Result<Rendered, PageError> {
    let app = state.cairn.app(path)?.app_id;
    if q.ns.is_empty() {
        q.ns = "application".into();
    }
    let envs = state.cairn.settings().envs.clone();
    if q.from.is_empty() {
        q.from = format!("{}/default", envs.first().cloned().unwrap_or_default());
    }
    if q.to.is_empty() {
        q.to = format!("{}/default", envs.last().cloned().unwrap_or_default());
    }
    let ((fe, fc), (te, tc)) = (place(state, &q.from)?, place(state, &q.to)?);
    let lines = state.cairn.compare_drafts(
        &s.caller(),
        NsRef { env: &fe, app: &app, cluster: &fc, ns: &q.ns },
        NsRef { env: &te, app: &app, cluster: &tc, ns: &q.ns },
    )?;
    let rows = lines
        .into_iter()
        .filter(|l| l.state != State::Unchanged)
        .map(|l| Row {
            state: match l.state {
                State::Added => "added",
                State::Deleted => "deleted",
                _ => "changed",
            },
            key: l.key,
            from_value: l.draft.unwrap_or_else(|| "(absent)".into()),
            to_value: l.live.unwrap_or_else(|| "(absent)".into()),
        })
        .collect();
    render(&ComparePage { ctx: s.ctx(state, &te), app_id: app, ns: q.ns, from: q.from, to: q.to, rows, error: None })
}

/// `POST /apps/{app}/compare`: copies the checked keys (repeated `key` fields).
pub async fn compare_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| PageError::Service(ServiceError::invalid("form", e.to_string())))?;
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    s.check_form(&req, &field("csrf"))?;
    let keys: Vec<String> = pairs.iter().filter(|(k, _)| k == "key").map(|(_, v)| v.clone()).collect();
    let (ns, from, to) = (field("ns"), field("from"), field("to"));
    let ((fe, fc), (te, tc)) = (place(&state, &from)?, place(&state, &to)?);
    let (cairn, caller, n2) = (state.cairn.clone(), s.caller(), ns.clone());
    let (tec, tcc) = (te.clone(), tc.clone());
    let (app, copied) = blocking(move || {
        let app = cairn.app(&path)?.app_id;
        let copied = cairn.copy_items(
            &caller,
            NsRef { env: &fe, app: &app, cluster: &fc, ns: &n2 },
            NsRef { env: &tec, app: &app, cluster: &tcc, ns: &n2 },
            &keys,
        )?;
        Ok((app, copied))
    })
    .await??;
    Ok(redirect(&format!(
        "/apps/{app}/envs/{te}/clusters/{tc}/namespaces/{ns}?done=Copied+{copied}+keys+from+{}",
        from.replace('/', "%2F")
    )))
}
