//! Keeps the dependency direction honest: lower layers never name upper ones.

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// True when `text` names `word` as a whole identifier path (`store::T`, not `store::Tx`).
fn names(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back().is_none_or(|c| !ident(c) || !word.starts_with(ident));
        let after = text[i + word.len()..].chars().next().is_none_or(|c| !ident(c) || !word.ends_with(ident));
        before && after
    })
}

fn assert_layer(layer: &str, forbidden: &[&str]) {
    assert_layer_with(layer, forbidden, |text, word| text.contains(word));
}

fn assert_layer_with(layer: &str, forbidden: &[&str], mentions: fn(&str, &str) -> bool) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(layer);
    let mut files = Vec::new();
    if root.is_dir() {
        sources(&root, &mut files);
    } else {
        files.push(root.clone());
    }
    assert!(!files.is_empty(), "no sources under {}", root.display());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for word in forbidden {
            assert!(!mentions(&text, word), "{} mentions {word}", f.display());
        }
    }
}

#[test]
fn lower_layers_do_not_import_upper_layers() {
    assert_layer(
        "domain",
        &["crate::store", "crate::service", "crate::web", "crate::security", "actix", "askama", "sled::"],
    );
    assert_layer("security", &["crate::store", "crate::service", "crate::web", "actix", "askama"]);
    assert_layer("store", &["crate::service", "crate::web", "actix", "askama"]);
    assert_layer("service", &["crate::web", "actix", "askama", "sled"]);
    assert_layer("web/apollo", &["crate::web::openapi", "sled::"]);
    assert_layer("web/openapi", &["crate::web::apollo", "sled::"]);
    assert_layer("settings.rs", &["crate::service", "crate::web", "crate::store::"]);
}

/// Storage is reached through the repository seam only: keys, trees and write sets stay
/// inside the engine, and the web layer goes through the service for storage and secrets.
#[test]
fn storage_is_reached_through_the_repository_seam() {
    let seam = ["store::keys", "store::T", "store::sled", "WriteSet", "sled", "SledStore"];
    for layer in ["service", "web", "cli", "server.rs", "main.rs", "agent.rs", "domain", "security"] {
        assert_layer_with(layer, &seam, names);
    }
    assert_layer("web", &["crate::store", "crate::security", ".repo()", "sled"]);
    assert!(names("use crate::store::{keys, T};", "T") && !names("store::Tx", "store::T"));
}

/// actix-http's `http2` feature (it needs the `h2` crate) makes every connection's task
/// 1.6 KiB larger, which 10,000 held long polls pay in full: no dependency may bring it in.
#[test]
fn nothing_enables_http2_in_the_server() {
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap();
    assert!(
        !lock.lines().any(|l| l == "name = \"h2\""),
        "Cargo.lock contains the h2 crate: a dependency turned on HTTP/2 (see docs/architecture.md, Memory)"
    );
}
