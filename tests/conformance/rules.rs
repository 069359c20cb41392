//! The verdict rules of a case (`"pass: s1=400 && s1.closed"`): parsing and evaluation over what
//! the probe observed (see README.md for the terms).

use super::probe::{Conn, Observation};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Status {
    Exact(u16),
    Class(u16),
    None,
}

#[derive(Debug, Clone, PartialEq)]
enum What {
    Status(Status),
    Closed,
    Open,
    Timeout,
    Multi,
    Skipped,
    Header(String, Option<String>),
    Body(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Term {
    negated: bool,
    step: usize,
    what: What,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub verdict: Verdict,
    terms: Vec<Term>,
}

impl Rule {
    pub fn parse(text: &str) -> Result<Rule, String> {
        let (verdict, cond) = text.split_once(':').ok_or("no `verdict:`")?;
        let verdict = match verdict.trim() {
            "pass" => Verdict::Pass,
            "warn" => Verdict::Warn,
            "fail" => Verdict::Fail,
            other => return Err(format!("verdict {other:?}")),
        };
        let cond = cond.trim();
        let terms = if cond.is_empty() {
            Vec::new()
        } else {
            cond.split("&&")
                .map(|t| parse_term(t.trim()))
                .collect::<Result<_, _>>()?
        };
        Ok(Rule { verdict, terms })
    }

    /// The highest step a term names.
    pub fn max_step(&self) -> Option<usize> {
        self.terms.iter().map(|t| t.step).max()
    }

    pub fn holds(&self, steps: &[Observation]) -> bool {
        self.terms.iter().all(|t| term_holds(t, steps))
    }
}

/// The verdict of `rules` on `steps`: the first rule that holds, else fail.
pub fn verdict(rules: &[Rule], steps: &[Observation]) -> Verdict {
    rules
        .iter()
        .find(|r| r.holds(steps))
        .map(|r| r.verdict)
        .unwrap_or(Verdict::Fail)
}

fn parse_term(t: &str) -> Result<Term, String> {
    let (negated, t) = match t.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, t),
    };
    let t = t
        .strip_prefix('s')
        .ok_or_else(|| format!("term {t:?}: sN..."))?;
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    let step: usize = t[..digits]
        .parse()
        .map_err(|_| format!("term {t:?}: step number"))?;
    if step == 0 {
        return Err("steps count from 1".into());
    }
    let rest = &t[digits..];
    let what = if let Some(code) = rest.strip_prefix('=') {
        What::Status(parse_status(code)?)
    } else if let Some(h) = rest.strip_prefix(".header:") {
        match h.split_once('=') {
            Some((name, value)) => What::Header(name.trim().to_string(), Some(value.to_string())),
            None => What::Header(h.trim().to_string(), None),
        }
    } else if let Some(text) = rest.strip_prefix(".body~") {
        What::Body(text.to_string())
    } else {
        match rest {
            ".closed" => What::Closed,
            ".open" => What::Open,
            ".timeout" => What::Timeout,
            ".multi" => What::Multi,
            ".skipped" => What::Skipped,
            other => return Err(format!("unknown term {other:?}")),
        }
    };
    Ok(Term {
        negated,
        step,
        what,
    })
}

fn parse_status(code: &str) -> Result<Status, String> {
    if code == "none" {
        return Ok(Status::None);
    }
    let b = code.as_bytes();
    if b.len() == 3 && b[0].is_ascii_digit() && (b[1..] == *b"xx" || b[1..] == *b"XX") {
        return Ok(Status::Class(u16::from(b[0] - b'0')));
    }
    match code.parse::<u16>() {
        Ok(n) if (100..600).contains(&n) => Ok(Status::Exact(n)),
        _ => Err(format!("status {code:?}")),
    }
}

fn term_holds(t: &Term, steps: &[Observation]) -> bool {
    let holds = match steps.get(t.step - 1) {
        // A step the case never reached (its connection closed earlier) is `skipped` and
        // nothing else.
        None => matches!(t.what, What::Skipped),
        Some(o) => match &t.what {
            What::Skipped => o.skipped,
            _ if o.skipped => false,
            What::Status(Status::None) => o.status.is_none(),
            What::Status(Status::Exact(n)) => o.status == Some(*n),
            What::Status(Status::Class(c)) => o.status.is_some_and(|s| s / 100 == *c),
            What::Closed => o.conn == Conn::Closed,
            What::Open => o.conn == Conn::Open,
            What::Timeout => o.conn == Conn::TimedOut,
            What::Multi => o.responses > 1,
            What::Header(name, value) => o.headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case(name)
                    && value
                        .as_ref()
                        .is_none_or(|want| v.trim().eq_ignore_ascii_case(want))
            }),
            What::Body(text) => o
                .body
                .windows(text.len().max(1))
                .any(|w| w == text.as_bytes()),
        },
    };
    holds != t.negated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(status: Option<u16>, conn: Conn) -> Observation {
        Observation {
            status,
            conn,
            ..Observation::default()
        }
    }

    #[test]
    fn the_first_rule_that_holds_decides_and_none_is_fail() {
        let rules: Vec<Rule> = ["pass: s1=400", "pass: s1=none", "warn: s1=2xx && s1.closed"]
            .iter()
            .map(|r| Rule::parse(r).unwrap())
            .collect();
        assert_eq!(
            verdict(&rules, &[obs(Some(400), Conn::Open)]),
            Verdict::Pass
        );
        assert_eq!(verdict(&rules, &[obs(None, Conn::TimedOut)]), Verdict::Pass);
        assert_eq!(
            verdict(&rules, &[obs(Some(200), Conn::Closed)]),
            Verdict::Warn
        );
        assert_eq!(
            verdict(&rules, &[obs(Some(200), Conn::Open)]),
            Verdict::Fail
        );
        assert_eq!(
            verdict(&rules, &[obs(Some(404), Conn::Closed)]),
            Verdict::Fail
        );
    }

    #[test]
    fn negation_steps_headers_and_catch_all() {
        let mut second = obs(Some(200), Conn::Open);
        second.headers = vec![("Connection".into(), "close".into())];
        second.responses = 2;
        let steps = [obs(Some(200), Conn::Open), second];
        let r = |s: &str| Rule::parse(s).unwrap();
        assert!(r("fail: s2.multi && !s2.closed").holds(&steps));
        assert!(r("pass: s2.header:connection=CLOSE").holds(&steps));
        assert!(!r("pass: s2.header:content-length").holds(&steps));
        assert!(r("pass: s3.skipped").holds(&steps));
        assert!(!r("pass: s3=none").holds(&steps));
        assert!(r("warn:").holds(&steps));
        assert!(Rule::parse("maybe: s1=400").is_err());
        assert!(Rule::parse("pass: s0=400").is_err());
        assert!(Rule::parse("pass: s1=4x").is_err());
        assert!(Rule::parse("pass: s1.sideways").is_err());
    }
}
