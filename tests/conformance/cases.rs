//! The case files (`tests/conformance/cases/*.toml`, transcribed from Http11Probe's published
//! documentation) and the deviations we accept (`deviations.toml`): their model, loading and
//! the request templates (`{host}`, `{rep:N:TEXT}`, `{x:HH ..}`, `{{`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::rules::Rule;

/// The categories the issue scores, in the order the table prints them.
pub const CATEGORIES: &[&str] = &[
    "smuggling",
    "malformed-input",
    "request-line",
    "host-header",
    "line-endings",
    "content-length",
    "headers",
    "body",
    "upgrade",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    case: Vec<RawCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    id: String,
    doc: String,
    rfc: String,
    level: String,
    expected: String,
    rules: Vec<String>,
    step: Vec<RawStep>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default)]
    send: Option<String>,
    #[serde(default)]
    parts: Option<Vec<RawPart>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPart {
    send: String,
    #[serde(default)]
    pause_ms: u64,
}

/// One scored case of the suite.
#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub category: String,
    pub doc: String,
    pub rfc: String,
    pub level: String,
    pub expected: String,
    pub rules: Vec<Rule>,
    pub steps: Vec<Vec<Part>>,
    /// How the transcription read the page and the suite's code, where they differ.
    pub note: Option<String>,
}

/// A piece of a step: its template, and the pause after sending it.
#[derive(Debug, Clone)]
pub struct Part {
    pub template: String,
    pub pause_ms: u64,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// Every case of every category; panics (naming the file and case) on a malformed file.
pub fn load() -> Vec<Case> {
    let mut out = Vec::new();
    let mut seen = BTreeMap::new();
    for cat in CATEGORIES {
        let path = dir().join(format!("cases/{cat}.toml"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file: File =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for raw in file.case {
            let where_ = format!("{}: case {}", path.display(), raw.id);
            assert!(
                seen.insert(raw.id.clone(), where_.clone()).is_none(),
                "{where_}: duplicate id"
            );
            assert!(
                matches!(
                    raw.level.as_str(),
                    "MUST" | "SHOULD" | "MAY" | "OUGHT" | "NA"
                ),
                "{where_}: level {:?}",
                raw.level
            );
            assert!(!raw.step.is_empty(), "{where_}: no step");
            let rules = raw
                .rules
                .iter()
                .map(|r| Rule::parse(r).unwrap_or_else(|e| panic!("{where_}: rule {r:?}: {e}")))
                .collect::<Vec<_>>();
            let steps: Vec<Vec<Part>> = raw
                .step
                .into_iter()
                .map(|s| match (s.send, s.parts) {
                    (Some(send), None) => vec![Part {
                        template: send,
                        pause_ms: 0,
                    }],
                    (None, Some(parts)) if !parts.is_empty() => parts
                        .into_iter()
                        .map(|p| Part {
                            template: p.send,
                            pause_ms: p.pause_ms,
                        })
                        .collect(),
                    _ => panic!("{where_}: a step has either `send` or non-empty `parts`"),
                })
                .collect();
            for part in steps.iter().flatten() {
                if let Err(e) = expand(&part.template, "localhost:1") {
                    panic!("{where_}: template: {e}");
                }
            }
            for rule in &rules {
                if let Some(n) = rule.max_step()
                    && n > steps.len()
                {
                    panic!("{where_}: a rule names step {n} of {}", steps.len());
                }
            }
            out.push(Case {
                id: raw.id,
                category: (*cat).to_string(),
                doc: raw.doc,
                rfc: raw.rfc,
                level: raw.level,
                expected: raw.expected,
                rules,
                steps,
                note: raw.note,
            });
        }
    }
    out
}

/// The request bytes of a template with `{host}` = `host`.
pub fn expand(template: &str, host: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push(b'{');
            rest = after;
            continue;
        }
        if let Some(after) = tail.strip_prefix("}}") {
            out.push(b'}');
            rest = after;
            continue;
        }
        if let Some(after) = tail.strip_prefix('}') {
            // A lone `}` is a literal (only `{` opens a template).
            out.push(b'}');
            rest = after;
            continue;
        }
        let end = tail
            .find('}')
            .ok_or_else(|| format!("unclosed template at {tail:.20?}"))?;
        let inner = &tail[1..end];
        if inner == "host" {
            out.extend_from_slice(host.as_bytes());
        } else if let Some(spec) = inner.strip_prefix("rep:") {
            let (n, text) = spec
                .split_once(':')
                .ok_or_else(|| format!("{{{inner}}}: rep:N:TEXT"))?;
            let n: usize = n.parse().map_err(|_| format!("{{{inner}}}: count"))?;
            out.extend_from_slice(text.repeat(n).as_bytes());
        } else if let Some(hex) = inner.strip_prefix("x:") {
            for byte in hex.split_whitespace() {
                out.push(u8::from_str_radix(byte, 16).map_err(|_| format!("{{{inner}}}: hex"))?);
            }
        } else {
            return Err(format!("unknown template {{{inner}}}"));
        }
        rest = &tail[end + 1..];
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

/// A verdict authgate gets on purpose, with the reason (`deviations.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    pub id: String,
    pub verdict: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Deviations {
    #[serde(default)]
    deviation: Vec<Deviation>,
}

pub fn deviations(cases: &[Case]) -> BTreeMap<String, Deviation> {
    let path = dir().join("deviations.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file: Deviations =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for d in file.deviation {
        assert!(
            cases.iter().any(|c| c.id == d.id),
            "{}: deviation {} names no case",
            path.display(),
            d.id
        );
        assert!(
            matches!(d.verdict.as_str(), "warn" | "fail"),
            "{}: deviation {}: verdict is warn or fail",
            path.display(),
            d.id
        );
        assert!(
            out.insert(d.id.clone(), d).is_none(),
            "{}: a case listed twice",
            path.display()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn templates_expand_to_the_bytes_they_name() {
        assert_eq!(
            expand("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n", "localhost:80").unwrap(),
            b"GET / HTTP/1.1\r\nHost: localhost:80\r\n\r\n"
        );
        assert_eq!(expand("{rep:3:ab}", "h").unwrap(), b"ababab");
        assert_eq!(expand("/{x:c3 a9}{{x}", "h").unwrap(), b"/\xc3\xa9{x}");
        assert!(expand("{nope}", "h").is_err());
        assert!(expand("{host", "h").is_err());
    }
}
