//! Draft items: create, update, delete, with the commit log and the four-eyes edit lock.

use crate::domain::format::CONTENT_KEY;
use crate::domain::model::{Commit, Item, ItemChange, Namespace, Stamp};
use crate::domain::Format;
use crate::store::{Counter, NsKey, Record};

use super::auth::Permission;
use super::change::Change;
use super::{Cairn, Caller, NsRef, Result, ServiceError};

/// An item as written by a caller.
#[derive(Debug, Clone, Default)]
pub struct ItemInput {
    pub key: String,
    pub value: String,
    pub comment: Option<String>,
}

/// How an upsert treats a missing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// Only create; an existing key is an error.
    CreateOnly,
    /// Only update; a missing key is NotFound.
    UpdateOnly,
    /// Update or create.
    Either,
}

/// A page of items.
#[derive(Debug, Clone)]
pub struct ItemPage {
    pub items: Vec<Item>,
    pub page: usize,
    pub size: usize,
    pub total: usize,
}

impl Cairn {
    fn validate_item(&self, format: Format, input: &ItemInput) -> Result<()> {
        let key_len = input.key.chars().count();
        if input.key.trim().is_empty() {
            return Err(ServiceError::invalid("key", "must not be empty"));
        }
        if key_len > self.settings.key_max {
            return Err(ServiceError::invalid(
                "key",
                format!("is {key_len} characters; at most {} are allowed", self.settings.key_max),
            ));
        }
        let value_len = input.value.chars().count();
        if value_len > self.settings.value_max {
            return Err(ServiceError::invalid(
                "value",
                format!("is {value_len} characters; at most {} are allowed", self.settings.value_max),
            ));
        }
        if input.comment.as_deref().is_some_and(|c| c.chars().count() > 256) {
            return Err(ServiceError::invalid("comment", "must be at most 256 characters"));
        }
        // PostgreSQL text cannot hold U+0000, so neither engine stores it.
        for (field, text) in
            [("key", input.key.as_str()), ("value", &input.value), ("comment", input.comment.as_deref().unwrap_or(""))]
        {
            if text.contains('\0') {
                return Err(ServiceError::invalid(field, "must not contain the NUL character (U+0000)"));
            }
        }
        if format.is_file() {
            if input.key != CONTENT_KEY {
                return Err(ServiceError::invalid(
                    "key",
                    format!("a {} namespace holds one item whose key is 'content'", format.as_str()),
                ));
            }
            format.validate(&input.value)?;
        }
        Ok(())
    }

    /// Rejects edits by anyone but the lock holder in four-eyes envs.
    fn check_edit_lock(&self, env: &str, ns: &Namespace, operator: &str) -> Result<()> {
        if self.settings.four_eyes_envs.contains(env) {
            if let Some(owner) = ns.draft_editors.first().filter(|o| *o != operator) {
                return Err(ServiceError::conflict(format!(
                    "namespace '{}' is locked by '{owner}', who has unreleased changes; it unlocks when they are released",
                    ns.name
                )));
            }
        }
        Ok(())
    }

    /// One draft item, NotFound otherwise.
    pub fn item(&self, caller: &Caller, at: NsRef<'_>, key: &str) -> Result<Item> {
        let NsRef { env, cluster, .. } = at;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Read { app: &app, ns: &rec.name, env })?;
        self.repo
            .item(&NsKey::new(env, &app, cluster, &rec.name), key)?
            .ok_or_else(|| ServiceError::not_found(format!("item '{key}' not found in namespace '{}'", rec.name)))
    }

    /// A page of draft items (page from 0; size clamped to 1..=500).
    pub fn item_page(&self, caller: &Caller, at: NsRef<'_>, page: usize, size: usize) -> Result<ItemPage> {
        let NsRef { env, cluster, .. } = at;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Read { app: &app, ns: &rec.name, env })?;
        let all = self.items_of(env, &app, cluster, &rec.name)?;
        let size = size.clamp(1, 500);
        let total = all.len();
        let items = all.into_iter().skip(page.saturating_mul(size)).take(size).collect();
        Ok(ItemPage { items, page, size, total })
    }

    /// Creates or updates one item, as `mode` allows.
    pub fn upsert_item(&self, caller: &Caller, at: NsRef<'_>, input: ItemInput, mode: Upsert) -> Result<Item> {
        let NsRef { env, cluster, .. } = at;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Modify { app: &app, ns: &rec.name, env })?;
        let operator = caller.require_operator()?.to_string();
        let def = self.app_namespace(&app, &rec.name)?;
        self.validate_item(def.format, &input)?;
        let mut c = self.change_for(caller)?;
        let rec = self.namespace_record(env, &app, cluster, &rec.name)?;
        self.check_edit_lock(env, &rec, &operator)?;
        let ns_key = NsKey::new(env, &app, cluster, &rec.name);
        let existing = self.repo.item(&ns_key, &input.key)?;
        let item = match (existing, mode) {
            (Some(_), Upsert::CreateOnly) => {
                return Err(ServiceError::AlreadyExists(format!(
                    "item '{}' already exists in namespace '{}'",
                    input.key, rec.name
                )))
            }
            (None, Upsert::UpdateOnly) => {
                return Err(ServiceError::not_found(format!(
                    "item '{}' not found in namespace '{}'",
                    input.key, rec.name
                )))
            }
            (Some(mut old), _) => {
                let change =
                    ItemChange { key: input.key.clone(), old: Some(old.value.clone()), new: Some(input.value.clone()) };
                old.value = input.value;
                if let Some(comment) = input.comment {
                    old.comment = comment;
                }
                old.stamp.touch(&operator, c.now);
                record_edit(&mut c, env, &rec, vec![change])?;
                old
            }
            (None, _) => {
                let line_num =
                    self.items_of(env, &app, cluster, &rec.name)?.iter().map(|i| i.line_num).max().unwrap_or(0) + 1;
                let change = ItemChange { key: input.key.clone(), old: None, new: Some(input.value.clone()) };
                record_edit(&mut c, env, &rec, vec![change])?;
                Item {
                    key: input.key,
                    value: input.value,
                    comment: input.comment.unwrap_or_default(),
                    line_num,
                    stamp: Stamp::new(&operator, c.now),
                }
            }
        };
        c.put(Record::Item { ns: ns_key, item: item.clone() });
        c.audit("item.save", Some(env), &format!("{app}/{cluster}/{}/{}", rec.name, item.key), "")?;
        c.commit()?;
        Ok(item)
    }

    /// Deletes one draft item; NotFound when it does not exist.
    pub fn delete_item(&self, caller: &Caller, at: NsRef<'_>, key: &str) -> Result<()> {
        let NsRef { env, cluster, .. } = at;
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Modify { app: &app, ns: &rec.name, env })?;
        let operator = caller.require_operator()?.to_string();
        let mut c = self.change_for(caller)?;
        let rec = self.namespace_record(env, &app, cluster, &rec.name)?;
        self.check_edit_lock(env, &rec, &operator)?;
        let ns_key = NsKey::new(env, &app, cluster, &rec.name);
        let old: Item = self
            .repo
            .item(&ns_key, key)?
            .ok_or_else(|| ServiceError::not_found(format!("item '{key}' not found in namespace '{}'", rec.name)))?;
        c.put(Record::DeleteItem { ns: ns_key, key: key.to_string() });
        record_edit(&mut c, env, &rec, vec![ItemChange { key: key.to_string(), old: Some(old.value), new: None }])?;
        c.audit("item.delete", Some(env), &format!("{app}/{cluster}/{}/{key}", rec.name), "")?;
        c.commit()
    }
}

/// Adds a commit-log entry and marks the operator as a draft editor.
pub(crate) fn record_edit(c: &mut Change<'_>, env: &str, rec: &Namespace, changes: Vec<ItemChange>) -> Result<()> {
    let id = c.next_id(Counter::Commit)?;
    let commit = Commit { id, operator: c.actor.clone(), time: c.now, changes };
    c.put(Record::Commit { ns: NsKey::new(env, &rec.app_id, &rec.cluster, &rec.name), commit });
    let mut ns = rec.clone();
    // The consumer is recorded beside the operator it named, so four-eyes can refuse the same
    // token releasing under another operator name.
    for editor in c.identities() {
        if !ns.draft_editors.contains(&editor) {
            ns.draft_editors.push(editor);
        }
    }
    ns.stamp.touch(&c.actor, c.now);
    c.put(Record::Namespace { env: env.to_string(), namespace: ns });
    Ok(())
}

impl Cairn {
    /// The draft as text: properties text, or the `content` of file formats.
    pub fn draft_text(&self, caller: &Caller, at: NsRef<'_>) -> Result<(Format, String)> {
        let view = self.namespace(caller, at)?;
        let format = view.definition.format;
        let pairs: Vec<(String, String)> = view.items.into_iter().map(|i| (i.key, i.value)).collect();
        Ok(match format {
            Format::Properties => (format, crate::domain::properties::write(&pairs)),
            _ => (format, pairs.into_iter().find(|(k, _)| k == CONTENT_KEY).map(|(_, v)| v).unwrap_or_default()),
        })
    }

    /// Replaces the whole draft from text, validated first: a failure changes nothing.
    pub fn save_draft_text(&self, caller: &Caller, at: NsRef<'_>, text: &str) -> Result<usize> {
        let (app, rec) = self.resolve_ns(at)?;
        let env = at.env;
        caller.require(Permission::Modify { app: &app, ns: &rec.name, env })?;
        let def = self.app_namespace(&app, &rec.name)?;
        let wanted: Vec<(String, String)> = match def.format {
            Format::Properties => crate::domain::properties::parse(text),
            _ => vec![(CONTENT_KEY.to_string(), text.to_string())],
        };
        for (k, v) in &wanted {
            self.validate_item(def.format, &ItemInput { key: k.clone(), value: v.clone(), comment: None })?;
        }
        self.replace_draft(caller, at, &app, |_| Ok(wanted), "item.text")
    }

    /// Throws the draft away: the items become the live release's values again.
    pub fn discard_draft(&self, caller: &Caller, at: NsRef<'_>) -> Result<usize> {
        let (app, rec) = self.resolve_ns(at)?;
        caller.require(Permission::Modify { app: &app, ns: &rec.name, env: at.env })?;
        // The live release is read under the write lock: a publish racing the discard must not
        // make the draft fall back to an older release.
        let live = |rec: &Namespace| -> Result<Vec<(String, String)>> {
            Ok(match rec.head_release() {
                Some(id) => self.repo.release(at.env, id)?.map(|r| r.configurations).unwrap_or_default(),
                None => Vec::new(),
            })
        };
        self.replace_draft(caller, at, &app, live, "item.discard")
    }

    /// Makes the draft exactly `wanted(namespace)` (in order) in one commit; returns the
    /// changed keys. `wanted` runs under the write lock.
    fn replace_draft(
        &self,
        caller: &Caller,
        at: NsRef<'_>,
        app: &str,
        wanted: impl FnOnce(&Namespace) -> Result<Vec<(String, String)>>,
        action: &str,
    ) -> Result<usize> {
        let operator = caller.require_operator()?.to_string();
        let env = at.env;
        let mut c = self.change_for(caller)?;
        let ns = self.read_index().normalize_namespace(app, crate::domain::names::strip_properties_suffix(at.ns));
        let rec = self.namespace_record(env, app, at.cluster, &ns)?;
        self.check_edit_lock(env, &rec, &operator)?;
        let wanted = wanted(&rec)?;
        let current = self.items_of(env, app, at.cluster, &rec.name)?;
        let mut changes = Vec::new();
        let ns_key = NsKey::new(env, app, at.cluster, &rec.name);
        for (line, (k, v)) in wanted.iter().enumerate() {
            let old = current.iter().find(|i| &i.key == k);
            if old.is_some_and(|o| &o.value == v && o.line_num == line as u32 + 1) {
                continue;
            }
            let item = match old {
                Some(o) => Item {
                    value: v.clone(),
                    line_num: line as u32 + 1,
                    stamp: Stamp { modified_by: operator.clone(), modified_at: c.now, ..o.stamp.clone() },
                    ..o.clone()
                },
                None => Item {
                    key: k.clone(),
                    value: v.clone(),
                    comment: String::new(),
                    line_num: line as u32 + 1,
                    stamp: Stamp::new(&operator, c.now),
                },
            };
            if old.is_none_or(|o| &o.value != v) {
                changes.push(ItemChange { key: k.clone(), old: old.map(|o| o.value.clone()), new: Some(v.clone()) });
            }
            c.put(Record::Item { ns: ns_key.clone(), item });
        }
        for old in current.iter().filter(|i| !wanted.iter().any(|(k, _)| *k == i.key)) {
            c.put(Record::DeleteItem { ns: ns_key.clone(), key: old.key.clone() });
            changes.push(ItemChange { key: old.key.clone(), old: Some(old.value.clone()), new: None });
        }
        let n = changes.len();
        if n > 0 {
            record_edit(&mut c, env, &rec, changes)?;
            c.audit(action, Some(env), &format!("{app}/{}/{}", at.cluster, rec.name), format!("{n} keys"))?;
        }
        c.commit()?;
        Ok(n)
    }
}

impl Cairn {
    /// Compares the drafts of one namespace in two places (envs and/or clusters): each key
    /// as it would change in `to` if `from`'s value were copied.
    pub fn compare_drafts(
        &self,
        caller: &Caller,
        from: NsRef<'_>,
        to: NsRef<'_>,
    ) -> Result<Vec<crate::domain::diff::Line>> {
        let pairs = |at: NsRef<'_>| -> Result<Vec<(String, String)>> {
            Ok(self.namespace(caller, at)?.items.into_iter().map(|i| (i.key, i.value)).collect())
        };
        Ok(crate::domain::diff::diff(&pairs(from)?, &pairs(to)?))
    }

    /// Copies the chosen keys of `from`'s draft into `to`'s draft (promotion). Keys missing in
    /// `from` are deleted in `to`. Returns how many keys were written.
    pub fn copy_items(&self, caller: &Caller, from: NsRef<'_>, to: NsRef<'_>, keys_wanted: &[String]) -> Result<usize> {
        let source = self.namespace(caller, from)?.items;
        let mut n = 0;
        for key in keys_wanted {
            match source.iter().find(|i| &i.key == key) {
                Some(item) => {
                    let input = ItemInput {
                        key: item.key.clone(),
                        value: item.value.clone(),
                        comment: Some(item.comment.clone()),
                    };
                    self.upsert_item(caller, to, input, Upsert::Either)?;
                }
                None => match self.delete_item(caller, to, key) {
                    Ok(()) | Err(ServiceError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                },
            }
            n += 1;
        }
        Ok(n)
    }
}
