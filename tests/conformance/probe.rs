//! The raw client: one TCP connection per case, each step sent as the suite sends it, and read
//! as the suite's `RawTcpClient` reads: up to the end of the response head (or EOF, or the
//! 5-second read timeout), 100 ms more for the body, then a 50 ms look for a close.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

use super::cases::{Case, expand};

/// The suite's read timeout.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
const BODY_GRACE: Duration = Duration::from_millis(100);
const CLOSE_LOOK: Duration = Duration::from_millis(50);
/// The suite's read buffer: what a step can read at most.
const READ_LIMIT: usize = 128 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Conn {
    #[default]
    Open,
    Closed,
    TimedOut,
}

/// What one step saw.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub skipped: bool,
    /// The first response's status, if the bytes began with an HTTP status line.
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// HTTP status lines in the bytes read.
    pub responses: usize,
    pub conn: Conn,
}

/// Run `case` against `addr` on one new connection.
pub async fn run(addr: SocketAddr, case: &Case) -> Vec<Observation> {
    let host = format!("localhost:{}", addr.port());
    let Ok(Ok(mut tcp)) = timeout(Duration::from_secs(5), TcpStream::connect(addr)).await else {
        panic!("{}: cannot connect to {addr}", case.id);
    };
    let _ = tcp.set_nodelay(true);
    let mut out = Vec::new();
    let mut closed = false;
    for parts in &case.steps {
        if closed {
            out.push(Observation {
                skipped: true,
                conn: out.last().map_or(Conn::Closed, |o: &Observation| o.conn),
                ..Observation::default()
            });
            continue;
        }
        for part in parts {
            let bytes = expand(&part.template, &host).expect("checked at load");
            // A failed write or a close during a pause ends the sending, but what the server
            // answered before is still read (as the suite does).
            if tcp.write_all(&bytes).await.is_err() {
                break;
            }
            if part.pause_ms > 0 {
                sleep(Duration::from_millis(part.pause_ms)).await;
                if peer_closed(&tcp) {
                    break;
                }
            }
        }
        let obs = read(&mut tcp).await;
        // As the suite: a step after a close or a read timeout is not sent.
        closed = obs.conn != Conn::Open;
        out.push(obs);
    }
    out
}

async fn read(tcp: &mut TcpStream) -> Observation {
    let mut buf = Vec::new();
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut chunk = vec![0u8; 16 * 1024];
    let mut conn = Conn::Open;
    loop {
        if find(&buf, b"\r\n\r\n").is_some() || buf.len() >= READ_LIMIT {
            break;
        }
        match tokio::time::timeout_at(deadline, tcp.read(&mut chunk)).await {
            Err(_) => {
                conn = Conn::TimedOut;
                break;
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                conn = Conn::Closed;
                break;
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if conn == Conn::Open {
        sleep(BODY_GRACE).await;
        // What is there now, without waiting for more.
        loop {
            match tcp.try_read(&mut chunk) {
                Ok(0) => {
                    conn = Conn::Closed;
                    break;
                }
                Ok(n) if buf.len() < READ_LIMIT => buf.extend_from_slice(&chunk[..n]),
                Ok(_) => break,
                Err(_) => break,
            }
        }
    }
    if conn == Conn::Open {
        sleep(CLOSE_LOOK).await;
        if peer_closed(tcp) {
            conn = Conn::Closed;
        }
    }
    observe(buf, conn)
}

/// Whether the peer has closed: a read would return EOF (or fail). Peeks, so no byte is lost.
fn peer_closed(tcp: &TcpStream) -> bool {
    let mut one = [0u8; 1];
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut rb = tokio::io::ReadBuf::new(&mut one);
    match tcp.poll_peek(&mut cx, &mut rb) {
        std::task::Poll::Ready(Ok(0)) => true,
        std::task::Poll::Ready(Ok(_)) => false,
        std::task::Poll::Ready(Err(_)) => true,
        std::task::Poll::Pending => false,
    }
}

fn observe(raw: Vec<u8>, conn: Conn) -> Observation {
    let status = status_of(&raw);
    let (headers, body) = match (status, find(&raw, b"\r\n\r\n")) {
        (Some(_), Some(end)) => {
            let head = String::from_utf8_lossy(&raw[..end]);
            let headers = head
                .split("\r\n")
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            (headers, raw[end + 4..].to_vec())
        }
        _ => (Vec::new(), Vec::new()),
    };
    let responses = raw
        .windows(9)
        .enumerate()
        .filter(|(i, w)| {
            (*i == 0 || raw[i - 1] == b'\n')
                && w.starts_with(b"HTTP/1.")
                && status_of(&raw[*i..]).is_some()
        })
        .count();
    Observation {
        skipped: false,
        status,
        headers,
        body,
        responses,
        conn,
    }
}

/// `HTTP/1.x NNN` at the start of `raw`.
fn status_of(raw: &[u8]) -> Option<u16> {
    let rest = raw.strip_prefix(b"HTTP/")?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    if sp > 4 {
        return None;
    }
    let code = rest.get(sp + 1..sp + 4)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if rest
        .get(sp + 4)
        .is_some_and(|&b| b != b' ' && b != b'\r' && b != b'\n')
    {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observes_status_headers_and_every_response() {
        let o = observe(
            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nbadHTTP/1.1 200 OK\r\n\r\n"
                .to_vec(),
            Conn::Closed,
        );
        assert_eq!(o.status, Some(400));
        assert_eq!(o.headers, vec![("Connection".into(), "close".into())]);
        assert_eq!(o.responses, 1, "a status line not at a line start is body");
        let two = observe(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n".to_vec(),
            Conn::Open,
        );
        assert_eq!(two.responses, 2);
        assert_eq!(
            observe(b"garbage\r\n\r\n".to_vec(), Conn::Open).status,
            None
        );
        assert_eq!(observe(b"HTTP/1.1 20".to_vec(), Conn::Closed).status, None);
    }
}
