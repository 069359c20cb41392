//! Golden responses: request bytes in, response bytes compared (hyper's `t!` habit).
//!
//! Every dialect's success and error paths and the proxy's refusals, sent verbatim over TLS
//! with `Connection: close`, recorded as the bytes the gateway wrote (status line, every
//! header in order, body). Only what differs between runs by design is masked: `date`, the
//! request id, signed and random tokens, timestamps (see [`normalize`]); `content-length` is
//! masked only when the body was. The transcripts live in `tests/golden/*.txt`; a change in
//! any byte fails the test with the case name and both versions.
//!
//! To re-record after an intended change: `AUTHGATE_BLESS=1 cargo test --test golden`, then
//! review the diff of `tests/golden/` like code.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "golden/cases.rs"]
mod cases;

use std::path::PathBuf;

use regex::Regex;
use support::{STEP_TIMEOUT, TestGateway, tls_connect, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One dialect's (or the proxy's) transcript, compared with `tests/golden/{name}.txt`.
pub struct Golden {
    name: &'static str,
    transcript: String,
}

impl Golden {
    pub fn new(name: &'static str) -> Golden {
        Golden {
            name,
            transcript: String::new(),
        }
    }

    /// Sends `request` verbatim, records the normalised answer under `case`, returns it raw.
    pub async fn case(&mut self, gw: &TestGateway, case: &str, request: &str) -> String {
        let raw = exchange(gw, request.as_bytes()).await;
        let first = request.lines().next().unwrap_or_default();
        let first = TOKENS.with(|t| t.mask(first));
        self.transcript
            .push_str(&format!("=== {case}\n> {first}\n{}\n", normalize(&raw)));
        raw
    }

    /// Compares with (or, under `AUTHGATE_BLESS=1`, writes) the recorded transcript.
    pub fn check(self) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(format!("{}.txt", self.name));
        if std::env::var_os("AUTHGATE_BLESS").is_some() {
            std::fs::write(&path, &self.transcript).unwrap();
            return;
        }
        let recorded = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (record with AUTHGATE_BLESS=1)", path.display()));
        if recorded == self.transcript {
            return;
        }
        let split = |text: &str| -> Vec<(String, String)> {
            text.split("=== ")
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let (name, rest) = s.split_once('\n').unwrap_or((s, ""));
                    (name.to_owned(), rest.to_owned())
                })
                .collect()
        };
        let (want, got) = (split(&recorded), split(&self.transcript));
        let mut report = String::new();
        for (name, body) in &got {
            match want.iter().find(|(n, _)| n == name) {
                Some((_, recorded)) if recorded == body => {}
                Some((_, recorded)) => report.push_str(&format!(
                    "--- case {name:?} changed\n--- recorded:\n{recorded}--- now:\n{body}\n"
                )),
                None => report.push_str(&format!("--- case {name:?} is new\n")),
            }
        }
        for (name, _) in &want {
            if !got.iter().any(|(n, _)| n == name) {
                report.push_str(&format!("--- case {name:?} no longer runs\n"));
            }
        }
        panic!("{} differs from the recording:\n{report}", path.display());
    }
}

/// Writes `request` over TLS (ALPN http/1.1) and reads until the gateway closes.
async fn exchange(gw: &TestGateway, request: &[u8]) -> String {
    let mut stream = tls_connect(gw.https_addr, &gw.cert, &[b"http/1.1"]).await;
    within("write", stream.write_all(request)).await.unwrap();
    let mut raw = Vec::new();
    let read = tokio::time::timeout(STEP_TIMEOUT, stream.read_to_end(&mut raw)).await;
    assert!(read.is_ok(), "no close within {STEP_TIMEOUT:?}");
    String::from_utf8_lossy(&raw).into_owned()
}

thread_local! {
    static TOKENS: Masks = Masks::new();
}

/// The patterns of what differs between runs by design.
struct Masks {
    jwt: Regex,
    uuid: Regex,
    datetime: Regex,
    epoch: Regex,
    random: Regex,
}

impl Masks {
    fn new() -> Masks {
        Masks {
            jwt: Regex::new(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*").unwrap(),
            uuid: Regex::new(
                r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            )
            .unwrap(),
            datetime: Regex::new(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?")
                .unwrap(),
            epoch: Regex::new(r"\b1[6-9]\d{8}(\d{3})?\b").unwrap(),
            random: Regex::new(r"[A-Za-z0-9_~+/=-]{20,}").unwrap(),
        }
    }

    fn mask(&self, text: &str) -> String {
        let text = self.jwt.replace_all(text, "<jwt>");
        let text = self.uuid.replace_all(&text, "<uuid>");
        let text = self.datetime.replace_all(&text, "<datetime>");
        let text = self.epoch.replace_all(&text, "<epoch>");
        // Random strings: long, with digits and both cases (never an error code or a path).
        let text = self.random.replace_all(&text, |c: &regex::Captures<'_>| {
            let s = &c[0];
            let random = !s.starts_with("sha256-")
                && s.bytes().any(|b| b.is_ascii_digit())
                && s.bytes().any(|b| b.is_ascii_uppercase())
                && s.bytes().any(|b| b.is_ascii_lowercase());
            if random {
                "<random>".to_owned()
            } else {
                s.to_owned()
            }
        });
        text.into_owned()
    }
}

/// The answer with what differs between runs masked (see the module doc).
fn normalize(raw: &str) -> String {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let request_id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .map(str::to_owned);
    let unmask_id = |text: &str| match &request_id {
        Some(id) if !id.is_empty() => text.replace(id.as_str(), "<request-id>"),
        _ => text.to_owned(),
    };
    let masked_body = TOKENS.with(|t| t.mask(&unmask_id(body)));
    let body_changed = masked_body != body;
    let mut out = String::new();
    for line in head.lines() {
        let line = if line.starts_with("date: ") {
            "date: <date>".to_owned()
        } else if body_changed && line.starts_with("content-length: ") {
            "content-length: <len>".to_owned()
        } else {
            TOKENS.with(|t| t.mask(&unmask_id(line)))
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&masked_body);
    if !masked_body.is_empty() {
        out.push('\n');
    }
    out
}

#[tokio::test]
async fn oauth2_answers_are_unchanged() {
    cases::oauth2().await;
}

#[tokio::test]
async fn login_page_answers_are_unchanged() {
    cases::login().await;
}

#[tokio::test]
async fn mobile_answers_are_unchanged() {
    cases::mobile().await;
}

#[tokio::test]
async fn passport_answers_are_unchanged() {
    cases::passport().await;
}

#[tokio::test]
async fn app_answers_are_unchanged() {
    cases::app().await;
}

#[tokio::test]
async fn proxy_refusals_are_unchanged() {
    cases::proxy().await;
}
