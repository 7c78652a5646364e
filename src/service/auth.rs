//! Who is calling and what they may do. Every mutating use case takes a [`Caller`] and checks
//! a [`Permission`] on the object first; everything is denied unless a rule allows it.

use crate::domain::model::{Consumer, Grant, User};

use super::{Result, ServiceError};

/// The authenticated principal.
#[derive(Debug, Clone)]
pub enum Actor {
    /// An Open API consumer (token).
    Consumer(Consumer),
    /// A signed-in portal user.
    User(User),
    /// The command line on the server's own machine: every right.
    System,
}

/// A principal plus the operator name recorded as the author of changes.
///
/// For a consumer the operator is only a claim: the consumer is the actor of record, and the
/// named operator must hold the permission too (`operator_user`), so a token cannot borrow
/// another user's rights or identity.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub operator: String,
    /// The user a consumer names as operator, when it names one.
    pub operator_user: Option<User>,
}

/// A right checked on an object.
#[derive(Debug, Clone, Copy)]
pub enum Permission<'a> {
    /// Create apps.
    CreateApp,
    /// Everything under an app: clusters, namespaces, branches, access keys.
    AppMaster { app: &'a str },
    /// Change draft items of a namespace in an env.
    Modify { app: &'a str, ns: &'a str, env: &'a str },
    /// Publish, roll back and gray-release a namespace in an env.
    Release { app: &'a str, ns: &'a str, env: &'a str },
    /// Read a namespace in an env.
    Read { app: &'a str, ns: &'a str, env: &'a str },
    /// See that an app exists and read its clusters.
    SeeApp { app: &'a str },
}

fn covers(g: &Grant, p: Permission<'_>) -> bool {
    let app_ok = |app: &str| g.app_id.eq_ignore_ascii_case(app);
    let env_ok = |env: &str| g.env.as_deref().is_none_or(|e| e.eq_ignore_ascii_case(env));
    let ns_ok = |ns: &str| g.namespace.as_deref().is_none_or(|n| n.eq_ignore_ascii_case(ns));
    match p {
        Permission::CreateApp => false,
        Permission::AppMaster { app } => app_ok(app) && g.namespace.is_none() && g.env.is_none(),
        Permission::Modify { app, ns, env } => {
            app_ok(app) && ns_ok(ns) && env_ok(env) && (g.modify || g.namespace.is_none())
        }
        Permission::Release { app, ns, env } => {
            app_ok(app) && ns_ok(ns) && env_ok(env) && (g.release || g.namespace.is_none())
        }
        Permission::Read { app, ns, env } => app_ok(app) && ns_ok(ns) && env_ok(env),
        Permission::SeeApp { app } => app_ok(app),
    }
}

/// True when a consumer's own rights cover `p` (its named operator aside).
fn consumer_allows(c: &Consumer, p: Permission<'_>) -> bool {
    match p {
        Permission::CreateApp => c.allow_create_app,
        _ => c.grants.iter().any(|g| covers(g, p)),
    }
}

impl Caller {
    /// The command line acting as `operator`.
    pub fn system(operator: &str) -> Caller {
        Caller { actor: Actor::System, operator: operator.to_string(), operator_user: None }
    }

    /// True when the caller holds `p`.
    pub fn can(&self, p: Permission<'_>) -> bool {
        match &self.actor {
            Actor::System => true,
            Actor::User(u) if u.is_admin => true,
            Actor::User(u) => match p {
                Permission::CreateApp => u.can_create_apps,
                _ => u.grants.iter().any(|g| covers(g, p)),
            },
            Actor::Consumer(c) => consumer_allows(c, p) && self.operator_allows(p),
        }
    }

    /// The identity a change is attributed to: `consumer:<name>` for a consumer (user names
    /// cannot contain ':'), None for users and the command line, whose operator is the actor.
    pub fn principal(&self) -> Option<String> {
        match &self.actor {
            Actor::Consumer(c) => Some(format!("consumer:{}", c.name)),
            _ => None,
        }
    }

    /// True unless a consumer names an operator who lacks `p`. Creating apps is the
    /// consumer's right alone, as in Apollo.
    fn operator_allows(&self, p: Permission<'_>) -> bool {
        match (&self.operator_user, p) {
            (_, Permission::CreateApp) | (None, _) => true,
            (Some(u), _) => u.is_admin || u.grants.iter().any(|g| covers(g, p)),
        }
    }

    /// Ok when the caller holds `p`, Forbidden naming what is missing otherwise.
    pub fn require(&self, p: Permission<'_>) -> Result<()> {
        if self.can(p) {
            return Ok(());
        }
        let who = match (&self.actor, &self.operator_user) {
            (Actor::Consumer(c), Some(u)) if consumer_allows(c, p) => {
                format!("operator '{}' (named by consumer '{}')", u.name, c.name)
            }
            (Actor::Consumer(c), _) => format!("consumer '{}'", c.name),
            (Actor::User(u), _) => format!("user '{}'", u.name),
            (Actor::System, _) => "system".to_string(),
        };
        let what = match p {
            Permission::CreateApp => "may not create apps".to_string(),
            Permission::AppMaster { app } => format!("is not a master of app '{app}'"),
            Permission::Modify { app, ns, env } => {
                format!("may not modify namespace '{ns}' of app '{app}' in {env}")
            }
            Permission::Release { app, ns, env } => {
                format!("may not release namespace '{ns}' of app '{app}' in {env}")
            }
            Permission::Read { app, ns, env } => {
                format!("may not read namespace '{ns}' of app '{app}' in {env}")
            }
            Permission::SeeApp { app } => format!("has no grant on app '{app}'"),
        };
        Err(ServiceError::Forbidden(format!("{who} {what}; ask an admin for a grant")))
    }
}
