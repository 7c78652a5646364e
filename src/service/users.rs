//! Operators (users) and Open API consumers, and turning credentials into a [`Caller`].

use crate::domain::model::{Consumer, Grant, Stamp, User};
use crate::domain::names;
use crate::domain::time::now_ms;
use crate::security::{password, token};
use crate::store::Record;

use super::auth::Actor;
use super::{Cairn, Caller, Result, ServiceError};

/// Shortest password accepted (the other rules are in [`crate::domain::passwords`]).
pub const MIN_PASSWORD: usize = crate::domain::passwords::MIN_LENGTH;

impl Cairn {
    /// A user by name, or None.
    pub fn find_user(&self, name: &str) -> Result<Option<User>> {
        Ok(self.repo.user(name)?)
    }

    /// A user by name; an unknown operator is a 400 on the Open API, so it is `Invalid`.
    pub fn user(&self, name: &str) -> Result<User> {
        self.find_user(name)?.filter(|u| u.enabled).ok_or_else(|| {
            ServiceError::invalid(
                "operator",
                format!("user '{name}' does not exist or is disabled; create it with `cairn user add {name}`"),
            )
        })
    }

    /// Every user.
    pub fn list_users(&self) -> Result<Vec<User>> {
        Ok(self.repo.users()?)
    }

    /// Creates a user with an argon2id password hash.
    pub fn create_user(&self, caller: &Caller, name: &str, password_text: &str, is_admin: bool) -> Result<User> {
        self.insert_user(caller, name, password_text, is_admin, false)?
            .ok_or_else(|| ServiceError::AlreadyExists(format!("user '{name}' already exists")))
    }

    /// Creates the first admin, or returns None when any user exists already (decided under
    /// the write lock, so concurrent first runs create one admin).
    pub fn create_first_admin(&self, caller: &Caller, name: &str, password_text: &str) -> Result<Option<User>> {
        self.insert_user(caller, name, password_text, true, true)
    }

    fn insert_user(
        &self,
        caller: &Caller,
        name: &str,
        password_text: &str,
        is_admin: bool,
        only_first: bool,
    ) -> Result<Option<User>> {
        if !matches!(caller.actor, Actor::System) && !matches!(&caller.actor, Actor::User(u) if u.is_admin) {
            return Err(ServiceError::Forbidden("only an admin may create users".into()));
        }
        names::check_user(name)?;
        crate::domain::passwords::check(name, password_text)?;
        let hash = self.hashing(|| password::hash(password_text))?.map_err(|e| ServiceError::invalid("password", e))?;
        let mut c = self.change(&caller.operator)?;
        if only_first && self.repo.has_users()? {
            return Ok(None);
        }
        if self.repo.user(name)?.is_some() {
            return Ok(None);
        }
        let user = User {
            name: name.to_string(),
            display_name: name.to_string(),
            email: String::new(),
            password_hash: hash,
            is_admin,
            enabled: true,
            grants: Vec::new(),
            can_create_apps: false,
            stamp: Stamp::new(&caller.operator, c.now),
        };
        c.put(Record::User { user: user.clone() });
        c.audit("user.create", None, name, if is_admin { "admin" } else { "" })?;
        c.commit()?;
        Ok(Some(user))
    }

    /// Creates an Open API consumer; returns it with its token, which is shown only now.
    pub fn create_consumer(&self, caller: &Caller, name: &str, allow_create_app: bool) -> Result<(Consumer, String)> {
        if !matches!(caller.actor, Actor::System) && !matches!(&caller.actor, Actor::User(u) if u.is_admin) {
            return Err(ServiceError::Forbidden("only an admin may create consumers".into()));
        }
        names::check_user(name)?;
        let secret = token::random_hex(20);
        let sha = token::sha256_hex(&secret);
        let mut c = self.change(&caller.operator)?;
        if self.repo.consumer(name)?.is_some() {
            return Err(ServiceError::AlreadyExists(format!("consumer '{name}' already exists")));
        }
        let consumer = Consumer {
            name: name.to_string(),
            token_sha256: sha.clone(),
            allow_create_app,
            grants: Vec::new(),
            stamp: Stamp::new(&caller.operator, c.now),
        };
        c.put(Record::Consumer { consumer: consumer.clone() });
        c.audit("consumer.create", None, name, "")?;
        c.commit()?;
        Ok((consumer, secret))
    }

    /// Grants a consumer modify + release on a namespace (or app master when `namespace` is
    /// None), optionally in one env only.
    pub fn grant_consumer(
        &self,
        caller: &Caller,
        name: &str,
        app: &str,
        namespace: Option<&str>,
        env: Option<&str>,
    ) -> Result<Consumer> {
        if !matches!(caller.actor, Actor::System) && !matches!(&caller.actor, Actor::User(u) if u.is_admin) {
            return Err(ServiceError::Forbidden("only an admin may grant consumers".into()));
        }
        let app = self.app(app)?.app_id;
        let env = env.map(|e| self.env(e)).transpose()?;
        let mut c = self.change(&caller.operator)?;
        let mut consumer: Consumer =
            self.repo.consumer(name)?.ok_or_else(|| ServiceError::not_found(format!("consumer '{name}' not found")))?;
        let grant =
            Grant { app_id: app.clone(), namespace: namespace.map(str::to_string), env, modify: true, release: true };
        if !consumer.grants.contains(&grant) {
            consumer.grants.push(grant);
        }
        consumer.stamp.touch(&caller.operator, now_ms());
        c.put(Record::Consumer { consumer: consumer.clone() });
        c.audit("consumer.grant", None, name, format!("{app}/{}", namespace.unwrap_or("*")))?;
        c.commit()?;
        Ok(consumer)
    }

    /// The consumer owning an Open API token.
    pub fn consumer_by_token(&self, token_text: &str) -> Result<Consumer> {
        let unknown =
            || ServiceError::Unauthenticated("missing or unknown Open API token in the Authorization header".into());
        if token_text.is_empty() {
            return Err(unknown());
        }
        let sha = token::sha256_hex(token_text);
        let consumer: Consumer = self.repo.consumer_by_token(&sha)?.ok_or_else(unknown)?;
        // The index lookup is by hash already; compare again in constant time for good measure.
        if !crate::security::constant_time_eq(consumer.token_sha256.as_bytes(), sha.as_bytes()) {
            return Err(unknown());
        }
        Ok(consumer)
    }

    /// A caller for a consumer acting for `operator`, who must be an existing, enabled user
    /// and (checked per use case) hold the permission the change needs.
    pub fn consumer_caller(&self, consumer: Consumer, operator: Option<&str>) -> Result<Caller> {
        let operator_user = match operator.map(str::trim).filter(|o| !o.is_empty()) {
            Some(op) => Some(self.user(op)?),
            None => None,
        };
        let operator = operator_user.as_ref().map(|u| u.name.clone()).unwrap_or_default();
        Ok(Caller { actor: Actor::Consumer(consumer), operator, operator_user })
    }
}

impl Caller {
    /// The operator, required for mutations.
    pub fn require_operator(&self) -> Result<&str> {
        if self.operator.is_empty() {
            Err(ServiceError::invalid(
                "operator",
                "is required (query parameter `operator` or the body's dataChangeCreatedBy / releasedBy)",
            ))
        } else {
            Ok(&self.operator)
        }
    }
}

impl Cairn {
    /// Gives a user a grant (admins only). Modify and release are separate rights.
    pub fn grant_user(&self, caller: &Caller, name: &str, grant: Grant) -> Result<User> {
        if !matches!(caller.actor, Actor::System) && !matches!(&caller.actor, Actor::User(u) if u.is_admin) {
            return Err(ServiceError::Forbidden("only an admin may grant users".into()));
        }
        let app = self.app(&grant.app_id)?.app_id;
        let grant = Grant { app_id: app.clone(), env: grant.env.map(|e| self.env(&e)).transpose()?, ..grant };
        if grant.namespace.is_none() && !grant.modify && !grant.release {
            // An app-wide grant makes its holder master of the app; with no box ticked the
            // wish was probably read-only, which only a namespace grant expresses.
            return Err(ServiceError::invalid(
                "rights",
                "choose at least one right: tick Modify and/or Release for an app-wide grant (it makes the user \
                 master of the app), or name a namespace to grant read access only",
            ));
        }
        let mut c = self.change(&caller.operator)?;
        let mut user =
            self.find_user(name)?.ok_or_else(|| ServiceError::not_found(format!("user '{name}' not found")))?;
        if !user.grants.contains(&grant) {
            user.grants.push(grant.clone());
        }
        user.stamp.touch(&caller.operator, c.now);
        c.put(Record::User { user: user.clone() });
        c.audit(
            "user.grant",
            grant.env.as_deref(),
            name,
            format!("{app}/{}", grant.namespace.as_deref().unwrap_or("*")),
        )?;
        c.commit()?;
        Ok(user)
    }
}

impl Cairn {
    fn require_admin(caller: &Caller, what: &str) -> Result<()> {
        if matches!(caller.actor, Actor::System) || matches!(&caller.actor, Actor::User(u) if u.is_admin) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!("only an admin may {what}")))
        }
    }

    /// Enables or disables a user (admins only; nobody disables themselves).
    pub fn set_user_enabled(&self, caller: &Caller, name: &str, enabled: bool) -> Result<User> {
        Self::require_admin(caller, "enable or disable users")?;
        if !enabled && caller.operator == name {
            return Err(ServiceError::conflict("you cannot disable yourself"));
        }
        let mut c = self.change(&caller.operator)?;
        let mut user =
            self.find_user(name)?.ok_or_else(|| ServiceError::not_found(format!("user '{name}' not found")))?;
        user.enabled = enabled;
        user.stamp.touch(&caller.operator, c.now);
        c.put(Record::User { user: user.clone() });
        c.audit(if enabled { "user.enable" } else { "user.disable" }, None, name, "")?;
        c.commit()?;
        // Ended at disable rather than hidden while disabled: re-enabling revives nothing.
        if !enabled {
            self.end_sessions(name, None);
        }
        Ok(user)
    }

    /// Sets a new password for a user (admins only) and ends all of that user's sessions.
    pub fn reset_password(&self, caller: &Caller, name: &str, new: &str) -> Result<()> {
        Self::require_admin(caller, "reset passwords")?;
        crate::domain::passwords::check(name, new)?;
        let hash = self.hashing(|| password::hash(new))?.map_err(|e| ServiceError::invalid("password", e))?;
        let mut c = self.change(&caller.operator)?;
        let mut user =
            self.find_user(name)?.ok_or_else(|| ServiceError::not_found(format!("user '{name}' not found")))?;
        user.password_hash = hash;
        user.stamp.touch(&caller.operator, c.now);
        c.put(Record::User { user: user.clone() });
        c.audit("user.reset_password", None, name, "")?;
        c.commit()?;
        self.end_sessions(name, None);
        Ok(())
    }
}

impl Cairn {
    /// Every Open API consumer (admins only).
    pub fn list_consumers(&self, caller: &Caller) -> Result<Vec<Consumer>> {
        Self::require_admin(caller, "list consumers")?;
        Ok(self.repo.consumers()?)
    }
}

impl Cairn {
    /// Lets a user create apps (or not) when creation is restricted (admins only).
    pub fn set_user_can_create_apps(&self, caller: &Caller, name: &str, allowed: bool) -> Result<User> {
        Self::require_admin(caller, "let users create apps")?;
        let mut c = self.change(&caller.operator)?;
        let mut user =
            self.find_user(name)?.ok_or_else(|| ServiceError::not_found(format!("user '{name}' not found")))?;
        user.can_create_apps = allowed;
        user.stamp.touch(&caller.operator, c.now);
        c.put(Record::User { user: user.clone() });
        c.audit("user.create_apps", None, name, if allowed { "allowed" } else { "revoked" })?;
        c.commit()?;
        Ok(user)
    }
}
