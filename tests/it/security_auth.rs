//! Portal sign-in, sessions and grants under attack: throttling that decays and cannot lock an
//! owner out, parallel guessing, open redirects, sessions cut on password and state changes,
//! the first-run race, weak passwords, app-wide grants and login CSRF.

use std::time::{Duration, Instant};

use cairn::service::{Caller, ServiceError};
use reqwest::StatusCode;

use crate::common::portal::{form_token, location, session_cookie, Browser as Client};
use crate::common::process::{cli, text, BIN};
use crate::common::{TestServer, ADMIN};

const ADMIN_PASSWORD: &str = "apollo-password";

fn add_user(s: &TestServer, name: &str, password: &str) {
    s.cairn.create_user(&Caller::system("t"), name, password, false).unwrap();
}

fn is_throttled<T>(r: &Result<T, ServiceError>) -> bool {
    matches!(r, Err(ServiceError::Throttled(_)))
}

fn is_wrong<T>(r: &Result<T, ServiceError>) -> bool {
    matches!(r, Err(ServiceError::Unauthenticated(_)))
}

// Item 6 (a): the counters decay, and a success from an IP clears that IP.
#[tokio::test]
async fn failed_sign_ins_are_forgotten_with_time_and_a_success_clears_the_ip() {
    let s = TestServer::start().await;
    add_user(&s, "carol", "carol-password");
    let (cairn, clock) = (&s.cairn, s.cairn.clock());
    for _ in 0..3 {
        assert!(is_wrong(&cairn.login("carol", "not-her-password", "10.0.0.1")));
    }
    assert!(is_throttled(&cairn.login("carol", "carol-password", "10.0.0.1")));
    clock.advance(Duration::from_secs(61));
    assert!(cairn.login("carol", "carol-password", "10.0.0.1").is_ok(), "the failures drained after a minute");

    // Behind a proxy every user shares one IP: nine typos on nine accounts, then one good
    // sign-in, and the IP starts afresh.
    for i in 0..9 {
        assert!(is_wrong(&cairn.login(&format!("typo{i}"), "whatever-1", "10.0.0.2")), "attempt {i}");
    }
    assert!(cairn.login(ADMIN, ADMIN_PASSWORD, "10.0.0.2").is_ok());
    for i in 0..9 {
        assert!(is_wrong(&cairn.login(&format!("again{i}"), "whatever-1", "10.0.0.2")), "attempt {i} after a success");
    }

    // An IP that only fails is refused, then let in again as its counter drains.
    for i in 0..10 {
        assert!(is_wrong(&cairn.login(&format!("spray{i}"), "whatever-1", "10.0.0.3")));
    }
    assert!(is_throttled(&cairn.login("carol", "carol-password", "10.0.0.3")));
    clock.advance(Duration::from_secs(11));
    assert!(cairn.login("carol", "carol-password", "10.0.0.3").is_ok());
}

// Item 6 (b): failures from one IP never refuse the right password from another.
#[tokio::test]
async fn nobody_can_lock_a_named_account_against_its_right_password() {
    let s = TestServer::start().await;
    let attacker = Client::from_ip(&s, Some("127.0.0.5".parse().unwrap()));
    let mut refused = 0;
    for _ in 0..6 {
        let (cookie, token) = form_token(&attacker.get("/login").await);
        let r = s
            .send(attacker.http.post(s.url("/login")).header("Cookie", cookie).form(&[
                ("csrf", token.as_str()),
                ("username", ADMIN),
                ("password", "guess-guess"),
            ]))
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert_eq!(refused, 3, "the attacker's own IP is throttled");
    let mut owner = Client::from_ip(&s, Some("127.0.0.9".parse().unwrap()));
    let r = owner.login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the owner from another IP gets in: {}", r.text);
    assert!(owner.signed_in_now().await);
    assert!(is_throttled(&s.cairn.login(&ADMIN.to_uppercase(), ADMIN_PASSWORD, "127.0.0.5")), "case does not evade");

    // Guessing from many IPs only slows each check of the account down; the owner still gets in.
    for i in 0..12 {
        assert!(is_wrong(&s.cairn.login(ADMIN, "guess-guess", &format!("10.1.0.{i}"))));
    }
    let started = Instant::now();
    assert!(s.cairn.login(ADMIN, ADMIN_PASSWORD, "10.2.0.1").is_ok());
    assert!(started.elapsed() >= Duration::from_millis(900), "a delay applies while the account is guessed");
}

// Item 6 (c): a burst gets no more checks than sequential attempts.
#[tokio::test]
async fn parallel_guesses_get_no_more_checks_than_sequential_ones() {
    let s = TestServer::start().await;
    let c = Client::new(&s);
    let (cookie, token) = form_token(&c.get("/login").await);
    let before = s.cairn.audit_log(&Caller::system("t"), 1000).unwrap().len();
    let attempts = (0..200).map(|i| {
        let rb = c.http.post(s.url("/login")).header("Cookie", cookie.clone()).form(&[
            ("csrf", token.as_str()),
            ("username", ADMIN),
            ("password", if i == 199 { ADMIN_PASSWORD } else { "guess-guess" }),
        ]);
        s.send(rb)
    });
    let statuses: Vec<StatusCode> =
        futures_util::future::join_all(attempts).await.into_iter().map(|r| r.status).collect();
    let checked = statuses.iter().filter(|st| **st != StatusCode::TOO_MANY_REQUESTS).count();
    assert!(checked <= 3, "{checked} of 200 parallel attempts were checked: {statuses:?}");
    assert!(statuses
        .iter()
        .all(|st| [StatusCode::UNAUTHORIZED, StatusCode::SEE_OTHER, StatusCode::TOO_MANY_REQUESTS].contains(st)));
    let audit = s.cairn.audit_log(&Caller::system("t"), 1000).unwrap();
    let failed = audit.iter().take(audit.len() - before).filter(|a| a.action == "login.failed").count();
    assert!(failed <= 3, "{failed} failures were recorded");
}

// Item 7.
#[tokio::test]
async fn sign_in_never_redirects_to_another_site() {
    let s = TestServer::start().await;
    let c = Client::new(&s);
    for next in ["/%5C127.0.0.2:9/phish", "/%09/127.0.0.2:9/phish", "//127.0.0.2:9/phish", "http://127.0.0.2:9/"] {
        let page = c.get(&format!("/login?next={next}")).await;
        assert!(page.text.contains("name=\"next\" value=\"/\""), "{next}: {}", page.text);
    }
    for next in ["/\\127.0.0.2:9/phish", "/\t/127.0.0.2:9/phish", "/%2F127.0.0.2:9"] {
        let r = c
            .post_form_of("/login", "/login", &[("username", ADMIN), ("password", ADMIN_PASSWORD), ("next", next)])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(location(&r), "/", "{next}");
    }
    let r = c
        .post_form_of(
            "/login",
            "/login",
            &[("username", ADMIN), ("password", ADMIN_PASSWORD), ("next", "/apps/demo?env=DEV")],
        )
        .await;
    assert_eq!(location(&r), "/apps/demo?env=DEV");
}

// Item 8.
#[tokio::test]
async fn password_changes_resets_and_disabling_end_the_users_sessions() {
    let s = TestServer::start().await;
    add_user(&s, "victim", "victim-password");
    let admin = Client::signed_in(&s, ADMIN, ADMIN_PASSWORD).await;
    let acsrf = admin.csrf("/users").await;

    // An admin reset ends every session of the user.
    let (a, b) = (
        Client::signed_in(&s, "victim", "victim-password").await,
        Client::signed_in(&s, "victim", "victim-password").await,
    );
    let r =
        admin.post("/users/password", &[("csrf", &acsrf), ("user", "victim"), ("password", "reset-by-admin")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(!a.signed_in_now().await && !b.signed_in_now().await, "sessions survived an admin reset");
    assert!(admin.signed_in_now().await, "only the user's sessions end");

    // Their own change ends the other sessions and keeps the one that made it.
    let (a, b) = (
        Client::signed_in(&s, "victim", "reset-by-admin").await,
        Client::signed_in(&s, "victim", "reset-by-admin").await,
    );
    let csrf = a.csrf("/account").await;
    let r = a
        .post("/account/password", &[("csrf", &csrf), ("current", "reset-by-admin"), ("new", "changed-by-victim")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!b.signed_in_now().await, "another session survived the user's own change");
    assert!(a.signed_in_now().await, "the session that changed the password stays");

    // Disabling ends them, and enabling again revives none.
    let b = Client::signed_in(&s, "victim", "changed-by-victim").await;
    assert_eq!(admin.post("/users/victim/enabled", &[("csrf", &acsrf), ("enabled", "false")]).await.status, 303);
    assert!(!a.signed_in_now().await && !b.signed_in_now().await);
    assert_eq!(admin.post("/users/victim/enabled", &[("csrf", &acsrf), ("enabled", "true")]).await.status, 303);
    assert!(!a.signed_in_now().await && !b.signed_in_now().await, "re-enabling revived old sessions");
    assert!(Client::signed_in(&s, "victim", "changed-by-victim").await.signed_in_now().await);
}

// Item 13.
#[tokio::test]
async fn concurrent_first_runs_create_exactly_one_admin() {
    let s = TestServer::start_empty().await;
    let token = s.cairn.setup_token().unwrap().unwrap();
    let c = Client::new(&s);
    let (cookie, form) = form_token(&c.get(&format!("/setup?token={token}")).await);
    let names: Vec<String> = (0..5).map(|i| format!("root{i}")).collect();
    let posts = names.iter().map(|name| {
        let rb = c.http.post(s.url("/setup")).header("Cookie", cookie.clone()).form(&[
            ("csrf", form.as_str()),
            ("token", token.as_str()),
            ("username", name.as_str()),
            ("password", "a-long-password"),
        ]);
        s.send(rb)
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(posts).await.into_iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|st| **st == StatusCode::SEE_OTHER).count(), 1, "{statuses:?}");
    assert_eq!(s.cairn.list_users().unwrap().len(), 1);
}

// Item 14: everywhere a password is set.
#[tokio::test]
async fn common_passwords_are_refused_wherever_a_password_is_set() {
    let s = TestServer::start().await;
    let admin = Client::signed_in(&s, ADMIN, ADMIN_PASSWORD).await;
    let csrf = admin.csrf("/users").await;
    for weak in ["password", "12345678"] {
        let r = admin.post("/users", &[("csrf", &csrf), ("name", "dave"), ("password", weak)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{weak}");
        assert!(r.text.contains("invalid password"), "{}", r.text);
        assert!(s.cairn.find_user("dave").unwrap().is_none());
    }
    let r = admin.post("/users", &[("csrf", &csrf), ("name", "dave"), ("password", "dave1234")]).await;
    assert!(r.text.contains("user name"), "the rule is named: {}", r.text);
    add_user(&s, "erin", "erin-password");
    let r = admin.post("/users/password", &[("csrf", &csrf), ("user", "erin"), ("password", "password")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("most common passwords"), "{}", r.text);
    assert!(
        Client::new(&s).login("erin", "erin-password").await.status == StatusCode::SEE_OTHER,
        "the reset changed nothing"
    );

    let own = admin.csrf("/account").await;
    let r = admin.post("/account/password", &[("csrf", &own), ("current", ADMIN_PASSWORD), ("new", "12345678")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("consecutive"), "{}", r.text);

    let sys = Caller::system("cli");
    let err = s.cairn.create_user(&sys, "frank", "password", false).unwrap_err().to_string();
    assert!(err.contains("most common passwords"), "{err}");

    let empty = TestServer::start_empty().await;
    let token = empty.cairn.setup_token().unwrap().unwrap();
    let r = Client::new(&empty)
        .post_form_of(
            &format!("/setup?token={token}"),
            "/setup",
            &[("token", &token), ("username", "root"), ("password", "password")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("most common passwords"), "{}", r.text);
    assert!(empty.cairn.list_users().unwrap().is_empty());
}

#[test]
fn the_command_line_and_the_bootstrap_variables_refuse_common_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = cli(&data, &["user", "add", "bob"], "password\n");
    assert!(!out.status.success());
    assert!(text(&out).contains("most common passwords"), "{}", text(&out));

    let mut child = std::process::Command::new(BIN)
        .args(["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("CAIRN_ADMIN_USER", "root")
        .env("CAIRN_ADMIN_PASSWORD", "12345678")
        .env_remove("CAIRN_ADMIN_PASSWORD_FILE")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the server started with a common bootstrap password");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("consecutive"), "{err}");
}

// Item 16.
#[tokio::test]
async fn an_app_wide_grant_with_no_right_ticked_is_refused() {
    let s = TestServer::start().await;
    s.seed_app("appb").await;
    add_user(&s, "ro2", "ro2-password-x");
    let admin = Client::signed_in(&s, ADMIN, ADMIN_PASSWORD).await;
    let csrf = admin.csrf("/users").await;
    let r = admin
        .post("/users/grants", &[("csrf", &csrf), ("user", "ro2"), ("app", "appb"), ("namespace", ""), ("env", "DEV")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("choose at least one right"), "{}", r.text);
    assert!(s.cairn.find_user("ro2").unwrap().unwrap().grants.is_empty());

    let ro = Client::signed_in(&s, "ro2", "ro2-password-x").await;
    let ns = "/apps/appb/envs/DEV/clusters/default/namespaces/application";
    let rcsrf = ro.csrf("/account").await;
    let item =
        ro.post(&format!("{ns}/items"), &[("csrf", &rcsrf), ("key", "k"), ("value", "v"), ("comment", "")]).await;
    assert_eq!(item.status, StatusCode::FORBIDDEN);
    let publish = ro.post(&format!("{ns}/publish"), &[("csrf", &rcsrf), ("title", "t"), ("comment", "")]).await;
    assert_eq!(publish.status, StatusCode::FORBIDDEN);

    // A named namespace with no box ticked is read access, and the page says so.
    let r = admin
        .post(
            "/users/grants",
            &[("csrf", &csrf), ("user", "ro2"), ("app", "appb"), ("namespace", "application"), ("env", "DEV")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(admin.get("/users").await.text.contains("appb/application read in DEV"));
    assert_eq!(ro.get(ns).await.status, StatusCode::OK);
    let item =
        ro.post(&format!("{ns}/items"), &[("csrf", &rcsrf), ("key", "k"), ("value", "v"), ("comment", "")]).await;
    assert_eq!(item.status, StatusCode::FORBIDDEN);
}

// Item 17: login CSRF, and `Origin: null`.
#[tokio::test]
async fn sign_in_and_setup_forms_need_their_own_token_and_origin() {
    let s = TestServer::start().await;
    let c = Client::new(&s);
    let creds = [("username", ADMIN), ("password", ADMIN_PASSWORD)];
    let (cookie, token) = form_token(&c.get("/login").await);
    let attempt = |cookie: Option<&str>, token: &str, origin: Option<&str>| {
        let mut rb = c.http.post(s.url("/login")).form(&[("csrf", token), creds[0], creds[1]]);
        if let Some(ck) = cookie {
            rb = rb.header("Cookie", ck.to_string());
        }
        if let Some(o) = origin {
            rb = rb.header("Origin", o.to_string());
        }
        s.send(rb)
    };
    let forged = format!("cairn_form={}", "1.2.3");
    for (what, r) in [
        ("no token", attempt(None, "", None).await),
        ("no cookie", attempt(None, &token, None).await),
        ("forged pair", attempt(Some(&forged), "1.2.3", None).await),
        ("token of another form", attempt(Some(&cookie), "1.2.3", None).await),
        ("Origin: null", attempt(Some(&cookie), &token, Some("null")).await),
        ("foreign Origin", attempt(Some(&cookie), &token, Some("http://evil.example")).await),
    ] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.text);
        assert!(session_cookie(&r).is_none(), "{what} signed in");
        assert!(r.text.contains("name=\"csrf\""), "{what}: the form comes back ready to submit");
    }
    let own = s.base.clone();
    let ok = attempt(Some(&cookie), &token, Some(&own)).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    assert!(session_cookie(&ok).is_some());

    // Form tokens are short-lived.
    let (cookie, token) = form_token(&c.get("/login").await);
    s.cairn.clock().advance(Duration::from_secs(31 * 60));
    assert_eq!(attempt(Some(&cookie), &token, None).await.status, StatusCode::FORBIDDEN, "an expired form");

    // A signed-in form with a valid CSRF token but `Origin: null` changes nothing.
    let admin = Client::signed_in(&s, ADMIN, ADMIN_PASSWORD).await;
    let csrf = admin.csrf("/apps").await;
    let r = s
        .send(
            admin
                .http
                .post(s.url("/apps"))
                .header("Cookie", admin.cookie.clone().unwrap())
                .header("Origin", "null")
                .form(&[("csrf", csrf.as_str()), ("app_id", "nullapp"), ("name", "x")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(s.cairn.app("nullapp").is_err(), "nothing may be written");

    // Setup is protected the same way.
    let empty = TestServer::start_empty().await;
    let token = empty.cairn.setup_token().unwrap().unwrap();
    let r = empty
        .send(c.http.post(empty.url("/setup")).form(&[
            ("token", token.as_str()),
            ("username", "root"),
            ("password", "a-long-password"),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("form had expired"), "{}", r.text);
    assert!(empty.cairn.list_users().unwrap().is_empty());
}

/// A failed sign-in is audited with the name typed; an anonymous caller typing 15,000
/// characters must not get them stored (twice: as actor and target) in the audit log.
#[tokio::test]
async fn a_failed_sign_in_records_a_bounded_name() {
    let s = TestServer::start().await;
    let long = "u".repeat(15_000);
    assert!(is_wrong(&s.cairn.login(&long, "whatever-it-is", "10.1.2.3")));
    let audit = s.cairn.audit_log(&Caller::system("t"), 1000).unwrap();
    let failed = audit.iter().find(|a| a.action == "login.failed").expect("the failure is audited");
    assert!(
        failed.target.len() <= 128 && failed.actor.len() <= 128,
        "{} / {}",
        failed.target.len(),
        failed.actor.len()
    );
    assert!(failed.target.starts_with("uuuu"));
}

/// An IPv6 client can pick any address of its /64; spraying guesses from a fresh address each
/// time must fill one bucket, as from a single IPv4 address.
#[tokio::test]
async fn sign_in_failures_from_one_ipv6_64_share_a_bucket() {
    let s = TestServer::start().await;
    let cairn = &s.cairn;
    for i in 0..10 {
        let ip = format!("2001:db8:7:1::{:x}", i + 1);
        assert!(is_wrong(&cairn.login(&format!("spray{i}"), "whatever-1", &ip)), "attempt {i}");
    }
    assert!(is_throttled(&cairn.login("spray-next", "whatever-1", "2001:db8:7:1:ffff::99")));
    assert!(is_wrong(&cairn.login("spray-next", "whatever-1", "2001:db8:7:2::1")), "another /64 is not affected");
}

/// Sessions are kept for at most 50,000 browsers, least recently used out first: one
/// account signing in over and over must only end its own oldest sessions.
#[tokio::test]
async fn one_account_signing_in_again_and_again_ends_only_its_own_oldest_sessions() {
    let s = TestServer::start().await;
    add_user(&s, "carol", "carol-password");
    let cairn = &s.cairn;
    let (other, _) = cairn.login(ADMIN, ADMIN_PASSWORD, "10.0.0.1").unwrap();
    let (first, _) = cairn.login("carol", "carol-password", "10.0.0.2").unwrap();
    let mut latest = first.clone();
    for _ in 0..64 {
        latest = cairn.login("carol", "carol-password", "10.0.0.2").unwrap().0;
    }
    assert!(cairn.session(&first).is_none(), "the 65th sign-in ended carol's least recently used session");
    assert!(cairn.session(&latest).is_some());
    assert!(cairn.session(&other).is_some(), "another user's session is untouched");
}
