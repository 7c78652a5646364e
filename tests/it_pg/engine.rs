//! The harness really runs this binary on PostgreSQL: in-process servers, and the real
//! binary per data directory (a restart on the same directory finds the same database).

use crate::common::process::{database_for, seed_data_dir, Proc};
use crate::common::{pg, TestServer};

#[tokio::test]
async fn test_servers_and_the_real_binary_run_on_a_postgres_database() {
    if pg::shared().is_none() {
        return;
    }
    let s = TestServer::start().await;
    let url = s.database_url.clone().expect("a test server on the PostgreSQL run has a database");
    let ready = s.get("/ready").await.json();
    assert_eq!(ready["database"], "UP", "{ready}");
    let other = TestServer::start().await;
    assert_ne!(other.database_url.as_deref(), Some(url.as_str()), "every server gets a fresh database");

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed_data_dir(&data);
    let proc = Proc::start(&data, &[]);
    let target = database_for(&data).unwrap();
    let shown = target.replace(&format!(":{}@", pg::PASSWORD), ":***@");
    assert!(proc.log.lock().unwrap().contains(&format!("storage=\"{shown}\"")), "{}", proc.log.lock().unwrap());
    assert!(!data.exists(), "no data directory is made");
    drop(proc);
    let again = Proc::start(&data, &[]);
    assert!(again.log.lock().unwrap().contains(&format!("storage=\"{shown}\"")));
}
