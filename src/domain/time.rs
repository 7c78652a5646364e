//! Timestamps: milliseconds since the Unix epoch inside Cairn; Apollo's text forms at the edges.

use chrono::{DateTime, Local, Utc};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn local(ms: i64) -> DateTime<Local> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().with_timezone(&Local)
}

/// Apollo's DTO time format, `2026-11-26T21:00:00.000+0800`.
pub fn apollo_time(ms: i64) -> String {
    local(ms).format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

/// RFC 3339 with milliseconds and a colon in the offset, used in error bodies.
pub fn rfc3339(ms: i64) -> String {
    local(ms).format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

/// `yyyyMMddHHmmss` in server local time, the prefix of release keys.
pub fn compact(ms: i64) -> String {
    local(ms).format("%Y%m%d%H%M%S").to_string()
}
