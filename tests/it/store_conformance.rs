//! The repository contract (`store/repo.rs`), held against every engine through the traits
//! alone: each test runs on each engine, on fresh storage.

use std::collections::HashSet;
use std::sync::Arc;

use cairn::domain::model::{
    AccessKey, AccessKeyMode, App, AppNamespace, AuditEntry, Branch, BranchStatus, Cluster, Commit, Consumer, Grant,
    GrayRuleItem, HistoryEntry, InstanceConfig, Item, ItemChange, Namespace, Operation, Release, Stamp, User,
};
use cairn::domain::Format;
use cairn::store::pg::{PgOptions, PgRepo};
use cairn::store::{AuditFilter, Counter, EngineKind, Message, NsKey, Record, Repo, StoreError};

use crate::common::pg;

/// Fresh storage on every engine: sled (a temporary store) and PostgreSQL (a new database
/// on the shared test cluster, when PostgreSQL is installed).
fn engines() -> Vec<Arc<dyn Repo>> {
    let mut out: Vec<Arc<dyn Repo>> = vec![cairn::store::open_temporary().unwrap()];
    if let Some(url) = pg::database() {
        out.push(Arc::new(PgRepo::open(&url, PgOptions::default()).unwrap()));
    }
    out
}

fn stamp(who: &str, at: i64) -> Stamp {
    Stamp::new(who, at)
}

fn app(id: &str) -> App {
    App {
        app_id: id.into(),
        name: format!("{id} name"),
        org_id: "org".into(),
        org_name: "Org".into(),
        owner_name: "alice".into(),
        owner_email: "alice@example.com".into(),
        stamp: stamp("alice", 1_700_000_000_000),
    }
}

fn ns_key(app: &str, ns: &str) -> NsKey {
    NsKey::new("DEV", app, "default", ns)
}

fn namespace(app: &str, cluster: &str, name: &str) -> Namespace {
    Namespace {
        app_id: app.into(),
        cluster: cluster.into(),
        name: name.into(),
        active_releases: vec![3, 7],
        history_len: 2,
        draft_editors: vec!["bob".into(), "consumer:ci".into()],
        stamp: stamp("bob", 5),
    }
}

fn item(key: &str, value: &str, line: u32) -> Item {
    Item { key: key.into(), value: value.into(), comment: "# why".into(), line_num: line, stamp: stamp("bob", 6) }
}

fn release(id: u64) -> Release {
    let mut r = Release {
        id,
        release_key: format!("20260101-{id:04}"),
        app_id: "demo".into(),
        cluster: "default".into(),
        namespace: "application".into(),
        title: "t".into(),
        comment: "c ü 'quoted'".into(),
        author: "bob".into(),
        created_at: 9,
        is_emergency: id % 2 == 0,
        configurations: vec![
            ("z".into(), "1".into()),
            ("a".into(), "multi\nline = ✓".into()),
            ("z".into(), "2".into()),
        ],
        checksum: String::new(),
    };
    r.checksum = r.compute_checksum();
    r
}

fn history(seq: u64) -> HistoryEntry {
    HistoryEntry {
        seq,
        operation: if seq % 2 == 0 { Operation::Rollback } else { Operation::GrayPublish },
        release_id: seq + 10,
        previous_release_id: seq + 9,
        branch: (seq % 2 == 1).then(|| "gray-1".to_string()),
        operator: "bob".into(),
        time: seq as i64,
    }
}

fn audit(id: u64, actor: &str, action: &str, env: Option<&str>, target: &str) -> AuditEntry {
    AuditEntry {
        id,
        time: id as i64 * 1000,
        actor: actor.into(),
        claimed_operator: actor.starts_with("consumer:").then(|| "alice".to_string()),
        action: action.into(),
        env: env.map(str::to_string),
        target: target.into(),
        detail: format!("detail {id}"),
    }
}

fn instance(ip: &str, key: &str) -> InstanceConfig {
    InstanceConfig {
        app_id: "client".into(),
        cluster: "default".into(),
        data_center: "dc1".into(),
        ip: ip.into(),
        config_app_id: "demo".into(),
        config_cluster: "default".into(),
        config_namespace: "application".into(),
        release_key: key.into(),
        release_delivery_time: 11,
        last_seen: 12,
    }
}

fn grant() -> Grant {
    Grant {
        app_id: "demo".into(),
        namespace: Some("application".into()),
        env: Some("PRO".into()),
        modify: true,
        release: false,
    }
}

fn user(name: &str) -> User {
    User {
        name: name.into(),
        display_name: "Alice A.".into(),
        email: "a@example.com".into(),
        password_hash: "$argon2id$v=19$...".into(),
        is_admin: false,
        enabled: true,
        grants: vec![grant()],
        can_create_apps: true,
        stamp: stamp("apollo", 1),
    }
}

fn consumer(name: &str, sha: &str) -> Consumer {
    Consumer {
        name: name.into(),
        token_sha256: sha.into(),
        allow_create_app: true,
        grants: vec![grant()],
        stamp: stamp("apollo", 2),
    }
}

/// Commits `records` as one change.
fn write(repo: &dyn Repo, records: Vec<Record>) {
    let mut tx = repo.begin().unwrap();
    for r in records {
        tx.put(r);
    }
    tx.commit().unwrap();
}

/// One record of every kind (deletes aside), as a backup would hold them.
fn one_of_each() -> Vec<Record> {
    let ns = ns_key("demo", "application");
    vec![
        Record::App { app: app("demo") },
        Record::AppNamespace {
            app_namespace: AppNamespace {
                app_id: "demo".into(),
                name: "app.yaml".into(),
                format: Format::Yaml,
                is_public: true,
                comment: "shared".into(),
                stamp: stamp("alice", 2),
            },
        },
        Record::User { user: user("alice") },
        Record::Consumer { consumer: consumer("ci", "ab12") },
        Record::Cluster {
            env: "DEV".into(),
            cluster: Cluster {
                app_id: "demo".into(),
                name: "gray-1".into(),
                parent: Some("default".into()),
                comment: String::new(),
                stamp: stamp("alice", 3),
            },
        },
        Record::Namespace { env: "DEV".into(), namespace: namespace("demo", "default", "application") },
        Record::Item { ns: ns.clone(), item: item("k1", "v = 1", 1) },
        Record::Release { env: "DEV".into(), release: release(7) },
        Record::History { ns: ns.clone(), entry: history(1) },
        Record::Branch {
            env: "DEV".into(),
            branch: Branch {
                app_id: "demo".into(),
                parent_cluster: "default".into(),
                namespace: "application".into(),
                name: "gray-1".into(),
                rules: vec![GrayRuleItem {
                    client_app_id: "client".into(),
                    client_ip_list: vec!["10.0.0.1".into(), "*".into()],
                    client_label_list: vec!["canary".into()],
                }],
                status: BranchStatus::Active,
                stamp: stamp("alice", 4),
            },
        },
        Record::Message { message: Message { env: "DEV".into(), id: 5, content: "demo+default+application".into() } },
        Record::Commit {
            ns: ns.clone(),
            commit: Commit {
                id: 2,
                operator: "bob".into(),
                time: 8,
                changes: vec![
                    ItemChange { key: "k1".into(), old: None, new: Some("v = 1".into()) },
                    ItemChange { key: "gone".into(), old: Some("x".into()), new: None },
                ],
            },
        },
        Record::AccessKey {
            env: "DEV".into(),
            key: AccessKey {
                id: 4,
                app_id: "demo".into(),
                secret: "s3cret".into(),
                mode: AccessKeyMode::Observer,
                enabled: true,
                stamp: stamp("alice", 5),
            },
        },
        Record::Instance { env: "DEV".into(), instance: instance("10.0.0.1", "20260101-0007") },
        Record::Audit { entry: audit(1, "consumer:ci", "release.publish", Some("DEV"), "demo/default/application") },
    ]
}

#[test]
fn every_record_kind_round_trips() {
    for repo in engines() {
        eprintln!("engine: {:?}", repo.kind()); // named in a failure's output
        let repo = &*repo;
        assert!(repo.is_empty().unwrap());
        write(repo, one_of_each());
        let ns = ns_key("demo", "application");
        for rec in one_of_each() {
            match rec {
                Record::App { app } => assert_eq!(repo.app(&app.app_id).unwrap(), Some(app)),
                Record::AppNamespace { app_namespace: a } => {
                    assert_eq!(repo.app_namespace(&a.app_id, &a.name).unwrap(), Some(a))
                }
                Record::User { user } => assert_eq!(repo.user(&user.name).unwrap(), Some(user)),
                Record::Consumer { consumer } => {
                    assert_eq!(repo.consumer(&consumer.name).unwrap().as_ref(), Some(&consumer));
                    assert_eq!(repo.consumer_by_token(&consumer.token_sha256).unwrap(), Some(consumer));
                }
                Record::Cluster { env, cluster } => {
                    assert_eq!(repo.cluster(&env, &cluster.app_id, &cluster.name).unwrap(), Some(cluster))
                }
                Record::Namespace { namespace: n, .. } => assert_eq!(repo.namespace(&ns).unwrap(), Some(n)),
                Record::Item { item, .. } => assert_eq!(repo.item(&ns, &item.key).unwrap(), Some(item)),
                Record::Release { env, release } => {
                    let back = repo.release(&env, release.id).unwrap().unwrap();
                    assert!(back.verify(), "the checksum still matches");
                    assert_eq!(back, release);
                }
                Record::History { entry, .. } => assert_eq!(repo.history(&ns, 10).unwrap(), vec![entry]),
                Record::Branch { env, branch } => assert_eq!(
                    repo.branch(&env, &branch.app_id, &branch.parent_cluster, &branch.namespace).unwrap(),
                    Some(branch)
                ),
                Record::Message { message } => assert_eq!(repo.messages("DEV").unwrap(), vec![message]),
                Record::Commit { commit, .. } => assert_eq!(repo.commits(&ns, 10).unwrap(), vec![commit]),
                Record::AccessKey { env, key } => {
                    assert_eq!(repo.access_key(&env, &key.app_id, key.id).unwrap(), Some(key))
                }
                Record::Instance { env, instance } => {
                    let mut probe = instance.clone();
                    probe.release_key = "other".into();
                    probe.last_seen = 0;
                    assert_eq!(repo.instance(&env, &probe).unwrap(), Some(instance.clone()));
                    assert_eq!(repo.instances(Some(&env)).unwrap(), vec![(env, instance)]);
                }
                Record::Audit { entry } => assert_eq!(repo.audit(&AuditFilter::default(), 10).unwrap(), vec![entry]),
                other => panic!("unexpected record {other:?}"),
            }
        }
        // Missing things are None, not errors.
        assert_eq!(repo.app("nope").unwrap(), None);
        assert_eq!(repo.release("PRO", 7).unwrap(), None, "envs are separate");
        assert_eq!(repo.consumer_by_token("ffff").unwrap(), None);
        assert!(repo.has_users().unwrap());
        assert!(!repo.is_empty().unwrap());
        assert!(repo.health().up);
    }
}

#[test]
fn lists_come_in_byte_order_of_their_keys() {
    for repo in engines() {
        eprintln!("engine: {:?}", repo.kind()); // named in a failure's output
        let repo = &*repo;
        let names = ["b", "a-1", "B", "a", "a.b", "Z9"];
        let mut sorted: Vec<&str> = names.to_vec();
        sorted.sort();
        let ns = ns_key("a", "application");
        let mut recs = Vec::new();
        for (i, n) in names.iter().enumerate() {
            recs.push(Record::App { app: app(n) });
            recs.push(Record::User { user: user(n) });
            recs.push(Record::Consumer { consumer: consumer(n, &format!("sha{i}")) });
            recs.push(Record::Item { ns: ns.clone(), item: item(n, "v", i as u32) });
            recs.push(Record::Cluster {
                env: "DEV".into(),
                cluster: Cluster {
                    app_id: "a".into(),
                    name: n.to_string(),
                    parent: None,
                    comment: String::new(),
                    stamp: stamp("x", 0),
                },
            });
            for app_id in ["b", "a"] {
                recs.push(Record::Namespace { env: "DEV".into(), namespace: namespace(app_id, n, "application") });
                recs.push(Record::AppNamespace {
                    app_namespace: AppNamespace {
                        app_id: app_id.into(),
                        name: n.to_string(),
                        format: Format::Properties,
                        is_public: false,
                        comment: String::new(),
                        stamp: stamp("x", 0),
                    },
                });
            }
            recs.push(Record::AccessKey {
                env: "DEV".into(),
                key: AccessKey {
                    id: 10 - i as u64,
                    app_id: n.to_string(),
                    secret: "s".into(),
                    mode: AccessKeyMode::Filter,
                    enabled: false,
                    stamp: stamp("x", 0),
                },
            });
            recs.push(Record::Message {
                message: Message { env: "DEV".into(), id: i as i64, content: format!("{n}+default+application") },
            });
        }
        write(repo, recs);
        let want: Vec<String> = sorted.iter().map(|s| s.to_string()).collect();
        assert_eq!(repo.apps().unwrap().into_iter().map(|a| a.app_id).collect::<Vec<_>>(), want);
        assert_eq!(repo.users().unwrap().into_iter().map(|a| a.name).collect::<Vec<_>>(), want);
        assert_eq!(repo.consumers().unwrap().into_iter().map(|a| a.name).collect::<Vec<_>>(), want);
        assert_eq!(repo.items(&ns).unwrap().into_iter().map(|a| a.key).collect::<Vec<_>>(), want);
        assert_eq!(repo.clusters("DEV", "a").unwrap().into_iter().map(|a| a.name).collect::<Vec<_>>(), want);
        assert_eq!(repo.app_namespaces(Some("a")).unwrap().into_iter().map(|a| a.name).collect::<Vec<_>>(), want);
        let all: Vec<(String, String)> =
            repo.app_namespaces(None).unwrap().into_iter().map(|a| (a.app_id, a.name)).collect();
        let mut want_all: Vec<(String, String)> =
            ["a", "b"].iter().flat_map(|a| want.iter().map(move |n| (a.to_string(), n.clone()))).collect();
        want_all.sort();
        assert_eq!(all, want_all);
        let nss: Vec<(String, String)> =
            repo.namespaces("DEV", None, None).unwrap().into_iter().map(|n| (n.app_id, n.cluster)).collect();
        assert_eq!(nss, want_all, "namespaces by (app, cluster, name)");
        assert_eq!(repo.namespaces("DEV", Some("b"), None).unwrap().len(), names.len());
        assert_eq!(repo.namespaces("DEV", Some("b"), Some("B")).unwrap().len(), 1);
        assert_eq!(repo.namespaces("DEV", None, Some("B")).unwrap().len(), 2);
        assert!(repo.namespaces("PRO", None, None).unwrap().is_empty());
        let keys: Vec<String> = repo.access_keys("DEV", None).unwrap().into_iter().map(|k| k.app_id).collect();
        assert_eq!(keys, want);
        assert_eq!(repo.access_keys("DEV", Some("B")).unwrap().len(), 1);
        // "b" and "B" share a watch key: watch keys compare case-insensitively.
        assert_eq!(repo.messages("DEV").unwrap().len(), names.len() - 1);
    }
}

#[test]
fn history_and_commits_are_newest_first_and_limited() {
    for repo in engines() {
        eprintln!("engine: {:?}", repo.kind()); // named in a failure's output
        let repo = &*repo;
        let ns = ns_key("demo", "application");
        let other = ns_key("demo", "other");
        let mut recs: Vec<Record> = (1..=12).map(|s| Record::History { ns: ns.clone(), entry: history(s) }).collect();
        recs.push(Record::History { ns: other.clone(), entry: history(1) });
        for id in [3, 11, 7] {
            recs.push(Record::Commit {
                ns: ns.clone(),
                commit: Commit { id, operator: "b".into(), time: 1, changes: vec![] },
            });
        }
        write(repo, recs);
        let seqs: Vec<u64> = repo.history(&ns, 5).unwrap().into_iter().map(|h| h.seq).collect();
        assert_eq!(seqs, vec![12, 11, 10, 9, 8]);
        assert_eq!(repo.history(&ns, 100).unwrap().len(), 12);
        assert_eq!(repo.history(&other, 100).unwrap().len(), 1);
        assert!(repo.history(&ns, 0).unwrap().is_empty());
        let ids: Vec<u64> = repo.commits(&ns, 2).unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![11, 7]);
    }
}

#[test]
fn audit_filters_narrow_the_newest_first_list() {
    for repo in engines() {
        eprintln!("engine: {:?}", repo.kind()); // named in a failure's output
        let repo = &*repo;
        let entries = [
            audit(1, "alice", "release.publish", Some("DEV"), "demo/default/application"),
            audit(2, "bob", "item.update", Some("PRO"), "demo/default/application"),
            audit(3, "consumer:ci", "release.rollback", Some("PRO"), "other/default/app.yaml"),
            audit(4, "alice", "login.failed", None, "alice"),
            audit(5, "alice", "release.publish", Some("PRO"), "demo/gray/application"),
        ];
        write(repo, entries.iter().cloned().map(|entry| Record::Audit { entry }).collect());
        let ids = |f: AuditFilter, limit: usize| -> Vec<u64> {
            repo.audit(&f, limit).unwrap().into_iter().map(|a| a.id).collect()
        };
        assert_eq!(ids(AuditFilter::default(), 10), vec![5, 4, 3, 2, 1]);
        assert_eq!(ids(AuditFilter::default(), 2), vec![5, 4]);
        assert_eq!(ids(AuditFilter { actor: Some("alice".into()), ..Default::default() }, 10), vec![5, 4, 1]);
        assert_eq!(
            ids(AuditFilter { action_prefix: Some("release.".into()), ..Default::default() }, 10),
            vec![5, 3, 1]
        );
        assert_eq!(ids(AuditFilter { action_prefix: Some("%".into()), ..Default::default() }, 10), Vec::<u64>::new());
        assert_eq!(ids(AuditFilter { env: Some("PRO".into()), ..Default::default() }, 10), vec![5, 3, 2]);
        assert_eq!(
            ids(AuditFilter { target_contains: Some("/default/".into()), ..Default::default() }, 10),
            vec![3, 2, 1]
        );
        assert_eq!(ids(AuditFilter { before_id: Some(3), ..Default::default() }, 10), vec![2, 1]);
        let all = AuditFilter {
            actor: Some("alice".into()),
            action_prefix: Some("release".into()),
            env: Some("PRO".into()),
            target_contains: Some("gray".into()),
            before_id: Some(6),
        };
        assert_eq!(repo.audit(&all, 10).unwrap(), vec![entries[4].clone()]);
        // Pruning keeps the newest.
        assert_eq!(repo.prune_audit(2).unwrap(), 3);
        assert_eq!(ids(AuditFilter::default(), 10), vec![5, 4]);
        assert_eq!(repo.prune_audit(2).unwrap(), 0);
    }
}

#[test]
fn a_dropped_change_leaves_nothing_behind_ids_included() {
    for repo in engines() {
        eprintln!("engine: {:?}", repo.kind()); // named in a failure's output
        let repo = &*repo;
        {
            let mut tx = repo.begin().unwrap();
            assert_eq!(tx.next_id(Counter::Release).unwrap(), 1);
            assert_eq!(tx.next_id(Counter::Release).unwrap(), 2);
            tx.put(Record::App { app: app("demo") });
            assert!(!tx.is_empty());
            assert_eq!(repo.app("demo").unwrap(), None, "not visible before commit");
        }
        assert_eq!(repo.app("demo").unwrap(), None);
        assert_eq!(repo.counter(Counter::Release).unwrap(), 0);
        assert!(repo.is_empty().unwrap());
        let mut tx = repo.begin().unwrap();
        assert!(tx.is_empty());
        assert_eq!(tx.next_id(Counter::Release).unwrap(), 1, "the dropped change used no id");
        assert_eq!(tx.next_id(Counter::Audit).unwrap(), 1, "counters are separate");
        tx.put(Record::App { app: app("demo") });
        tx.commit().unwrap();
        assert_eq!(repo.counter(Counter::Release).unwrap(), 1);
        assert!(repo.app("demo").unwrap().is_some());
    }
}

#[test]
fn a_failed_commit_writes_nothing() {
    for repo in engines() {
        eprintln!("engine: {:?}", repo.kind()); // named in a failure's output
        let repo = &*repo;
        write(repo, vec![Record::Release { env: "DEV".into(), release: release(1) }]);
        let mut tx = repo.begin().unwrap();
        assert_eq!(tx.next_id(Counter::Release).unwrap(), 1);
        tx.put(Record::App { app: app("demo") });
        // Releases are insert-only: writing release 1 again fails the whole change.
        tx.put(Record::Release { env: "DEV".into(), release: release(1) });
        assert!(matches!(tx.commit(), Err(StoreError::Duplicate { .. })));
        assert_eq!(repo.app("demo").unwrap(), None);
        assert_eq!(repo.counter(Counter::Release).unwrap(), 0);
        // The engine goes on working.
        write(repo, vec![Record::App { app: app("demo") }]);
        assert!(repo.app("demo").unwrap().is_some());
    }
}

#[test]
fn ids_are_gapless_and_in_commit_order_under_concurrent_writers() {
    for repo in engines() {
        eprintln!("engine: {:?}", repo.kind()); // named in a failure's output
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let repo = repo.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        let mut tx = repo.begin().unwrap();
                        let id = tx.next_id(Counter::Audit).unwrap();
                        // Every smaller id is committed already: none can commit after this one.
                        assert_eq!(repo.counter(Counter::Audit).unwrap(), id - 1);
                        tx.put(Record::Audit { entry: audit(id, &format!("t{t}"), "x", None, &i.to_string()) });
                        if i % 3 == 2 {
                            drop(tx); // abandoned: its id is handed out again
                        } else {
                            tx.commit().unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let ids: Vec<u64> = repo.audit(&AuditFilter::default(), 1000).unwrap().into_iter().map(|a| a.id).collect();
        let want: Vec<u64> = (1..=28).rev().collect();
        assert_eq!(ids, want, "4 writers x 7 commits, ids 1..=28 without gaps");
        assert_eq!(repo.counter(Counter::Audit).unwrap(), 28);
    }
}

#[test]
fn later_writes_replace_and_deletes_remove() {
    for repo in engines() {
        eprintln!("engine: {:?}", repo.kind()); // named in a failure's output
        let repo = &*repo;
        let ns = ns_key("demo", "application");
        write(repo, one_of_each());
        let mut renamed = app("demo");
        renamed.name = "renamed".into();
        write(
            repo,
            vec![
                Record::App { app: renamed.clone() },
                Record::Consumer { consumer: consumer("ci", "cd34") },
                Record::Message {
                    message: Message { env: "DEV".into(), id: 9, content: "DEMO+default+Application".into() },
                },
                Record::DeleteItem { ns: ns.clone(), key: "k1".into() },
                Record::DeleteAccessKey { env: "DEV".into(), app: "demo".into(), id: 4 },
                Record::DeleteInstance { env: "DEV".into(), instance: instance("10.0.0.1", "ignored") },
                Record::Counter { counter: Counter::Message, value: 41 },
            ],
        );
        assert_eq!(repo.app("demo").unwrap(), Some(renamed));
        assert_eq!(repo.consumer_by_token("ab12").unwrap(), None, "the old token no longer finds the consumer");
        assert_eq!(repo.consumer_by_token("cd34").unwrap().unwrap().name, "ci");
        let messages = repo.messages("DEV").unwrap();
        assert_eq!(messages.len(), 1, "one message per watch key, compared case-insensitively");
        assert_eq!(messages[0].id, 9);
        assert_eq!(repo.item(&ns, "k1").unwrap(), None);
        assert!(repo.items(&ns).unwrap().is_empty());
        assert_eq!(repo.access_key("DEV", "demo", 4).unwrap(), None);
        assert!(repo.instances(None).unwrap().is_empty());
        assert_eq!(repo.counter(Counter::Message).unwrap(), 41);
        let mut tx = repo.begin().unwrap();
        assert_eq!(tx.next_id(Counter::Message).unwrap(), 42, "ids continue from a set counter");
    }
}

#[test]
fn unlocked_writes_land_while_a_change_is_open() {
    for repo in engines() {
        eprintln!("engine: {:?}", repo.kind()); // named in a failure's output
        let repo = &*repo;
        let tx = repo.begin().unwrap();
        repo.write_unlocked(vec![
            Record::Instance { env: "DEV".into(), instance: instance("10.0.0.1", "k1") },
            Record::Instance { env: "PRO".into(), instance: instance("10.0.0.2", "k2") },
        ])
        .unwrap();
        drop(tx);
        let all = repo.instances(None).unwrap();
        assert_eq!(
            all.iter().map(|(e, i)| (e.as_str(), i.ip.as_str())).collect::<Vec<_>>(),
            vec![("DEV", "10.0.0.1"), ("PRO", "10.0.0.2")]
        );
        repo.write_unlocked(vec![Record::Instance { env: "DEV".into(), instance: instance("10.0.0.1", "k3") }])
            .unwrap();
        assert_eq!(repo.instances(Some("DEV")).unwrap()[0].1.release_key, "k3");
        repo.flush().unwrap();
    }
}

#[test]
fn export_returns_what_was_written() {
    for repo in engines() {
        eprintln!("engine: {:?}", repo.kind()); // named in a failure's output
        let repo = &*repo;
        let mut written = one_of_each();
        written.push(Record::Release { env: "PRO".into(), release: release(8) });
        written.push(Record::Item { ns: NsKey::new("PRO", "demo", "default", "application"), item: item("k", "v", 1) });
        let mut tx = repo.begin().unwrap();
        for c in [Counter::Release, Counter::Release, Counter::Message] {
            tx.next_id(c).unwrap();
        }
        for r in written.clone() {
            tx.put(r);
        }
        tx.commit().unwrap();
        let mut out = Vec::new();
        repo.export(&mut |r| {
            out.push(r);
            Ok(())
        })
        .unwrap();
        let counters: Vec<(Counter, u64)> = out
            .iter()
            .take_while(|r| matches!(r, Record::Counter { .. }))
            .map(|r| match r {
                Record::Counter { counter, value } => (*counter, *value),
                _ => unreachable!(),
            })
            .collect();
        let set: HashSet<(Counter, u64)> = counters.iter().copied().collect();
        assert!(set.contains(&(Counter::Release, 2)) && set.contains(&(Counter::Message, 1)), "{counters:?}");
        assert!(matches!(out.last(), Some(Record::Audit { .. })), "audit comes last");
        let rest: Vec<Record> = out.into_iter().filter(|r| !matches!(r, Record::Counter { .. })).collect();
        assert_eq!(rest.len(), written.len());
        for w in &written {
            assert!(rest.contains(w), "export lacks {w:?}");
        }
        // Per env: every DEV record comes before any PRO record.
        let env_of = |r: &Record| match r {
            Record::Release { env, .. } => Some(env.clone()),
            Record::Item { ns, .. } => Some(ns.env.clone()),
            _ => None,
        };
        let envs: Vec<String> = rest.iter().filter_map(env_of).collect();
        assert_eq!(envs, vec!["DEV", "DEV", "PRO", "PRO"]);
        // A sink error stops the export and is returned.
        let mut seen = 0;
        let err = repo.export(&mut |_| {
            seen += 1;
            if seen == 3 {
                Err(StoreError::Backup("stop".into()))
            } else {
                Ok(())
            }
        });
        assert!(err.is_err());
        assert_eq!(seen, 3);
    }
}

#[test]
fn only_counters_still_count_as_empty() {
    for repo in engines() {
        eprintln!("engine: {:?}", repo.kind()); // named in a failure's output
        let repo = &*repo;
        assert!(repo.is_empty().unwrap());
        assert!(!repo.has_users().unwrap());
        write(repo, vec![Record::Counter { counter: Counter::Release, value: 10 }]);
        assert!(repo.is_empty().unwrap());
        write(repo, vec![Record::Audit { entry: audit(1, "a", "b", None, "c") }]);
        assert!(!repo.is_empty().unwrap());
        assert!(repo.size_bytes() > 0);
        assert!(matches!(repo.kind(), EngineKind::Postgres | EngineKind::Sled));
    }
}

#[test]
fn export_streams_tables_larger_than_a_page_in_order() {
    for repo in engines() {
        eprintln!("engine: {:?}", repo.kind()); // named in a failure's output
        let repo = &*repo;
        let mut recs: Vec<Record> =
            (1..=1_201).map(|id| Record::Audit { entry: audit(id, "a", "x", None, "t") }).collect();
        recs.extend((1..=40).map(|id| Record::Release { env: "DEV".into(), release: release(id) }));
        write(repo, recs);
        let (mut audits, mut releases) = (Vec::new(), Vec::new());
        repo.export(&mut |r| {
            match r {
                Record::Audit { entry } => audits.push(entry.id),
                Record::Release { release, .. } => releases.push(release.id),
                _ => {}
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(audits, (1..=1_201).collect::<Vec<u64>>());
        assert_eq!(releases, (1..=40).collect::<Vec<u64>>());
    }
}
