//! The soak's record: one row per window (outcomes by class, p50/p99 of the successful
//! operations, RSS and open file descriptors of each instance), the criteria, the Markdown
//! report and its plot (RSS and p99 over time, SVG).

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::{Class, Outcome};

/// One instance's usage at the end of a window (`None`: not running then).
pub type Usage = [Option<(u64, usize)>; 2];

/// One window's row.
#[derive(Debug, Clone)]
pub struct Window {
    pub end: Duration,
    pub ok: usize,
    pub excused: usize,
    pub violations: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub usage: Usage,
}

pub fn window(outcomes: &[Outcome], from: Duration, to: Duration, usage: Usage) -> Window {
    let inside: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.at >= from && o.at < to)
        .collect();
    let count = |class| inside.iter().filter(|o| o.class == class).count();
    let mut latencies: Vec<f64> = inside
        .iter()
        .filter(|o| o.class == Class::Ok)
        .map(|o| o.latency.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        if latencies.is_empty() {
            0.0
        } else {
            latencies[((latencies.len() - 1) as f64 * q).round() as usize]
        }
    };
    Window {
        end: to,
        ok: count(Class::Ok),
        excused: count(Class::Excused),
        violations: count(Class::Violation),
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
        usage,
    }
}

/// Least-squares slope of `points` (x seconds, y any unit), per second.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let cov: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if var == 0.0 { 0.0 } else { cov / var }
}

/// RSS of both instances (MiB, left axis) and p99 (ms, right axis) over time.
pub fn svg(windows: &[Window], chaos: &[(Duration, String)]) -> String {
    let (width, height, left, right, top, bottom) = (760.0, 300.0, 60.0, 60.0, 20.0, 40.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let t_max = windows.last().map_or(1.0, |w| w.end.as_secs_f64()).max(1.0);
    let rss_max = windows
        .iter()
        .flat_map(|w| w.usage.iter().flatten().map(|u| u.0 as f64 / 1024.0))
        .fold(1.0, f64::max)
        * 1.15;
    let p99_max = windows.iter().map(|w| w.p99_ms).fold(1.0, f64::max) * 1.15;
    let x = |t: f64| left + t / t_max * plot_w;
    let y = |v: f64, max: f64| top + plot_h - v / max * plot_h;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\
<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
<rect x=\"{left}\" y=\"{top}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#999\"/>"
    );
    for (at, what) in chaos {
        let cx = x(at.as_secs_f64());
        let what = short(what);
        let _ = write!(
            out,
            "<line x1=\"{cx:.1}\" y1=\"{top}\" x2=\"{cx:.1}\" y2=\"{}\" stroke=\"#ddd\"/>\
<text x=\"{cx:.1}\" y=\"{}\" fill=\"#888\" font-size=\"9\" transform=\"rotate(-90 {cx:.1},{})\">{what}</text>",
            top + plot_h,
            top + plot_h - 4.0,
            top + plot_h - 4.0
        );
    }
    let series = [
        ("#1f77b4", "RSS A (MiB)", 0usize),
        ("#2ca02c", "RSS B (MiB)", 1),
    ];
    for (color, _, i) in series {
        let points: Vec<String> = windows
            .iter()
            .filter_map(|w| w.usage[i].map(|u| (w.end, u.0 as f64 / 1024.0)))
            .map(|(t, v)| format!("{:.1},{:.1}", x(t.as_secs_f64()), y(v, rss_max)))
            .collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    let p99: Vec<String> = windows
        .iter()
        .map(|w| format!("{:.1},{:.1}", x(w.end.as_secs_f64()), y(w.p99_ms, p99_max)))
        .collect();
    let _ = write!(
        out,
        "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\" points=\"{}\"/>",
        p99.join(" ")
    );
    let _ = write!(
        out,
        "<text x=\"{left}\" y=\"{}\">0</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{t_max:.0} s</text>\
<text x=\"4\" y=\"{}\">{rss_max:.0} MiB</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{p99_max:.0} ms</text>\
<text x=\"{left}\" y=\"{}\" fill=\"#1f77b4\">RSS A</text><text x=\"{}\" y=\"{}\" fill=\"#2ca02c\">RSS B</text>\
<text x=\"{}\" y=\"{}\" fill=\"#d62728\">p99 (right axis)</text></svg>",
        height - bottom + 14.0,
        left + plot_w,
        height - bottom + 14.0,
        top + 10.0,
        width - 2.0,
        top + 10.0,
        height - 6.0,
        left + 60.0,
        height - 6.0,
        left + 120.0,
        height - 6.0,
    );
    out
}

/// A chaos event's label on the plot: its first words, at most 18 characters.
fn short(what: &str) -> String {
    let mut label = String::new();
    for word in what.split_whitespace() {
        if label.len() + word.len() + 1 > 18 {
            break;
        }
        if !label.is_empty() {
            label.push(' ');
        }
        label.push_str(word);
    }
    label
}

/// The per-window table (Markdown).
pub fn table(windows: &[Window]) -> String {
    let mut out = String::from(
        "| t (s) | ok | excused | violations | p50 (ms) | p99 (ms) | RSS A (MiB) | fds A | RSS B (MiB) | fds B |\n\
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for w in windows {
        let usage = |i: usize| match w.usage[i] {
            Some((rss, fds)) => (format!("{:.1}", rss as f64 / 1024.0), fds.to_string()),
            None => ("-".into(), "-".into()),
        };
        let (ra, fa) = usage(0);
        let (rb, fb) = usage(1);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} | {:.1} | {ra} | {fa} | {rb} | {fb} |",
            w.end.as_secs(),
            w.ok,
            w.excused,
            w.violations,
            w.p50_ms,
            w.p99_ms
        );
    }
    out
}
