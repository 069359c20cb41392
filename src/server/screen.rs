//! The HTTP/1 connection's bytes through [`crate::http::wire::Wire`] before hyper reads them
//! ([`Screened`]), and the tally it keeps with the service ([`Tally`]): which request a refusal
//! is answered as, and how a request that may switch protocols was answered.
//!
//! A refusal between requests becomes one more request given to hyper — `GET / HTTP/1.1`,
//! `Connection: close` — that the service answers (its number in the [`Tally`]) with the
//! refusal (so the responses before it still go out in order, and hyper closes the
//! connection after it). A refusal inside a chunked body cannot be a request of its own (the
//! request was given already): the body is ended with bytes hyper's decoder refuses, so the
//! proxy answers it 400 as it answers any broken body.

use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::http::wire::{Refusal, Wire};

/// What the refused request is given to hyper as.
const REFUSED: &[u8] = b"GET / HTTP/1.1\r\nHost: refused.invalid\r\nConnection: close\r\n\r\n";
/// What ends a refused chunked body inside hyper's decoder.
const POISON: &[u8] = b"\0\r\n\r\n";
const READ_CHUNK: usize = 8 * 1024;

/// Shared by a connection's [`Screened`] and its service. Atomics on the way of every request;
/// the locks are taken only for a refusal or while a read is held.
#[derive(Default)]
pub struct Tally {
    /// Requests the service has been called for.
    served: AtomicU64,
    /// The number the refused request is served as (0: none), and its refusal.
    refused_at: AtomicU64,
    refusal: Mutex<Option<Refusal>>,
    /// The highest request number answered, shifted left once, with bit 0 set for a 101.
    answered: AtomicU64,
    /// A read is held for an answer: `waker` is its.
    waiting: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Tally {
    /// The service's next request: its number, and the refusal to answer it with, if it is the
    /// refused one.
    pub fn next(&self) -> (u64, Option<Refusal>) {
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let refused = (self.refused_at.load(Ordering::Acquire) == n)
            .then(|| *self.refusal.lock().unwrap_or_else(|e| e.into_inner()))
            .flatten();
        (n, refused)
    }

    /// Request `n` was answered (`switched`: 101); wakes a read held for it.
    pub fn answered(&self, n: u64, switched: bool) {
        self.answered
            .fetch_max(n << 1 | u64::from(switched), Ordering::SeqCst);
        if self.waiting.swap(false, Ordering::SeqCst)
            && let Some(waker) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take()
        {
            waker.wake();
        }
    }

    /// The highest request number answered, and whether with 101.
    fn last_answer(&self) -> (u64, bool) {
        let a = self.answered.load(Ordering::SeqCst);
        (a >> 1, a & 1 == 1)
    }

    fn refuse(&self, at: u64, refusal: Refusal) {
        *self.refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(refusal);
        self.refused_at.store(at, Ordering::Release);
    }
}

/// A connection's IO with its reads checked by [`Wire`]; writes go straight through.
pub struct Screened<I> {
    inner: I,
    wire: Wire,
    tally: std::sync::Arc<Tally>,
    /// Checked bytes not yet read by hyper, from `given_at`.
    given: Vec<u8>,
    given_at: usize,
    /// Read from the client, not yet taken by the wire (it holds).
    held: Vec<u8>,
    eof: bool,
    /// The refused request, or the end of a refused body, was given.
    refused: bool,
}

impl<I> Screened<I> {
    pub fn new(inner: I, head_limit: usize, tally: std::sync::Arc<Tally>) -> Self {
        Screened {
            inner,
            wire: Wire::new(head_limit),
            tally,
            given: Vec::new(),
            given_at: 0,
            held: Vec::new(),
            eof: false,
            refused: false,
        }
    }

    /// Feed `input`; keep what the wire did not take. A refusal between requests queues the
    /// refused request; inside a body, the bytes that break it.
    fn feed(&mut self, input: &[u8]) -> io::Result<()> {
        match self.wire.feed(input, &mut self.given) {
            Ok(taken) => {
                self.held.extend_from_slice(&input[taken..]);
                Ok(())
            }
            Err(refusal) => {
                tracing::debug!(
                    status = refusal.status,
                    reason = refusal.reason,
                    "request bytes refused"
                );
                self.eof = true;
                self.refused = true;
                if refusal.in_body {
                    // hyper's chunked decoder fails on this wherever it stands (size line, the
                    // CRLF after data, trailers): the body ends in an error the proxy answers
                    // with 400, and hyper closes the connection after that answer.
                    self.given.extend_from_slice(POISON);
                    return Ok(());
                }
                self.tally.refuse(self.wire.requests() + 1, refusal);
                self.given.extend_from_slice(REFUSED);
                Ok(())
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Screened<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.given_at < this.given.len() {
                let n = buf.remaining().min(this.given.len() - this.given_at);
                buf.put_slice(&this.given[this.given_at..this.given_at + n]);
                this.given_at += n;
                if this.given_at == this.given.len() {
                    // Freed, not kept: an idle connection holds no buffer of its own.
                    this.given = Vec::new();
                    this.given_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                // After the refused request (`Connection: close`) hyper reads no more; an end
                // of stream now could end the connection before its answer is written.
                if this.refused {
                    return Poll::Pending;
                }
                return Poll::Ready(Ok(()));
            }
            if this.wire.is_passthrough() && this.held.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if let Some(n) = this.wire.awaiting() {
                let (answered, switched) = this.tally.last_answer();
                if answered < n {
                    *this.tally.waker.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(cx.waker().clone());
                    this.tally.waiting.store(true, Ordering::SeqCst);
                    // Answered between the look and the waker being stored: look again.
                    if this.tally.last_answer().0 < n {
                        return Poll::Pending;
                    }
                    continue;
                }
                this.wire.answered(n, switched);
                let held = std::mem::take(&mut this.held);
                this.feed(&held)?;
                continue;
            }
            if !this.held.is_empty() {
                let held = std::mem::take(&mut this.held);
                this.feed(&held)?;
                continue;
            }
            // On the stack: a buffer kept per connection would cost every idle connection.
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let n = read.filled().len();
                    if n == 0 {
                        this.eof = true;
                    } else {
                        this.feed(&chunk[..n])?;
                    }
                }
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Screened<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
