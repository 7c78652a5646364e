//! Gray releases from the namespace page: branch, gray items, rules, gray publish, merge,
//! abandon. Each calls the same service function as the Open API.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::auth::{on_namespace, redirect, PageError, PortalSession};
use crate::domain::model::GrayRuleItem;
use crate::service::items::{ItemInput, Upsert};
use crate::service::releases::ReleaseInput;
use crate::service::{Cairn, Caller, NsRef, Result};
use crate::web::AppState;

type NsPath = web::Path<(String, String, String, String)>;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct GrayForm {
    csrf: String,
    key: String,
    value: String,
    client_app: String,
    ips: String,
    labels: String,
    title: String,
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
}

/// Runs one gray action for the namespace of `path`, then returns to its page.
async fn act(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    form: web::Form<GrayForm>,
    done: &'static str,
    f: fn(&Cairn, &Caller, NsRef<'_>, GrayForm) -> Result<()>,
) -> std::result::Result<HttpResponse, PageError> {
    s.check_form(&req, &form.csrf)?;
    let p = path.into_inner();
    let form = form.into_inner();
    on_namespace(&state, s.caller(), &p, move |c, caller, at| f(c, caller, at, form)).await??;
    Ok(redirect(&format!("/apps/{}/envs/{}/clusters/{}/namespaces/{}?done={done}", p.0, p.1, p.2, p.3)))
}

fn branch_name(cairn: &Cairn, caller: &Caller, at: NsRef<'_>) -> Result<String> {
    cairn
        .branch(caller, at)?
        .map(|b| b.branch.name)
        .ok_or_else(|| crate::service::ServiceError::not_found("this namespace has no gray branch; create one first"))
}

/// `POST .../gray/create`.
pub async fn create(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    form: web::Form<GrayForm>,
) -> std::result::Result<HttpResponse, PageError> {
    act(req, s, state, path, form, "Gray+branch+created", |c, caller, at, _| c.create_branch(caller, at).map(|_| ()))
        .await
}

/// `POST .../gray/items`: an item of the branch.
pub async fn item(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    form: web::Form<GrayForm>,
) -> std::result::Result<HttpResponse, PageError> {
    act(req, s, state, path, form, "Gray+item+saved", |c, caller, at, f| {
        let branch = branch_name(c, caller, at)?;
        let input = ItemInput { key: f.key.trim().to_string(), value: f.value, comment: None };
        c.upsert_item(caller, NsRef { cluster: &branch, ..at }, input, Upsert::Either).map(|_| ())
    })
    .await
}

/// `POST .../gray/rules`: one rule of client app, ips and labels.
pub async fn rules(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    form: web::Form<GrayForm>,
) -> std::result::Result<HttpResponse, PageError> {
    act(req, s, state, path, form, "Gray+rules+saved", |c, caller, at, f| {
        let branch = branch_name(c, caller, at)?;
        let rule = GrayRuleItem {
            client_app_id: f.client_app.trim().to_string(),
            client_ip_list: list(&f.ips),
            client_label_list: list(&f.labels),
        };
        c.update_branch_rules(caller, at, &branch, vec![rule])
    })
    .await
}

/// `POST .../gray/publish`.
pub async fn publish(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    form: web::Form<GrayForm>,
) -> std::result::Result<HttpResponse, PageError> {
    act(req, s, state, path, form, "Gray+release+published", |c, caller, at, f| {
        let branch = branch_name(c, caller, at)?;
        c.gray_publish(
            caller,
            at,
            &branch,
            ReleaseInput { title: f.title, comment: String::new(), emergency: false },
            &[],
        )
        .map(|_| ())
    })
    .await
}

/// `POST .../gray/merge`: the branch items become the main draft, published at once.
pub async fn merge(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    form: web::Form<GrayForm>,
) -> std::result::Result<HttpResponse, PageError> {
    act(req, s, state, path, form, "Gray+release+merged", |c, caller, at, _| {
        let branch = branch_name(c, caller, at)?;
        let title = format!("{}-merge", crate::domain::time::compact(crate::domain::time::now_ms()));
        c.merge_branch(caller, at, &branch, ReleaseInput { title, comment: String::new(), emergency: false }, true)
            .map(|_| ())
    })
    .await
}

/// `POST .../gray/abandon`.
pub async fn abandon(
    req: HttpRequest,
    s: PortalSession,
    state: web::Data<AppState>,
    path: NsPath,
    form: web::Form<GrayForm>,
) -> std::result::Result<HttpResponse, PageError> {
    act(req, s, state, path, form, "Gray+release+abandoned", |c, caller, at, _| {
        let branch = branch_name(c, caller, at)?;
        c.delete_branch(caller, at, &branch)
    })
    .await
}
