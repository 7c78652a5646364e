//! Publishing and rolling back releases. A publish is one transaction (release, namespace
//! head, history entry, release message, audit), flushed before the caller hears "released".

use crate::domain::model::{HistoryEntry, Item, Namespace, Operation, Release};
use crate::store::{Counter, NsKey, Record};

use super::auth::Permission;
use super::change::Change;
use super::metrics::Metrics;
use super::{Cairn, Caller, NsRef, Result, ServiceError};

/// The release form of a publish request.
#[derive(Debug, Clone, Default)]
pub struct ReleaseInput {
    pub title: String,
    pub comment: String,
    pub emergency: bool,
}

impl ReleaseInput {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.title.trim().is_empty() {
            return Err(ServiceError::invalid("releaseTitle", "must not be empty"));
        }
        if self.title.chars().count() > 64 {
            return Err(ServiceError::invalid("releaseTitle", "must be at most 64 characters"));
        }
        if self.comment.chars().count() > 256 {
            return Err(ServiceError::invalid("releaseComment", "must be at most 256 characters"));
        }
        Ok(())
    }
}

/// Key/value pairs of draft items in line order.
pub(crate) fn configurations_of(items: &[Item]) -> Vec<(String, String)> {
    items.iter().filter(|i| !i.key.is_empty()).map(|i| (i.key.clone(), i.value.clone())).collect()
}

/// What a release write changes.
pub(crate) struct ReleaseWrite<'a> {
    pub env: &'a str,
    pub ns: &'a Namespace,
    pub configurations: Vec<(String, String)>,
    pub input: &'a ReleaseInput,
    pub operation: Operation,
    pub branch: Option<&'a str>,
    /// Cluster whose watch key announces the release (the parent for gray releases).
    pub message_cluster: &'a str,
}

/// Adds a new release, head move, history entry and message to the change.
pub(crate) fn write_release(c: &mut Change<'_>, w: ReleaseWrite<'_>) -> Result<Release> {
    let id = c.next_id(Counter::Release)?;
    let mut release = Release {
        id,
        release_key: c.cairn.keys.next(c.now, &w.ns.app_id, &w.ns.cluster, &w.ns.name),
        app_id: w.ns.app_id.clone(),
        cluster: w.ns.cluster.clone(),
        namespace: w.ns.name.clone(),
        title: w.input.title.clone(),
        comment: w.input.comment.clone(),
        author: c.actor.clone(),
        created_at: c.now,
        is_emergency: w.input.emergency,
        configurations: w.configurations,
        checksum: String::new(),
    };
    release.checksum = release.compute_checksum();
    c.put(Record::Release { env: w.env.to_string(), release: release.clone() });
    let mut ns = w.ns.clone();
    let previous = ns.head_release().unwrap_or(0);
    ns.active_releases.push(id);
    ns.draft_editors.clear();
    push_history(c, w.env, &mut ns, w.operation, id, previous, w.branch)?;
    c.message(w.env, &ns.app_id, w.message_cluster, &ns.name)?;
    c.touch_namespace(w.env, &ns.app_id, &ns.cluster, &ns.name);
    Ok(release)
}

/// Appends a history entry and stores the namespace record.
pub(crate) fn push_history(
    c: &mut Change<'_>,
    env: &str,
    ns: &mut Namespace,
    operation: Operation,
    release_id: u64,
    previous_release_id: u64,
    branch: Option<&str>,
) -> Result<()> {
    ns.history_len += 1;
    let entry = HistoryEntry {
        seq: ns.history_len,
        operation,
        release_id,
        previous_release_id,
        branch: branch.map(str::to_string),
        operator: c.actor.clone(),
        time: c.now,
    };
    c.put(Record::History { ns: NsKey::new(env, &ns.app_id, &ns.cluster, &ns.name), entry });
    ns.stamp.touch(&c.actor, c.now);
    c.put(Record::Namespace { env: env.to_string(), namespace: ns.clone() });
    Ok(())
}

impl Cairn {
    /// Enforces the four-eyes rule: in such envs none of the releaser's identities (operator,
    /// and the consumer for Open API calls) may be among the draft's editors, unless this is
    /// an emergency publish where those are allowed.
    pub(crate) fn check_four_eyes(
        &self,
        env: &str,
        ns: &Namespace,
        identities: &[String],
        emergency: bool,
    ) -> Result<()> {
        let Some(editor) = identities.iter().find(|i| ns.draft_editors.contains(i)) else {
            return Ok(());
        };
        if !self.settings.four_eyes_envs.contains(env) || (emergency && self.emergency_publish_allowed(env)) {
            return Ok(());
        }
        Err(ServiceError::conflict(format!(
            "'{editor}' edited this draft; in {env} another {} must release it (four-eyes rule){}",
            if editor.contains(':') { "consumer and user" } else { "user" },
            if self.emergency_publish_allowed(env) { ", or use an emergency publish" } else { "" }
        )))
    }

    /// Publishes the draft of a namespace as a new release.
    pub fn publish(&self, caller: &Caller, at: NsRef<'_>, input: ReleaseInput) -> Result<Release> {
        let NsRef { env, cluster, .. } = at;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Release { app: &app, ns: &rec.name, env })?;
        caller.require_operator()?;
        input.validate()?;
        let cluster_rec = self.cluster_record(env, &app, cluster)?;
        if cluster_rec.parent.is_some() {
            return Err(ServiceError::invalid(
                "cluster",
                format!("'{cluster}' is a gray branch; use the branch release endpoint"),
            ));
        }
        let mut c = self.change_for(caller)?;
        let rec = self.namespace_record(env, &app, cluster, &rec.name)?;
        self.check_four_eyes(env, &rec, &c.identities(), input.emergency)?;
        let configurations = configurations_of(&self.items_of(env, &app, cluster, &rec.name)?);
        let release = write_release(
            &mut c,
            ReleaseWrite {
                env,
                ns: &rec,
                configurations,
                input: &input,
                operation: Operation::Publish,
                branch: None,
                message_cluster: cluster,
            },
        )?;
        c.audit("release.publish", Some(env), &format!("{app}/{cluster}/{}", rec.name), release.release_key.clone())?;
        c.commit()?;
        Metrics::inc(&self.metrics.releases_published);
        Ok(release)
    }

    /// The release clients of a namespace get now, if any.
    pub fn latest_release(&self, caller: &Caller, at: NsRef<'_>) -> Result<Option<Release>> {
        let env = at.env;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Read { app: &app, ns: &rec.name, env })?;
        match rec.head_release() {
            None => Ok(None),
            Some(id) => Ok(self.repo.release(env, id)?),
        }
    }

    /// A release by id.
    pub fn release(&self, caller: &Caller, env: &str, id: u64) -> Result<Release> {
        let r = self
            .repo
            .release(env, id)?
            .ok_or_else(|| ServiceError::not_found(format!("release {id} not found in {env}")))?;
        caller.require(Permission::Read { app: &r.app_id, ns: &r.namespace, env })?;
        Ok(r)
    }

    /// The history of a namespace, newest first.
    pub fn history(&self, caller: &Caller, at: NsRef<'_>, limit: usize) -> Result<Vec<HistoryEntry>> {
        let NsRef { env, cluster, .. } = at;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Read { app: &app, ns: &rec.name, env })?;
        Ok(self.repo.history(&NsKey::new(env, &app, cluster, &rec.name), limit)?)
    }

    /// Rolls a namespace back from whatever it serves now to the earlier release `to`.
    pub fn rollback_namespace_to(&self, caller: &Caller, at: NsRef<'_>, to: u64) -> Result<Release> {
        let head = self.latest_release(caller, at)?.ok_or_else(|| ServiceError::conflict("nothing is released yet"))?;
        self.rollback(caller, at.env, head.id, Some(to))
    }

    /// Rolls back the latest release `release_id` to the previous one, or to `to_release_id`
    /// (dropping every release after it). Releases are not deleted, only no longer served.
    pub fn rollback(&self, caller: &Caller, env: &str, release_id: u64, to_release_id: Option<u64>) -> Result<Release> {
        let target = self
            .repo
            .release(env, release_id)?
            .ok_or_else(|| ServiceError::not_found(format!("release {release_id} not found in {env}")))?;
        caller.require(Permission::Release { app: &target.app_id, ns: &target.namespace, env })?;
        caller.require_operator()?;
        let mut c = self.change_for(caller)?;
        let mut ns = self.namespace_record(env, &target.app_id, &target.cluster, &target.namespace)?;
        if ns.head_release() != Some(release_id) {
            return Err(ServiceError::conflict(format!(
                "release {release_id} is not the latest release of namespace '{}'; only the latest release can be rolled back",
                ns.name
            )));
        }
        let keep = match to_release_id {
            Some(to) => {
                if to == release_id {
                    return Err(ServiceError::invalid("toReleaseId", "must be an earlier release"));
                }
                let pos = ns.active_releases.iter().position(|r| *r == to).ok_or_else(|| {
                    ServiceError::invalid(
                        "toReleaseId",
                        format!("release {to} is not an active earlier release of namespace '{}'", ns.name),
                    )
                })?;
                pos + 1
            }
            None => ns.active_releases.len().saturating_sub(1),
        };
        if keep == 0 {
            return Err(ServiceError::conflict(format!(
                "namespace '{}' has no earlier release to roll back to",
                ns.name
            )));
        }
        ns.active_releases.truncate(keep);
        let new_head = ns.head_release().unwrap_or(0);
        push_history(&mut c, env, &mut ns, Operation::Rollback, new_head, release_id, None)?;
        let parent = self.cluster_record(env, &ns.app_id, &ns.cluster)?.parent.unwrap_or_else(|| ns.cluster.clone());
        c.message(env, &ns.app_id, &parent, &ns.name)?;
        c.touch_namespace(env, &ns.app_id, &ns.cluster, &ns.name);
        c.audit(
            "release.rollback",
            Some(env),
            &format!("{}/{}/{}", ns.app_id, ns.cluster, ns.name),
            format!("{release_id} -> {new_head}"),
        )?;
        // Read before the commit: once it is durable, the caller hears of success only.
        let served = self
            .repo
            .release(env, new_head)?
            .ok_or_else(|| ServiceError::not_found(format!("release {new_head} not found in {env}")))?;
        c.commit()?;
        Ok(served)
    }
}
