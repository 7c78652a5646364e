//! Gray releases: a branch (child cluster) of a namespace with its own items, rules choosing
//! which client instances get the branch release, gray publish, merge and abandon. Every
//! client-visible change is announced on the parent cluster's watch key.

use crate::domain::model::{Branch, BranchStatus, GrayRuleItem, Item, Namespace, Operation, Release, Stamp};
use crate::domain::names;
use crate::store::{NsKey, Record};

use super::apps::{put_cluster, put_namespace};
use super::auth::Permission;
use super::items::record_edit;
use super::releases::{configurations_of, push_history, write_release, ReleaseInput, ReleaseWrite};
use super::{Cairn, Caller, NsRef, Result, ServiceError};

/// Most rules (client apps) one branch may hold.
const MAX_RULES: usize = 200;
/// Longest ip or label in a rule: an IPv6 address with a zone, or a label name.
const RULE_ENTRY_MAX: usize = 128;

/// A branch with its draft items.
#[derive(Debug, Clone)]
pub struct BranchView {
    pub branch: Branch,
    pub items: Vec<Item>,
}

/// Overlays `overlay` on `base`, keeping base order and appending new keys.
fn overlay(base: &[(String, String)], overlay: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = base.to_vec();
    for (k, v) in overlay {
        match out.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

impl Cairn {
    /// True when the branch has a gray release that matching clients get.
    pub fn instances_release_of_branch(&self, env: &str, branch: &Branch) -> bool {
        self.repo
            .namespace(&NsKey::new(env, &branch.app_id, &branch.name, &branch.namespace))
            .ok()
            .flatten()
            .is_some_and(|n| n.head_release().is_some())
    }

    fn active_branch(&self, env: &str, app: &str, parent: &str, ns: &str) -> Result<Option<Branch>> {
        Ok(self.repo.branch(env, app, parent, ns)?.filter(|b| b.status == BranchStatus::Active))
    }

    fn require_branch(&self, env: &str, app: &str, parent: &str, ns: &str, name: &str) -> Result<Branch> {
        self.active_branch(env, app, parent, ns)?.filter(|b| b.name == name).ok_or_else(|| {
            ServiceError::not_found(format!(
                "gray branch '{name}' of namespace '{ns}' in cluster '{parent}' not found in {env}"
            ))
        })
    }

    /// The active gray branch of a namespace, if any.
    pub fn branch(&self, caller: &Caller, at: NsRef<'_>) -> Result<Option<BranchView>> {
        let NsRef { env, cluster: parent, .. } = at;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Read { app: &app, ns: &rec.name, env })?;
        match self.active_branch(env, &app, parent, &rec.name)? {
            None => Ok(None),
            Some(branch) => {
                let items = self.items_of(env, &app, &branch.name, &rec.name)?;
                Ok(Some(BranchView { branch, items }))
            }
        }
    }

    /// Creates the gray branch of a namespace (one per namespace and cluster).
    pub fn create_branch(&self, caller: &Caller, at: NsRef<'_>) -> Result<BranchView> {
        let NsRef { env, cluster: parent, .. } = at;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Modify { app: &app, ns: &rec.name, env })?;
        let operator = caller.require_operator()?.to_string();
        if self.cluster_record(env, &app, parent)?.parent.is_some() {
            return Err(ServiceError::invalid("cluster", "a gray branch cannot have a branch"));
        }
        let mut c = self.change_for(caller)?;
        if self.active_branch(env, &app, parent, &rec.name)?.is_some() {
            return Err(ServiceError::AlreadyExists(format!(
                "namespace '{}' already has a gray branch in cluster '{parent}'",
                rec.name
            )));
        }
        let name = self.keys.next(c.now, &app, parent, &rec.name);
        names::check_cluster(&name)?;
        put_cluster(&mut c, env, &app, &name, Some(parent), "gray branch")?;
        put_namespace(&mut c, env, &app, &name, &rec.name)?;
        let branch = Branch {
            app_id: app.clone(),
            parent_cluster: parent.to_string(),
            namespace: rec.name.clone(),
            name,
            rules: Vec::new(),
            status: BranchStatus::Active,
            stamp: Stamp::new(&operator, c.now),
        };
        c.put(Record::Branch { env: env.to_string(), branch: branch.clone() });
        c.audit("branch.create", Some(env), &format!("{app}/{parent}/{}", rec.name), branch.name.clone())?;
        c.commit()?;
        Ok(BranchView { branch, items: Vec::new() })
    }

    /// Abandons a gray branch: its clients go back to the main release.
    pub fn delete_branch(&self, caller: &Caller, at: NsRef<'_>, name: &str) -> Result<()> {
        let NsRef { env, cluster: parent, .. } = at;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Release { app: &app, ns: &rec.name, env })?;
        let operator = caller.require_operator()?.to_string();
        let mut c = self.change_for(caller)?;
        let mut branch = self.require_branch(env, &app, parent, &rec.name, name)?;
        branch.status = BranchStatus::Deleted;
        branch.stamp.touch(&operator, c.now);
        c.put(Record::Branch { env: env.to_string(), branch: branch.clone() });
        let mut parent_ns = self.namespace_record(env, &app, parent, &rec.name)?;
        let head = parent_ns.head_release().unwrap_or(0);
        push_history(&mut c, env, &mut parent_ns, Operation::Abandon, head, head, Some(name))?;
        c.message(env, &app, parent, &rec.name)?;
        c.audit("branch.delete", Some(env), &format!("{app}/{parent}/{}", rec.name), name)?;
        c.commit()
    }

    /// The rules of a gray branch.
    pub fn branch_rules(&self, caller: &Caller, at: NsRef<'_>, name: &str) -> Result<Branch> {
        let NsRef { env, cluster: parent, .. } = at;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Read { app: &app, ns: &rec.name, env })?;
        self.require_branch(env, &app, parent, &rec.name, name)
    }

    /// Replaces the rules of a gray branch.
    pub fn update_branch_rules(
        &self,
        caller: &Caller,
        at: NsRef<'_>,
        name: &str,
        rules: Vec<GrayRuleItem>,
    ) -> Result<()> {
        let NsRef { env, cluster: parent, .. } = at;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Release { app: &app, ns: &rec.name, env })?;
        let operator = caller.require_operator()?.to_string();
        if rules.len() > MAX_RULES {
            return Err(ServiceError::invalid("ruleItems", format!("at most {MAX_RULES} rules per branch")));
        }
        for r in &rules {
            names::check_app_id(&r.client_app_id)?;
            if r.client_ip_list.len() + r.client_label_list.len() > 1000 {
                return Err(ServiceError::invalid("ruleItems", "at most 1000 ips and labels per rule"));
            }
            let too_long =
                r.client_ip_list.iter().chain(&r.client_label_list).any(|x| x.chars().count() > RULE_ENTRY_MAX);
            if too_long {
                return Err(ServiceError::invalid(
                    "ruleItems",
                    format!("an ip or label may be at most {RULE_ENTRY_MAX} characters"),
                ));
            }
        }
        let mut c = self.change_for(caller)?;
        let mut branch = self.require_branch(env, &app, parent, &rec.name, name)?;
        branch.rules = rules;
        branch.stamp.touch(&operator, c.now);
        c.put(Record::Branch { env: env.to_string(), branch: branch.clone() });
        let mut parent_ns = self.namespace_record(env, &app, parent, &rec.name)?;
        let head = parent_ns.head_release().unwrap_or(0);
        push_history(&mut c, env, &mut parent_ns, Operation::GrayRulesChange, head, head, Some(name))?;
        c.message(env, &app, parent, &rec.name)?;
        c.audit("branch.rules", Some(env), &format!("{app}/{parent}/{}", rec.name), name)?;
        c.commit()
    }

    /// Publishes the branch: the parent's latest values overlaid with the branch items,
    /// minus `delete_keys`.
    pub fn gray_publish(
        &self,
        caller: &Caller,
        at: NsRef<'_>,
        name: &str,
        input: ReleaseInput,
        delete_keys: &[String],
    ) -> Result<Release> {
        let NsRef { env, cluster: parent, .. } = at;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Release { app: &app, ns: &rec.name, env })?;
        caller.require_operator()?;
        input.validate()?;
        let mut c = self.change_for(caller)?;
        self.require_branch(env, &app, parent, &rec.name, name)?;
        let branch_ns = self.namespace_record(env, &app, name, &rec.name)?;
        self.check_four_eyes(env, &branch_ns, &c.identities(), input.emergency)?;
        let base = self.parent_configurations(env, &app, parent, &rec.name)?;
        let mut configurations = overlay(&base, &configurations_of(&self.items_of(env, &app, name, &rec.name)?));
        configurations.retain(|(k, _)| !delete_keys.contains(k));
        let release = write_release(
            &mut c,
            ReleaseWrite {
                env,
                ns: &branch_ns,
                configurations,
                input: &input,
                operation: Operation::GrayPublish,
                branch: Some(name),
                message_cluster: parent,
            },
        )?;
        c.audit("branch.publish", Some(env), &format!("{app}/{parent}/{}", rec.name), release.release_key.clone())?;
        c.commit()?;
        Ok(release)
    }

    fn parent_configurations(&self, env: &str, app: &str, parent: &str, ns: &str) -> Result<Vec<(String, String)>> {
        let parent_ns: Namespace = self.namespace_record(env, app, parent, ns)?;
        Ok(match parent_ns.head_release() {
            Some(id) => self.repo.release(env, id)?.map(|r| r.configurations).unwrap_or_default(),
            None => Vec::new(),
        })
    }

    /// Merges the branch items into the parent draft and publishes the parent; with
    /// `delete_branch`, the branch ends.
    pub fn merge_branch(
        &self,
        caller: &Caller,
        at: NsRef<'_>,
        name: &str,
        input: ReleaseInput,
        delete_branch: bool,
    ) -> Result<Release> {
        let NsRef { env, cluster: parent, .. } = at;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Release { app: &app, ns: &rec.name, env })?;
        let operator = caller.require_operator()?.to_string();
        input.validate()?;
        let mut c = self.change_for(caller)?;
        let mut branch = self.require_branch(env, &app, parent, &rec.name, name)?;
        let parent_ns = self.namespace_record(env, &app, parent, &rec.name)?;
        let mut parent_items = self.items_of(env, &app, parent, &rec.name)?;
        let mut changes = Vec::new();
        let mut next_line = parent_items.iter().map(|i| i.line_num).max().unwrap_or(0);
        for bi in self.items_of(env, &app, name, &rec.name)? {
            match parent_items.iter_mut().find(|i| i.key == bi.key) {
                Some(pi) => {
                    changes.push(crate::domain::model::ItemChange {
                        key: bi.key.clone(),
                        old: Some(pi.value.clone()),
                        new: Some(bi.value.clone()),
                    });
                    pi.value = bi.value;
                    pi.stamp.touch(&operator, c.now);
                    c.put(Record::Item { ns: NsKey::new(env, &app, parent, &rec.name), item: pi.clone() });
                }
                None => {
                    next_line += 1;
                    changes.push(crate::domain::model::ItemChange {
                        key: bi.key.clone(),
                        old: None,
                        new: Some(bi.value.clone()),
                    });
                    let item = Item { line_num: next_line, stamp: Stamp::new(&operator, c.now), ..bi };
                    c.put(Record::Item { ns: NsKey::new(env, &app, parent, &rec.name), item: item.clone() });
                    parent_items.push(item);
                }
            }
        }
        if !changes.is_empty() {
            record_edit(&mut c, env, &parent_ns, changes)?;
        }
        if delete_branch {
            branch.status = BranchStatus::Merged;
            branch.stamp.touch(&operator, c.now);
            c.put(Record::Branch { env: env.to_string(), branch: branch.clone() });
        }
        // The merge itself is the review; four-eyes applies to the gray publish before it.
        let mut parent_ns = parent_ns;
        parent_ns.draft_editors.clear();
        let release = write_release(
            &mut c,
            ReleaseWrite {
                env,
                ns: &parent_ns,
                configurations: configurations_of(&parent_items),
                input: &input,
                operation: Operation::Merge,
                branch: Some(name),
                message_cluster: parent,
            },
        )?;
        c.audit("branch.merge", Some(env), &format!("{app}/{parent}/{}", rec.name), release.release_key.clone())?;
        c.commit()?;
        Ok(release)
    }
}
