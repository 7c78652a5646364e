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

pub use auth::{PortalSession, SESSION_COOKIE};

/// Registers the portal routes on the main listener.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{path:.*}", web::get().to(assets::serve))
        .route("/", web::get().to(pages::home))
        .route("/login", web::get().to(auth::login_get))
        .route("/login", web::post().to(auth::login_post))
        .route("/logout", web::post().to(auth::logout_post))
        .route("/setup", web::get().to(auth::setup_get))
        .route("/setup", web::post().to(auth::setup_post))
        .route("/account", web::get().to(auth::account_get))
        .route("/account/password", web::post().to(auth::password_post))
        .route("/users", web::get().to(users::users_get))
        .route("/users", web::post().to(users::users_post))
        .route("/users/grants", web::post().to(users::grants_post))
        .route("/users/password", web::post().to(users::password_post))
        .route("/users/{name}/enabled", web::post().to(users::enabled_post))
        .route("/users/{name}/create-apps", web::post().to(users::create_apps_post))
        .route("/apps/{app}/clusters", web::post().to(pages::cluster_post))
        .route("/apps/{app}/namespaces", web::post().to(pages::app_namespace_post))
        .route("/apps", web::get().to(pages::apps_get))
        .route("/apps", web::post().to(pages::apps_post))
        .route("/apps/{app}", web::get().to(pages::app_get))
        .route("/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}", web::get().to(pages::namespace_get))
        .route("/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/items", web::post().to(pages::item_post))
        .route(
            "/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/items/delete",
            web::post().to(pages::item_delete_post),
        )
        .route("/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/publish", web::post().to(pages::publish_post))
        .route(
            "/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/rollback",
            web::post().to(pages::rollback_post),
        )
        .route("/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/text", web::get().to(extra::text_get))
        .route("/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/text", web::post().to(extra::text_post))
        .route("/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/discard", web::post().to(extra::discard_post))
        .route(
            "/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/instances",
            web::get().to(extra::instances_get),
        )
        .route("/audit", web::get().to(extra::audit_get))
        .route("/apps/{app}/link", web::post().to(pages::link_post))
        .route("/apps/{app}/compare", web::get().to(compare::compare_get))
        .route("/apps/{app}/compare", web::post().to(compare::compare_post))
        .route("/consumers", web::get().to(keys::consumers_get))
        .route("/consumers", web::post().to(keys::consumer_create))
        .route("/consumers/grants", web::post().to(keys::consumer_grant))
        .route("/apps/{app}/envs/{env}/accesskeys", web::get().to(keys::keys_get))
        .route("/apps/{app}/envs/{env}/accesskeys", web::post().to(keys::key_create))
        .route("/apps/{app}/envs/{env}/accesskeys/{id}/{action}", web::post().to(keys::key_action))
        .route("/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/gray/create", web::post().to(gray::create))
        .route("/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/gray/items", web::post().to(gray::item))
        .route("/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/gray/rules", web::post().to(gray::rules))
        .route("/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/gray/publish", web::post().to(gray::publish))
        .route("/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/gray/merge", web::post().to(gray::merge))
        .route("/apps/{app}/envs/{env}/clusters/{cluster}/namespaces/{ns}/gray/abandon", web::post().to(gray::abandon));
}
