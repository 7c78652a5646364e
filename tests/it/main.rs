//! Cairn's integration tests: one binary, one module per surface.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access_keys;
mod agent;
mod apollo_client;
mod apollo_protocol;
mod authz_matrix;
mod backup;
mod browser;
mod cli;
mod cli_pg;
mod common;
mod delivery;
mod durability;
mod format_properties;
mod gray;
mod layering;
mod malformed;
mod notifications;
mod open_api;
mod operations;
mod packaging;
mod pg_durability;
mod pg_faults;
mod pg_migration;
mod pg_serve;
mod pg_workers;
mod portal_http;
mod security_auth;
mod security_input;
mod security_store;
mod security_surface;
mod store_conformance;
mod zero_downtime;
