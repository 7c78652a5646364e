//! Portal sign-in: password check with throttling, server-side sessions with idle and
//! absolute timeouts, CSRF tokens, and the one-time first-run setup token. Every sign-in
//! and failed attempt is audited.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::model::User;
use crate::security::{constant_time_eq, password, token};

use super::{Actor, Cairn, Caller, Result, ServiceError};

/// By default a session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// By default a session ends this long after sign-in, whatever happens.
pub const ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);
/// Failed attempts allowed before delays start.
const FREE_FAILURES: u32 = 3;
/// Longest delay between attempts.
const MAX_DELAY: Duration = Duration::from_secs(300);

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    /// Sent in every portal form and compared on every POST.
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    last: Option<Instant>,
}

/// Sessions (keyed by the SHA-256 of their cookie token), failure counters and the
/// first-run token. In memory: a restart signs everyone out, which is acceptable.
#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Failures>>,
    setup_token: Mutex<Option<String>>,
}

fn delay_for(count: u32) -> Duration {
    if count < FREE_FAILURES {
        return Duration::ZERO;
    }
    let secs = 1u64 << (count - FREE_FAILURES).min(9);
    Duration::from_secs(secs).min(MAX_DELAY)
}

impl Sessions {
    fn wait_needed(&self, keys: &[String]) -> Option<Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|k| map.get(k))
            .filter_map(|f| f.last.map(|last| delay_for(f.count).saturating_sub(last.elapsed())))
            .filter(|d| !d.is_zero())
            .max()
    }

    fn fail(&self, keys: &[String]) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            let f = map.entry(k.clone()).or_default();
            f.count += 1;
            f.last = Some(Instant::now());
        }
    }

    fn clear(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

impl Cairn {
    /// Signs in; returns the cookie token and the session. Unknown users and wrong passwords
    /// get the same answer; repeated failures per account and per IP get a growing delay.
    pub fn login(&self, name: &str, password_text: &str, ip: &str) -> Result<(String, Session)> {
        let keys = [format!("user:{}", name.to_ascii_lowercase()), format!("ip:{ip}")];
        if let Some(wait) = self.sessions.wait_needed(&keys) {
            return Err(ServiceError::Throttled(wait.as_secs().max(1)));
        }
        let user = self.find_user(name)?.filter(|u| u.enabled);
        let ok = match &user {
            Some(u) => password::verify(password_text, &u.password_hash),
            None => {
                // Spend the same time as a real check so timing does not reveal the account.
                let _ = password::verify(password_text, DUMMY_HASH);
                false
            }
        };
        let Some(user) = user.filter(|_| ok) else {
            self.sessions.fail(&keys);
            let mut c = self.change(name);
            c.audit("login.failed", None, name, format!("from {ip}"))?;
            c.commit()?;
            return Err(ServiceError::Unauthenticated("wrong user name or password".into()));
        };
        self.sessions.clear(&keys[0]);
        let token = token::random_hex(32);
        let now = Instant::now();
        let session = Session { user: user.name.clone(), csrf: token::random_hex(20), created: now, last_seen: now };
        self.sessions
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token::sha256_hex(&token), session.clone());
        let mut c = self.change(&user.name);
        c.audit("login", None, &user.name, format!("from {ip}"))?;
        c.commit()?;
        Ok((token, session))
    }

    /// The user and session of a cookie token, if it is live; refreshes the idle timer.
    pub fn session(&self, cookie_token: &str) -> Option<(User, Session)> {
        let key = token::sha256_hex(cookie_token);
        let session = {
            let mut map = self.sessions.sessions.lock().unwrap_or_else(|p| p.into_inner());
            let live = map.get(&key).is_some_and(|s| {
                s.last_seen.elapsed() < self.settings.session_idle && s.created.elapsed() < self.settings.session_max
            });
            if !live {
                map.remove(&key);
                return None;
            }
            let s = map.get_mut(&key)?;
            s.last_seen = Instant::now();
            s.clone()
        };
        let user = self.find_user(&session.user).ok().flatten().filter(|u| u.enabled)?;
        Some((user, session))
    }

    /// Ends a session.
    pub fn logout(&self, cookie_token: &str) {
        self.sessions.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&token::sha256_hex(cookie_token));
    }

    /// Changes the caller's own password after checking the current one.
    pub fn change_password(&self, caller: &Caller, current: &str, new: &str) -> Result<()> {
        let Actor::User(user) = &caller.actor else {
            return Err(ServiceError::Forbidden("only signed-in users change their password".into()));
        };
        if !password::verify(current, &user.password_hash) {
            return Err(ServiceError::invalid("current password", "is not correct"));
        }
        if new.chars().count() < super::users::MIN_PASSWORD {
            return Err(ServiceError::invalid(
                "new password",
                format!("must be at least {} characters", super::users::MIN_PASSWORD),
            ));
        }
        let hash = password::hash(new).map_err(|e| ServiceError::invalid("new password", e))?;
        let mut c = self.change(&user.name);
        let mut fresh = self.find_user(&user.name)?.ok_or_else(|| ServiceError::not_found("user not found"))?;
        fresh.password_hash = hash;
        fresh.stamp.touch(&user.name, c.now);
        c.ws.put(crate::store::T::Users, crate::store::keys::name(&user.name), &fresh)?;
        c.audit("user.password", None, &user.name, "")?;
        c.commit()
    }

    /// The first-run token, created on first use while no user exists (logged by the server).
    pub fn setup_token(&self) -> Result<Option<String>> {
        if !self.list_users()?.is_empty() {
            return Ok(None);
        }
        let mut slot = self.sessions.setup_token.lock().unwrap_or_else(|p| p.into_inner());
        Ok(Some(slot.get_or_insert_with(|| token::random_hex(16)).clone()))
    }

    /// Creates the first admin with the first-run token; refused once any user exists.
    pub fn first_run_admin(&self, setup_token: &str, name: &str, password_text: &str) -> Result<User> {
        let expected =
            self.setup_token()?.ok_or_else(|| ServiceError::Forbidden("setup is already done; sign in".into()))?;
        if !constant_time_eq(expected.as_bytes(), setup_token.as_bytes()) {
            return Err(ServiceError::Forbidden(
                "the setup token is wrong; use the link printed in the server log".into(),
            ));
        }
        let user = self.create_user(&Caller::system("setup"), name, password_text, true)?;
        *self.sessions.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(user)
    }
}

/// An argon2id hash of a random password, checked when the user does not exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3Ubi5cn+QXnbbtmDEXTPTVhWFN6SeEBx6WF6vpk9T3g";

#[cfg(test)]
mod tests {
    #[test]
    fn delays_grow_after_three_failures_and_are_capped() {
        use super::delay_for;
        assert_eq!(delay_for(2).as_secs(), 0);
        assert_eq!(delay_for(3).as_secs(), 1);
        assert_eq!(delay_for(5).as_secs(), 4);
        assert_eq!(delay_for(40).as_secs(), 300);
    }
}
