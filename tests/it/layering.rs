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

fn assert_layer(layer: &str, forbidden: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(layer);
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(!files.is_empty(), "no sources under {}", root.display());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for word in forbidden {
            assert!(!text.contains(word), "{} mentions {word}", f.display());
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
    assert_layer("service", &["crate::web", "actix", "askama", "sled::"]);
    assert_layer("web/apollo", &["crate::web::openapi", "sled::"]);
    assert_layer("web/openapi", &["crate::web::apollo", "sled::"]);
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
