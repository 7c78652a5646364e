//! Portal journeys in real headless Chromium, driven through WebDriver (chromedriver).
//! Screenshots of every step go to `target/screenshots/`. Without chromium the tests are
//! skipped locally; under CI (`CI` set) a missing browser is a failure.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use cairn::domain::model::Grant;
use cairn::service::Caller;

use crate::common::{eventually, TestServer, ADMIN};

struct Browser {
    client: Client,
    driver: Child,
    base: String,
    journey: &'static str,
    step: u32,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn installed(bin: &str) -> bool {
    Command::new(bin).arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

impl Browser {
    async fn open(s: &TestServer, journey: &'static str) -> Option<Browser> {
        if !(installed("chromium") && installed("chromedriver")) {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have chromium and chromium-driver (.ci/run installs them)"
            );
            eprintln!("skipped: chromium / chromedriver not installed");
            return None;
        }
        // chromedriver picks its own port and prints it: no port is freed and reused.
        let mut driver =
            Command::new("chromedriver").arg("--port=0").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let stdout = driver.stdout.take().unwrap();
        let port = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stdout).lines();
            let port = lines.by_ref().map_while(Result::ok).find_map(|l| {
                l.split("started successfully on port ").nth(1).map(|p| p.trim_end_matches('.').trim().to_string())
            });
            // Keep draining so chromedriver never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            port
        })
        .await
        .unwrap()
        .expect("chromedriver did not say which port it listens on")
        .parse::<u16>()
        .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--window-size=1280,1000", format!("--user-data-dir={}", profile.path().display())]
            }
        });
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps.as_object().unwrap().clone());
        let client = builder.connect(&format!("http://127.0.0.1:{port}")).await.expect("chromedriver session");
        Some(Browser { client, driver, base: s.base.clone(), journey, step: 0, _profile: profile })
    }

    async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    /// Runs `act` on the element, found afresh and retried while a page load replaces the
    /// document (a stale element under load is not a failure of the portal). Returns the
    /// element acted on.
    async fn on_element<F, Fut>(&self, locator: Locator<'_>, act: F) -> fantoccini::elements::Element
    where
        F: Fn(fantoccini::elements::Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
    {
        let mut last = None;
        for _ in 0..20 {
            let e = self.client.wait().at_most(Duration::from_secs(10)).for_element(locator).await.unwrap();
            match act(e.clone()).await {
                Ok(()) => return e,
                Err(err) if did_not_happen(&err) => last = Some(err),
                Err(err) => panic!("acting on {locator:?} failed: {err:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("could not act on {locator:?}: {last:?}");
    }

    /// Types into the field with this id.
    async fn fill(&self, id: &str, text: &str) {
        self.on_element(Locator::Id(id), |e| async move {
            e.clear().await?;
            e.send_keys(text).await
        })
        .await;
    }

    /// Clicks the button with exactly this text, as a user would.
    async fn press(&self, text: &str) {
        let xpath = format!("//button[normalize-space(.)='{text}']");
        self.on_element(Locator::XPath(&xpath), |e| async move { e.click().await }).await;
    }

    /// Presses a button that asks for confirmation, and confirms.
    async fn press_confirmed(&self, text: &str) {
        let xpath = format!("//button[normalize-space(.)='{text}']");
        let button = self.on_element(Locator::XPath(&xpath), |e| async move { e.click().await }).await;
        let mut asked = None;
        for _ in 0..100 {
            if let Ok(t) = self.client.get_alert_text().await {
                asked = Some(t);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(asked.is_some(), "pressing '{text}' asked for no confirmation");
        self.client.accept_alert().await.unwrap();
        for _ in 0..100 {
            if button.text().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("confirming '{text}' did not load a new page");
    }

    async fn click_link(&self, text: &str) {
        self.on_element(Locator::LinkText(text), |e| async move { e.click().await }).await;
    }

    async fn page(&self) -> String {
        self.client.source().await.unwrap()
    }

    async fn shot(&mut self, name: &str) {
        self.step += 1;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{}-{:02}-{name}.png", self.journey, self.step)), png).unwrap();
    }

    async fn login(&mut self, user: &str, password: &str) {
        self.goto("/login").await;
        self.fill("username", user).await;
        self.fill("password", password).await;
        self.press("Sign in").await;
        self.client.wait().at_most(Duration::from_secs(5)).for_element(Locator::Css("h1")).await.unwrap();
    }

    async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

const NS: &str = "/apps/demo/envs/DEV/clusters/default/namespaces/application";

#[tokio::test]
async fn first_run_admin_creates_an_app_and_publishes_to_a_real_client() {
    let s = TestServer::start_empty().await;
    let Some(mut b) = Browser::open(&s, "first-run").await else { return };
    let token = s.cairn.setup_token().unwrap().unwrap();
    b.goto(&format!("/setup?token={token}")).await;
    b.shot("setup").await;
    b.fill("username", "root").await;
    b.fill("password", "root-password").await;
    b.press("Create admin").await;
    b.login("root", "root-password").await;
    b.shot("apps-empty").await;
    assert!(b.page().await.contains("No apps yet"));
    b.fill("app_id", "demo").await;
    b.fill("name", "Demo").await;
    b.press("Create app").await;
    b.click_link("application").await;
    b.fill("key", "greeting").await;
    b.fill("value", "hello from the portal").await;
    b.press("Save item").await;
    b.shot("draft").await;
    assert!(b.page().await.contains("1 change against the live release"));
    b.fill("title", "first release").await;
    b.press("Publish to DEV").await;
    b.shot("published").await;
    assert!(b.page().await.contains("Published first release"));

    let client = apollo_client::conf::ApolloConfClientBuilder::new_via_config_service(
        url::Url::parse(&s.url("/envs/DEV")).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let got = client
        .fetch(apollo_client::conf::requests::FetchRequest {
            app_id: "demo".into(),
            namespace_name: "application".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(got.configurations["greeting"], "hello from the portal");
    // Usable on a 390 px wide phone: nothing overflows sideways.
    b.client.set_window_size(390, 844).await.unwrap();
    b.goto(NS).await;
    b.shot("phone").await;
    let overflow = b
        .client
        .execute(
            "const w = document.documentElement.clientWidth; \
             return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 1 && !(e.parentElement && e.parentElement.closest('table'))) \
               .map(e => e.tagName + '.' + e.className).slice(0, 5);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(overflow, serde_json::json!([]), "elements wider than a 390 px screen");
    b.close().await;
}

#[tokio::test]
async fn edit_review_publish_and_roll_back() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("timeout", "100")]).await;
    let Some(mut b) = Browser::open(&s, "rollback").await else { return };
    b.login(ADMIN, "apollo-password").await;
    b.goto(NS).await;
    b.fill("key", "timeout").await;
    b.fill("value", "250").await;
    b.press("Save item").await;
    b.shot("diff").await;
    let page = b.page().await;
    assert!(page.contains("state-changed") && page.contains("live: 100"), "the diff shows old and new");
    b.fill("title", "slower").await;
    b.press("Publish to DEV").await;
    eventually(Duration::from_secs(5), "the new value served", || async {
        s.configs("DEV", "demo", "default", "application", "").await.json()["configurations"]["timeout"] == "250"
    })
    .await;
    b.shot("history").await;
    b.press_confirmed("Roll back to this").await;
    b.shot("rolled-back").await;
    assert!(b.page().await.contains("Rolled back to t"));
    assert_eq!(s.configs("DEV", "demo", "default", "application", "").await.json()["configurations"]["timeout"], "100");
    b.close().await;
}

#[tokio::test]
async fn a_user_without_release_rights_cannot_publish() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    let sys = Caller::system("t");
    s.cairn.create_user(&sys, "dev", "dev-password", false).unwrap();
    let grant = Grant {
        app_id: "demo".into(),
        namespace: Some("application".into()),
        env: Some("DEV".into()),
        modify: true,
        release: false,
    };
    s.cairn.grant_user(&sys, "dev", grant).unwrap();
    let Some(mut b) = Browser::open(&s, "no-release").await else { return };
    b.login("dev", "dev-password").await;
    b.goto(NS).await;
    b.fill("key", "feature.x").await;
    b.fill("value", "on").await;
    b.press("Save item").await;
    b.shot("edited-no-publish").await;
    let page = b.page().await;
    assert!(page.contains("You may not release this namespace in DEV."));
    assert!(!page.contains("Publish to DEV"));
    b.goto("/apps/demo/envs/PRO/clusters/default/namespaces/application").await;
    b.shot("pro-forbidden").await;
    assert!(b.page().await.contains("may not read"));
    assert_eq!(s.configs("DEV", "demo", "default", "application", "").await.status, 404, "nothing was released");
    b.close().await;
}

#[tokio::test]
async fn four_eyes_mode_needs_a_second_person_to_release() {
    let s = TestServer::with_four_eyes_pro(false).await;
    s.seed_app("demo").await;
    s.cairn.create_user(&Caller::system("t"), "bob", "bob-password", true).unwrap();
    let pro = "/apps/demo/envs/PRO/clusters/default/namespaces/application";
    let Some(mut b) = Browser::open(&s, "four-eyes").await else { return };
    b.login(ADMIN, "apollo-password").await;
    b.goto(pro).await;
    b.fill("key", "limit").await;
    b.fill("value", "10").await;
    b.press("Save item").await;
    b.fill("title", "raise limit").await;
    b.press_confirmed("Publish to PRO").await;
    b.shot("refused").await;
    let page = b.page().await;
    assert!(page.contains("another user must release it (four-eyes rule)"), "{page}");
    assert!(page.contains("You are looking at PRODUCTION"));
    b.press("Sign out").await;
    b.login("bob", "bob-password").await;
    b.goto(pro).await;
    b.fill("title", "raise limit").await;
    b.press_confirmed("Publish to PRO").await;
    b.shot("released-by-second-person").await;
    assert_eq!(s.configs("PRO", "demo", "default", "application", "").await.json()["configurations"]["limit"], "10");
    b.close().await;
}

#[tokio::test]
async fn gray_release_reaches_only_the_chosen_client_ip() {
    let s = TestServer::start().await;
    s.seed_app("demo").await;
    s.publish("DEV", "demo", "application", &[("color", "blue")]).await;
    let Some(mut b) = Browser::open(&s, "gray").await else { return };
    b.login(ADMIN, "apollo-password").await;
    b.goto(NS).await;
    b.press("Create a gray branch").await;
    b.fill("gray_key", "color").await;
    b.fill("gray_value", "green").await;
    b.press("Save gray item").await;
    b.fill("gray_ips", "10.0.0.7").await;
    b.press("Save rules").await;
    b.press("Gray publish").await;
    b.shot("gray-live").await;
    assert!(b.page().await.contains("gray release live for matching clients"));
    let color = |ip: &'static str| {
        let s = &s;
        async move {
            s.configs("DEV", "demo", "default", "application", &format!("?ip={ip}")).await.json()["configurations"]
                ["color"]
                .clone()
        }
    };
    assert_eq!(color("10.0.0.7").await, "green");
    assert_eq!(color("10.0.0.8").await, "blue");
    b.press_confirmed("Abandon gray release").await;
    b.shot("gray-abandoned").await;
    assert_eq!(color("10.0.0.7").await, "blue");
    assert!(b.page().await.contains("Create a gray branch"));
    b.close().await;
}

/// WebDriver errors after which the action certainly did not take place (so a retry cannot
/// submit a form twice): the element went stale or could not take the input yet.
fn did_not_happen(err: &fantoccini::error::CmdError) -> bool {
    use fantoccini::error::{CmdError, ErrorStatus};
    err.is_stale_element_reference()
        || err.is_element_not_interactable()
        || err.is_no_such_element()
        || matches!(err, CmdError::Standard(e) if e.error == ErrorStatus::ElementClickIntercepted)
}

/// A raw config file holding an XHTML page with a script, opened by a signed-in admin, runs
/// nothing: before, such a script created a super admin through the portal's own forms.
#[tokio::test]
async fn a_raw_xhtml_config_file_runs_no_script_in_an_admins_browser() {
    let s = TestServer::start().await;
    s.seed_app("xmlapp").await;
    s.seed_namespace("xmlapp", "evil", "xml", false).await;
    let payload = "<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>raw</title></head><body>\
                   <script>document.title = 'XSSDONE';</script></body></html>";
    s.publish("DEV", "xmlapp", "evil.xml", &[("content", payload)]).await;
    let Some(mut b) = Browser::open(&s, "raw-file").await else { return };
    b.login(ADMIN, "apollo-password").await;
    let raw = format!("{}/envs/DEV/configfiles/raw/xmlapp/default/evil.xml", s.base);
    // A download leaves the admin where they were; a rendered file would be a sandboxed
    // page whose script may not run. Either way the title is not the script's.
    let _ = b.client.goto(&raw).await;
    // Under load the browser may still be settling the download: ask again on a driver
    // error (never on an answer).
    let mut answer = None;
    for _ in 0..20 {
        if let Ok(v) = b.client.execute("return document.title;", vec![]).await {
            answer = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let title = answer.expect("the browser answered");
    assert_ne!(title, serde_json::json!("XSSDONE"), "the file's script ran on the portal origin");
    b.close().await;
}
