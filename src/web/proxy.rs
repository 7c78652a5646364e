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
    use crate::domain::net::IpNet;
    use actix_web::test::TestRequest;

    fn request(peer: &str, xff: &[&str]) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(format!("{peer}:4000").parse().unwrap());
        for v in xff {
            r = r.append_header(("X-Forwarded-For", *v));
        }
        r.insert_header(("X-Forwarded-Host", "evil.example")).insert_header(("Host", "cairn:8080")).to_http_request()
    }

    fn trusting(nets: &[&str]) -> Settings {
        Settings { trusted_proxies: nets.iter().map(|n| IpNet::parse(n).unwrap()).collect(), ..Settings::default() }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let (req, s) = (request("203.0.113.9", &["10.0.0.1"]), trusting(&[]));
        assert_eq!(client_ip(&req, &s), "203.0.113.9".parse().ok());
        assert_eq!(host(&req, &s), "cairn:8080");
        let s = trusting(&["10.0.0.0/8"]);
        assert_eq!(client_ip(&req, &s), "203.0.113.9".parse().ok(), "only the peer decides trust");
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let s = trusting(&["10.0.0.0/8"]);
        // The client forged the first entry; the proxies appended the rest.
        let req = request("10.0.0.2", &["1.1.1.1, 198.51.100.7", "10.0.0.3"]);
        assert_eq!(client_ip(&req, &s), "198.51.100.7".parse().ok());
        assert_eq!(host(&req, &s), "evil.example");
        assert_eq!(client_ip(&request("10.0.0.2", &[]), &s), "10.0.0.2".parse().ok());
        assert_eq!(client_ip(&request("10.0.0.2", &["garbage"]), &s), "10.0.0.2".parse().ok());
    }

    #[test]
    fn forwarded_hops_parse_with_or_without_ports() {
        assert_eq!(parse_hop(" 10.0.0.1 "), "10.0.0.1".parse().ok());
        assert_eq!(parse_hop("10.0.0.1:443"), "10.0.0.1".parse().ok());
        assert_eq!(parse_hop("[::1]:80"), "::1".parse().ok());
        assert_eq!(parse_hop("fd00::2"), "fd00::2".parse().ok());
        assert_eq!(parse_hop("unknown"), None);
    }
}
