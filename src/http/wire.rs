//! The bytes of an HTTP/1 connection as the strictest upstream would read them, checked before
//! hyper parses them (issue 27, "the upstream's reading counts"). [`Wire`] is sans-IO: fed what
//! the client sent, it gives back what may be parsed — request heads only once complete and
//! valid (`head.rs`), bodies as their framing allows, chunk-size lines and trailers only once
//! checked — or a [`Refusal`]. hyper is lenient where legacy stacks differ (chunk extensions,
//! bare LF in trailers, Host syntax, `Content-Length: 007`); here those end the connection.
//!
//! After a request that may switch protocols (`Upgrade`, `CONNECT`) nothing more is given until
//! the caller says how it was answered ([`Wire::answered`]); an HTTP/2 preface, or a switch,
//! turns the checking off.

mod head;

use head::Framing;

/// Why the bytes were refused: the status to answer with and a sentence for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// 400, or 414, 431, 501, 505.
    pub status: u16,
    /// For the client; names no byte it sent.
    pub reason: &'static str,
    /// Inside a chunked body: the request was given to hyper already; its body is broken off.
    pub in_body: bool,
}

impl Refusal {
    /// A refusal between requests.
    pub const fn new(status: u16, reason: &'static str) -> Self {
        Refusal {
            status,
            reason,
            in_body: false,
        }
    }
}

/// The longest chunk-size line (size and extensions) accepted.
const CHUNK_LINE_LIMIT: usize = 4096;
/// The longest trailer section accepted.
const TRAILER_LIMIT: usize = 16 * 1024;
/// The longest chunk size: 16 hex digits fill a u64.
const CHUNK_SIZE_DIGITS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before a request line; empty lines are skipped (RFC 9112 §2.2). `true`: a CR was seen.
    Start(bool),
    Head,
    Fixed(u64),
    ChunkLine,
    ChunkData(u64),
    ChunkCr,
    ChunkLf,
    Trailer,
    /// Request `n` may switch protocols: hold until it is answered.
    Await(u64),
    Passthrough,
    Refused,
}

/// One connection's request stream.
#[derive(Debug)]
pub struct Wire {
    state: State,
    /// The head, chunk-size line or trailer section being collected.
    pending: Vec<u8>,
    head_limit: usize,
    /// Request heads given so far.
    requests: u64,
    switches: bool,
}

impl Wire {
    /// `head_limit`: the longest request head (request line and headers) accepted.
    pub fn new(head_limit: usize) -> Self {
        Wire {
            state: State::Start(false),
            pending: Vec::new(),
            head_limit,
            requests: 0,
            switches: false,
        }
    }

    /// Request heads given so far (a refusal is answered as the next one).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Nothing is checked any more (an HTTP/2 preface, or the protocol switched).
    pub fn is_passthrough(&self) -> bool {
        self.state == State::Passthrough
    }

    /// The request it waits on to be answered, if it holds.
    pub fn awaiting(&self) -> Option<u64> {
        match self.state {
            State::Await(n) => Some(n),
            _ => None,
        }
    }

    /// Request `n` was answered; `switched`: with 101 (the rest is another protocol).
    pub fn answered(&mut self, n: u64, switched: bool) {
        if self.state == State::Await(n) {
            self.state = if switched {
                State::Passthrough
            } else {
                State::Start(false)
            };
        }
    }

    /// Check `input`, appending what may be parsed to `out`. Returns how much of `input` was
    /// taken: less than all only while it holds ([`Wire::awaiting`]). After a refusal nothing
    /// more is taken or given.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Refusal> {
        let mut i = 0;
        while i < input.len() {
            let rest = &input[i..];
            match self.state {
                State::Start(cr) => {
                    match (cr, rest[0]) {
                        (false, b'\r') => self.state = State::Start(true),
                        (true, b'\n') => self.state = State::Start(false),
                        (false, b'\n') => {
                            return Err(self.refuse(400, "a bare LF before the request line"));
                        }
                        (true, _) => {
                            return Err(self.refuse(400, "a bare CR before the request line"));
                        }
                        (false, _) => {
                            self.state = State::Head;
                            continue;
                        }
                    }
                    i += 1;
                }
                State::Head => {
                    let (taken, done) = self.collect_lines(rest, true, self.head_limit)?;
                    i += taken;
                    if done {
                        self.end_head(out)?;
                    }
                }
                State::Fixed(left) => {
                    let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&rest[..n]);
                    i += n;
                    let left = left - n as u64;
                    self.state = State::Fixed(left);
                    if left == 0 {
                        self.end_message();
                    }
                }
                State::ChunkLine => {
                    let (taken, done) = self.collect_lines(rest, false, CHUNK_LINE_LIMIT)?;
                    i += taken;
                    if done {
                        let size = chunk_size(&self.pending).map_err(|r| self.refuse_body(r))?;
                        out.extend_from_slice(&self.pending);
                        self.pending.clear();
                        self.state = if size == 0 {
                            State::Trailer
                        } else {
                            State::ChunkData(size)
                        };
                    }
                }
                State::ChunkData(left) => {
                    let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&rest[..n]);
                    i += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::ChunkCr
                    } else {
                        State::ChunkData(left)
                    };
                }
                State::ChunkCr | State::ChunkLf => {
                    let want = if self.state == State::ChunkCr {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if rest[0] != want {
                        return Err(self.refuse_body(Refusal::new(
                            400,
                            "chunk data is not followed by CRLF (its size is wrong)",
                        )));
                    }
                    out.push(want);
                    i += 1;
                    self.state = if want == b'\r' {
                        State::ChunkLf
                    } else {
                        State::ChunkLine
                    };
                }
                State::Trailer => {
                    let (taken, done) = self.collect_lines(rest, true, TRAILER_LIMIT)?;
                    i += taken;
                    if done {
                        check_trailer(&self.pending).map_err(|r| self.refuse_body(r))?;
                        out.extend_from_slice(&self.pending);
                        self.pending.clear();
                        self.end_message();
                    }
                }
                State::Await(_) => return Ok(i),
                State::Passthrough => {
                    out.extend_from_slice(rest);
                    return Ok(input.len());
                }
                State::Refused => return Ok(input.len()),
            }
        }
        Ok(i)
    }

    /// Collect into `pending` up to the end of a line (`section`: up to an empty line, the
    /// section's end); every LF must follow a CR. Returns (bytes taken, complete).
    fn collect_lines(
        &mut self,
        rest: &[u8],
        section: bool,
        limit: usize,
    ) -> Result<(usize, bool), Refusal> {
        let mut taken = 0;
        while taken < rest.len() {
            let chunk = &rest[taken..];
            if self.pending.is_empty() {
                self.pending.reserve(1024);
            }
            let Some(lf) = chunk.iter().position(|&b| b == b'\n') else {
                self.pending.extend_from_slice(chunk);
                taken = rest.len();
                break;
            };
            self.pending.extend_from_slice(&chunk[..=lf]);
            taken += lf + 1;
            let p = &self.pending;
            if p.len() < 2 || p[p.len() - 2] != b'\r' {
                return Err(self.refuse_here(400, "a bare LF (lines end with CRLF)"));
            }
            let line_empty = p.len() == 2 || p[..p.len() - 2].ends_with(b"\n");
            if !section || line_empty {
                if self.pending.len() > limit {
                    return Err(self.too_long());
                }
                return Ok((taken, true));
            }
        }
        if self.pending.len() > limit {
            return Err(self.too_long());
        }
        Ok((taken, false))
    }

    fn too_long(&mut self) -> Refusal {
        match self.state {
            State::Head => {
                let line_done = self.pending.contains(&b'\n');
                let spaces = self.pending.iter().filter(|&&b| b == b' ').count();
                if line_done {
                    self.refuse(431, "the request head is too large")
                } else if spaces == 0 {
                    self.refuse(400, "the method is too long")
                } else {
                    self.refuse(414, "the request target is too long")
                }
            }
            State::ChunkLine => {
                self.refuse_body(Refusal::new(400, "a chunk-size line is too long"))
            }
            _ => self.refuse_body(Refusal::new(431, "the trailer section is too large")),
        }
    }

    fn refuse_here(&mut self, status: u16, reason: &'static str) -> Refusal {
        match self.state {
            State::Head | State::Start(_) => self.refuse(status, reason),
            _ => self.refuse_body(Refusal::new(status, reason)),
        }
    }

    fn refuse(&mut self, status: u16, reason: &'static str) -> Refusal {
        self.state = State::Refused;
        self.pending = Vec::new();
        Refusal::new(status, reason)
    }

    fn refuse_body(&mut self, r: Refusal) -> Refusal {
        self.state = State::Refused;
        self.pending = Vec::new();
        Refusal { in_body: true, ..r }
    }

    fn end_head(&mut self, out: &mut Vec<u8>) -> Result<(), Refusal> {
        let head = match head::check(&self.pending) {
            Ok(head) => head,
            Err(r) => return Err(self.refuse(r.status, r.reason)),
        };
        let start = out.len();
        // Handed over, not copied, when it is all there is: the connection keeps no buffer
        // between requests.
        let pending = std::mem::take(&mut self.pending);
        if out.is_empty() {
            *out = pending;
        } else {
            out.extend_from_slice(&pending);
        }
        if head.preface {
            self.state = State::Passthrough;
            return Ok(());
        }
        if let Some(at) = head.minor_at {
            out[start + at] = b'1';
        }
        self.requests += 1;
        self.switches = head.switches;
        self.state = match head.framing {
            Framing::None | Framing::Length(0) => {
                self.end_message();
                return Ok(());
            }
            Framing::Length(n) => State::Fixed(n),
            Framing::Chunked => State::ChunkLine,
        };
        Ok(())
    }

    fn end_message(&mut self) {
        self.pending = Vec::new();
        self.state = if self.switches {
            State::Await(self.requests)
        } else {
            State::Start(false)
        };
    }
}

/// RFC 9112 §7.1: `chunk-size [ chunk-ext ] CRLF`, chunk-size = 1*HEXDIG, chunk-ext =
/// *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] ).
fn chunk_size(line: &[u8]) -> Result<u64, Refusal> {
    let line = &line[..line.len() - 2];
    let bad = |reason| Refusal::new(400, reason);
    if line.contains(&b'\r') {
        return Err(bad("a bare CR in a chunk-size line"));
    }
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(bad("a chunk size is not hexadecimal"));
    }
    if digits > CHUNK_SIZE_DIGITS {
        return Err(bad("a chunk size is too large"));
    }
    let hex =
        std::str::from_utf8(&line[..digits]).map_err(|_| bad("a chunk size is not hexadecimal"))?;
    let size = u64::from_str_radix(hex, 16).map_err(|_| bad("a chunk size is too large"))?;
    let mut ext = Ext { s: &line[digits..] };
    // BWS only before a `;`: `5 ` (trailing whitespace) is not a chunk size.
    while !ext.s.is_empty() {
        ext.bws();
        if !ext.eat(b';') {
            return Err(bad(
                "a chunk size is followed by something that is not an extension",
            ));
        }
        ext.bws();
        if !ext.token() {
            return Err(bad("a chunk extension name is not a token"));
        }
        let before = ext.s;
        ext.bws();
        if ext.eat(b'=') {
            ext.bws();
            if !(ext.token() || ext.quoted()) {
                return Err(bad(
                    "a chunk extension value is not a token or quoted string",
                ));
            }
        } else {
            ext.s = before;
        }
    }
    Ok(size)
}

struct Ext<'a> {
    s: &'a [u8],
}

impl Ext<'_> {
    fn bws(&mut self) {
        while let [b' ' | b'\t', rest @ ..] = self.s {
            self.s = rest;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        match self.s {
            [first, rest @ ..] if *first == b => {
                self.s = rest;
                true
            }
            _ => false,
        }
    }

    fn token(&mut self) -> bool {
        let n = self.s.iter().take_while(|&&b| head::is_tchar(b)).count();
        self.s = &self.s[n..];
        n > 0
    }

    /// RFC 9110 §5.6.4 quoted-string.
    fn quoted(&mut self) -> bool {
        let [b'"', rest @ ..] = self.s else {
            return false;
        };
        let mut i = 0;
        while i < rest.len() {
            match rest[i] {
                b'"' => {
                    self.s = &rest[i + 1..];
                    return true;
                }
                b'\\' if i + 1 < rest.len() && qd_byte(rest[i + 1]) => i += 2,
                b if qd_byte(b) && b != b'\\' => i += 1,
                _ => return false,
            }
        }
        false
    }
}

fn qd_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// The trailer section (after the last chunk): field lines as in a head, then the empty line.
fn check_trailer(section: &[u8]) -> Result<(), Refusal> {
    let body = &section[..section.len() - 2];
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        head::split_field(line)
            .map_err(|_| Refusal::new(400, "a trailer field line is malformed"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
