//! A real Apollo client (the `apollo-client` crate) against Cairn, unchanged.

use std::time::Duration;

use apollo_client::conf::requests::{FetchRequest, WatchRequest};
use apollo_client::conf::ApolloConfClientBuilder;
use futures_util::StreamExt;
use reqwest::Method;
use url::Url;

use crate::common::{TestServer, ADMIN};

#[tokio::test]
async fn the_apollo_client_crate_fetches_and_receives_a_release_through_its_long_poll() {
    let s = TestServer::start().await;
    s.seed_app("SampleApp").await;
    s.publish("DEV", "SampleApp", "application", &[("timeout", "100")]).await;

    let client = ApolloConfClientBuilder::new_via_config_service(Url::parse(&s.url("/envs/DEV")).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let fetched = client
        .fetch(FetchRequest { app_id: "SampleApp".into(), namespace_name: "application".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(fetched.configurations.get("timeout").map(String::as_str), Some("100"));

    let stream = client.watch(WatchRequest {
        app_id: "SampleApp".into(),
        namespace_names: vec!["application".into()],
        ..Default::default()
    });
    futures_util::pin_mut!(stream);
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(first["application"].as_ref().unwrap().configurations["timeout"], "100");

    let publisher = async {
        // Wait until the client's long poll is parked, then release.
        s.wait_held_polls(1).await;
        s.publish("DEV", "SampleApp", "application", &[("timeout", "250")]).await;
    };
    let (next, _) = tokio::join!(tokio::time::timeout(Duration::from_secs(10), stream.next()), publisher);
    let next = next.unwrap().unwrap().unwrap();
    assert_eq!(next["application"].as_ref().unwrap().configurations["timeout"], "250");
}

#[tokio::test]
async fn the_apollo_client_crate_signs_requests_cairn_accepts() {
    let s = TestServer::start().await;
    s.seed_app("SampleApp").await;
    s.publish("DEV", "SampleApp", "application", &[("k", "v")]).await;
    let key = s.open(Method::POST, &format!("/apps/SampleApp/envs/DEV/accesskeys?operator={ADMIN}"), None).await.json();
    let id = key["id"].as_u64().unwrap();
    let secret = key["secret"].as_str().unwrap().to_string();
    s.open(Method::PUT, &format!("/apps/SampleApp/envs/DEV/accesskeys/{id}/activation?mode=0&operator={ADMIN}"), None)
        .await;

    let client = ApolloConfClientBuilder::new_via_config_service(Url::parse(&s.url("/envs/DEV")).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let denied = client
        .fetch(FetchRequest { app_id: "SampleApp".into(), namespace_name: "application".into(), ..Default::default() })
        .await;
    assert!(denied.is_err());
    let ok = client
        .fetch(FetchRequest {
            app_id: "SampleApp".into(),
            namespace_name: "application".into(),
            access_key: Some(secret),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ok.configurations["k"], "v");
}
