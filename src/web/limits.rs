//! Connection limits every listener applies before any handler runs: a cap on the connections
//! one peer address may hold, and a deadline for request bodies. Header trickling and idle
//! keep-alive connections are already cut by actix (`client_request_timeout`, `keep_alive`, 5 s
//! each); without these two, a client that sends complete headers and then never the body (or
//! simply opens thousands of connections) holds file descriptors until none are left.
//! Imports only `web::error`; the surfaces never see these types.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::dev::{Extensions, Payload, Service, ServiceRequest, ServiceResponse};
use actix_web::http::{header, ConnectionType, StatusCode};
use actix_web::web::Bytes;
use actix_web::{Error, ResponseError};

use super::error::ApiError;
use crate::service::client_group;

type Table = Arc<Mutex<HashMap<IpAddr, usize>>>;

fn lock(table: &Table) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
    // The table holds plain counters; a panic elsewhere cannot leave it half-updated.
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Open connections per peer address, shared by every worker of every listener.
#[derive(Clone)]
pub struct ConnectionCounts {
    table: Table,
    max: usize,
}

/// What a connection carries in its data: admitted (counted until the connection is dropped)
/// or refused (every request on it is answered 429 and the connection closed).
enum ConnectionSlot {
    /// Held only to be dropped with the connection.
    Admitted {
        _slot: Admitted,
    },
    Refused {
        ip: IpAddr,
        max: usize,
    },
}

/// One counted connection; dropping it (when actix drops the connection) gives the slot back.
struct Admitted {
    ip: IpAddr,
    table: Table,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut table = lock(&self.table);
        if let Some(n) = table.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                table.remove(&self.ip);
            }
        }
    }
}

impl ConnectionCounts {
    /// A table allowing `max` connections per address.
    pub fn new(max: usize) -> ConnectionCounts {
        ConnectionCounts { table: Arc::default(), max }
    }

    /// `HttpServer::on_connect` callback: counts the new connection against its address.
    /// Loopback is not exempt: a local proxy or sidecar is a client like any other.
    pub fn on_connect(&self, conn: &dyn Any, data: &mut Extensions) {
        let Some(stream) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() else { return };
        let Ok(peer) = stream.peer_addr() else { return };
        match self.admit(peer.ip()) {
            Ok(slot) => data.insert(ConnectionSlot::Admitted { _slot: slot }),
            Err(ip) => data.insert(ConnectionSlot::Refused { ip, max: self.max }),
        };
    }

    /// Counts a connection from `peer` against its address group, or refuses it (returning
    /// the group) when the group already holds `max`.
    fn admit(&self, peer: IpAddr) -> Result<Admitted, IpAddr> {
        let ip = client_group(peer);
        let mut table = lock(&self.table);
        let open = table.entry(ip).or_insert(0);
        if *open >= self.max {
            return Err(ip);
        }
        *open += 1;
        drop(table);
        Ok(Admitted { ip, table: self.table.clone() })
    }
}

/// A request body that must be complete by a deadline; past it, the stream fails and the
/// shared flag tells the middleware to answer 408 instead of whatever the extractor made of it.
struct DeadlineBody {
    inner: Payload,
    timer: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
    /// Bytes the body may still bring (chunked bodies announce no length).
    room: usize,
}

/// Largest body of the forms anyone may post without signing in (`/login`, `/setup`). Signed-in
/// portal forms may be as large as `body_max`; these are held to a few fields' worth, so
/// anonymous connections cannot each make Cairn buffer megabytes.
pub const PUBLIC_FORM_MAX: usize = 16 * 1024;

/// True for the form posts that need no session.
fn is_public_form(req: &ServiceRequest) -> bool {
    req.method() == actix_web::http::Method::POST && matches!(req.path(), "/login" | "/setup")
}

/// The announced `Content-Length`, if any.
fn announced_length(req: &ServiceRequest) -> Option<u64> {
    req.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

impl futures_core::Stream for DeadlineBody {
    type Item = Result<Bytes, actix_web::error::PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            if let Some(Ok(chunk)) = &item {
                if chunk.len() > self.room {
                    return Poll::Ready(Some(Err(actix_web::error::PayloadError::Overflow)));
                }
                self.room -= chunk.len();
            }
            return Poll::Ready(item);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.expired.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(actix_web::error::PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "request body deadline passed",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// True when the request announces a body (a non-zero length or a chunked one).
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().parse::<u64>().map_or(true, |n| n > 0))
}

fn closing(req: ServiceRequest, error: ApiError) -> ServiceResponse {
    let mut res = error.error_response();
    res.head_mut().set_connection_type(ConnectionType::Close);
    req.into_response(res)
}

/// Middleware (`App::wrap_fn`): refuses requests on connections over their address's cap, and
/// puts a deadline of `body_timeout` on every request body.
pub fn enforce<S>(
    mut req: ServiceRequest,
    srv: &S,
    body_timeout: Duration,
) -> impl Future<Output = Result<ServiceResponse, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = Error>,
{
    enum Next<F> {
        Done(ServiceResponse),
        Call(F, Option<Arc<AtomicBool>>),
    }
    let refused = match req.conn_data::<ConnectionSlot>() {
        Some(ConnectionSlot::Refused { ip, max }) => Some((*ip, *max)),
        _ => None,
    };
    let next = if let Some((ip, max)) = refused {
        Next::Done(closing(
            req,
            ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: format!(
                    "{} already holds {max} connections to Cairn; close idle ones or reuse them (keep-alive) \
                     and retry, or raise max_connections_per_ip",
                    if ip.is_ipv6() { format!("{ip}/64") } else { ip.to_string() }
                ),
                exception: "TooManyRequestsException",
            },
        ))
    } else if is_public_form(&req) && announced_length(&req).is_some_and(|n| n > PUBLIC_FORM_MAX as u64) {
        Next::Done(closing(
            req,
            ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!("a sign-in or setup form may be at most {PUBLIC_FORM_MAX} bytes"),
                exception: "PayloadTooLargeException",
            },
        ))
    } else if has_body(&req) {
        let expired = Arc::new(AtomicBool::new(false));
        let room = if is_public_form(&req) { PUBLIC_FORM_MAX } else { usize::MAX };
        let (_, payload) = req.parts_mut();
        let body = DeadlineBody {
            inner: payload.take(),
            timer: Box::pin(tokio::time::sleep(body_timeout)),
            expired: expired.clone(),
            room,
        };
        let stream: Pin<Box<dyn futures_core::Stream<Item = Result<Bytes, actix_web::error::PayloadError>>>> =
            Box::pin(body);
        req.set_payload(Payload::from(stream));
        Next::Call(srv.call(req), Some(expired))
    } else {
        Next::Call(srv.call(req), None)
    };
    async move {
        match next {
            Next::Done(res) => Ok(res),
            Next::Call(fut, expired) => {
                let res = fut.await?;
                if !expired.is_some_and(|e| e.load(Ordering::Relaxed)) {
                    return Ok(res);
                }
                let (req, _) = res.into_parts();
                let timeout = ApiError {
                    status: StatusCode::REQUEST_TIMEOUT,
                    message: format!(
                        "the request body did not arrive within {} s of its headers; send the whole body at once",
                        body_timeout.as_secs()
                    ),
                    exception: "RequestTimeoutException",
                };
                let mut res = timeout.error_response();
                res.head_mut().set_connection_type(ConnectionType::Close);
                Ok(ServiceResponse::new(req, res))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_peers_are_counted_by_their_64_network_and_ipv4_ones_by_address() {
        let group = |s: &str| client_group(s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(group("2001:db8:1:2:aaaa::1"), group("2001:db8:1:2:ffff:1:2:3"));
        assert_ne!(group("2001:db8:1:2::1"), group("2001:db8:1:3::1"));
        assert_eq!(group("10.0.0.1"), "10.0.0.1".parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        assert_ne!(group("10.0.0.1"), group("10.0.0.2"));
        assert_eq!(group("::ffff:10.0.0.1"), group("10.0.0.1"));
    }

    #[test]
    fn the_cap_applies_to_a_whole_ipv6_64() {
        let counts = ConnectionCounts::new(2);
        let admit = |ip: &str| counts.admit(ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        let (a, b) = (admit("2001:db8::1"), admit("2001:db8::2"));
        assert!(a.is_ok() && b.is_ok());
        assert!(admit("2001:db8::3").is_err(), "a third address of the same /64 is over the cap");
        assert!(admit("2001:db8:0:1::1").is_ok(), "another /64 has its own count");
        drop(a);
        assert!(admit("2001:db8::3").is_ok(), "a closed connection frees its slot");
    }
}
