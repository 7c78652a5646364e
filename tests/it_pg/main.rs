//! Cairn's integration suite on the PostgreSQL engine: the groups of `tests/it`, compiled a
//! second time, where the harness (`common`) gives every server a fresh database of one
//! PostgreSQL cluster this process starts. Tests about the embedded store's files skip
//! themselves here (`common::sled_only`).
//!
//! Not repeated here: groups about the embedded store only (`security_store`: blob sync, a
//! full disk), the CLI (`cli`; its PostgreSQL side has tests of its own), the agent and the rollout journeys (`agent`, `delivery`, `browser`: the client
//! side, over the same protocol `apollo_protocol` and `notifications` cover here), and the
//! engine's own tests (`store_conformance`, `pg_*`), which already run on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../it/access_keys.rs"]
mod access_keys;
#[path = "../it/apollo_client.rs"]
mod apollo_client;
#[path = "../it/apollo_protocol.rs"]
mod apollo_protocol;
#[path = "../it/authz_matrix.rs"]
mod authz_matrix;
#[path = "../it/backup.rs"]
mod backup;
#[path = "../it/common/mod.rs"]
mod common;
#[path = "../it/durability.rs"]
mod durability;
mod engine;
#[path = "../it/format_properties.rs"]
mod format_properties;
#[path = "../it/gray.rs"]
mod gray;
#[path = "../it/malformed.rs"]
mod malformed;
#[path = "../it/notifications.rs"]
mod notifications;
#[path = "../it/open_api.rs"]
mod open_api;
#[path = "../it/operations.rs"]
mod operations;
#[path = "../it/portal_http.rs"]
mod portal_http;
#[path = "../it/security_auth.rs"]
mod security_auth;
#[path = "../it/security_input.rs"]
mod security_input;
#[path = "../it/security_surface.rs"]
mod security_surface;
#[path = "../it/zero_downtime.rs"]
mod zero_downtime;
