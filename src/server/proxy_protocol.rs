//! The PROXY protocol (haproxy's `proxy-protocol.txt`, v1 text and v2 binary): the header a
//! TCP load balancer puts before the client's bytes to say whose connection it is. This module
//! owns parsing it and reading it off a socket without reading one byte past it (the TLS
//! handshake or the HTTP request that follows must find the stream untouched). Who may send
//! one is decided by `server/admission.rs`.
//!
//! Written here rather than taken from a crate: the gateway needs only the source address, the
//! parser is small enough to test exhaustively, and reading by `peek` + exact `read` (no
//! buffering wrapper around every connection) has to know the header's length as it goes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The longest v1 line, CRLF included (the spec's bound: `PROXY TCP6` with two full IPv6
/// addresses and ports).
pub const V1_MAX: usize = 107;
const V1_PREFIX: &[u8] = b"PROXY ";
/// The first 12 bytes of every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/transport, length.
const V2_FIXED: usize = 16;
/// The largest v2 address block (addresses + TLVs) accepted. TLVs that balancers add (AWS
/// VPC endpoint ids, GCP PSC ids, haproxy's SSL details) take a few hundred bytes; a bound
/// keeps a peer from making us read 64 KiB before the connection is even ours.
pub const V2_MAX_PAYLOAD: usize = 2048;

/// Whose connection it is, as the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The client's address and port.
    Client(SocketAddr),
    /// No client address: v2 `LOCAL` (the balancer's own health check), v1 `UNKNOWN`, or a
    /// v2 family without an IP address (UNIX, UNSPEC). The socket peer stands.
    Local,
}

/// Why bytes are not an acceptable PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Neither the v1 (`PROXY `) nor the v2 signature.
    #[error("the connection does not start with a PROXY header")]
    NoSignature,
    /// No CRLF within the 107 bytes a v1 line may take.
    #[error("PROXY v1 line without CRLF in its first {V1_MAX} bytes")]
    V1TooLong,
    /// A v1 line that is not `PROXY TCP4|TCP6|UNKNOWN src dst sport dport`.
    #[error("malformed PROXY v1 line")]
    V1Malformed,
    /// The version/command byte (given) is not v2 `LOCAL` or `PROXY`.
    #[error("PROXY v2 version/command byte {0:#04x} is not v2 LOCAL or PROXY")]
    V2Command(u8),
    /// The family/transport byte (given) is none the gateway reads.
    #[error("PROXY v2 family/transport byte {0:#04x} is not supported")]
    V2Family(u8),
    /// The declared address block length (given) exceeds [`V2_MAX_PAYLOAD`].
    #[error("PROXY v2 address block of {0} bytes exceeds {V2_MAX_PAYLOAD}")]
    V2TooLong(usize),
    /// The address block is shorter than its family needs.
    #[error("PROXY v2 address block too short for its family")]
    V2Short,
}

/// How far `parse` got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header of `len` bytes.
    Complete {
        /// The client address it carries (or none).
        source: Source,
        /// Bytes to consume: the TLS handshake (or HTTP) starts after them.
        len: usize,
    },
    /// A valid beginning; at least `total` bytes are needed.
    Incomplete {
        /// Bytes the header needs in all (a lower bound while v1's CRLF is unseen).
        total: usize,
    },
}

/// Parses the PROXY header at the start of `buf`; what follows it is not looked at.
pub fn parse(buf: &[u8]) -> Result<Parsed, HeaderError> {
    if buf.starts_with(V1_PREFIX) {
        parse_v1(buf)
    } else if buf.starts_with(&V2_SIGNATURE) {
        parse_v2(buf)
    } else if V1_PREFIX.starts_with(buf) || V2_SIGNATURE.starts_with(buf) {
        // Also the empty buffer: nothing to decide on yet.
        Ok(Parsed::Incomplete {
            total: buf.len() + 1,
        })
    } else {
        Err(HeaderError::NoSignature)
    }
}

/// Whether `buf` begins with a PROXY signature: `None` while it is a strict prefix of one.
pub fn signature(buf: &[u8]) -> Option<bool> {
    if buf.starts_with(V1_PREFIX) || buf.starts_with(&V2_SIGNATURE) {
        Some(true)
    } else if V1_PREFIX.starts_with(buf) || V2_SIGNATURE.starts_with(buf) {
        None
    } else {
        Some(false)
    }
}

/// `PROXY TCP4|TCP6 src dst sport dport\r\n` or `PROXY UNKNOWN…\r\n`, single spaces.
fn parse_v1(buf: &[u8]) -> Result<Parsed, HeaderError> {
    // The CR at index V1_MAX - 2 at the latest, so that CRLF ends within V1_MAX bytes.
    let window = &buf[..buf.len().min(V1_MAX - 1)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return if buf.len() >= V1_MAX - 1 {
            Err(HeaderError::V1TooLong)
        } else {
            Ok(Parsed::Incomplete {
                total: buf.len() + 1,
            })
        };
    };
    match buf.get(cr + 1) {
        None => return Ok(Parsed::Incomplete { total: cr + 2 }),
        Some(b'\n') => {}
        Some(_) => return Err(HeaderError::V1Malformed),
    }
    let line = std::str::from_utf8(&buf[V1_PREFIX.len()..cr]).map_err(|_| malformed())?;
    let source = v1_source(line)?;
    Ok(Parsed::Complete {
        source,
        len: cr + 2,
    })
}

fn malformed() -> HeaderError {
    HeaderError::V1Malformed
}

fn v1_source(line: &str) -> Result<Source, HeaderError> {
    // UNKNOWN: the rest of the line may say anything and is ignored (spec 2.1).
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        return Ok(Source::Local);
    }
    let mut fields = line.split(' ');
    let mut next = || fields.next().ok_or(HeaderError::V1Malformed);
    let (proto, src, dst, sport, dport) = (next()?, next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(malformed());
    }
    // The destination is checked too: a line that is wrong anywhere is not believed anywhere.
    let (ip, dst_ok) = match proto {
        "TCP4" => (
            src.parse::<Ipv4Addr>().map(IpAddr::V4),
            dst.parse::<Ipv4Addr>().is_ok(),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>().map(IpAddr::V6),
            dst.parse::<Ipv6Addr>().is_ok(),
        ),
        _ => return Err(malformed()),
    };
    let ip = ip.map_err(|_| malformed())?;
    if !dst_ok {
        return Err(malformed());
    }
    let port = v1_port(sport)?;
    v1_port(dport)?;
    Ok(Source::Client(SocketAddr::new(ip, port)))
}

/// A port: decimal, no sign, no leading zero (spec 2.1).
fn v1_port(text: &str) -> Result<u16, HeaderError> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return Err(malformed());
    }
    text.parse().map_err(|_| malformed())
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, HeaderError> {
    let Some(fixed) = buf.get(..V2_FIXED) else {
        return Ok(Parsed::Incomplete { total: V2_FIXED });
    };
    let (command, family) = (fixed[12], fixed[13]);
    let payload_len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    // Version 2 (high nibble); command LOCAL (0) or PROXY (1).
    if command >> 4 != 2 || command & 0x0f > 1 {
        return Err(HeaderError::V2Command(command));
    }
    if payload_len > V2_MAX_PAYLOAD {
        return Err(HeaderError::V2TooLong(payload_len));
    }
    let len = V2_FIXED + payload_len;
    let Some(payload) = buf.get(V2_FIXED..len) else {
        return Ok(Parsed::Incomplete { total: len });
    };
    let local = command & 0x0f == 0;
    let source = v2_source(family, payload, local)?;
    Ok(Parsed::Complete { source, len })
}

fn v2_source(family: u8, payload: &[u8], local: bool) -> Result<Source, HeaderError> {
    // Transport: UNSPEC (0) or STREAM (1); a datagram source over TCP makes no sense.
    let transport_ok = family & 0x0f <= 1;
    let source = match family >> 4 {
        _ if !transport_ok => return Err(HeaderError::V2Family(family)),
        // UNSPEC, UNIX: no IP address to use.
        0 | 3 => Source::Local,
        1 => {
            let block: &[u8; 12] = v2_block(payload)?;
            let ip = Ipv4Addr::from([block[0], block[1], block[2], block[3]]);
            let port = u16::from_be_bytes([block[8], block[9]]);
            Source::Client(SocketAddr::new(IpAddr::V4(ip), port))
        }
        2 => {
            let block: &[u8; 36] = v2_block(payload)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&block[..16]);
            let port = u16::from_be_bytes([block[32], block[33]]);
            Source::Client(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        _ => return Err(HeaderError::V2Family(family)),
    };
    // LOCAL: the addresses (if any) are the balancer's own; the socket peer stands.
    Ok(if local { Source::Local } else { source })
}

fn v2_block<const N: usize>(payload: &[u8]) -> Result<&[u8; N], HeaderError> {
    payload
        .get(..N)
        .and_then(|block| block.try_into().ok())
        .ok_or(HeaderError::V2Short)
}

/// Why no header could be read off the socket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The bytes are not a valid header.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The peer closed the connection mid-header.
    #[error("the connection closed before a whole PROXY header")]
    Closed,
    /// The socket failed.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
}

/// How long to wait before peeking again when no new byte arrived: `peek` is ready while
/// any byte is buffered, so waiting for more has to be done by the clock. Balancers send the
/// header in one segment; this is for the rare split one.
const PEEK_AGAIN: Duration = Duration::from_millis(5);

/// Reads the PROXY header at the start of `stream`, consuming exactly its bytes. The caller
/// bounds the time.
pub async fn read(stream: &mut TcpStream) -> Result<Source, ReadError> {
    let mut buf = [0u8; V1_MAX];
    let mut seen = 0;
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        match parse(&buf[..n])? {
            Parsed::Complete { source, len } => {
                stream.read_exact(&mut buf[..len]).await?;
                return Ok(source);
            }
            // A v2 header whose length is known: exactly that many bytes, then parse them.
            Parsed::Incomplete { total } if n >= V2_FIXED && buf.starts_with(&V2_SIGNATURE) => {
                let mut header = vec![0u8; total];
                stream.read_exact(&mut header).await?;
                return match parse(&header)? {
                    Parsed::Complete { source, .. } => Ok(source),
                    Parsed::Incomplete { .. } => Err(ReadError::Closed),
                };
            }
            Parsed::Incomplete { .. } => {
                if n == seen {
                    tokio::time::sleep(PEEK_AGAIN).await;
                }
                seen = n;
            }
        }
    }
}

/// Whether the peer's first bytes are a PROXY signature, without consuming anything. A peer
/// that closes without a byte has none. The caller bounds the time.
pub async fn starts_with_signature(stream: &TcpStream) -> std::io::Result<bool> {
    let mut buf = [0u8; V2_SIGNATURE.len()];
    let mut seen = 0;
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(false);
        }
        if let Some(found) = signature(&buf[..n]) {
            return Ok(found);
        }
        if n == seen {
            tokio::time::sleep(PEEK_AGAIN).await;
        }
        seen = n;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
