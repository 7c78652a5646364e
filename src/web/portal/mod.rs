//! The portal: server-rendered pages (askama) for operators. Handlers parse the form, call
//! one service function and render; rules stay in `service/`. Imports no sibling under `web/`
//! but the shared error type.

mod assets;
mod auth;
mod compare;
mod extra;
mod gray;
mod keys;
mod pages;
mod render;
mod users;

use actix_web::web;

use super::routes::{get, post, Access, RouteSpec};

pub use auth::{PageError, PortalSession, SESSION_COOKIE};

/// Every portal route with the right it needs (see `web::routes`).
pub fn routes() -> Vec<RouteSpec> {
    use Access::*;
    const NS: &str = "/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}";
    let ns = |tail: &str| format!("{NS}{tail}");
    vec![
        get("/static/{path:.*}", Public, assets::serve),
        get("/", Authenticated, pages::home),
        get("/login", Public, auth::login_get),
        post("/login", Public, auth::login_post),
        post("/logout", Authenticated, auth::logout_post),
        get("/setup", Public, auth::setup_get),
        post("/setup", Public, auth::setup_post),
        get("/account", Authenticated, auth::account_get),
        post("/account/password", Authenticated, auth::password_post),
        get("/users", Admin, users::users_get),
        post("/users", Admin, users::users_post),
        post("/users/grants", Admin, users::grants_post),
        post("/users/password", Admin, users::password_post),
        post("/users/{name}/enabled", Admin, users::enabled_post),
        post("/users/{name}/create-apps", Admin, users::create_apps_post),
        post("/apps/{app}/clusters", AppMaster, pages::cluster_post),
        post("/apps/{app}/namespaces", AppMaster, pages::app_namespace_post),
        get("/apps", Authenticated, pages::apps_get),
        post("/apps", CreateApp, pages::apps_post),
        get("/apps/{app}", SeeApp, pages::app_get),
        get(NS, Read, pages::namespace_get),
        post(&ns("/items"), Modify, pages::item_post),
        post(&ns("/items/delete"), Modify, pages::item_delete_post),
        post(&ns("/publish"), Release, pages::publish_post),
        post(&ns("/rollback"), Release, pages::rollback_post),
        get(&ns("/text"), Read, extra::text_get),
        post(&ns("/text"), Modify, extra::text_post),
        post(&ns("/discard"), Modify, extra::discard_post),
        get(&ns("/instances"), Read, extra::instances_get),
        get("/audit", Admin, extra::audit_get),
        post("/apps/{app}/link", AppMaster, pages::link_post),
        get("/apps/{app}/compare", Read, compare::compare_get),
        post("/apps/{app}/compare", Modify, compare::compare_post),
        get("/consumers", Admin, keys::consumers_get),
        post("/consumers", Admin, keys::consumer_create),
        post("/consumers/grants", Admin, keys::consumer_grant),
        get("/apps/{app}/envs/{env}/accesskeys", AppMaster, keys::keys_get),
        post("/apps/{app}/envs/{env}/accesskeys", AppMaster, keys::key_create),
        post("/apps/{app}/envs/{env}/accesskeys/{id}/{action}", AppMaster, keys::key_action),
        post(&ns("/gray/create"), Modify, gray::create),
        post(&ns("/gray/items"), Modify, gray::item),
        post(&ns("/gray/rules"), Release, gray::rules),
        post(&ns("/gray/publish"), Release, gray::publish),
        post(&ns("/gray/merge"), Release, gray::merge),
        post(&ns("/gray/abandon"), Release, gray::abandon),
    ]
}

/// Registers the portal routes on the main listener.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for mut spec in routes() {
        if let Some(route) = spec.take_route() {
            cfg.route(&spec.path, route);
        }
    }
}
