//! A browser-like portal client over plain HTTP: no automatic redirects, one session cookie,
//! forms posted with their tokens the way a browser sends them.

use std::net::IpAddr;

use reqwest::{redirect::Policy, StatusCode};

use super::{cookies_of, hidden_field, Resp, TestServer, ADMIN};

/// A signed-out or signed-in portal visitor.
pub struct Browser<'a> {
    pub s: &'a TestServer,
    pub http: reqwest::Client,
    /// The session cookie pair, once signed in.
    pub cookie: Option<String>,
}

/// The form cookie pair and hidden token a sign-in or setup page was served with.
pub fn form_token(page: &Resp) -> (String, String) {
    let cookie = cookies_of(&page.headers)
        .into_iter()
        .find(|c| c.starts_with("cairn_form="))
        .unwrap_or_else(|| panic!("no form cookie: {:?}", page.headers));
    (cookie, hidden_field(&page.text, "csrf").expect("the page has a form token"))
}

/// Where a redirect points.
pub fn location(r: &Resp) -> String {
    r.headers.get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// The session cookie pair a response sets, if any.
pub fn session_cookie(r: &Resp) -> Option<String> {
    cookies_of(&r.headers).into_iter().find(|c| c.contains("cairn_session=") && !c.ends_with("cairn_session="))
}

impl<'a> Browser<'a> {
    pub fn new(s: &'a TestServer) -> Self {
        Self::from_ip(s, None)
    }

    /// A visitor whose connections come from `ip` (any 127.0.0.0/8 address on loopback).
    pub fn from_ip(s: &'a TestServer, ip: Option<IpAddr>) -> Self {
        let http = reqwest::Client::builder().redirect(Policy::none()).local_address(ip).build().unwrap();
        Browser { s, http, cookie: None }
    }

    pub async fn get(&self, path: &str) -> Resp {
        let mut rb = self.http.get(self.s.url(path));
        if let Some(c) = &self.cookie {
            rb = rb.header("Cookie", c);
        }
        self.s.send(rb).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        let mut rb = self.http.post(self.s.url(path)).form(form);
        if let Some(c) = &self.cookie {
            rb = rb.header("Cookie", c);
        }
        self.s.send(rb).await
    }

    /// Posts a sign-in or setup form the way a browser does: loads `page` first for its
    /// form token (hidden field plus cookie), then sends both with `form`.
    pub async fn post_form_of(&self, page: &str, path: &str, form: &[(&str, &str)]) -> Resp {
        let (cookie, token) = form_token(&self.s.send(self.http.get(self.s.url(page))).await);
        let mut fields = vec![("csrf", token.as_str())];
        fields.extend_from_slice(form);
        self.s.send(self.http.post(self.s.url(path)).header("Cookie", cookie).form(&fields)).await
    }

    /// Signs in (keeping the session cookie when one is set); returns the answer.
    pub async fn login(&mut self, user: &str, password: &str) -> Resp {
        let r = self
            .post_form_of("/login", "/login", &[("username", user), ("password", password), ("next", "/apps")])
            .await;
        if let Some(c) = session_cookie(&r) {
            self.cookie = Some(c);
        }
        r
    }

    /// A visitor signed in as `user`.
    pub async fn signed_in(s: &'a TestServer, user: &str, password: &str) -> Self {
        let mut b = Browser::new(s);
        let r = b.login(user, password).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "sign-in of {user} failed: {}", r.text);
        b
    }

    /// A visitor signed in as the seeded admin.
    pub async fn admin(s: &'a TestServer) -> Self {
        Self::signed_in(s, ADMIN, "apollo-password").await
    }

    /// The CSRF token of the forms on `page`.
    pub async fn csrf(&self, page: &str) -> String {
        hidden_field(&self.get(page).await.text, "csrf").expect("page has a CSRF field")
    }

    /// True while the session still opens a signed-in page.
    pub async fn signed_in_now(&self) -> bool {
        self.get("/apps").await.status == StatusCode::OK
    }
}
