//! The records of Cairn's data model. Storage encodes them; services create and change them;
//! wire DTOs are built from them in `web/`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Format;

/// Who changed a record and when (Apollo's `dataChange*` fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Stamp {
    pub created_by: String,
    pub created_at: i64,
    pub modified_by: String,
    pub modified_at: i64,
}

impl Stamp {
    /// A stamp for a record created by `who` at `now`.
    pub fn new(who: &str, now: i64) -> Self {
        Stamp { created_by: who.to_string(), created_at: now, modified_by: who.to_string(), modified_at: now }
    }

    /// Marks the record as modified by `who` at `now`.
    pub fn touch(&mut self, who: &str, now: i64) {
        self.modified_by = who.to_string();
        self.modified_at = now;
    }
}

/// An application: global, shared by every env.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub app_id: String,
    pub name: String,
    pub org_id: String,
    pub org_name: String,
    pub owner_name: String,
    pub owner_email: String,
    pub stamp: Stamp,
}

/// The global definition of a namespace of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppNamespace {
    pub app_id: String,
    pub name: String,
    pub format: Format,
    pub is_public: bool,
    pub comment: String,
    pub stamp: Stamp,
}

/// A cluster of an app in one env. Gray branches are clusters with a parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub app_id: String,
    pub name: String,
    pub parent: Option<String>,
    pub comment: String,
    pub stamp: Stamp,
}

/// A namespace instance in (env, app, cluster): its release head and history length. The
/// draft items live in their own records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub app_id: String,
    pub cluster: String,
    pub name: String,
    /// Ids of releases still active (not rolled back), oldest first; the last one is the head.
    pub active_releases: Vec<u64>,
    /// Number of history entries; entries are numbered 1..=history_len.
    pub history_len: u64,
    /// Users who changed the draft since the last release (for the four-eyes rule).
    pub draft_editors: Vec<String>,
    pub stamp: Stamp,
}

impl Namespace {
    /// The release clients get now: the latest one not rolled back, if any.
    pub fn head_release(&self) -> Option<u64> {
        self.active_releases.last().copied()
    }
}

/// One draft item. Non-properties namespaces have a single item with key `content`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub key: String,
    pub value: String,
    pub comment: String,
    pub line_num: u32,
    pub stamp: Stamp,
}

/// An immutable snapshot of a namespace's items. Never edited or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: u64,
    pub release_key: String,
    pub app_id: String,
    pub cluster: String,
    pub namespace: String,
    pub title: String,
    pub comment: String,
    pub author: String,
    pub created_at: i64,
    pub is_emergency: bool,
    /// Key/value pairs in item order.
    pub configurations: Vec<(String, String)>,
    /// Hex SHA-256 of [`Release::canonical_bytes`].
    pub checksum: String,
}

impl Release {
    /// The bytes the checksum covers: every field but the checksum, in a fixed encoding.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let canonical = (
            self.id,
            &self.release_key,
            &self.app_id,
            &self.cluster,
            &self.namespace,
            &self.title,
            &self.comment,
            &self.author,
            self.created_at,
            self.is_emergency,
            &self.configurations,
        );
        serde_json::to_vec(&canonical).unwrap_or_default()
    }

    /// Computes the checksum of the current content.
    pub fn compute_checksum(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_bytes()))
    }

    /// True when the stored checksum matches the content.
    pub fn verify(&self) -> bool {
        self.checksum == self.compute_checksum()
    }
}

/// What a release-history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Publish,
    Rollback,
    GrayPublish,
    GrayRulesChange,
    Merge,
    Abandon,
}

impl Operation {
    /// Apollo's numeric operation code (ReleaseOperation).
    pub fn code(self) -> i32 {
        match self {
            Operation::Publish => 0,
            Operation::Rollback => 1,
            Operation::GrayPublish => 2,
            Operation::GrayRulesChange => 3,
            Operation::Merge => 4,
            Operation::Abandon => 6,
        }
    }
}

/// One append-only history entry of a namespace; `seq` runs 1, 2, 3, ... without gaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub seq: u64,
    pub operation: Operation,
    /// The release served after this operation (0 when none).
    pub release_id: u64,
    /// The release served before it (0 when none).
    pub previous_release_id: u64,
    /// Gray branch involved, if any.
    pub branch: Option<String>,
    pub operator: String,
    pub time: i64,
}

/// State of a gray branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchStatus {
    Active,
    Merged,
    Deleted,
}

/// One gray rule: a client app plus the ips and labels of its instances that get the branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GrayRuleItem {
    pub client_app_id: String,
    pub client_ip_list: Vec<String>,
    pub client_label_list: Vec<String>,
}

impl GrayRuleItem {
    /// Apollo's matching rule: the app must match, then any of ip, label or a `*`.
    pub fn matches(&self, client_app: &str, ip: Option<&str>, label: Option<&str>) -> bool {
        if !self.client_app_id.eq_ignore_ascii_case(client_app) {
            return false;
        }
        let ip_ok = self.client_ip_list.iter().any(|x| x == "*" || Some(x.as_str()) == ip);
        let label_ok = self.client_label_list.iter().any(|x| x == "*" || Some(x.as_str()) == label);
        ip_ok || label_ok
    }
}

/// A gray branch of namespace (app, parent cluster, namespace): a child cluster with rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branch {
    pub app_id: String,
    pub parent_cluster: String,
    pub namespace: String,
    pub name: String,
    pub rules: Vec<GrayRuleItem>,
    pub status: BranchStatus,
    pub stamp: Stamp,
}

/// Access-key mode: enforced, or only checked and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessKeyMode {
    Filter,
    Observer,
}

impl AccessKeyMode {
    /// Apollo's wire code: 0 = filter, 1 = observer.
    pub fn code(self) -> i32 {
        match self {
            AccessKeyMode::Filter => 0,
            AccessKeyMode::Observer => 1,
        }
    }

    /// From Apollo's wire code.
    pub fn from_code(code: i32) -> Option<Self> {
        match code {
            0 => Some(AccessKeyMode::Filter),
            1 => Some(AccessKeyMode::Observer),
            _ => None,
        }
    }
}

/// A client access key of an app in one env.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: u64,
    pub app_id: String,
    pub secret: String,
    pub mode: AccessKeyMode,
    pub enabled: bool,
    pub stamp: Stamp,
}

/// An operator who signs in to the portal and is named in Open API calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub display_name: String,
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub enabled: bool,
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// May create apps when app creation is restricted to granted users.
    #[serde(default)]
    pub can_create_apps: bool,
    pub stamp: Stamp,
}

/// A right given to a consumer or user: app master when `namespace` is `None`, otherwise
/// modify and/or release on one namespace; optionally only in one env.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub app_id: String,
    pub namespace: Option<String>,
    pub env: Option<String>,
    pub modify: bool,
    pub release: bool,
}

/// An Open API consumer, identified by a token whose SHA-256 alone is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    pub name: String,
    pub token_sha256: String,
    pub allow_create_app: bool,
    pub grants: Vec<Grant>,
    pub stamp: Stamp,
}

/// One changed key in a draft commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemChange {
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// A recorded draft edit: who changed which keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub id: u64,
    pub operator: String,
    pub time: i64,
    pub changes: Vec<ItemChange>,
}

/// One line of the audit log: every mutation and login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    pub time: i64,
    /// Who was authenticated: a user name, or `consumer:<name>` for an Open API token.
    pub actor: String,
    /// The operator an Open API consumer named for the change: a claim, not an identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_operator: Option<String>,
    pub action: String,
    pub env: Option<String>,
    pub target: String,
    pub detail: String,
}

impl AuditEntry {
    /// The actor as shown to people: `consumer:ci (operator alice)` for consumer changes.
    pub fn display_actor(&self) -> String {
        match &self.claimed_operator {
            Some(op) => format!("{} (operator {op})", self.actor),
            None => self.actor.clone(),
        }
    }
}

/// What one client instance last fetched of one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceConfig {
    pub app_id: String,
    pub cluster: String,
    pub data_center: String,
    pub ip: String,
    pub config_app_id: String,
    pub config_cluster: String,
    pub config_namespace: String,
    pub release_key: String,
    pub release_delivery_time: i64,
    pub last_seen: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records written when the head was stored beside the active list still decode, and
    /// the head is the last active release.
    #[test]
    fn namespace_records_with_a_stored_head_still_decode() {
        let old = r#"{"app_id":"a","cluster":"default","name":"application","head_release":7,
            "active_releases":[3,7],"history_len":2,"draft_editors":[],
            "stamp":{"created_by":"x","created_at":0,"modified_by":"x","modified_at":0}}"#;
        let ns: Namespace = serde_json::from_str(old).unwrap();
        assert_eq!(ns.head_release(), Some(7));
        let mut none = ns.clone();
        none.active_releases.clear();
        assert_eq!(none.head_release(), None);
    }

    fn rule(ips: &[&str], labels: &[&str]) -> GrayRuleItem {
        GrayRuleItem {
            client_app_id: "App".into(),
            client_ip_list: ips.iter().map(|s| s.to_string()).collect(),
            client_label_list: labels.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn gray_rules_match_app_then_ip_or_label() {
        let r = rule(&["10.0.0.1"], &["canary"]);
        assert!(r.matches("app", Some("10.0.0.1"), None));
        assert!(r.matches("App", Some("10.0.0.9"), Some("canary")));
        assert!(!r.matches("App", Some("10.0.0.9"), None));
        assert!(!r.matches("Other", Some("10.0.0.1"), None));
        assert!(rule(&["*"], &[]).matches("App", None, None));
        assert!(rule(&[], &["*"]).matches("App", Some("1.2.3.4"), None));
    }

    #[test]
    fn release_checksum_detects_changes() {
        let mut r = Release {
            id: 1,
            release_key: "k".into(),
            app_id: "a".into(),
            cluster: "default".into(),
            namespace: "application".into(),
            title: "t".into(),
            comment: String::new(),
            author: "u".into(),
            created_at: 0,
            is_emergency: false,
            configurations: vec![("a".into(), "1".into())],
            checksum: String::new(),
        };
        r.checksum = r.compute_checksum();
        assert!(r.verify());
        r.configurations[0].1 = "2".into();
        assert!(!r.verify());
    }
}
