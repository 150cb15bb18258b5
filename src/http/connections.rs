//! Connections: how many each peer address holds open, and HEAD answered as
//! GET. The total is capped by the server itself (`max_connections`); the
//! count per peer is kept here, from the moment a connection is accepted
//! until it closes.

use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::ResponseError;

use super::errors::ApiError;

/// Open connections per peer address, shared by every worker.
#[derive(Clone)]
pub struct PeerTable {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    limit: usize,
    /// The server's cap on all connections: reaching it is counted, since
    /// the server then leaves further connections in the backlog.
    total_limit: usize,
    /// How long a connection lives, at least, before the server's header
    /// timeout closes it: a connection that closes after that without one
    /// request read was closed by it (counted).
    header_cut_after: Duration,
}

/// actix starts its header timer from a clock it refreshes every 500 ms, so
/// it may close a silent connection up to that much before the timeout.
const ACTIX_CLOCK_STEP: Duration = Duration::from_millis(500);

/// Lives in a connection's data: counts it while it is open, and says
/// whether it came in over its peer's limit.
pub struct PeerConnection {
    table: PeerTable,
    peer: IpAddr,
    over_limit: bool,
    opened: Instant,
    /// A request's headers were read on this connection.
    requested: AtomicBool,
}

impl PeerTable {
    pub fn new(limit: usize, total_limit: usize, header_timeout: Duration) -> Self {
        Self {
            open: Arc::default(),
            limit: limit.max(1),
            total_limit,
            header_cut_after: header_timeout.saturating_sub(ACTIX_CLOCK_STEP),
        }
    }

    /// For `HttpServer::on_connect`: counts the new connection.
    pub fn on_connect(&self, connection: &dyn Any, data: &mut Extensions) {
        let Some(peer) = connection
            .downcast_ref::<actix_web::rt::net::TcpStream>()
            .and_then(|s| s.peer_addr().ok())
        else {
            return;
        };
        let peer = peer.ip();
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(peer).or_insert(0);
        *count += 1;
        let over_limit = *count > self.limit;
        let total: usize = open.values().sum();
        drop(open);
        metrics::gauge!("http_open_connections").set(total as f64);
        if total >= self.total_limit {
            crate::limits::exceeded("max-connections");
        }
        data.insert(PeerConnection {
            table: self.clone(),
            peer,
            over_limit,
            opened: Instant::now(),
            requested: AtomicBool::new(false),
        });
    }

    #[cfg(test)]
    fn open(&self, peer: IpAddr) -> usize {
        self.open.lock().unwrap().get(&peer).copied().unwrap_or(0)
    }
}

impl Drop for PeerConnection {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
        let total: usize = open.values().sum();
        drop(open);
        metrics::gauge!("http_open_connections").set(total as f64);
        // actix closes a connection whose first request's headers do not
        // arrive within the timeout, without telling the application: a
        // connection that never got a request through and lived that long
        // is the trace it leaves.
        if !self.requested.load(Ordering::Relaxed)
            && self.opened.elapsed() >= self.table.header_cut_after
        {
            crate::limits::exceeded("header-timeout-ms");
        }
    }
}

/// Refuses requests on a connection over its peer's limit (429, and the
/// connection is closed), and serves HEAD as GET: the server sends the
/// headers of the GET answer without its body.
pub async fn guard(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let connection = request.conn_data::<PeerConnection>();
    if let Some(connection) = connection {
        connection.requested.store(true, Ordering::Relaxed);
    }
    let over = connection.filter(|c| c.over_limit).map(|c| c.table.limit);
    if let Some(limit) = over {
        crate::limits::exceeded("max-connections-per-peer");
        let mut response = ApiError::over_limit(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many connections from your address (at most {limit}, --max-connections-per-peer)"),
        )
        .error_response();
        response
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        return Ok(request.into_response(response));
    }
    if request.method() == Method::HEAD {
        request.head_mut().method = Method::GET;
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_counts_until_it_closes() {
        let table = PeerTable::new(1, 10, Duration::from_secs(5));
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let first = PeerConnection {
            table: table.clone(),
            peer,
            over_limit: false,
            opened: Instant::now(),
            requested: AtomicBool::new(false),
        };
        table.open.lock().unwrap().insert(peer, 1);
        assert_eq!(table.open(peer), 1);
        drop(first);
        assert_eq!(table.open(peer), 0);
    }
}
