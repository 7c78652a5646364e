//! Portal sign-in: password check with throttling (see [`super::throttle`]), server-side
//! sessions with idle and absolute timeouts, CSRF tokens, sign-in form tokens, and the
//! one-time first-run setup token. Every sign-in and failed attempt is audited. Time comes
//! from the service's [`super::clock::Clock`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::model::User;
use crate::domain::names;
use crate::security::{constant_time_eq, password, token};

use super::throttle::{Gate, Slot, Throttle};
use super::{Actor, Cairn, Caller, Result, ServiceError};

/// By default a session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// By default a session ends this long after sign-in, whatever happens.
pub const ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);
/// A sign-in or setup form is accepted for this long after it was served.
pub const FORM_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Past this many sessions, ended ones are swept at each sign-in.
const SWEEP_AT: usize = 1_000;
/// Most live sessions kept; past it the least recently used ends.
const MAX_SESSIONS: usize = 50_000;
/// Most sessions one user keeps; past it that user's least recently used ends, so one
/// account signing in over and over cannot push everyone else's sessions out.
pub const MAX_SESSIONS_PER_USER: usize = 64;

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    /// Sent in every portal form and compared on every POST.
    pub csrf: String,
    /// Digest of the password hash signed in with: a session outlives no password change,
    /// even one that raced with its sign-in.
    credential: String,
    created: Instant,
    last_seen: Instant,
}

/// Sessions (keyed by the SHA-256 of their cookie token), the sign-in throttle, the bound
/// on password hashing, the sign-in form key and the first-run token. In memory: a restart
/// signs everyone out, which is acceptable.
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    throttle: Throttle,
    gate: Gate,
    /// Signs sign-in form tokens; new at each start, so forms served before a restart expire.
    form_key: [u8; 32],
    setup_token: Mutex<Option<String>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            sessions: Mutex::default(),
            throttle: Throttle::default(),
            gate: Gate::default(),
            form_key: rand::random(),
            setup_token: Mutex::default(),
        }
    }
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn throttled(wait: Duration) -> ServiceError {
    ServiceError::Throttled(wait.as_secs_f64().ceil().max(1.0) as u64)
}

impl Cairn {
    /// Runs a password hash or check under the bound on concurrent ones.
    pub(crate) fn hashing<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        self.sessions.gate.run(f).ok_or_else(|| throttled(Duration::from_secs(1)))
    }

    /// Signs in; returns the cookie token and the session. Unknown users and wrong passwords
    /// get the same answer; failures are throttled per (account, IP), per IP and per account.
    /// (This form waits out an account's delay on the calling thread; the portal waits
    /// asynchronously instead, with [`Cairn::take_login_slot`] and [`Cairn::login_in_slot`].)
    pub fn login(&self, name: &str, password_text: &str, ip: &str) -> Result<(String, Session)> {
        let delay = self.take_login_slot(name, ip)?;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        self.login_in_slot(name, password_text, ip)
    }

    /// Takes the throttle's slot for one sign-in attempt before any password is checked.
    /// Refused when the (account, IP) or IP bucket is full; otherwise the time to wait before
    /// checking (non-zero only while the account is being guessed from many places: it
    /// slows guessing down, and the owner still gets in). Cheap: no I/O, no hashing.
    pub fn take_login_slot(&self, name: &str, ip: &str) -> Result<Duration> {
        match self.sessions.throttle.take(name, ip, self.clock.now()) {
            Slot::Refused { retry_after } => Err(throttled(retry_after)),
            Slot::Check { delay } => Ok(delay),
        }
    }

    /// Checks the password of an attempt whose slot [`Cairn::take_login_slot`] granted, and
    /// opens the session. Blocking (argon2, storage): run it off the async workers.
    pub fn login_in_slot(&self, name: &str, password_text: &str, ip: &str) -> Result<(String, Session)> {
        let user = self.find_user(name)?.filter(|u| u.enabled);
        let hash = user.as_ref().map_or(DUMMY_HASH, |u| u.password_hash.as_str());
        // Unknown users cost the same check, so timing does not reveal the account.
        let ok = match self.hashing(|| password::verify(password_text, hash)) {
            Ok(ok) => ok && user.is_some(),
            Err(busy) => {
                self.sessions.throttle.not_checked(name, ip, self.clock.now());
                return Err(busy);
            }
        };
        let Some(user) = user.filter(|_| ok) else {
            // The name is whatever an anonymous caller typed: record no more of it than a
            // user name can hold, so failed sign-ins cannot fill the audit log with it.
            let name: String = name.chars().take(names::NAME_MAX).collect();
            let mut c = self.change(&name)?;
            c.audit("login.failed", None, &name, format!("from {ip}"))?;
            c.commit()?;
            return Err(ServiceError::Unauthenticated("wrong user name or password".into()));
        };
        self.sessions.throttle.succeeded(name, ip);
        let token = token::random_hex(32);
        let now = self.clock.now();
        let session = Session {
            user: user.name.clone(),
            csrf: token::random_hex(20),
            credential: token::sha256_hex(&user.password_hash),
            created: now,
            last_seen: now,
        };
        {
            let mut map = self.sessions.map();
            if map.len() >= SWEEP_AT {
                map.retain(|_, s| self.live(s, now));
            }
            let mut own: Vec<(String, Instant)> = map
                .iter()
                .filter(|(_, s)| s.user.eq_ignore_ascii_case(&user.name))
                .map(|(k, s)| (k.clone(), s.last_seen))
                .collect();
            if own.len() >= MAX_SESSIONS_PER_USER {
                own.sort_by_key(|(_, seen)| *seen);
                for (k, _) in own.iter().take(own.len() + 1 - MAX_SESSIONS_PER_USER) {
                    map.remove(k);
                }
            }
            while map.len() >= MAX_SESSIONS {
                let oldest = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => map.remove(&k),
                    None => break,
                };
            }
            map.insert(token::sha256_hex(&token), session.clone());
        }
        let mut c = self.change(&user.name)?;
        c.audit("login", None, &user.name, format!("from {ip}"))?;
        c.commit()?;
        Ok((token, session))
    }

    fn live(&self, s: &Session, now: Instant) -> bool {
        now.saturating_duration_since(s.last_seen) < self.settings.session_idle
            && now.saturating_duration_since(s.created) < self.settings.session_max
    }

    /// The user and session of a cookie token, if it is live; refreshes the idle timer.
    pub fn session(&self, cookie_token: &str) -> Option<(User, Session)> {
        self.checked_session(cookie_token).ok().flatten()
    }

    /// As [`Cairn::session`], but a storage failure while reading the user is an error and
    /// leaves the session in place: a database outage signs nobody out.
    pub fn checked_session(&self, cookie_token: &str) -> Result<Option<(User, Session)>> {
        let key = token::sha256_hex(cookie_token);
        let now = self.clock.now();
        let session = {
            let mut map = self.sessions.map();
            let live = map.get(&key).is_some_and(|s| self.live(s, now));
            if !live {
                map.remove(&key);
                return Ok(None);
            }
            let Some(s) = map.get_mut(&key) else { return Ok(None) };
            s.last_seen = now;
            s.clone()
        };
        let user = self
            .find_user(&session.user)?
            .filter(|u| u.enabled && token::sha256_hex(&u.password_hash) == session.credential);
        if user.is_none() {
            self.sessions.map().remove(&key);
        }
        Ok(user.map(|u| (u, session)))
    }

    /// Ends a session.
    pub fn logout(&self, cookie_token: &str) {
        self.sessions.map().remove(&token::sha256_hex(cookie_token));
    }

    /// Ends every session of `user` but the one of `keep` (a cookie token), if given: after
    /// a password change, a reset or a disable, a stolen or forgotten session must not live on.
    pub(crate) fn end_sessions(&self, user: &str, keep: Option<&str>) {
        let keep = keep.map(token::sha256_hex);
        self.sessions.map().retain(|k, s| !s.user.eq_ignore_ascii_case(user) || keep.as_deref() == Some(k.as_str()));
    }

    /// Lets the session of `cookie_token` continue with the user's new password hash.
    fn renew_credential(&self, cookie_token: &str, password_hash: &str) {
        if let Some(s) = self.sessions.map().get_mut(&token::sha256_hex(cookie_token)) {
            s.credential = token::sha256_hex(password_hash);
        }
    }

    /// Changes the caller's own password after checking the current one. Every other session
    /// of the caller ends; the one of `current_session` (a cookie token) stays.
    pub fn change_password(
        &self,
        caller: &Caller,
        current: &str,
        new: &str,
        current_session: Option<&str>,
    ) -> Result<()> {
        let Actor::User(user) = &caller.actor else {
            return Err(ServiceError::Forbidden("only signed-in users change their password".into()));
        };
        if !self.hashing(|| password::verify(current, &user.password_hash))? {
            return Err(ServiceError::invalid("current password", "is not correct"));
        }
        crate::domain::passwords::check(&user.name, new)?;
        let hash = self.hashing(|| password::hash(new))?.map_err(|e| ServiceError::invalid("new password", e))?;
        let mut c = self.change(&user.name)?;
        let mut fresh = self.find_user(&user.name)?.ok_or_else(|| ServiceError::not_found("user not found"))?;
        fresh.password_hash = hash;
        fresh.stamp.touch(&user.name, c.now);
        c.put(crate::store::Record::User { user: fresh.clone() });
        c.audit("user.password", None, &user.name, "")?;
        c.commit()?;
        self.end_sessions(&user.name, current_session);
        if let Some(kept) = current_session {
            self.renew_credential(kept, &fresh.password_hash);
        }
        Ok(())
    }

    /// A token for a sign-in or setup form, sent both in a short-lived cookie and in the
    /// form; [`Cairn::check_form_token`] wants both, equal, signed here and not expired.
    pub fn form_token(&self) -> String {
        let expires = (self.clock.since_start() + FORM_LIFETIME).as_millis();
        let body = format!("{expires}.{}", token::random_hex(16));
        let mac = token::hmac_sha256_hex(&self.sessions.form_key, &body);
        format!("{body}.{mac}")
    }

    /// Checks a sign-in or setup form's token against its cookie (login CSRF).
    pub fn check_form_token(&self, cookie: Option<&str>, field: &str) -> Result<()> {
        let expired = || {
            ServiceError::Forbidden(
                "the form had expired or did not come from this page; it has been reloaded: submit it again".into(),
            )
        };
        let Some(cookie) = cookie.filter(|c| constant_time_eq(c.as_bytes(), field.as_bytes())) else {
            return Err(expired());
        };
        let Some((body, mac)) = cookie.rsplit_once('.') else { return Err(expired()) };
        let expected = token::hmac_sha256_hex(&self.sessions.form_key, body);
        if mac.is_empty() || !constant_time_eq(mac.as_bytes(), expected.as_bytes()) {
            return Err(expired());
        }
        let expires = body.split('.').next().and_then(|e| e.parse::<u128>().ok()).unwrap_or(0);
        if expires <= self.clock.since_start().as_millis() {
            return Err(expired());
        }
        Ok(())
    }

    /// The first-run token, created on first use while no user exists (logged by the server).
    pub fn setup_token(&self) -> Result<Option<String>> {
        if !self.list_users()?.is_empty() {
            return Ok(None);
        }
        let mut slot = self.sessions.setup_token.lock().unwrap_or_else(|p| p.into_inner());
        Ok(Some(slot.get_or_insert_with(|| token::random_hex(16)).clone()))
    }

    /// Creates the first admin with the first-run token; refused once any user exists. The
    /// "no user yet" check and the creation happen under one write lock, so of concurrent
    /// requests with the token exactly one creates an admin.
    pub fn first_run_admin(&self, setup_token: &str, name: &str, password_text: &str) -> Result<User> {
        let done = || ServiceError::Forbidden("setup is already done; sign in".into());
        let expected = self.setup_token()?.ok_or_else(done)?;
        if !constant_time_eq(expected.as_bytes(), setup_token.as_bytes()) {
            return Err(ServiceError::Forbidden(
                "the setup token is wrong; use the link printed in the server log".into(),
            ));
        }
        let user = self.create_first_admin(&Caller::system("setup"), name, password_text)?.ok_or_else(done)?;
        *self.sessions.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(user)
    }
}

/// An argon2id hash of a random password, checked when the user does not exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3Ubi5cn+QXnbbtmDEXTPTVhWFN6SeEBx6WF6vpk9T3g";
