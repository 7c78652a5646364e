//! Cairn: a configuration center in one binary. Apollo's data model, client protocol and
//! Open API over an embedded sled store, with a server-rendered portal.
//!
//! Layers, each importing only the ones below it:
//! `web` → `service` → `store` → `domain`, with `security` beside `domain`.

pub mod agent;
pub mod cli;
pub mod domain;
pub mod security;
pub mod server;
pub mod service;
pub mod settings;
pub mod store;
pub mod web;
