//! The data commands (`user add`, `consumer create|grant`, `check`, `backup`, `restore`) on
//! PostgreSQL through the real binary: they open the database directly, name it without its
//! password, and fail in one line — never falling back to a data directory — when it cannot
//! be used.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use reqwest::Method;
use serde_json::json;

use crate::common::pg;
use crate::common::process::{open_api, text, Proc, BIN};
use crate::common::ADMIN;

/// Runs `cairn ARGS` with `data` as its data directory and `env` set, feeding `stdin`; no
/// `CAIRN_*` variable of the test's own environment leaks in.
fn run(data: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CAIRN_")) {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .arg("--data")
        .arg(data)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(data.parent().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// `postgres://cairn:PASSWORD@host:port/db` → `postgres://cairn@host:port/db`.
fn named(url: &str) -> String {
    url.replacen(&format!(":{}@", pg::PASSWORD), "@", 1)
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn data_commands_work_on_the_database_and_name_it_without_its_password() {
    let Some(url) = pg::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never-created");
    let db = |args: &[&str], stdin: &str| {
        let mut all = vec!["--database-url", url.as_str()];
        all.extend_from_slice(args);
        run(&data, &all, &[], stdin)
    };
    let said = ok(&db(&["user", "add", ADMIN, "--admin"], "a-good-password\n"));
    assert!(said.contains(&format!("user '{ADMIN}' created (admin) in {}", named(&url))), "{said}");
    let said = ok(&db(&["consumer", "create", "ci", "--allow-create-app"], ""));
    assert!(said.contains(&format!("created in {}", named(&url))), "{said}");
    let token = said.lines().last().unwrap().trim().to_string();

    // With a server running on the database, the commands still open it directly (a
    // database is never "held" as a data directory is) and the server sees their work.
    let proc = Proc::start(&data, &["--database-url", &url]);
    let app = json!({"assignAppRoleToSelf": true, "app": {"appId": "demo", "name": "demo", "ownerName": ADMIN}});
    assert_eq!(open_api(&proc.base, &token, Method::POST, "/apps", app).await.0, 200);
    let said = ok(&db(&["consumer", "create", "deployer"], ""));
    let deployer = said.lines().last().unwrap().trim().to_string();
    let said = ok(&db(&["consumer", "grant", "deployer", "--app", "demo", "--env", "DEV"], ""));
    assert!(said.contains("of app 'demo' in DEV") && said.contains(&named(&url)), "{said}");
    let ns = "/envs/DEV/apps/demo/clusters/default/namespaces/application";
    let item = json!({"key": "k", "value": "v", "dataChangeCreatedBy": ADMIN});
    let (status, body) = open_api(&proc.base, &deployer, Method::POST, &format!("{ns}/items"), item).await;
    assert_eq!(status, 200, "the grant written by the CLI is in force: {body}");
    let release = json!({"releaseTitle": "r1", "releasedBy": ADMIN});
    assert_eq!(open_api(&proc.base, &deployer, Method::POST, &format!("{ns}/releases"), release).await.0, 200);

    let said = ok(&db(&["check"], ""));
    assert!(said.contains("checked 1 releases, ") && said.contains(&named(&url)), "{said}");
    assert!(said.contains("no problems"), "{said}");
    let file = dir.path().join("cairn.backup");
    let said = ok(&db(&["backup", file.to_str().unwrap()], ""));
    assert!(said.contains(&format!("backup of {} written to", named(&url))), "{said}");
    let header: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&file).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(header["engine"], "postgres", "{header}");
    drop(proc);

    // Restore into another, empty database; a second restore into it is refused.
    let other = pg::database().unwrap();
    let restore = |args: &[&str]| run(&data, &[&["--database-url", other.as_str(), "restore"], args].concat(), &[], "");
    let said = ok(&restore(&[file.to_str().unwrap()]));
    assert!(said.contains(&format!("into {}", named(&other))), "{said}");
    let again = restore(&[file.to_str().unwrap()]);
    assert!(!again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("already holds data"), "{}", text(&again));
    assert!(!text(&again).contains(pg::PASSWORD), "{}", text(&again));
    assert!(!data.exists(), "no data directory is made with a database URL");
}

/// Every data command, as arguments after `--database-url URL`.
fn every_data_command(file: &str) -> Vec<Vec<String>> {
    [
        &["user", "add", "someone"][..],
        &["consumer", "create", "ci"],
        &["consumer", "grant", "ci", "--app", "demo"],
        &["check"],
        &["backup", file],
        &["restore", file],
    ]
    .iter()
    .map(|a| a.iter().map(|s| s.to_string()).collect())
    .collect()
}

/// Runs every data command against `url` and expects each to fail with one `error:` line
/// naming `target` and saying `hint`, without the password, a panic or a data directory.
fn every_command_fails(dir: &Path, url: &str, target: &str, hint: &str, secret: &str) {
    let data = dir.join("sled-data");
    let file = dir.join("in.backup");
    for args in every_data_command(file.to_str().unwrap()) {
        let mut all = vec!["--database-url", url];
        all.extend(args.iter().map(String::as_str));
        let out = run(&data, &all, &[], "a-good-password\n");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded: {}", text(&out));
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(lines[0].contains(target) && lines[0].contains(hint), "{args:?}: {}", lines[0]);
        assert!(!err.contains(secret) && !err.contains("panicked"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} said: {}", text(&out));
    }
}

#[test]
fn a_wrong_password_or_an_unreachable_database_fails_every_data_command_in_one_line() {
    let Some(cluster) = pg::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A data directory with data of its own: a failing database URL must never fall back to it.
    let data = dir.path().join("sled-data");
    ok(&run(&data, &["user", "add", ADMIN, "--admin"], &[], "a-good-password\n"));
    let before = ok(&run(&data, &["check"], &[], ""));
    std::fs::write(dir.path().join("in.backup"), "not used").unwrap();

    let wrong = format!("postgres://{}:not-the-password@127.0.0.1:{}/postgres", pg::USER, cluster.port);
    let target = format!("postgres://{}@127.0.0.1:{}/postgres", pg::USER, cluster.port);
    every_command_fails(dir.path(), &wrong, &target, "check the user name and password", "not-the-password");

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let away = format!("postgres://cairn:secret-pw@127.0.0.1:{port}/cairn");
    let target = format!("postgres://cairn@127.0.0.1:{port}/cairn");
    every_command_fails(dir.path(), &away, &target, "check that PostgreSQL runs there", "secret-pw");

    assert_eq!(ok(&run(&data, &["check"], &[], "")), before, "the data directory was not touched");
}

#[test]
fn data_commands_take_the_database_url_from_the_environment_or_cairn_toml() {
    let Some(url) = pg::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never-created");
    let said = ok(&run(&data, &["user", "add", ADMIN], &[("CAIRN_DATABASE_URL", &url)], "a-good-password\n"));
    assert!(said.contains(&named(&url)), "{said}");
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    let config = dir.path().join("etc/cairn.toml");
    std::fs::write(&config, format!("database_url = \"{url}\"\n")).unwrap();
    let said = ok(&run(&data, &["--config", config.to_str().unwrap(), "consumer", "create", "ci"], &[], ""));
    assert!(said.contains(&named(&url)), "{said}");
    // Both reached the same database: the check sees it, and the user exists there.
    let said = ok(&run(&data, &["check"], &[("CAIRN_DATABASE_URL", &url)], ""));
    assert!(said.contains(&named(&url)) && said.contains("no problems"), "{said}");
    let twice = run(&data, &["--config", config.to_str().unwrap(), "user", "add", ADMIN], &[], "another-password\n");
    assert!(!twice.status.success() && text(&twice).contains("exists"), "{}", text(&twice));
    assert!(!data.exists(), "no data directory is made with a database URL");
}

#[test]
fn help_of_the_data_commands_explains_the_database_url() {
    for cmd in [&["backup", "--help"][..], &["restore", "--help"], &["user", "add", "--help"], &["check", "--help"]] {
        let out = Command::new(BIN).args(cmd).output().unwrap();
        let help = text(&out);
        assert!(help.contains("--database-url <URL>") && help.contains("PostgreSQL"), "{cmd:?}: {help}");
        assert!(help.contains("CAIRN_DATABASE_URL") && help.contains("cairn.toml"), "{cmd:?}: {help}");
    }
    let restore = text(&Command::new(BIN).args(["restore", "--help"]).output().unwrap());
    assert!(restore.contains("--keep-notification-ids"), "{restore}");
}
