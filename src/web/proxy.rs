//! The one place that reads `X-Forwarded-For`, `-Proto`, `-Host` and `-Prefix`. They are
//! believed only when the TCP peer is a configured trusted proxy (`trusted_proxies`); from
//! any other peer they are client-chosen text and are ignored, so nobody can pick the IP
//! that throttling, instances and audit record, the cookie's `Secure` flag or the
//! `homepageUrl` that `/services/config` advertises.

use std::net::IpAddr;

use actix_web::http::header::HOST;
use actix_web::HttpRequest;

use crate::settings::Settings;

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|s| !s.is_empty())
}

fn is_trusted(settings: &Settings, ip: IpAddr) -> bool {
    settings.trusted_proxies.iter().any(|net| net.contains(ip))
}

/// Whether the TCP peer is a trusted proxy, i.e. whether its forwarding headers count.
pub fn from_trusted_proxy(req: &HttpRequest, settings: &Settings) -> bool {
    !settings.trusted_proxies.is_empty() && req.peer_addr().is_some_and(|p| is_trusted(settings, p.ip()))
}

/// One `X-Forwarded-For` entry as an address (`1.2.3.4`, `1.2.3.4:5`, `[::1]:5`, `::1`).
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    entry.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok())
}

/// The client's address: the peer, or behind trusted proxies the nearest `X-Forwarded-For`
/// hop that is not itself a trusted proxy (hops left of it could be forged by the client).
pub fn client_ip(req: &HttpRequest, settings: &Settings) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !from_trusted_proxy(req, settings) {
        return Some(peer);
    }
    let mut ip = peer;
    let hops = req.headers().get_all("X-Forwarded-For").filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
    for hop in hops.iter().rev().flat_map(|v| v.rsplit(',')) {
        match parse_hop(hop) {
            Some(addr) => {
                ip = addr;
                if !is_trusted(settings, addr) {
                    break;
                }
            }
            None => break,
        }
    }
    Some(ip)
}

/// `https` or `http` as the client reached Cairn (a trusted proxy's `X-Forwarded-Proto`).
pub fn scheme(req: &HttpRequest, settings: &Settings) -> &'static str {
    if from_trusted_proxy(req, settings) {
        if let Some(proto) = header(req, "X-Forwarded-Proto") {
            let first = proto.split(',').next().unwrap_or(proto).trim();
            return if first.eq_ignore_ascii_case("https") { "https" } else { "http" };
        }
    }
    if req.app_config().secure() {
        "https"
    } else {
        "http"
    }
}

/// The host (and port) the client asked for (a trusted proxy's `X-Forwarded-Host`, else the
/// `Host` header).
pub fn host(req: &HttpRequest, settings: &Settings) -> String {
    if from_trusted_proxy(req, settings) {
        if let Some(h) = header(req, "X-Forwarded-Host") {
            return h.split(',').next().unwrap_or(h).trim().to_string();
        }
    }
    match header(req, HOST.as_str()).or_else(|| req.uri().authority().map(|a| a.as_str())) {
        Some(h) => h.to_string(),
        None => req.app_config().host().to_string(),
    }
}

/// The path prefix a trusted proxy strips before forwarding (`X-Forwarded-Prefix`), without
/// a trailing slash.
pub fn prefix(req: &HttpRequest, settings: &Settings) -> Option<String> {
    if !from_trusted_proxy(req, settings) {
        return None;
    }
    header(req, "X-Forwarded-Prefix").map(|p| p.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_hops_parse_with_or_without_ports() {
        assert_eq!(parse_hop(" 10.0.0.1 "), "10.0.0.1".parse().ok());
        assert_eq!(parse_hop("10.0.0.1:443"), "10.0.0.1".parse().ok());
        assert_eq!(parse_hop("[::1]:80"), "::1".parse().ok());
        assert_eq!(parse_hop("fd00::2"), "fd00::2".parse().ok());
        assert_eq!(parse_hop("unknown"), None);
    }
}
