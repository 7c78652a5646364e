//! App and namespace pages: list and create apps, browse envs and clusters, edit items,
//! review the diff, publish and roll back.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::auth::{blocking, on_namespace, redirect, PageCtx, PageError, PortalSession};
use super::render::{page, render, render_bad_request, Rendered};
use crate::domain::diff::{self, State};
use crate::domain::model::App;
use crate::domain::time::apollo_time;
use crate::service::apps::NewApp;
use crate::service::auth::Permission;
use crate::service::items::{ItemInput, Upsert};
use crate::service::releases::ReleaseInput;
use crate::service::{Cairn, NsRef, ServiceError};
use crate::web::AppState;

/// A recent release line on the home page.
struct RecentRow {
    action: String,
    env: String,
    target: String,
    actor: String,
    time: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    ctx: PageCtx,
    name: String,
    drafts: Vec<crate::service::audit::PendingDraft>,
    releases: Vec<RecentRow>,
}

/// `GET /`: drafts waiting for a release and recent releases in the operator's apps.
pub async fn home(s: PortalSession, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    page(&state, move |state| {
        let caller = s.caller();
        let releases = state
            .cairn
            .recent_releases(&caller, 15)?
            .into_iter()
            .map(|e| RecentRow {
                actor: e.display_actor(),
                action: e.action,
                env: e.env.unwrap_or_default(),
                target: e.target,
                time: apollo_time(e.time),
            })
            .collect();
        let drafts = state.cairn.pending_drafts(&caller)?;
        render(&HomePage { ctx: s.ctx(state, ""), name: s.user.name.clone(), drafts, releases })
    })
    .await
}

#[derive(Template)]
#[template(path = "apps/list.html")]
struct AppsPage {
    ctx: PageCtx,
    apps: Vec<App>,
    query: String,
    can_create: bool,
    error: Option<String>,
    form_app_id: String,
    form_name: String,
    form_org: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SearchQuery {
    q: String,
}

fn apps_page(state: &AppState, s: &PortalSession, query: String) -> Result<AppsPage, PageError> {
    let needle = query.to_ascii_lowercase();
    let apps = state
        .cairn
        .list_apps(None)?
        .into_iter()
        .filter(|a| {
            needle.is_empty()
                || a.app_id.to_ascii_lowercase().contains(&needle)
                || a.name.to_ascii_lowercase().contains(&needle)
        })
        .collect();
    Ok(AppsPage {
        ctx: s.ctx(state, ""),
        apps,
        query,
        can_create: state.cairn.may_create_apps(&s.caller()),
        error: None,
        form_app_id: String::new(),
        form_name: String::new(),
        form_org: String::new(),
    })
}

/// `GET /apps?q=`.
pub async fn apps_get(
    s: PortalSession,
    state: web::Data<AppState>,
    q: web::Query<SearchQuery>,
) -> Result<HttpResponse, PageError> {
    let q = q.into_inner().q;
    page(&state, move |state| render(&apps_page(state, &s, q)?)).await
}

#[derive(Deserialize)]
pub struct AppForm {
    #[serde(default)]
    csrf: String,
    app_id: String,
    name: String,
    #[serde(default)]
    org_id: String,
}

/// `POST /apps`.
pub async fn apps_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    form: web::Form<AppForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let f = form.into_inner();
    let (cairn, caller, user) = (state.cairn.clone(), s.caller(), s.user.name.clone());
    let new = NewApp {
        app_id: f.app_id.trim().to_string(),
        name: f.name.clone(),
        org_id: f.org_id.clone(),
        owner_name: user.clone(),
        ..Default::default()
    };
    let result = blocking(move || cairn.create_app(&caller, new, &[user], false)).await?;
    match result {
        Ok(app) => Ok(redirect(&format!("/apps/{}", app.app_id))),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::AlreadyExists(_))) => {
            page(&state, move |state| {
                let mut apps = apps_page(state, &s, String::new())?;
                apps.error = Some(e.to_string());
                (apps.form_app_id, apps.form_name, apps.form_org) = (f.app_id, f.name, f.org_id);
                render_bad_request(&apps)
            })
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// A namespace card on the app page.
struct NsCard {
    name: String,
    /// Instances seen in 25 h on the live release, and all seen.
    adoption: (usize, usize),
    format: &'static str,
    is_public: bool,
    items: usize,
    changes: usize,
    release: Option<String>,
}

#[derive(Template)]
#[template(path = "apps/detail.html")]
struct AppPage {
    ctx: PageCtx,
    can_master: bool,
    app: App,
    clusters: Vec<String>,
    cluster: String,
    namespaces: Vec<NsCard>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EnvQuery {
    env: Option<String>,
    cluster: Option<String>,
}

/// The live key/values of a namespace and the release they come from.
type Live = (Vec<(String, String)>, Option<crate::domain::model::Release>);

fn live_pairs(cairn: &Cairn, caller: &crate::service::Caller, at: NsRef<'_>) -> Result<Live, PageError> {
    let release = cairn.latest_release(caller, at)?;
    Ok((release.as_ref().map(|r| r.configurations.clone()).unwrap_or_default(), release))
}

/// `GET /apps/{app}?env=&cluster=`.
pub async fn app_get(
    s: PortalSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<EnvQuery>,
) -> Result<HttpResponse, PageError> {
    let (path, q) = (path.into_inner(), q.into_inner());
    page(&state, move |state| app_page(state, &s, &path, &q)).await
}

fn app_page(state: &AppState, s: &PortalSession, path: &str, q: &EnvQuery) -> Result<Rendered, PageError> {
    let cairn = &state.cairn;
    let caller = s.caller();
    let app = cairn.app(path)?;
    let env = match &q.env {
        Some(e) => cairn.env(e)?,
        None => cairn.settings().envs.first().cloned().unwrap_or_default(),
    };
    let cluster = q.cluster.clone().unwrap_or_else(|| "default".into());
    let clusters = cairn
        .env_clusters(&caller, &app.app_id)?
        .into_iter()
        .find(|(e, _)| *e == env)
        .map(|(_, c)| c)
        .unwrap_or_default();
    let mut namespaces = Vec::new();
    for view in cairn.list_namespaces(&caller, &env, &app.app_id, &cluster)? {
        let at = NsRef { env: &env, app: &app.app_id, cluster: &cluster, ns: &view.namespace.name };
        let (live, release) = live_pairs(cairn, &caller, at)?;
        let draft: Vec<(String, String)> = view.items.iter().map(|i| (i.key.clone(), i.value.clone())).collect();
        let seen = cairn.instances(&caller, at)?;
        let live_key = release.as_ref().map(|r| r.release_key.clone());
        let on_latest = seen.iter().filter(|i| Some(&i.release_key) == live_key.as_ref()).count();
        namespaces.push(NsCard {
            adoption: (on_latest, seen.len()),
            name: view.namespace.name.clone(),
            format: view.definition.format.as_str(),
            is_public: view.definition.is_public,
            items: view.items.len(),
            changes: diff::changes(&diff::diff(&draft, &live)),
            release: release.map(|r| format!("{} by {}, {}", r.title, r.author, apollo_time(r.created_at))),
        });
    }
    let can_master = caller.can(Permission::AppMaster { app: &app.app_id });
    render(&AppPage { ctx: s.ctx(state, &env), can_master, app, clusters, cluster, namespaces })
}

/// One row of the item table.
struct Row {
    key: String,
    value: String,
    comment: String,
    state: &'static str,
    live: Option<String>,
}

/// One history line.
struct HistoryRow {
    operation: &'static str,
    title: String,
    operator: String,
    time: String,
    release_id: u64,
    rollback_to: bool,
    /// What this release changed against the release served before it.
    changes: String,
}

/// A one-line summary of a diff: `+added ~changed -deleted`.
fn summarize(lines: &[diff::Line]) -> String {
    let mut parts = Vec::new();
    for l in lines {
        match l.state {
            State::Added => parts.push(format!("+{}", l.key)),
            State::Changed => parts.push(format!(
                "~{}: {} → {}",
                l.key,
                l.live.as_deref().unwrap_or(""),
                l.draft.as_deref().unwrap_or("")
            )),
            State::Deleted => parts.push(format!("-{}", l.key)),
            State::Unchanged => {}
        }
    }
    if parts.is_empty() {
        "no key changed".into()
    } else {
        parts.join("; ")
    }
}

#[derive(Template)]
#[template(path = "namespaces/items.html")]
struct NamespacePage {
    ctx: PageCtx,
    app_id: String,
    cluster: String,
    ns: String,
    format: &'static str,
    base: String,
    rows: Vec<Row>,
    changes: usize,
    history: Vec<HistoryRow>,
    can_modify: bool,
    can_release: bool,
    default_title: String,
    error: Option<String>,
    form_key: String,
    form_value: String,
    form_comment: String,
    /// Gray releases are offered on parent clusters only.
    gray_allowed: bool,
    branch: Option<BranchInfo>,
    emergency_allowed: bool,
}

/// The active gray branch shown on the namespace page.
struct BranchInfo {
    name: String,
    client_app: String,
    ips: String,
    labels: String,
    items: Vec<(String, String)>,
    released: bool,
}

type NsPath = web::Path<(String, String, String, String)>;

fn namespace_page(
    state: &AppState,
    s: &PortalSession,
    path: &(String, String, String, String),
) -> Result<NamespacePage, PageError> {
    let cairn = &state.cairn;
    let caller = s.caller();
    let (app, env, cluster, ns) = path;
    let env = cairn.env(env)?;
    let at = NsRef { env: &env, app, cluster, ns };
    let view = cairn.namespace(&caller, at)?;
    let (live, _) = live_pairs(cairn, &caller, at)?;
    let draft: Vec<(String, String)> = view.items.iter().map(|i| (i.key.clone(), i.value.clone())).collect();
    let lines = diff::diff(&draft, &live);
    // By key: a linear search per row made a 5,000-item page quadratic.
    let comments: std::collections::HashMap<&str, &str> =
        view.items.iter().map(|i| (i.key.as_str(), i.comment.as_str())).collect();
    let rows = lines
        .iter()
        .map(|l| Row {
            key: l.key.clone(),
            value: l.draft.clone().or_else(|| l.live.clone()).unwrap_or_default(),
            comment: comments.get(l.key.as_str()).map(|c| c.to_string()).unwrap_or_default(),
            state: l.state.as_str(),
            live: if l.state == State::Changed { l.live.clone() } else { None },
        })
        .collect();
    let active = &view.namespace.active_releases;
    let mut history = Vec::new();
    for h in cairn.history(&caller, at, 50)? {
        let title = if h.release_id == 0 {
            String::new()
        } else {
            cairn.release(&caller, &env, h.release_id).map(|r| r.title).unwrap_or_default()
        };
        let config = |id: u64| -> Vec<(String, String)> {
            if id == 0 {
                return Vec::new();
            }
            cairn.release(&caller, &env, id).map(|r| r.configurations).unwrap_or_default()
        };
        let changes = summarize(&diff::diff(&config(h.release_id), &config(h.previous_release_id)));
        history.push(HistoryRow {
            changes,
            operation: match h.operation {
                crate::domain::model::Operation::Publish => "publish",
                crate::domain::model::Operation::Rollback => "rollback",
                crate::domain::model::Operation::GrayPublish => "gray publish",
                crate::domain::model::Operation::GrayRulesChange => "gray rules",
                crate::domain::model::Operation::Merge => "merge",
                crate::domain::model::Operation::Abandon => "abandon",
            },
            title,
            operator: h.operator,
            time: apollo_time(h.time),
            release_id: h.release_id,
            rollback_to: h.release_id != 0
                && active.contains(&h.release_id)
                && view.namespace.head_release() != Some(h.release_id),
        });
    }
    history.dedup_by_key(|h| (h.release_id, h.operation));
    let name = view.namespace.name.clone();
    Ok(NamespacePage {
        ctx: s.ctx(state, &env),
        base: format!("/apps/{}/envs/{env}/clusters/{cluster}/namespaces/{name}", view.namespace.app_id),
        app_id: view.namespace.app_id.clone(),
        cluster: cluster.clone(),
        format: view.definition.format.as_str(),
        changes: diff::changes(&lines),
        rows,
        history,
        can_modify: caller.can(Permission::Modify { app, ns: &name, env: &env }),
        can_release: caller.can(Permission::Release { app, ns: &name, env: &env }),
        default_title: format!("{}-release", crate::domain::time::compact(crate::domain::time::now_ms())),
        ns: name,
        error: None,
        form_key: String::new(),
        form_value: String::new(),
        form_comment: String::new(),
        emergency_allowed: cairn.emergency_publish_allowed(&env),
        gray_allowed: cairn.cluster(&caller, &env, app, cluster).map(|c| c.parent.is_none()).unwrap_or(false),
        branch: cairn.branch(&caller, at)?.map(|b| {
            let rule = b.branch.rules.first().cloned().unwrap_or_default();
            let released = cairn.instances_release_of_branch(&env, &b.branch);
            BranchInfo {
                name: b.branch.name.clone(),
                client_app: if rule.client_app_id.is_empty() { b.branch.app_id.clone() } else { rule.client_app_id },
                ips: rule.client_ip_list.join(", "),
                labels: rule.client_label_list.join(", "),
                items: b.items.into_iter().map(|i| (i.key, i.value)).collect(),
                released,
            }
        }),
    })
}

/// `GET /apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}`.
pub async fn namespace_get(
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    q: web::Query<FlashQuery>,
) -> Result<HttpResponse, PageError> {
    let (path, flash) = (path.into_inner(), q.into_inner().done);
    page(&state, move |state| {
        let mut page = namespace_page(state, &s, &path)?;
        page.ctx.flash = flash;
        render(&page)
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct FlashQuery {
    done: Option<String>,
}

fn back(path: &(String, String, String, String), done: &str) -> HttpResponse {
    let (app, env, cluster, ns) = path;
    redirect(&format!("/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}?done={}", done.replace(' ', "+")))
}

/// Re-renders the namespace page with an inline error and the operator's input (400).
async fn with_error(
    state: &web::Data<AppState>,
    s: PortalSession,
    path: &(String, String, String, String),
    e: ServiceError,
    form: Option<(String, String, String)>,
) -> Result<HttpResponse, PageError> {
    let path = path.clone();
    page(state, move |state| {
        let mut page = namespace_page(state, &s, &path)?;
        page.error = Some(e.to_string());
        if let Some((k, v, c)) = form {
            (page.form_key, page.form_value, page.form_comment) = (k, v, c);
        }
        render_bad_request(&page)
    })
    .await
}

#[derive(Deserialize)]
pub struct ItemForm {
    #[serde(default)]
    csrf: String,
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    comment: String,
}

/// `POST .../items`: add or change an item.
pub async fn item_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    form: web::Form<ItemForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let f = form.into_inner();
    let path = path.into_inner();
    let input = ItemInput {
        key: f.key.trim().to_string(),
        value: f.value.replace("\r\n", "\n"),
        comment: Some(f.comment.clone()),
    };
    let result =
        on_namespace(&state, s.caller(), &path, move |c, caller, at| c.upsert_item(caller, at, input, Upsert::Either))
            .await?;
    match result {
        Ok(item) => Ok(back(&path, &format!("Saved {}", item.key))),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::Conflict(_))) => {
            with_error(&state, s, &path, e, Some((f.key, f.value, f.comment))).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    key: String,
}

/// `POST .../items/delete`.
pub async fn item_delete_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let path = path.into_inner();
    let key = form.into_inner().key;
    let k = key.clone();
    let result = on_namespace(&state, s.caller(), &path, move |c, caller, at| c.delete_item(caller, at, &k)).await?;
    match result {
        Ok(()) => Ok(back(&path, &format!("Deleted {key}"))),
        Err(e @ ServiceError::Conflict(_)) => with_error(&state, s, &path, e, None).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct PublishForm {
    #[serde(default)]
    csrf: String,
    title: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    emergency: bool,
}

/// `POST .../publish`.
pub async fn publish_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    form: web::Form<PublishForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let f = form.into_inner();
    let path = path.into_inner();
    let input = ReleaseInput { title: f.title, comment: f.comment, emergency: f.emergency };
    let result = on_namespace(&state, s.caller(), &path, move |c, caller, at| c.publish(caller, at, input)).await?;
    match result {
        Ok(r) => Ok(back(&path, &format!("Published {}", r.title))),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::Conflict(_))) => with_error(&state, s, &path, e, None).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RollbackForm {
    #[serde(default)]
    csrf: String,
    to: u64,
}

/// `POST .../rollback`: back to an earlier active release.
pub async fn rollback_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    form: web::Form<RollbackForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let path = path.into_inner();
    let to = form.to;
    let result =
        on_namespace(&state, s.caller(), &path, move |c, caller, at| c.rollback_namespace_to(caller, at, to)).await?;
    match result {
        Ok(r) => Ok(back(&path, &format!("Rolled back to {}", r.title))),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::Conflict(_))) => with_error(&state, s, &path, e, None).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ClusterForm {
    #[serde(default)]
    csrf: String,
    env: String,
    name: String,
}

/// `POST /apps/{app}/clusters`.
pub async fn cluster_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ClusterForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let f = form.into_inner();
    let app = path.into_inner();
    let (cairn, caller, a, name, env_raw) =
        (state.cairn.clone(), s.caller(), app.clone(), f.name.trim().to_string(), f.env.clone());
    let result = blocking(move || {
        let env = cairn.env(&env_raw)?;
        cairn.create_cluster(&caller, &env, &a, &name, "").map(|c| (env, c.name))
    })
    .await?;
    match result {
        Ok((env, name)) => Ok(redirect(&format!("/apps/{app}?env={env}&cluster={name}"))),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::AlreadyExists(_))) => {
            Err(PageError::Service(ServiceError::Conflict(e.to_string())))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct AppNamespaceForm {
    #[serde(default)]
    csrf: String,
    name: String,
    format: String,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    env: String,
}

/// `POST /apps/{app}/namespaces`: a new namespace in every cluster of the app.
pub async fn app_namespace_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<AppNamespaceForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let f = form.into_inner();
    let app = path.into_inner();
    let format = crate::domain::Format::parse(&f.format).map_err(|e| PageError::Service(e.into()))?;
    let new = crate::service::namespaces::NewAppNamespace {
        name: f.name.trim().to_string(),
        format,
        is_public: f.public,
        comment: String::new(),
        append_prefix: f.public,
    };
    let (cairn, caller, a) = (state.cairn.clone(), s.caller(), app.clone());
    let result = blocking(move || cairn.create_app_namespace(&caller, &a, new)).await?;
    match result {
        Ok(def) => Ok(redirect(&format!(
            "/apps/{app}/envs/{}/clusters/default/namespaces/{}",
            if f.env.is_empty() { "DEV" } else { &f.env },
            def.name
        ))),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::AlreadyExists(_))) => {
            Err(PageError::Service(ServiceError::Conflict(e.to_string())))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    csrf: String,
    env: String,
    cluster: String,
    namespace: String,
}

/// `POST /apps/{app}/link`: associate another app's public namespace to override its keys.
pub async fn link_post(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<LinkForm>,
) -> Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let f = form.into_inner();
    let app = path.into_inner();
    let (cairn, caller, a, e, c, n) = (
        state.cairn.clone(),
        s.caller(),
        app.clone(),
        f.env.clone(),
        f.cluster.clone(),
        f.namespace.trim().to_string(),
    );
    let linked = blocking(move || {
        let env = cairn.env(&e)?;
        cairn.link_namespace(&caller, &env, &a, &c, &n).map(|ns| (env, ns.name))
    })
    .await?;
    match linked {
        Ok((env, ns)) => Ok(redirect(&format!("/apps/{app}/envs/{env}/clusters/{}/namespaces/{ns}", f.cluster))),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::AlreadyExists(_) | ServiceError::NotFound(_))) => {
            Err(PageError::Service(ServiceError::Conflict(e.to_string())))
        }
        Err(e) => Err(e.into()),
    }
}
