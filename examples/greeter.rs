//! An example app configured only through Cairn, for the zero-downtime walkthrough and its
//! end-to-end test. It answers `GET /` with the `greeting` key of its `application`
//! namespace and picks up every release without a restart.
//!
//! Two ways to get the configuration, as in the Kubernetes example:
//! - `APOLLO_META=http://cairn:8080/envs/PRO APP_ID=greeter`: an Apollo client (the
//!   `apollo-client` crate) long-polls Cairn directly;
//! - `CONFIG_FILE=/config/application.properties`: files kept current by `cairn agent`.
//!
//! `LISTEN` (default 127.0.0.1:8000; the container image sets 0.0.0.0:8000) is where it
//! serves; it logs `greeter listening on ...`. `/health` is liveness (the process answers),
//! `/ready` readiness (it has a configuration and is not draining).
//!
//! Draining: on SIGTERM it keeps serving for `DRAIN_SECS` (default 5) but answers every
//! request with `Connection: close` and `/ready` with 503, then stops. Behind an L4 balancer
//! (kube-proxy) clients hold keep-alive connections to this very instance; closing them after
//! a response, never under a request in flight, moves each client to another instance
//! without a failed request. No `preStop` hook is needed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::dev::Service;
use actix_web::http::ConnectionType;
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
        // A tiny file: re-reading it often keeps a release's delay to the agent's own.
        tokio::time::sleep(Duration::from_millis(100)).await;
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
    let drain_secs: u64 = std::env::var("DRAIN_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let draining = Arc::new(AtomicBool::new(false));
    let data = web::Data::new(greeting);
    let drain_flag = draining.clone();
    let server = HttpServer::new(move || {
        let closing = drain_flag.clone();
        let not_ready = drain_flag.clone();
        App::new()
            .app_data(data.clone())
            .wrap_fn(move |req, srv| {
                let closing = closing.clone();
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    if closing.load(Ordering::SeqCst) {
                        res.response_mut().head_mut().set_connection_type(ConnectionType::Close);
                    }
                    Ok(res)
                }
            })
            .route("/health", web::get().to(|| async { HttpResponse::Ok().body("ok") }))
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
                web::get().to(move |g: web::Data<Greeting>| {
                    let draining = not_ready.load(Ordering::SeqCst);
                    async move {
                        if g.read().unwrap().is_some() && !draining {
                            HttpResponse::Ok().finish()
                        } else {
                            HttpResponse::ServiceUnavailable().finish()
                        }
                    }
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .bind(&listen)?;
    eprintln!("greeter listening on http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        draining.store(true, Ordering::SeqCst);
        eprintln!("greeter draining for {drain_secs} s: answering with Connection: close");
        tokio::time::sleep(Duration::from_secs(drain_secs)).await;
        handle.stop(true).await;
    });
    server.await
}
