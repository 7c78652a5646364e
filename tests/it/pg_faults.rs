//! The PostgreSQL engine when the database misbehaves: stopped, frozen (every process
//! SIGSTOPped, as a network partition looks to a client), restarted, or misconfigured.
//! Calls fail within 2 s instead of hanging, and recover without reopening the engine.

use std::time::{Duration, Instant};

use cairn::domain::model::{App, Stamp};
use cairn::store::pg::{PgOptions, PgRepo};
use cairn::store::{Counter, Record, Repo, StoreError};

use crate::common::pg::{self, PgCluster};

fn app(id: &str) -> App {
    App {
        app_id: id.into(),
        name: id.into(),
        org_id: "o".into(),
        org_name: "O".into(),
        owner_name: "a".into(),
        owner_email: "a@example.com".into(),
        stamp: Stamp::new("a", 1),
    }
}

fn publish(repo: &dyn Repo, id: &str) -> Result<(), StoreError> {
    let mut tx = repo.begin()?;
    tx.next_id(Counter::Release)?;
    tx.put(Record::App { app: app(id) });
    tx.commit()
}

/// Runs `f`, asserting it fails as "database unavailable" within 2 s.
fn fails_fast<T: std::fmt::Debug>(what: &str, f: impl FnOnce() -> Result<T, StoreError>) {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "{what} took {took:?}");
    match out {
        Err(StoreError::Database { .. }) => {}
        other => panic!("{what}: expected a database-unavailable error, got {other:?}"),
    }
}

/// Waits (polling, up to 20 s) until `f` succeeds.
fn recovers(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not recover within 20 s");
}

fn cluster_and_repo() -> Option<(PgCluster, PgRepo)> {
    let cluster = PgCluster::start()?;
    let url = cluster.create_database();
    let repo = PgRepo::open(&url, PgOptions::default()).unwrap();
    publish(&repo, "before").unwrap();
    Some((cluster, repo))
}

#[test]
fn a_stopped_database_fails_calls_fast_and_the_engine_reconnects_after_restart() {
    let Some((cluster, repo)) = cluster_and_repo() else { return };
    cluster.stop();
    fails_fast("a read", || repo.app("before"));
    fails_fast("a change", || publish(&repo, "during"));
    let health = repo.health();
    assert!(!health.up && health.reason.is_some(), "{health:?}");
    cluster.restart();
    recovers("reads", || repo.app("before").is_ok_and(|a| a.is_some()));
    recovers("changes", || publish(&repo, "after").is_ok());
    assert!(repo.health().up);
    assert_eq!(repo.app("during").unwrap(), None);
    assert_eq!(repo.counter(Counter::Release).unwrap(), 2, "the failed change used no id");
}

#[test]
fn a_frozen_database_fails_calls_fast_and_everything_resumes_after_sigcont() {
    let Some((cluster, repo)) = cluster_and_repo() else { return };
    cluster.freeze();
    fails_fast("a read", || repo.app("before"));
    fails_fast("a change", || publish(&repo, "during"));
    fails_fast("another read", || repo.apps());
    let start = Instant::now();
    assert!(!repo.health().up);
    assert!(start.elapsed() < Duration::from_secs(2));
    cluster.thaw();
    recovers("reads", || repo.app("before").is_ok_and(|a| a.is_some()));
    recovers("changes", || publish(&repo, "after").is_ok());
    assert!(repo.app("after").unwrap().is_some());
}

#[test]
fn a_change_open_when_the_database_freezes_fails_fast_and_leaves_nothing() {
    let Some((cluster, repo)) = cluster_and_repo() else { return };
    let mut tx = repo.begin().unwrap();
    tx.next_id(Counter::Release).unwrap();
    tx.put(Record::App { app: app("lost") });
    cluster.freeze();
    fails_fast("the commit", || tx.commit());
    cluster.thaw();
    recovers("changes", || publish(&repo, "after").is_ok());
    assert_eq!(repo.app("lost").unwrap(), None);
    assert_eq!(repo.counter(Counter::Release).unwrap(), 2);
}

#[test]
fn opening_a_frozen_database_fails_within_seconds() {
    let Some(cluster) = PgCluster::start() else { return };
    let url = cluster.create_database();
    cluster.freeze();
    let start = Instant::now();
    let err = PgRepo::open(&url, PgOptions::default()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    assert!(err.contains("is not paused"), "{err}");
    cluster.thaw();
}

#[tokio::test(flavor = "current_thread")]
async fn calls_from_an_async_worker_neither_panic_nor_need_a_blocking_thread() {
    let Some(url) = pg::database() else { return };
    // Opening, calling and dropping the engine on a runtime's own thread.
    let repo = PgRepo::open(&url, PgOptions::default()).unwrap();
    publish(&repo, "demo").unwrap();
    assert!(repo.app("demo").unwrap().is_some());
    drop(repo);
}

#[test]
fn opening_names_what_to_check() {
    let Some(cluster) = pg::shared() else { return };
    let url = cluster.create_database();
    let open = |url: &str| PgRepo::open(url, PgOptions::default()).err().map(|e| e.to_string()).unwrap_or_default();

    let wrong_password = url.replace(pg::PASSWORD, "wrong");
    let msg = open(&wrong_password);
    assert!(
        msg.contains("password authentication failed") && msg.contains("check the user name and password"),
        "{msg}"
    );
    assert!(!msg.contains("wrong"), "the password is never shown: {msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");

    let unreachable = format!(
        "postgres://cairn:x@127.0.0.1:{}/db",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    let msg = open(&unreachable);
    assert!(msg.contains("check that PostgreSQL runs there"), "{msg}");
    assert!(msg.contains("postgres://cairn@127.0.0.1:"), "names the target without the password: {msg}");

    let missing = url.rsplit_once('/').map(|(base, _)| format!("{base}/nope")).unwrap();
    assert!(open(&missing).contains("create the database first"));

    assert!(open("mysql://x").contains("expected postgres://"));

    let tls = open(&format!("{url}?sslmode=require"));
    assert!(tls.contains("without TLS"), "{tls}");
}

#[test]
fn a_schema_newer_than_this_build_is_refused() {
    let Some(url) = pg::database() else { return };
    drop(PgRepo::open(&url, PgOptions::default()).unwrap());
    let bump = std::process::Command::new("psql")
        .arg(&url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", "UPDATE schema_version SET version = version + 1"])
        .output()
        .unwrap();
    assert!(bump.status.success(), "{}", String::from_utf8_lossy(&bump.stderr));
    let msg = PgRepo::open(&url, PgOptions::default()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("newer than this Cairn build"), "{msg}");
}

#[test]
fn opening_an_existing_database_keeps_its_data() {
    let Some(url) = pg::database() else { return };
    let first = PgRepo::open(&url, PgOptions::default()).unwrap();
    publish(&first, "kept").unwrap();
    let second = PgRepo::open(&url, PgOptions::default()).unwrap();
    assert!(second.app("kept").unwrap().is_some());
    assert_eq!(second.counter(Counter::Release).unwrap(), 1);
}

#[test]
fn the_lock_row_serialises_changes_of_separate_engines_on_one_database() {
    let Some(url) = pg::database() else { return };
    // Two engines stand for two Cairn processes: their process gates are separate, so only
    // the lock row keeps their changes apart.
    let engines: Vec<std::sync::Arc<PgRepo>> =
        (0..2).map(|_| std::sync::Arc::new(PgRepo::open(&url, PgOptions::default()).unwrap())).collect();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let mine = engines[t % 2].clone();
            let other = engines[(t + 1) % 2].clone();
            std::thread::spawn(move || {
                let mut done = 0;
                while done < 10 {
                    // A change waiting longer than lock_timeout gets "unavailable": try again.
                    let Ok(mut tx) = mine.begin() else { continue };
                    let id = tx.next_id(Counter::Release).unwrap();
                    assert_eq!(other.counter(Counter::Release).unwrap(), id - 1, "every smaller id is committed");
                    tx.put(Record::App { app: app(&format!("app-{id}")) });
                    tx.commit().unwrap();
                    done += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(engines[0].counter(Counter::Release).unwrap(), 40);
    assert_eq!(engines[1].apps().unwrap().len(), 40);
}

#[test]
fn a_change_behind_one_stuck_on_a_frozen_database_is_refused_within_2_s() {
    let Some((cluster, repo)) = cluster_and_repo() else { return };
    let repo = std::sync::Arc::new(repo);
    let mut stuck = repo.begin().unwrap();
    cluster.freeze();
    let waiting = {
        let repo = repo.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let out = repo.begin().map(|_| ());
            (start.elapsed(), out)
        })
    };
    assert!(stuck.next_id(Counter::Release).is_err());
    let (took, out) = waiting.join().unwrap();
    assert!(took < Duration::from_secs(2), "the waiting change took {took:?}");
    assert!(matches!(out, Err(StoreError::Database { .. })), "{out:?}");
    drop(stuck);
    cluster.thaw();
    recovers("changes", || publish(&*repo, "after").is_ok());
}
