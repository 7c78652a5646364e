//! Open API wire types, with Apollo's field names. Absent values are omitted, never null.

use serde::{Deserialize, Serialize};

use crate::domain::model::{AccessKey, App, AppNamespace, Branch, Cluster, GrayRuleItem, Item, Release, Stamp};
use crate::domain::time::apollo_time;
use crate::service::namespaces::NamespaceView;

/// Apollo's `dataChange*` fields.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Audit {
    data_change_created_by: String,
    data_change_last_modified_by: String,
    data_change_created_time: String,
    data_change_last_modified_time: String,
}

impl From<&Stamp> for Audit {
    fn from(s: &Stamp) -> Self {
        Audit {
            data_change_created_by: s.created_by.clone(),
            data_change_last_modified_by: s.modified_by.clone(),
            data_change_created_time: apollo_time(s.created_at),
            data_change_last_modified_time: apollo_time(s.modified_at),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenAppDto {
    name: String,
    app_id: String,
    org_id: String,
    org_name: String,
    owner_name: String,
    owner_email: String,
    #[serde(flatten)]
    audit: Audit,
}

impl From<&App> for OpenAppDto {
    fn from(a: &App) -> Self {
        OpenAppDto {
            name: a.name.clone(),
            app_id: a.app_id.clone(),
            org_id: a.org_id.clone(),
            org_name: a.org_name.clone(),
            owner_name: a.owner_name.clone(),
            owner_email: a.owner_email.clone(),
            audit: (&a.stamp).into(),
        }
    }
}

#[derive(Serialize)]
pub struct OpenEnvClusterDto {
    pub env: String,
    pub clusters: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenClusterDto {
    name: String,
    app_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_cluster_name: Option<String>,
    comment: String,
    #[serde(flatten)]
    audit: Audit,
}

impl From<&Cluster> for OpenClusterDto {
    fn from(c: &Cluster) -> Self {
        OpenClusterDto {
            name: c.name.clone(),
            app_id: c.app_id.clone(),
            parent_cluster_name: c.parent.clone(),
            comment: c.comment.clone(),
            audit: (&c.stamp).into(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenItemDto {
    key: String,
    value: String,
    comment: String,
    line_num: u32,
    #[serde(flatten)]
    audit: Audit,
}

impl From<&Item> for OpenItemDto {
    fn from(i: &Item) -> Self {
        OpenItemDto {
            key: i.key.clone(),
            value: i.value.clone(),
            comment: i.comment.clone(),
            line_num: i.line_num,
            audit: (&i.stamp).into(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenItemPageDto {
    pub content: Vec<OpenItemDto>,
    pub page: usize,
    pub size: usize,
    pub total: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenAppNamespaceDto {
    name: String,
    app_id: String,
    format: &'static str,
    is_public: bool,
    comment: String,
    #[serde(flatten)]
    audit: Audit,
}

impl From<&AppNamespace> for OpenAppNamespaceDto {
    fn from(n: &AppNamespace) -> Self {
        OpenAppNamespaceDto {
            name: n.name.clone(),
            app_id: n.app_id.clone(),
            format: n.format.as_str(),
            is_public: n.is_public,
            comment: n.comment.clone(),
            audit: (&n.stamp).into(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenNamespaceDto {
    app_id: String,
    cluster_name: String,
    namespace_name: String,
    comment: String,
    format: &'static str,
    is_public: bool,
    items: Vec<OpenItemDto>,
    #[serde(flatten)]
    audit: Audit,
}

impl From<&NamespaceView> for OpenNamespaceDto {
    fn from(v: &NamespaceView) -> Self {
        OpenNamespaceDto {
            app_id: v.namespace.app_id.clone(),
            cluster_name: v.namespace.cluster.clone(),
            namespace_name: v.namespace.name.clone(),
            comment: v.definition.comment.clone(),
            format: v.definition.format.as_str(),
            is_public: v.definition.is_public,
            items: v.items.iter().map(Into::into).collect(),
            audit: (&v.namespace.stamp).into(),
        }
    }
}

impl OpenNamespaceDto {
    /// A gray branch shown as a namespace of its child cluster.
    pub fn of_branch(b: &Branch, def: &AppNamespace, items: &[Item]) -> Self {
        OpenNamespaceDto {
            app_id: b.app_id.clone(),
            cluster_name: b.name.clone(),
            namespace_name: b.namespace.clone(),
            comment: def.comment.clone(),
            format: def.format.as_str(),
            is_public: def.is_public,
            items: items.iter().map(Into::into).collect(),
            audit: (&b.stamp).into(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenNamespaceLockDto {
    pub namespace_name: String,
    pub is_locked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_by: Option<String>,
    pub is_emergency_publish_allowed: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenReleaseDto {
    id: u64,
    app_id: String,
    cluster_name: String,
    namespace_name: String,
    name: String,
    configurations: serde_json::Map<String, serde_json::Value>,
    comment: String,
    #[serde(flatten)]
    audit: Audit,
}

// Apollo's `OpenReleaseDTO` carries no release key: clients learn it from `/configs` only.
impl From<&Release> for OpenReleaseDto {
    fn from(r: &Release) -> Self {
        OpenReleaseDto {
            id: r.id,
            app_id: r.app_id.clone(),
            cluster_name: r.cluster.clone(),
            namespace_name: r.namespace.clone(),
            name: r.title.clone(),
            configurations: r.configurations.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect(),
            comment: r.comment.clone(),
            audit: (&Stamp::new(&r.author, r.created_at)).into(),
        }
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct RuleItemDto {
    pub client_app_id: String,
    pub client_ip_list: Vec<String>,
    pub client_label_list: Vec<String>,
}

impl From<RuleItemDto> for GrayRuleItem {
    fn from(r: RuleItemDto) -> Self {
        GrayRuleItem {
            client_app_id: r.client_app_id,
            client_ip_list: r.client_ip_list,
            client_label_list: r.client_label_list,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenGrayReleaseRuleDto {
    app_id: String,
    cluster_name: String,
    namespace_name: String,
    branch_name: String,
    rule_items: Vec<RuleItemDto>,
}

impl From<&Branch> for OpenGrayReleaseRuleDto {
    fn from(b: &Branch) -> Self {
        OpenGrayReleaseRuleDto {
            app_id: b.app_id.clone(),
            cluster_name: b.parent_cluster.clone(),
            namespace_name: b.namespace.clone(),
            branch_name: b.name.clone(),
            rule_items: b
                .rules
                .iter()
                .map(|r| RuleItemDto {
                    client_app_id: r.client_app_id.clone(),
                    client_ip_list: r.client_ip_list.clone(),
                    client_label_list: r.client_label_list.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenAccessKeyDto {
    id: u64,
    secret: String,
    app_id: String,
    mode: i32,
    enabled: bool,
    #[serde(flatten)]
    audit: Audit,
}

impl From<&AccessKey> for OpenAccessKeyDto {
    fn from(k: &AccessKey) -> Self {
        OpenAccessKeyDto {
            id: k.id,
            secret: k.secret.clone(),
            app_id: k.app_id.clone(),
            mode: k.mode.code(),
            enabled: k.enabled,
            audit: (&k.stamp).into(),
        }
    }
}

/// Body of item create/update.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ItemBody {
    pub key: Option<String>,
    pub value: Option<String>,
    pub comment: Option<String>,
    pub data_change_created_by: Option<String>,
    pub data_change_last_modified_by: Option<String>,
}

/// Body of publish, gray publish, gray-delete publish and merge.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ReleaseBody {
    pub release_title: Option<String>,
    pub release_comment: Option<String>,
    pub released_by: Option<String>,
    pub is_emergency_publish: bool,
    pub gray_del_keys: Vec<String>,
}
