//! An example app configured only through Cairn, for the zero-downtime walkthrough and its
//! end-to-end test. It answers `GET /` with the `greeting` key of its `application`
//! namespace and picks up every release without a restart.
//!
//! Two ways to get the configuration, as in the Kubernetes example:
//! - `APOLLO_META=http://cairn:8080/envs/PRO APP_ID=greeter`: an Apollo client (the
//!   `apollo-client` crate) long-polls Cairn directly;
//! - `CONFIG_FILE=/config/application.properties`: files kept current by `cairn agent`.
//!
//! `LISTEN` (default 127.0.0.1:8000) is where it serves; it logs `greeter listening on ...`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use apollo_client::conf::requests::WatchRequest;
use apollo_client::conf::ApolloConfClientBuilder;
use futures_util::StreamExt;

type Greeting = Arc<RwLock<Option<String>>>;

async fn watch_cairn(meta: String, app_id: String, greeting: Greeting) {
    let client =
        ApolloConfClientBuilder::new_via_config_service(url::Url::parse(&meta).expect("APOLLO_META must be a URL"))
            .unwrap()
            .build()
            .unwrap();
    let stream =
        client.watch(WatchRequest { app_id, namespace_names: vec!["application".into()], ..Default::default() });
    futures_util::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(responses) => {
                for (_, response) in responses {
                    match response {
                        Ok(r) => {
                            if let Some(g) = r.configurations.get("greeting") {
                                *greeting.write().unwrap() = Some(g.clone());
                            }
                        }
                        // Keep serving the last configuration; the client retries.
                        Err(e) => eprintln!("greeter: fetch failed, keeping last config: {e}"),
                    }
                }
            }
            Err(e) => {
                eprintln!("greeter: Cairn unreachable, keeping last config: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn watch_file(path: String, greeting: Greeting) {
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Some((_, v)) = cairn::domain::properties::parse(&text).into_iter().find(|(k, _)| k == "greeting") {
                *greeting.write().unwrap() = Some(v);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let greeting: Greeting = Arc::new(RwLock::new(None));
    match (std::env::var("CONFIG_FILE"), std::env::var("APOLLO_META")) {
        (Ok(file), _) => {
            actix_web::rt::spawn(watch_file(file, greeting.clone()));
        }
        (_, Ok(meta)) => {
            let app_id = std::env::var("APP_ID").unwrap_or_else(|_| "greeter".into());
            actix_web::rt::spawn(watch_cairn(meta, app_id, greeting.clone()));
        }
        _ => panic!("set APOLLO_META (and APP_ID) or CONFIG_FILE"),
    }
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8000".into());
    let data = web::Data::new(greeting);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route(
                "/",
                web::get().to(|g: web::Data<Greeting>| async move {
                    match g.read().unwrap().clone() {
                        Some(text) => HttpResponse::Ok().body(text),
                        None => HttpResponse::ServiceUnavailable().body("no configuration yet"),
                    }
                }),
            )
            .route(
                "/ready",
                web::get().to(|g: web::Data<Greeting>| async move {
                    if g.read().unwrap().is_some() {
                        HttpResponse::Ok().finish()
                    } else {
                        HttpResponse::ServiceUnavailable().finish()
                    }
                }),
            )
    })
    .workers(1)
    .bind(&listen)?;
    eprintln!("greeter listening on http://{}", server.addrs()[0]);
    server.run().await
}
