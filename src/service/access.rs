//! Client access keys: checking signed client requests, and managing the keys (at most five
//! per app and env, filter or observer mode).

use crate::domain::model::{AccessKey, AccessKeyMode, Stamp};
use crate::domain::time::now_ms;
use crate::security::{signature, token};
use crate::store::{Counter, Record};

use super::auth::Permission;
use super::{Cairn, Caller, Result, ServiceError};

/// At most this many keys per app and env.
pub const MAX_KEYS: usize = 5;

/// Outcome of checking a client request's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Allowed (no enforced key, or a valid signature).
    Allowed,
    /// The `Timestamp` header is missing or too far from now.
    Skewed,
    /// The signature matches no enforced key.
    Unauthorized,
}

/// The signature headers of a client request and the paths it may have signed.
pub struct SignedRequest<'a> {
    pub timestamp: Option<&'a str>,
    pub authorization: Option<&'a str>,
    /// Path-with-query candidates: as received, and without an env prefix.
    pub paths: Vec<String>,
}

fn check(keys: &[&AccessKey], req: &SignedRequest<'_>, skew_ms: i64) -> ClientAuth {
    let ts = req.timestamp.unwrap_or("");
    let ts_ms: i64 = ts.trim().parse().unwrap_or(0);
    if (now_ms() - ts_ms).abs() >= skew_ms {
        return ClientAuth::Skewed;
    }
    let sig = req.authorization.and_then(|a| a.split_once(':')).map(|(_, s)| s).unwrap_or("");
    let paths: Vec<&str> = req.paths.iter().map(String::as_str).collect();
    let ok = keys.iter().fold(false, |ok, k| signature::verify_any(ts, &paths, &k.secret, sig) | ok);
    if ok {
        ClientAuth::Allowed
    } else {
        ClientAuth::Unauthorized
    }
}

impl Cairn {
    /// Checks a client request of `app` in `env` against the app's access keys. `signed`
    /// builds the signature material and is only called when the app has keys.
    pub fn authenticate_client<'a>(
        &self,
        env: &str,
        app: &str,
        signed: impl FnOnce() -> SignedRequest<'a>,
    ) -> ClientAuth {
        let index = self.read_index();
        let Some(all) =
            index.envs.get(env).and_then(|e| e.access_keys.get(&app.to_ascii_lowercase())).filter(|k| !k.is_empty())
        else {
            return ClientAuth::Allowed;
        };
        let req = &signed();
        let enforced: Vec<&AccessKey> = all.iter().filter(|k| k.enabled && k.mode == AccessKeyMode::Filter).collect();
        if !enforced.is_empty() {
            return check(&enforced, req, self.settings.access_key_skew_ms);
        }
        let observed: Vec<&AccessKey> = all.iter().filter(|k| k.enabled && k.mode == AccessKeyMode::Observer).collect();
        if !observed.is_empty() {
            let outcome = check(&observed, req, self.settings.access_key_skew_ms);
            if outcome != ClientAuth::Allowed {
                tracing::info!(env, app, ?outcome, "request would be rejected by an observer-mode access key");
            }
        }
        ClientAuth::Allowed
    }

    /// The access keys of an app in an env.
    pub fn list_access_keys(&self, caller: &Caller, env: &str, app: &str) -> Result<Vec<AccessKey>> {
        let app = self.app(app)?.app_id;
        caller.require(Permission::AppMaster { app: &app })?;
        Ok(self.repo.access_keys(env, Some(&app))?)
    }

    /// Creates a key (disabled until activated, as in Apollo) with a random 160-bit secret.
    pub fn create_access_key(&self, caller: &Caller, env: &str, app: &str) -> Result<AccessKey> {
        let app = self.app(app)?.app_id;
        caller.require(Permission::AppMaster { app: &app })?;
        let mut c = self.change_for(caller)?;
        if self.repo.access_keys(env, Some(&app))?.len() >= MAX_KEYS {
            return Err(ServiceError::conflict(format!(
                "app '{app}' already has {MAX_KEYS} access keys in {env}; delete one first"
            )));
        }
        let id = c.next_id(Counter::AccessKey)?;
        let key = AccessKey {
            id,
            app_id: app.clone(),
            secret: token::random_hex(20),
            mode: AccessKeyMode::Filter,
            enabled: false,
            stamp: Stamp::new(&caller.operator, now_ms()),
        };
        c.put(Record::AccessKey { env: env.to_string(), key: key.clone() });
        c.audit("access_key.create", Some(env), &app, format!("key {id}"))?;
        c.touch_access_keys(env, &app);
        c.commit()?;
        Ok(key)
    }

    /// Enables a key in `mode`, or disables it when `mode` is `None`.
    pub fn set_access_key(
        &self,
        caller: &Caller,
        env: &str,
        app: &str,
        id: u64,
        mode: Option<AccessKeyMode>,
    ) -> Result<AccessKey> {
        let app = self.app(app)?.app_id;
        caller.require(Permission::AppMaster { app: &app })?;
        let mut c = self.change_for(caller)?;
        let mut key: AccessKey = self
            .repo
            .access_key(env, &app, id)?
            .ok_or_else(|| ServiceError::not_found(format!("access key {id} of app '{app}' in {env} not found")))?;
        match mode {
            Some(m) => {
                key.enabled = true;
                key.mode = m;
            }
            None => key.enabled = false,
        }
        key.stamp.touch(&caller.operator, c.now);
        c.put(Record::AccessKey { env: env.to_string(), key: key.clone() });
        let action = if key.enabled { "access_key.enable" } else { "access_key.disable" };
        c.audit(action, Some(env), &app, format!("key {id}"))?;
        c.touch_access_keys(env, &app);
        c.commit()?;
        Ok(key)
    }

    /// Deletes a key; only disabled keys may be deleted, as in Apollo.
    pub fn delete_access_key(&self, caller: &Caller, env: &str, app: &str, id: u64) -> Result<()> {
        let app = self.app(app)?.app_id;
        caller.require(Permission::AppMaster { app: &app })?;
        let mut c = self.change_for(caller)?;
        let key: AccessKey = self
            .repo
            .access_key(env, &app, id)?
            .ok_or_else(|| ServiceError::not_found(format!("access key {id} of app '{app}' in {env} not found")))?;
        if key.enabled {
            return Err(ServiceError::conflict(format!("access key {id} is enabled; disable it before deleting it")));
        }
        c.put(Record::DeleteAccessKey { env: env.to_string(), app: app.clone(), id });
        c.audit("access_key.delete", Some(env), &app, format!("key {id}"))?;
        c.touch_access_keys(env, &app);
        c.commit()
    }
}
