//! What a connection goes through between `accept` and the TLS handshake (or its first HTTP
//! byte): whose it is and whether it may stay. With `server.proxy_protocol`, a trusted proxy's
//! connection must begin with a PROXY header, whose source address then stands for the socket
//! peer everywhere downstream (`ConnInfo.peer`: the per-address cap, rate limits, login
//! back-off, access log, audit source); anyone else's must not begin with one. Then
//! `server.max_connections_per_ip` counts the connection against that address.
//!
//! The cap comes after the PROXY header for trusted proxies (their own address is exempt, the
//! client's is what counts) and at accept for everyone else (no task is spawned for a refused
//! connection). Trust is read from the live config, so a reloaded `trusted_proxies` applies
//! to new connections.

use std::net::{IpAddr, SocketAddr};

use tokio::net::TcpStream;

use super::Shared;
use super::limits::{AddressSlot, LimitReached};
use super::proxy_protocol::{self, ReadError, Source};
use crate::metrics::{ConnPhase, ProxyHeader};

/// A connection allowed in: its client's address and, unless exempt, its count against it.
pub(super) struct Admitted {
    pub peer: SocketAddr,
    pub _slot: Option<AddressSlot>,
}

/// Whether `ip` is in `server.trusted_proxies` (as the config in use now says).
pub(super) fn is_trusted(shared: &Shared, ip: IpAddr) -> bool {
    shared
        .live
        .proxy
        .load()
        .trusted_proxies()
        .iter()
        .any(|net| net.contains(&ip))
}

/// Counts a connection from `ip` against its address, unless the cap is off; `Err` when the
/// address is at the cap (counted in the metrics; the caller closes the connection).
pub(super) fn count(shared: &Shared, ip: IpAddr) -> Result<Option<AddressSlot>, LimitReached> {
    let Some(limits) = &shared.per_address else {
        return Ok(None);
    };
    match limits.acquire(ip) {
        Ok(slot) => Ok(Some(slot)),
        Err(refused) => {
            tracing::debug!(%refused, "connection refused: per-address limit");
            shared.metrics.connection_over_address_limit();
            Err(refused)
        }
    }
}

/// The part that reads from the socket, in the connection's task: the PROXY header (or the
/// check that there is none), under `server.tls_handshake_timeout`. `slot` is what `count`
/// gave at accept (`None` for a trusted peer). `None`: close the connection.
pub(super) async fn admit(
    shared: &Shared,
    stream: &mut TcpStream,
    peer: SocketAddr,
    trusted: bool,
    slot: Option<AddressSlot>,
) -> Option<Admitted> {
    if !shared.proxy_protocol {
        return Some(Admitted { peer, _slot: slot });
    }
    let timeout = shared.handshake_timeout;
    if !trusted {
        let signature =
            tokio::time::timeout(timeout, proxy_protocol::starts_with_signature(stream)).await;
        return match signature {
            Ok(Ok(false)) => Some(Admitted { peer, _slot: slot }),
            Ok(Ok(true)) => {
                tracing::debug!(%peer, "PROXY header from a peer not in server.trusted_proxies; closing");
                shared.metrics.proxy_header(ProxyHeader::Untrusted);
                None
            }
            Ok(Err(_)) => None,
            Err(_) => {
                shared.metrics.connection_timed_out(ConnPhase::ProxyHeader);
                None
            }
        };
    }
    match tokio::time::timeout(timeout, proxy_protocol::read(stream)).await {
        Ok(Ok(Source::Client(client))) => {
            shared.metrics.proxy_header(ProxyHeader::Accepted);
            // A client that is itself a trusted proxy (a chain of balancers) is exempt too.
            let slot = if is_trusted(shared, client.ip()) {
                None
            } else {
                count(shared, client.ip()).ok()?
            };
            Some(Admitted {
                peer: client,
                _slot: slot,
            })
        }
        Ok(Ok(Source::Local)) => {
            shared.metrics.proxy_header(ProxyHeader::Local);
            Some(Admitted { peer, _slot: slot })
        }
        // Balancers' TCP health checks connect and close: not worth a metric.
        Ok(Err(ReadError::Closed | ReadError::Io(_))) => None,
        Ok(Err(ReadError::Header(error))) => {
            tracing::debug!(%peer, %error, "invalid PROXY header from a trusted proxy; closing");
            shared.metrics.proxy_header(ProxyHeader::Invalid);
            None
        }
        Err(_) => {
            shared.metrics.connection_timed_out(ConnPhase::ProxyHeader);
            None
        }
    }
}
