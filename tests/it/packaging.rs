//! The delivery kit: Kubernetes manifests validate against the Kubernetes schemas (offline)
//! at the minimum version the docs state, hold no password, publish no client path and
//! separate the envs; the doc's walkthrough runs in order against stand-ins for the cluster;
//! the example configuration, Dockerfile and systemd unit say what they must.

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
        // The newest schemas, and the minimum version docs/zero-downtime.md states.
        for version in [None, Some(MIN_KUBERNETES)] {
            let mut cmd = Command::new("kubernetes-validate");
            cmd.args(["--strict", "--quiet"]);
            if let Some(v) = version {
                cmd.args(["-k", v]);
            }
            let v = cmd.arg(&file).output().unwrap();
            assert!(
                v.status.success(),
                "{} does not validate ({version:?}):\n{}{}",
                dir.display(),
                String::from_utf8_lossy(&v.stdout),
                String::from_utf8_lossy(&v.stderr)
            );
        }
        let text = String::from_utf8_lossy(&built.stdout);
        if dir.ends_with("pro") {
            assert!(text.contains("cairn.cairn.svc:8084"), "the PRO overlay must point the app at PRO's port");
        }
    }
}

#[test]
fn the_example_configuration_loads() {
    let path = root().join("packaging/cairn.toml");
    let s = cairn::settings::Settings::load(Some(&path), Default::default()).unwrap();
    assert_eq!(s.envs.len(), 4);
    assert!(s.env("PRO").unwrap().four_eyes);
    let k8s = root().join("packaging/kubernetes/cairn/cairn.toml");
    let s = cairn::settings::Settings::load(Some(&k8s), Default::default()).unwrap();
    assert!(s.envs.iter().all(|(_, e)| e.listen.is_some()), "every env has its own listener in Kubernetes");
}

#[test]
fn the_image_and_the_unit_are_hardened() {
    let docker = std::fs::read_to_string(root().join("packaging/docker/Dockerfile")).unwrap();
    for needle in [
        "AS build",
        "AS greeter",
        "USER 10001",
        "VOLUME [\"/var/lib/cairn\"]",
        "HEALTHCHECK",
        "CMD [\"cairn\", \"healthcheck\"]",
        "ENV LISTEN=0.0.0.0:8000",
    ] {
        assert!(docker.contains(needle), "Dockerfile lacks {needle}");
    }
    // Base images pinned to a version (a floating `rust:1-...` or `debian:bookworm-slim` is not).
    for line in docker.lines().filter(|l| l.starts_with("ARG ") && l.contains("_IMAGE=")) {
        let image = line.split_once('=').unwrap().1;
        let tag = image.split_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(tag.split('-').next().unwrap().matches('.').count() >= 1, "{image} is not pinned to a version");
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

/// The oldest Kubernetes the manifests support (native sidecars), as docs/zero-downtime.md says.
const MIN_KUBERNETES: &str = "1.29";

/// Every manifest `kubectl apply -k` applies, per kustomization directory; None when kubectl
/// is missing outside CI.
fn built_manifests() -> Option<Vec<(PathBuf, Vec<yaml_rust2::Yaml>)>> {
    if !tool("kubectl") {
        assert!(std::env::var_os("CI").is_none(), "CI must have kubectl (.ci/run installs it)");
        eprintln!("skipped: kubectl missing");
        return None;
    }
    let k8s = root().join("packaging/kubernetes");
    let mut dirs = vec![k8s.join("cairn"), k8s.join("app/base")];
    let mut overlays: Vec<PathBuf> =
        std::fs::read_dir(k8s.join("app/overlays")).unwrap().map(|e| e.unwrap().path()).collect();
    overlays.sort();
    dirs.extend(overlays);
    Some(
        dirs.into_iter()
            .map(|dir| {
                let built = Command::new("kubectl").arg("kustomize").arg(&dir).output().unwrap();
                assert!(built.status.success(), "{}: {}", dir.display(), String::from_utf8_lossy(&built.stderr));
                let docs = yaml_rust2::YamlLoader::load_from_str(&String::from_utf8_lossy(&built.stdout)).unwrap();
                (dir, docs)
            })
            .collect(),
    )
}

fn kind(doc: &yaml_rust2::Yaml) -> &str {
    doc["kind"].as_str().unwrap_or("")
}

/// Calls `f` on every mapping entry (key, value) anywhere in `doc`.
fn walk<'a>(doc: &'a yaml_rust2::Yaml, f: &mut impl FnMut(&'a yaml_rust2::Yaml, &'a yaml_rust2::Yaml)) {
    match doc {
        yaml_rust2::Yaml::Hash(h) => {
            for (k, v) in h {
                f(k, v);
                walk(v, f);
            }
        }
        yaml_rust2::Yaml::Array(a) => a.iter().for_each(|v| walk(v, f)),
        _ => {}
    }
}

#[test]
fn no_applied_manifest_carries_a_password_or_a_secret() {
    let Some(all) = built_manifests() else { return };
    for (dir, docs) in &all {
        for doc in docs {
            assert!(
                !(kind(doc) == "Secret" && (!doc["data"].is_badvalue() || !doc["stringData"].is_badvalue())),
                "{} applies the Secret {:?} with its values: the operator creates Secrets",
                dir.display(),
                doc["metadata"]["name"]
            );
            walk(doc, &mut |k, v| {
                let key = k.as_str().unwrap_or("").to_ascii_lowercase();
                if let Some(value) = v.as_str() {
                    // A literal under a password-ish key; a file path is how secrets are named.
                    let secretish = ["password", "passwd", "secret", "token"].iter().any(|w| key.contains(w));
                    assert!(
                        !secretish || value.starts_with('/') || key.ends_with("name"),
                        "{}: {key}: {value} is a literal credential",
                        dir.display()
                    );
                }
                // env: [{name: ...PASSWORD..., value: literal}]
                if key == "env" {
                    for e in v.as_vec().into_iter().flatten() {
                        let name = e["name"].as_str().unwrap_or("").to_ascii_uppercase();
                        let literal = e["value"].as_str().unwrap_or("");
                        let credential = ["PASSWORD", "SECRET", "TOKEN"].iter().any(|w| name.contains(w));
                        assert!(
                            !credential || literal.is_empty() || literal.starts_with('/'),
                            "{}: env {name} has the literal value {literal}",
                            dir.display()
                        );
                    }
                }
            });
        }
    }
}

#[test]
fn the_ingress_publishes_the_portal_and_open_api_but_no_client_path() {
    let Some(all) = built_manifests() else { return };
    let ingresses: Vec<&yaml_rust2::Yaml> =
        all.iter().flat_map(|(_, docs)| docs.iter()).filter(|d| kind(d) == "Ingress").collect();
    assert_eq!(ingresses.len(), 1, "one Ingress, for Cairn");
    let ingress = ingresses[0];
    let mut paths = Vec::new();
    for rule in ingress["spec"]["rules"].as_vec().unwrap() {
        for p in rule["http"]["paths"].as_vec().unwrap() {
            paths.push((p["path"].as_str().unwrap().to_string(), p["pathType"].as_str().unwrap().to_string()));
        }
    }
    let routed = |path: &str| {
        paths.iter().any(|(p, t)| match t.as_str() {
            "Exact" => p == path,
            _ => p == "/" || path == p || path.starts_with(&format!("{}/", p.trim_end_matches('/'))),
        })
    };
    for client in [
        "/configs/app/default/application",
        "/configfiles/json/app/default/application",
        "/notifications/v2",
        "/services/config",
        "/envs/PRO/configs/app/default/application",
        "/metrics",
        "/health",
        "/ready",
        "/admin/v1/users",
    ] {
        assert!(!routed(client), "the Ingress routes the in-cluster path {client}: {paths:?}");
    }
    for public in ["/", "/login", "/apps/greeter", "/openapi/v1/apps", "/static/app.css"] {
        assert!(routed(public), "the Ingress does not route {public}: {paths:?}");
    }
    let notes = &ingress["metadata"]["annotations"];
    assert!(
        notes["nginx.ingress.kubernetes.io/whitelist-source-range"].as_str().is_some_and(|r| !r.is_empty()),
        "the Ingress needs a source allow-list"
    );
    let body = notes["nginx.ingress.kubernetes.io/proxy-body-size"].as_str().unwrap_or("1m");
    let bytes: usize = body.trim_end_matches('m').parse::<usize>().unwrap() << 20;
    let settings = cairn::settings::Settings::load(
        Some(&root().join("packaging/kubernetes/cairn/cairn.toml")),
        Default::default(),
    )
    .unwrap();
    assert!(bytes >= settings.body_max, "proxy-body-size {body} is below Cairn's body_max {}", settings.body_max);
}

#[test]
fn every_env_namespace_has_its_network_policy_and_access_key() {
    let Some(all) = built_manifests() else { return };
    let settings = cairn::settings::Settings::load(
        Some(&root().join("packaging/kubernetes/cairn/cairn.toml")),
        Default::default(),
    )
    .unwrap();
    let cairn_docs = &all.iter().find(|(d, _)| d.ends_with("cairn")).unwrap().1;
    let cairn_policy = cairn_docs.iter().find(|d| kind(d) == "NetworkPolicy").expect("Cairn's NetworkPolicy");
    let overlays: Vec<_> = all.iter().filter(|(d, _)| d.parent().unwrap().ends_with("overlays")).collect();
    assert_eq!(overlays.len(), settings.envs.len(), "one overlay per env");
    for (env, conf) in &settings.envs {
        let port: i64 = conf.listen.as_deref().unwrap().rsplit(':').next().unwrap().parse().unwrap();
        // Cairn admits the env's namespaces on the env's port only.
        let rules = cairn_policy["spec"]["ingress"].as_vec().unwrap();
        let admits: Vec<i64> = rules
            .iter()
            .filter(|r| {
                r["from"]
                    .as_vec()
                    .unwrap()
                    .iter()
                    .any(|f| f["namespaceSelector"]["matchLabels"]["cairn.io/env"].as_str() == Some(env))
            })
            .flat_map(|r| r["ports"].as_vec().unwrap().iter().map(|p| p["port"].as_i64().unwrap()))
            .collect();
        assert_eq!(admits, vec![port], "Cairn's NetworkPolicy must admit {env} namespaces on port {port} only");
        let (dir, docs) = overlays
            .iter()
            .find(|(_, docs)| {
                docs.iter()
                    .any(|d| kind(d) == "Namespace" && d["metadata"]["labels"]["cairn.io/env"].as_str() == Some(env))
            })
            .unwrap_or_else(|| panic!("no overlay's namespace is labelled cairn.io/env={env}"));
        let ns = docs.iter().find(|d| kind(d) == "Namespace").unwrap()["metadata"]["name"].as_str().unwrap();
        let policy = docs
            .iter()
            .find(|d| kind(d) == "NetworkPolicy" && d["metadata"]["namespace"].as_str() == Some(ns))
            .unwrap_or_else(|| panic!("{} has no NetworkPolicy in {ns}", dir.display()));
        let egress_ports: Vec<i64> = policy["spec"]["egress"][0]["ports"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_i64().unwrap())
            .collect();
        assert_eq!(egress_ports, vec![port], "{ns} may reach Cairn on {env}'s port only");
        let config = docs.iter().find(|d| kind(d) == "ConfigMap").unwrap();
        let meta = config["data"]["APOLLO_META"].as_str().unwrap();
        assert!(meta.ends_with(&format!(":{port}")), "{ns}: APOLLO_META {meta} is not {env}'s port");
        let deployment = docs.iter().find(|d| kind(d) == "Deployment").unwrap();
        let spec = &deployment["spec"]["template"]["spec"];
        assert_eq!(spec["enableServiceLinks"].as_bool(), Some(false));
        assert_eq!(spec["automountServiceAccountToken"].as_bool(), Some(false));
        let key_volume = spec["volumes"].as_vec().unwrap().iter().find(|v| !v["secret"].is_badvalue()).unwrap();
        assert_eq!(key_volume["secret"]["secretName"].as_str(), Some("greeter-access-key"));
        for c in spec["initContainers"].as_vec().unwrap() {
            let env_vars = c["env"].as_vec().unwrap();
            assert!(
                env_vars.iter().any(|e| e["name"].as_str() == Some("CAIRN_AGENT_SECRET_FILE")),
                "{ns}: the agent {:?} does not read the access key",
                c["name"]
            );
        }
        for c in spec["containers"].as_vec().unwrap().iter().chain(spec["initContainers"].as_vec().unwrap()) {
            assert!(!c["resources"]["requests"].is_badvalue(), "{ns}: {:?} has no requests", c["name"]);
            assert!(!c["resources"]["limits"].is_badvalue(), "{ns}: {:?} has no limits", c["name"]);
        }
        let app = &spec["containers"][0];
        assert_eq!(app["livenessProbe"]["httpGet"]["path"].as_str(), Some("/health"));
        assert_eq!(app["readinessProbe"]["httpGet"]["path"].as_str(), Some("/ready"));
        let listen = app["env"].as_vec().unwrap().iter().find(|e| e["name"].as_str() == Some("LISTEN")).unwrap();
        assert!(listen["value"].as_str().unwrap().starts_with("0.0.0.0:"), "the app must listen on all interfaces");
        assert!(docs.iter().any(|d| kind(d) == "PodDisruptionBudget"), "{ns} has no PodDisruptionBudget");
    }
}

/// The shell blocks of docs/zero-downtime.md, in order, with `kubectl`, `docker`, `curl` and
/// `jq` replaced by stand-ins that record what they are asked; `kubectl apply -k` builds the
/// real kustomization. Then: every Secret a pod needs was created before it was applied, the
/// app existed before its items, the token was set before it was used, and the images built
/// are the targets the Dockerfile has.
#[test]
fn the_walkthrough_runs_in_order_against_the_manifests() {
    let Ok(real_kubectl) = Command::new("sh").args(["-c", "command -v kubectl"]).output() else { return };
    let real_kubectl = String::from_utf8_lossy(&real_kubectl.stdout).trim().to_string();
    if real_kubectl.is_empty() {
        assert!(std::env::var_os("CI").is_none(), "CI must have kubectl");
        return;
    }
    let doc = std::fs::read_to_string(root().join("docs/zero-downtime.md")).unwrap();
    let mut script = String::from("set -euo pipefail\n");
    let mut in_block = false;
    for line in doc.lines() {
        match (in_block, line.trim_start().starts_with("```")) {
            (false, true) if line.trim() == "```sh" => in_block = true,
            (true, true) => in_block = false,
            (true, false) => script.push_str(&format!("{line}\n")),
            _ => {}
        }
    }
    let work = tempfile::tempdir().unwrap();
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = work.path().join("log");
    let stub = |name: &str, body: &str| {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/bash\nset -eu\necho \"{name} $*\" >> \"$STAND_IN_LOG\"\n{body}\n"))
            .unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&path).unwrap().permissions(), 0o755);
        Command::new("chmod").arg("755").arg(&path).status().unwrap();
    };
    stub(
        "kubectl",
        r#"args=" $* "
if [[ "$args" == *" apply -k "* ]]; then
  dir=$(echo "$args" | sed 's/.* apply -k \([^ ]*\).*/\1/')
  "$REAL_KUBECTL" kustomize "$dir" > /dev/null
elif [[ "$args" == *" consumer create "* ]]; then
  echo "consumer 'pipeline' created. Its Open API token (shown only now):"
  echo "t0ken"
fi"#,
    );
    stub("docker", "");
    stub("curl", r#"if [[ " $* " == *"/accesskeys?"* ]]; then echo '{"id":7,"secret":"k3y"}'; else echo '{}'; fi"#);
    stub("jq", r#"python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1].lstrip(".")])' "${@: -1}""#);
    std::os::unix::fs::symlink(root().join("packaging"), work.path().join("packaging")).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(work.path())
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
        .env("STAND_IN_LOG", &log)
        .env("REAL_KUBECTL", &real_kubectl)
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "the walkthrough failed:\n{}{}\ncalls so far:\n{calls}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let (mut namespaces, mut secrets) = (vec!["default".to_string()], Vec::<(String, String)>::new());
    let (mut app_created, mut applied) = (false, 0);
    let docker = std::fs::read_to_string(root().join("packaging/docker/Dockerfile")).unwrap();
    for call in calls.lines() {
        let words: Vec<&str> = call.split_whitespace().collect();
        let ns = words.windows(2).find(|w| w[0] == "-n").map(|w| w[1].to_string()).unwrap_or_default();
        if call.starts_with("kubectl create namespace ") {
            namespaces.push(words[3].to_string());
        } else if call.starts_with("kubectl") && call.contains(" create secret ") {
            assert!(namespaces.contains(&ns), "a Secret is created in {ns} before the namespace exists: {call}");
            let name = words[words.iter().position(|w| *w == "generic").unwrap() + 1];
            secrets.push((ns, name.to_string()));
        } else if call.starts_with("kubectl apply -k ") {
            applied += 1;
            let built = Command::new(&real_kubectl).arg("kustomize").arg(root().join(words[3])).output().unwrap();
            let docs = yaml_rust2::YamlLoader::load_from_str(&String::from_utf8_lossy(&built.stdout)).unwrap();
            for d in &docs {
                let target = d["metadata"]["namespace"].as_str().unwrap_or("").to_string();
                walk(d, &mut |k, v| {
                    let name = match k.as_str() {
                        Some("secretName") => v.as_str(),
                        Some("secretKeyRef") => v["name"].as_str(),
                        _ => None,
                    };
                    if let Some(name) = name.filter(|n| *n != "cairn-tls") {
                        assert!(
                            secrets.contains(&(target.clone(), name.to_string())),
                            "{call} needs the Secret {target}/{name}, which no earlier step creates"
                        );
                    }
                });
                if kind(d) == "Namespace" {
                    namespaces.push(d["metadata"]["name"].as_str().unwrap().to_string());
                }
            }
        } else if call.starts_with("curl") {
            assert!(call.contains("Authorization: t0ken"), "the token is not set when first used: {call}");
            app_created |= call.contains("-X POST") && call.contains("/openapi/v1/apps ");
            if call.contains("/items/") || call.contains("/accesskeys") {
                assert!(app_created, "the app must be created before {call}");
            }
        } else if call.starts_with("docker build") {
            if let Some(t) = words.windows(2).find(|w| w[0] == "--target").map(|w| w[1]) {
                assert!(docker.contains(&format!(" AS {t}\n")), "the Dockerfile has no target {t}");
            }
        }
    }
    assert!(applied >= 3, "the walkthrough applies Cairn and two overlays: {calls}");
    for env in ["dev", "fat", "uat", "pro"] {
        assert!(secrets.contains(&(format!("greeter-{env}"), "greeter-access-key".into())), "no access key for {env}");
    }
}

/// The nightly backup runs `kubectl exec` as its service account: kubectl 1.30+ uses
/// WebSockets (an HTTP GET, authorised as `get` before Kubernetes 1.35), older kubectl and
/// 1.35+ check `create`; a Role with one verb fails every night on some cluster.
#[test]
fn the_backup_job_may_exec_into_cairn_with_any_kubectl() {
    let Some(all) = built_manifests() else { return };
    let docs = &all.iter().find(|(d, _)| d.ends_with("cairn")).unwrap().1;
    let cron = docs.iter().find(|d| kind(d) == "CronJob").expect("the backup CronJob");
    let pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let account = pod["serviceAccountName"].as_str().unwrap();
    let binding = docs
        .iter()
        .find(|d| {
            kind(d) == "RoleBinding"
                && d["subjects"].as_vec().unwrap().iter().any(|s| s["name"].as_str() == Some(account))
        })
        .expect("a RoleBinding for the backup's service account");
    let role_name = binding["roleRef"]["name"].as_str().unwrap();
    let role = docs.iter().find(|d| kind(d) == "Role" && d["metadata"]["name"].as_str() == Some(role_name)).unwrap();
    let verbs: Vec<&str> = role["rules"]
        .as_vec()
        .unwrap()
        .iter()
        .filter(|r| r["resources"].as_vec().unwrap().iter().any(|x| x.as_str() == Some("pods/exec")))
        .flat_map(|r| r["verbs"].as_vec().unwrap().iter().filter_map(|v| v.as_str()))
        .collect();
    for verb in ["get", "create"] {
        assert!(verbs.contains(&verb), "pods/exec lacks `{verb}`: {verbs:?}");
    }
    let c = &pod["containers"][0];
    if c["securityContext"]["readOnlyRootFilesystem"].as_bool() == Some(true) {
        let home = c["env"].as_vec().into_iter().flatten().find(|e| e["name"].as_str() == Some("HOME"));
        let home = home.and_then(|h| h["value"].as_str()).expect("kubectl needs a writable HOME");
        let mounts = c["volumeMounts"].as_vec().unwrap();
        assert!(mounts.iter().any(|m| m["mountPath"].as_str() == Some(home)), "HOME {home} is not a volume");
    }
}

/// Behind the Ingress (TLS ends there), Cairn must believe the controller's forwarded
/// headers: otherwise every sign-in comes from one pod IP and the cookie is not `Secure`.
#[test]
fn cairn_in_kubernetes_believes_its_ingress_controller() {
    let k8s = root().join("packaging/kubernetes/cairn/cairn.toml");
    let s = cairn::settings::Settings::load(Some(&k8s), Default::default()).unwrap();
    assert!(!s.trusted_proxies.is_empty(), "trusted_proxies must name the pod network of the ingress controller");
    let doc = std::fs::read_to_string(root().join("docs/zero-downtime.md")).unwrap();
    assert!(doc.contains("trusted_proxies"), "the walkthrough must say to set trusted_proxies");
}
