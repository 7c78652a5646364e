//! Operations endpoints: `/health` (liveness + storage), `/ready`, `/metrics` (Prometheus text).

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use actix_web::{web, HttpResponse};

use super::AppState;

/// Request counters by route (the resource name, which is its pattern) and status.
#[derive(Debug, Default)]
pub struct RequestCounts(Mutex<HashMap<String, Vec<(u16, u64)>>>);

impl RequestCounts {
    /// Counts one request; allocates only the first time a route is seen.
    pub fn add(&self, route: &str, status: u16) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let counts = match map.get_mut(route) {
            Some(c) => c,
            None => map.entry(route.to_string()).or_default(),
        };
        match counts.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => counts.push((status, 1)),
        }
    }

    fn snapshot(&self) -> Vec<((String, u16), u64)> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = map.iter().flat_map(|(r, c)| c.iter().map(move |(s, n)| ((r.clone(), *s), *n))).collect();
        v.sort();
        v
    }
}

/// Registers the operations routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, handler) in
        [("/health", web::get().to(health)), ("/ready", web::get().to(ready)), ("/metrics", web::get().to(metrics))]
    {
        cfg.service(web::resource(path).name(path).route(handler));
    }
}

/// Liveness plus storage. While writes fail (a full disk), `status` is `DEGRADED` with the
/// reason, still with 200: the process is alive and serves clients from memory, and a
/// restart would not free the disk. A store that cannot even be read is `DOWN` (503).
///
/// With a database server, a database that is down is `DEGRADED` with 200 too: clients are
/// served from memory, and restarting Cairn would only lose that memory.
async fn health(state: web::Data<AppState>) -> HttpResponse {
    let cairn = state.cairn.clone();
    let database = state.cairn.storage_is_database();
    match super::heavy::off_workers(move || cairn.storage_health()).await {
        Ok(h) if !h.up && database => HttpResponse::Ok().json(serde_json::json!({
            "status": "DEGRADED",
            "writable": false,
            "database": "DOWN",
            "reason": h.reason.unwrap_or_default(),
        })),
        Ok(h) if !h.up => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "DOWN", "error": h.reason.unwrap_or_default()})),
        Ok(h) if h.writable => HttpResponse::Ok().json(serde_json::json!({"status": "UP"})),
        Ok(h) => HttpResponse::Ok().json(serde_json::json!({
            "status": "DEGRADED",
            "writable": false,
            "reason": h.reason.unwrap_or_default(),
        })),
        Err(e) => {
            HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "DOWN", "error": e.to_string()}))
        }
    }
}

/// Ready while clients can be served: they are served from memory, so a store that only
/// refuses writes keeps the instance ready (`writable: false` says so).
///
/// With a database server, `database` says `UP` or `DOWN`; a database that is down leaves
/// the instance ready (reads and held polls are answered from memory) but not writable.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let envs: Vec<&str> = state.settings.envs.iter().map(|(n, _)| n.as_str()).collect();
    let cairn = state.cairn.clone();
    let database = state.cairn.storage_is_database();
    match super::heavy::off_workers(move || cairn.storage_health()).await {
        Ok(h) if database => HttpResponse::Ok().json(serde_json::json!({
            "status": "READY",
            "envs": envs,
            "writable": h.writable,
            "database": if h.up { "UP" } else { "DOWN" },
            "reason": h.reason,
        })),
        Ok(h) if h.up => {
            HttpResponse::Ok().json(serde_json::json!({"status": "READY", "envs": envs, "writable": h.writable}))
        }
        Ok(h) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "NOT_READY", "error": h.reason.unwrap_or_default()})),
        Err(e) => {
            HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "NOT_READY", "error": e.to_string()}))
        }
    }
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let cairn = state.cairn.clone();
    let (size, writable) =
        match super::heavy::off_workers(move || (cairn.storage_size_bytes(), cairn.storage_health())).await {
            Ok((size, h)) => (size, h.writable),
            Err(_) => (0, false),
        };
    let m = state.cairn.metrics();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP cairn_http_requests_total HTTP requests by route and status.\n# TYPE cairn_http_requests_total counter"
    );
    for ((route, status), n) in state.requests.snapshot() {
        let _ =
            writeln!(out, "cairn_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}", escape_label(&route));
    }
    let fanout_count = m.fanout_count.load(Ordering::Relaxed);
    let fanout_sum = m.fanout_micros_sum.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = write!(
        out,
        "# HELP cairn_long_polls_held Long polls currently held.\n# TYPE cairn_long_polls_held gauge\ncairn_long_polls_held {}\n\
         # HELP cairn_releases_published_total Releases published.\n# TYPE cairn_releases_published_total counter\ncairn_releases_published_total {}\n\
         # HELP cairn_config_fetches_total Client config resolutions.\n# TYPE cairn_config_fetches_total counter\ncairn_config_fetches_total {}\n\
         # HELP cairn_notification_fanout_seconds Time from commit to a woken poll's answer.\n# TYPE cairn_notification_fanout_seconds summary\n\
         cairn_notification_fanout_seconds_sum {fanout_sum}\ncairn_notification_fanout_seconds_count {fanout_count}\n\
         # HELP cairn_store_size_bytes Size of the data on disk.\n# TYPE cairn_store_size_bytes gauge\ncairn_store_size_bytes {}\n\
         # HELP cairn_store_writable 1 while writes succeed, 0 while they fail (a full disk).\n# TYPE cairn_store_writable gauge\ncairn_store_writable {}\n\
         # HELP cairn_instance_records Client-instance records stored.\n# TYPE cairn_instance_records gauge\ncairn_instance_records {}\n",
        m.long_polls_held.load(Ordering::Relaxed),
        m.releases_published.load(Ordering::Relaxed),
        m.config_fetches.load(Ordering::Relaxed),
        size,
        u8::from(writable),
        state.cairn.instance_records(),
    );
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out)
}
