//! A minimal HTTP/2 client over TLS that records the frames the gateway sends for one request
//! with a body: enough to see whether a refusal is followed (or preceded) by a stream reset,
//! which hyper's client forgives and stricter clients (curl, browsers mid-upload) do not.
//! Requests use HPACK literals without indexing (no Huffman, no dynamic table), so no decoder
//! state is needed; the response's header block is not decoded (its status is checked with
//! hyper's client elsewhere).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};
use tokio_rustls::client::TlsStream;

use crate::support::*;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

/// A frame the server sent (payload kept for RST_STREAM / GOAWAY codes).
#[derive(Debug, Clone)]
pub struct Frame {
    pub ty: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.ty {
            RST_STREAM => 0,
            GOAWAY => 4,
            _ => return None,
        };
        let b = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

type Writer = Arc<Mutex<WriteHalf<TlsStream<TcpStream>>>>;

async fn write_frame(w: &Writer, ty: u8, flags: u8, stream: u32, payload: &[u8]) -> bool {
    let len = payload.len() as u32;
    let mut buf = Vec::with_capacity(9 + payload.len());
    buf.extend_from_slice(&len.to_be_bytes()[1..]);
    buf.push(ty);
    buf.push(flags);
    buf.extend_from_slice(&stream.to_be_bytes());
    buf.extend_from_slice(payload);
    let mut w = w.lock().await;
    w.write_all(&buf).await.is_ok() && w.flush().await.is_ok()
}

async fn read_frame(r: &mut ReadHalf<TlsStream<TcpStream>>) -> Option<Frame> {
    let mut head = [0u8; 9];
    r.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await.ok()?;
    Some(Frame {
        ty: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload,
    })
}

/// HPACK literal header field without indexing, new name (RFC 7541 §6.2.2), short strings.
fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    assert!(name.len() < 127 && value.len() < 127);
    out.push(0x00);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
}

/// What the server sent on stream 1 and on the connection, in order.
#[derive(Debug)]
pub struct Exchange {
    pub frames: Vec<Frame>,
    /// Body bytes the client got to send before it stopped.
    pub sent: u64,
}

impl Exchange {
    /// Why a strict client would not have read the answer cleanly: the stream was reset (even
    /// RST_STREAM(NO_ERROR) after a complete response, RFC 9113 §8.1, makes a client that is
    /// still uploading fail: curl 7.88 reports "Stream error in the HTTP/2 framing layer"),
    /// the connection went away with an error, or the response never completed.
    pub fn unclean(&self) -> Option<String> {
        let mut complete = false;
        for f in &self.frames {
            match (f.ty, f.stream) {
                (HEADERS | DATA, 1) if f.flags & END_STREAM != 0 => complete = true,
                (RST_STREAM, 1) => {
                    let code = f.error_code().unwrap_or(u32::MAX);
                    let when = if complete { "after" } else { "before" };
                    return Some(format!(
                        "RST_STREAM({code}) {when} the end of the response ({} body bytes sent)",
                        self.sent
                    ));
                }
                (GOAWAY, 0) if f.error_code() != Some(0) => {
                    return Some(format!("GOAWAY({:?})", f.error_code()));
                }
                _ => {}
            }
        }
        (!complete).then(|| "the response never completed".to_string())
    }
}

/// `POST path` over HTTP/2 with a `body_len`-byte body, honouring flow control; the frames the
/// server sends are recorded until the stream is closed (response complete plus `linger`, or a
/// reset) or the connection ends.
pub async fn post(gw: &TestGateway, path: &str, body_len: u64, linger: Duration) -> Exchange {
    let tls = tls_connect(gw.https_addr, &gw.cert, &[b"h2"]).await;
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "the gateway must negotiate h2"
    );
    let (mut r, w) = tokio::io::split(tls);
    let w: Writer = Arc::new(Mutex::new(w));
    {
        let mut g = w.lock().await;
        g.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
    }
    assert!(write_frame(&w, SETTINGS, 0, 0, &[]).await);
    let mut block = Vec::new();
    literal(&mut block, ":method", "POST");
    literal(&mut block, ":scheme", "https");
    literal(&mut block, ":path", path);
    literal(&mut block, ":authority", "localhost");
    literal(&mut block, "content-type", "application/octet-stream");
    literal(&mut block, "content-length", &body_len.to_string());
    assert!(write_frame(&w, HEADERS, END_HEADERS, 1, &block).await);

    // The writer sends DATA within the windows; the reader feeds it window updates.
    let (credit_tx, mut credit_rx) = mpsc::unbounded_channel::<(i64, i64)>();
    let writer = {
        let w = Arc::clone(&w);
        tokio::spawn(async move {
            let (mut conn, mut stream) = (65_535i64, 65_535i64);
            let mut left = body_len;
            let mut sent = 0u64;
            let chunk = vec![0u8; 16_384];
            while left > 0 {
                while conn <= 0 || stream <= 0 {
                    match credit_rx.recv().await {
                        Some((c, s)) => {
                            conn += c;
                            stream += s;
                        }
                        None => return sent,
                    }
                }
                let n = (left as i64).min(16_384).min(conn).min(stream) as usize;
                let flags = if n as u64 == left { END_STREAM } else { 0 };
                if !write_frame(&w, DATA, flags, 1, &chunk[..n]).await {
                    return sent;
                }
                conn -= n as i64;
                stream -= n as i64;
                left -= n as u64;
                sent += n as u64;
                while let Ok((c, s)) = credit_rx.try_recv() {
                    conn += c;
                    stream += s;
                }
            }
            sent
        })
    };

    let mut frames = Vec::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, read_frame(&mut r)).await {
                Ok(f) => f,
                Err(_) => break,
            },
            None => within("HTTP/2 frames from the gateway", read_frame(&mut r)).await,
        };
        let Some(frame) = next else { break };
        match (frame.ty, frame.stream) {
            (SETTINGS, 0) if frame.flags & ACK == 0 => {
                // SETTINGS_INITIAL_WINDOW_SIZE changes the stream window by the difference.
                for s in frame.payload.chunks_exact(6) {
                    if u16::from_be_bytes([s[0], s[1]]) == 0x4 {
                        let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]) as i64;
                        let _ = credit_tx.send((0, v - 65_535));
                    }
                }
                write_frame(&w, SETTINGS, ACK, 0, &[]).await;
            }
            (WINDOW_UPDATE, id) => {
                let b = &frame.payload;
                let inc = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64 & 0x7fff_ffff;
                let _ = credit_tx.send(if id == 0 { (inc, 0) } else { (0, inc) });
            }
            (0x6, 0) if frame.flags & ACK == 0 => {
                write_frame(&w, 0x6, ACK, 0, &frame.payload).await; // PING
            }
            _ => {}
        }
        let ends_stream = frame.stream == 1
            && (frame.ty == RST_STREAM
                || ((frame.ty == HEADERS || frame.ty == DATA) && frame.flags & END_STREAM != 0));
        let goaway = frame.ty == GOAWAY;
        frames.push(frame);
        if goaway {
            break;
        }
        if ends_stream && deadline.is_none() {
            // Keep listening a little: a reset right after the response is what breaks
            // strict clients.
            deadline = Some(tokio::time::Instant::now() + linger);
        }
    }
    drop(credit_tx);
    let sent = within("HTTP/2 writer to stop", writer).await.unwrap_or(0);
    Exchange { frames, sent }
}
