//! Key layouts. Components are joined with NUL (names never contain it); numbers are 8-byte
//! big-endian so keys sort numerically. Env comes first in every env-scoped key.

/// Meta key holding the schema version.
pub const SCHEMA_VERSION: &[u8] = b"schema_version";

fn join(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for p in parts {
        out.extend_from_slice(p.as_bytes());
        out.push(0);
    }
    out
}

fn with_u64(mut prefix: Vec<u8>, n: u64) -> Vec<u8> {
    prefix.extend_from_slice(&n.to_be_bytes());
    prefix
}

/// A named counter (ids) in the meta tree.
pub fn counter(name: &str) -> Vec<u8> {
    join(&["counter", name])
}

/// apps: app id.
pub fn app(app: &str) -> Vec<u8> {
    join(&[app])
}

/// app namespaces: (app, name).
pub fn app_namespace(app: &str, ns: &str) -> Vec<u8> {
    join(&[app, ns])
}

/// Prefix of every app namespace of an app.
pub fn app_namespaces_of(app: &str) -> Vec<u8> {
    join(&[app])
}

/// clusters: (env, app, cluster).
pub fn cluster(env: &str, app: &str, cluster: &str) -> Vec<u8> {
    join(&[env, app, cluster])
}

/// Prefix of every cluster of an app in an env.
pub fn clusters_of(env: &str, app: &str) -> Vec<u8> {
    join(&[env, app])
}

/// Prefix of everything of one env.
pub fn env(env: &str) -> Vec<u8> {
    join(&[env])
}

/// namespaces: (env, app, cluster, namespace).
pub fn namespace(env: &str, app: &str, cluster: &str, ns: &str) -> Vec<u8> {
    join(&[env, app, cluster, ns])
}

/// Prefix of every namespace of a cluster.
pub fn namespaces_of(env: &str, app: &str, cluster: &str) -> Vec<u8> {
    join(&[env, app, cluster])
}

/// items: namespace key + item key.
pub fn item(env: &str, app: &str, cluster: &str, ns: &str, key: &str) -> Vec<u8> {
    let mut k = namespace(env, app, cluster, ns);
    k.extend_from_slice(key.as_bytes());
    k
}

/// release chunks: (env, release id, chunk number).
pub fn release_chunk(env_name: &str, id: u64, chunk: u16) -> Vec<u8> {
    let mut k = release(env_name, id);
    k.extend_from_slice(&chunk.to_be_bytes());
    k
}

/// Prefix of the chunks of one release.
pub fn release(env_name: &str, id: u64) -> Vec<u8> {
    with_u64(env(env_name), id)
}

/// history: namespace key + sequence number.
pub fn history(env: &str, app: &str, cluster: &str, ns: &str, seq: u64) -> Vec<u8> {
    with_u64(namespace(env, app, cluster, ns), seq)
}

/// branches: (env, app, parent cluster, namespace) — at most one branch each, as in Apollo.
pub fn branch(env: &str, app: &str, parent: &str, ns: &str) -> Vec<u8> {
    namespace(env, app, parent, ns)
}

/// release messages: (env, lower-case watch key).
pub fn message(env: &str, watch_key_lower: &str) -> Vec<u8> {
    join(&[env, watch_key_lower])
}

/// commits: namespace key + commit id.
pub fn commit(env: &str, app: &str, cluster: &str, ns: &str, id: u64) -> Vec<u8> {
    with_u64(namespace(env, app, cluster, ns), id)
}

/// audit: id.
pub fn audit(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// access keys: (env, app, id).
pub fn access_key(env: &str, app: &str, id: u64) -> Vec<u8> {
    with_u64(join(&[env, app]), id)
}

/// Prefix of the access keys of an app in an env.
pub fn access_keys_of(env: &str, app: &str) -> Vec<u8> {
    join(&[env, app])
}

/// users and consumers: name.
pub fn name(name: &str) -> Vec<u8> {
    join(&[name])
}

/// consumer tokens: SHA-256 hex of the token.
pub fn token(sha_hex: &str) -> Vec<u8> {
    sha_hex.as_bytes().to_vec()
}

/// instances: (env, app, cluster, data center, ip, config app, config namespace).
pub fn instance(env: &str, app: &str, cluster: &str, dc: &str, ip: &str, config_app: &str, config_ns: &str) -> Vec<u8> {
    join(&[env, app, cluster, dc, ip, config_app, config_ns])
}
