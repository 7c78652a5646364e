//! `/notifications/v2` (long poll, many namespaces) and the legacy `/notifications`.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{client_env, guard, ClientEnv};
use crate::service::notify::{PollEntry, PollRequest};
use crate::web::error::{ApiError, ApiResult};
use crate::web::AppState;

/// Query of `/notifications/v2`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct V2Query {
    app_id: Option<String>,
    cluster: Option<String>,
    notifications: Option<String>,
    data_center: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationDto {
    namespace_name: String,
    notification_id: i64,
    messages: MessagesDto,
}

#[derive(Serialize)]
struct MessagesDto {
    details: serde_json::Map<String, serde_json::Value>,
}

fn missing(name: &str) -> ApiError {
    ApiError::bad_request(format!("Required request parameter '{name}' is not present"))
}

/// One entry of the `notifications` parameter; unknown fields are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryDto {
    namespace_name: Option<serde_json::Value>,
    notification_id: Option<serde_json::Value>,
}

/// Parses the `notifications` JSON array, tolerating unknown fields and entries without a name.
fn parse_entries(raw: &str) -> Result<Vec<PollEntry>, ApiError> {
    let invalid = || ApiError::bad_request(format!("invalid notifications format:{raw}"));
    let values: Vec<EntryDto> = serde_json::from_str(raw).map_err(|_| invalid())?;
    let entries: Vec<PollEntry> = values
        .into_iter()
        .filter_map(|v| {
            let ns = match v.namespace_name? {
                serde_json::Value::String(s) if !s.is_empty() => s,
                _ => return None,
            };
            let id = v.notification_id.and_then(|n| n.as_i64()).unwrap_or(-1);
            Some(PollEntry { namespace: ns, notification_id: id })
        })
        .collect();
    if entries.is_empty() {
        return Err(invalid());
    }
    Ok(entries)
}

/// The v2 long poll.
pub async fn poll_v2(req: HttpRequest, state: web::Data<AppState>, q: web::Query<V2Query>) -> ApiResult<HttpResponse> {
    let env = client_env(&req)?;
    guard(&req, &state, &env, q.app_id.as_deref())?;
    // Keep only what the wait needs: thousands of these are held at once.
    drop(req);
    let V2Query { app_id, cluster, notifications, data_center } = q.into_inner();
    let app_id = app_id.ok_or_else(|| missing("appId"))?;
    let cluster = cluster.filter(|c| !c.is_empty()).ok_or_else(|| missing("cluster"))?;
    let entries = parse_entries(&notifications.ok_or_else(|| missing("notifications"))?)?;
    let poll = PollRequest { env: env.env, app_id, cluster, data_center, entries };
    let hold = state.cairn.settings().long_poll;
    match state.cairn.poll(poll, hold, false).await {
        None => Ok(HttpResponse::NotModified().finish()),
        Some(changed) => {
            let body: Vec<NotificationDto> = changed
                .into_iter()
                .map(|c| NotificationDto {
                    namespace_name: c.namespace,
                    notification_id: c.notification_id,
                    messages: MessagesDto { details: c.details.into_iter().map(|(k, v)| (k, v.into())).collect() },
                })
                .collect();
            Ok(HttpResponse::Ok().content_type("application/json;charset=UTF-8").json(body))
        }
    }
}

/// Query of the legacy `/notifications`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct V1Query {
    app_id: Option<String>,
    cluster: Option<String>,
    namespace: Option<String>,
    data_center: Option<String>,
    notification_id: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V1Dto {
    namespace_name: String,
    notification_id: i64,
}

/// The legacy single-namespace poll: answers when the id differs, else holds up to 30 s.
pub async fn poll_v1(
    req: HttpRequest,
    state: web::Data<AppState>,
    env: ClientEnv,
    q: web::Query<V1Query>,
) -> ApiResult<HttpResponse> {
    guard(&req, &state, &env, q.app_id.as_deref())?;
    let app_id = q.app_id.clone().ok_or_else(|| missing("appId"))?;
    let cluster = q.cluster.clone().filter(|c| !c.is_empty()).ok_or_else(|| missing("cluster"))?;
    let ns = q.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "application".to_string());
    let entries = vec![PollEntry { namespace: ns, notification_id: q.notification_id.unwrap_or(-1) }];
    let poll = PollRequest { env: env.env, app_id, cluster, data_center: q.data_center.clone(), entries };
    drop((req, q));
    let hold = state.cairn.settings().long_poll.min(Duration::from_secs(30));
    match state.cairn.poll(poll, hold, true).await {
        None => Ok(HttpResponse::NotModified().finish()),
        Some(mut changed) => {
            let c = changed.remove(0);
            Ok(HttpResponse::Ok().json(V1Dto { namespace_name: c.namespace, notification_id: c.notification_id }))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn notifications_parse_tolerantly() {
        let e =
            super::parse_entries(r#"[{"namespaceName":"application","notificationId":-1,"x":1},{"notificationId":3}]"#)
                .unwrap();
        assert_eq!(e.len(), 1);
        assert!(super::parse_entries("[]").is_err());
        assert!(super::parse_entries("nope").is_err());
        assert!(super::parse_entries(r#"[{"notificationId":3}]"#).is_err());
    }
}
