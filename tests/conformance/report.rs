//! The side-by-side table: per target pass / warn / fail (and authgate's accepted deviations),
//! per category, the cases where the targets differ, and authgate's failures with their clause.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::cases::{CATEGORIES, Case, Deviation};
use super::probe::{Conn, Observation};
use super::rules::Verdict;

/// One target's verdict on every case (in case order), with what it saw.
pub struct Column {
    pub name: String,
    pub results: Vec<(Verdict, Vec<Observation>)>,
}

/// What a column shows for case `i`: `dev` for an accepted deviation of authgate's.
fn cell(col: &Column, case: &Case, i: usize, devs: &BTreeMap<String, Deviation>) -> &'static str {
    let v = col.results[i].0;
    if col.name == "authgate" && v == Verdict::Fail && devs.contains_key(&case.id) {
        "dev"
    } else {
        v.name()
    }
}

pub fn counts(
    col: &Column,
    cases: &[Case],
    devs: &BTreeMap<String, Deviation>,
) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for (i, c) in cases.iter().enumerate() {
        *out.entry(cell(col, c, i, devs)).or_insert(0) += 1;
    }
    out
}

/// What a step saw, in a few words (`400 closed`, `none timeout`, `200 open ×2`).
pub fn seen(steps: &[Observation]) -> String {
    steps
        .iter()
        .map(|o| {
            if o.skipped {
                return "skipped".to_string();
            }
            let status = o.status.map_or("none".to_string(), |s| s.to_string());
            let conn = match o.conn {
                Conn::Open => "open",
                Conn::Closed => "closed",
                Conn::TimedOut => "timeout",
            };
            let multi = if o.responses > 1 {
                format!(" x{}", o.responses)
            } else {
                String::new()
            };
            format!("{status} {conn}{multi}")
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

pub fn markdown(cases: &[Case], cols: &[Column], devs: &BTreeMap<String, Deviation>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} scored request cases of Http11Probe ({} categories).\n",
        cases.len(),
        CATEGORIES.len()
    );
    let _ = writeln!(s, "| target | pass | warn | fail | accepted deviation |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for col in cols {
        let n = counts(col, cases, devs);
        let get = |k: &str| n.get(k).copied().unwrap_or(0);
        let dev = if col.name == "authgate" {
            get("dev").to_string()
        } else {
            "–".to_string()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            col.name,
            get("pass"),
            get("warn"),
            get("fail"),
            dev
        );
    }
    let _ = writeln!(s, "\nPasses per category:\n");
    let mut header = "| category | cases |".to_string();
    let mut rule = "|---|---:|".to_string();
    for col in cols {
        let _ = write!(header, " {} |", col.name);
        rule.push_str("---:|");
    }
    let _ = writeln!(s, "{header}\n{rule}");
    for cat in CATEGORIES {
        let idx: Vec<usize> = (0..cases.len())
            .filter(|&i| cases[i].category == *cat)
            .collect();
        let mut row = format!("| {cat} | {} |", idx.len());
        for col in cols {
            let pass = idx
                .iter()
                .filter(|&&i| col.results[i].0 == Verdict::Pass)
                .count();
            let _ = write!(row, " {pass} |");
        }
        let _ = writeln!(s, "{row}");
    }
    let _ = writeln!(s, "\nCases where the targets differ:\n");
    let mut header = "| case | level |".to_string();
    let mut rule = "|---|---|".to_string();
    for col in cols {
        let _ = write!(header, " {} |", col.name);
        rule.push_str("---|");
    }
    let _ = writeln!(s, "{header}\n{rule}");
    for (i, c) in cases.iter().enumerate() {
        let cells: Vec<&str> = cols.iter().map(|col| cell(col, c, i, devs)).collect();
        if cells.iter().all(|x| *x == cells[0]) {
            continue;
        }
        let _ = writeln!(s, "| {} | {} | {} |", c.id, c.level, cells.join(" | "));
    }
    if !devs.is_empty() {
        let _ = writeln!(s, "\nauthgate's listed verdicts (`deviations.toml`):\n");
        for d in devs.values() {
            let reason = d.reason.split_whitespace().collect::<Vec<_>>().join(" ");
            let _ = writeln!(s, "- **{}** ({}): {reason}", d.id, d.verdict);
        }
    }
    if let Some(ag) = cols.iter().find(|c| c.name == "authgate") {
        let _ = writeln!(s, "\nauthgate's cases that do not pass:\n");
        let _ = writeln!(s, "| case | level | clause | expected | saw | verdict |");
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for (i, c) in cases.iter().enumerate() {
            let (v, obs) = &ag.results[i];
            if *v == Verdict::Pass {
                continue;
            }
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                c.id,
                c.level,
                c.rfc,
                c.expected.replace('|', "\\|"),
                seen(obs),
                cell(ag, c, i, devs)
            );
        }
    }
    s
}
