//! The delivery kit: Kubernetes manifests validate against the Kubernetes schemas (offline),
//! and the example configuration, Dockerfile and systemd unit say what they must.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn tool(name: &str) -> bool {
    Command::new(name).arg("--help").output().map(|o| o.status.success()).unwrap_or(false)
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    if !(tool("kubectl") && tool("kubernetes-validate")) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have kubectl and kubernetes-validate (.ci/run installs them)"
        );
        eprintln!("skipped: kubectl or kubernetes-validate missing (pip install kubernetes-validate)");
        return;
    }
    let k8s = root().join("packaging/kubernetes");
    let mut dirs = vec![k8s.join("cairn"), k8s.join("app/base")];
    for e in std::fs::read_dir(k8s.join("app/overlays")).unwrap() {
        dirs.push(e.unwrap().path());
    }
    assert!(dirs.len() >= 6, "{dirs:?}");
    let out_dir = tempfile::tempdir().unwrap();
    for dir in dirs {
        let built = Command::new("kubectl").arg("kustomize").arg(&dir).output().unwrap();
        assert!(built.status.success(), "kustomize {}: {}", dir.display(), String::from_utf8_lossy(&built.stderr));
        let file = out_dir.path().join("manifest.yaml");
        std::fs::write(&file, &built.stdout).unwrap();
        let v = Command::new("kubernetes-validate").args(["--strict", "--quiet"]).arg(&file).output().unwrap();
        assert!(
            v.status.success(),
            "{} does not validate:\n{}{}",
            dir.display(),
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
        let text = String::from_utf8_lossy(&built.stdout);
        if dir.ends_with("pro") {
            assert!(text.contains("/envs/PRO"), "the PRO overlay must point the app at PRO");
        }
    }
}

#[test]
fn the_example_configuration_loads() {
    let path = root().join("packaging/cairn.toml");
    let s = cairn::settings::Settings::load(Some(&path), Default::default()).unwrap();
    assert_eq!(s.envs.len(), 4);
    assert!(s.env("PRO").unwrap().four_eyes);
    let k8s = std::fs::read_to_string(root().join("packaging/kubernetes/cairn/configmap.yaml")).unwrap();
    let toml_text: String = k8s
        .lines()
        .skip_while(|l| !l.contains("cairn.toml: |"))
        .skip(1)
        .map(|l| format!("{}\n", l.trim_start()))
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), toml_text).unwrap();
    assert!(cairn::settings::Settings::load(Some(file.path()), Default::default()).is_ok());
}

#[test]
fn the_image_and_the_unit_are_hardened() {
    let docker = std::fs::read_to_string(root().join("packaging/docker/Dockerfile")).unwrap();
    for needle in ["AS build", "USER 10001", "VOLUME [\"/var/lib/cairn\"]", "HEALTHCHECK", "\"cairn\", \"healthcheck\""]
    {
        assert!(docker.contains(needle), "Dockerfile lacks {needle}");
    }
    let unit = std::fs::read_to_string(root().join("packaging/systemd/cairn.service")).unwrap();
    for needle in [
        "DynamicUser=yes",
        "StateDirectory=cairn",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ExecStart=/usr/local/bin/cairn serve",
    ] {
        assert!(unit.contains(needle), "cairn.service lacks {needle}");
    }
}
