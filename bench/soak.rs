//! The soak run's driver (issue 26; `bench/soak.sh` builds the binaries and calls it): two
//! authgate instances on one PostgreSQL database, a recording upstream, a steady mixed load,
//! and a chaos schedule — config reloads (one invalid), a key rotation, the upstream killed
//! and restarted, the database cut for a while through a TCP relay, one instance SIGKILLed
//! and restarted, and a rolling upgrade (an instance replaced by a build with one more, no-op,
//! migration while the other serves). Then the verdict and a Markdown report with a plot.
//!
//! Environment (all set by `bench/soak.sh`): SOAK_BIN, SOAK_BIN_UPGRADE (the binaries),
//! SOAK_DB (a PostgreSQL URL of an empty database), SOAK_WORK (a scratch directory),
//! SOAK_RESULTS (where soak.md and soak.svg go), DURATION (seconds), RATE (operations per
//! second), WINDOW (seconds per row), SOAK_COMMAND (the command line, for the report).
//! Exits 0 on a pass, 1 on a failed criterion, 2 when the stage could not be set up.

// A bench driver: a poisoned lock or a malformed literal request is a bug of the driver.
#![allow(clippy::unwrap_used)]

#[path = "soak/cluster.rs"]
mod cluster;
#[path = "soak/load.rs"]
mod load;
#[path = "soak/report.rs"]
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cluster::{Error, Instance, Relay, Upstream, cli, populate, usage};
use load::{Class, Load, Op, Rng};
use report::Window;

struct Settings {
    bin: PathBuf,
    upgrade: PathBuf,
    db: String,
    work: PathBuf,
    results: PathBuf,
    duration: Duration,
    rate: u32,
    window: Duration,
    command: String,
    /// A short run (CI): too short for a steady state, so the RSS slope is reported, not judged.
    smoke: bool,
}

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

fn settings() -> Result<Settings, Error> {
    let secs = |name: &str, default: u64| -> Result<u64, Error> {
        Ok(std::env::var(name)
            .ok()
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(default))
    };
    Ok(Settings {
        bin: env("SOAK_BIN")?.into(),
        upgrade: env("SOAK_BIN_UPGRADE")?.into(),
        db: env("SOAK_DB")?,
        work: env("SOAK_WORK")?.into(),
        results: env("SOAK_RESULTS")?.into(),
        duration: Duration::from_secs(secs("DURATION", 600)?),
        rate: u32::try_from(secs("RATE", 100)?)?,
        window: Duration::from_secs(secs("WINDOW", 10)?),
        command: std::env::var("SOAK_COMMAND").unwrap_or_else(|_| "bash bench/soak.sh".into()),
        smoke: std::env::var("SOAK_SMOKE").is_ok_and(|v| !v.is_empty()),
    })
}

/// `host:port` of a `postgres://user:pass@host:port/db?…` URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once('@').map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// What happened when, for the report and the plot.
#[derive(Default)]
struct Timeline(Vec<(Duration, String)>);

impl Timeline {
    fn note(&mut self, load: &Load, what: impl Into<String>) {
        let what = what.into();
        eprintln!(
            "soak: {:>6.1}s {what}",
            load.started.elapsed().as_secs_f64()
        );
        self.0.push((load.started.elapsed(), what));
    }
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("soak: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(run()) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(error) => {
            eprintln!("soak: could not run: {error}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, Error> {
    let s = settings()?;
    std::fs::create_dir_all(&s.work)?;
    std::fs::create_dir_all(&s.results)?;
    let mut relay = Relay::start(authority(&s.db)).await?;
    let store_url = s.db.replacen(authority(&s.db), &relay.addr.to_string(), 1);
    let mut upstream = Upstream::start(cluster::free_port()).await?;
    let mut a = Instance::new("a", &s.work, &store_url, upstream.port);
    let mut b = Instance::new("b", &s.work, &store_url, upstream.port);
    a.start(&s.bin).await?;
    b.start(&s.bin).await?;
    populate(&s.bin, &a.config).await?;

    let load = Arc::new(Load::new([a.http, b.http]));
    // The admin's token for exchanges (a long-lived one: it must outlast the run).
    let admin = cli(
        &s.bin,
        &a.config,
        &["token", "issue", "--user", "boss", "--ttl", "4h"],
        None,
    )
    .await?;
    load.pools.lock().unwrap().admin = Some(admin.trim().to_owned());

    // The load: RATE operations per second, round robin over the instances, at most 64 at once.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let driver = {
        let load = Arc::clone(&load);
        let stop = Arc::clone(&stop);
        let rate = s.rate.max(1);
        tokio::spawn(async move {
            let limit = Arc::new(tokio::sync::Semaphore::new(64));
            let mut rng = Rng::new(0x0005_eed0_fa11 ^ u64::from(rate));
            let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
                    return;
                };
                let op = Op::pick(rng.next());
                let which = n % 2;
                n += 1;
                let load = Arc::clone(&load);
                tokio::spawn(async move {
                    load.run(op, which).await;
                    drop(permit);
                });
            }
            // Let what is in flight finish.
            let _ = limit.acquire_many(64).await;
        })
    };

    // The chaos schedule and the sampler run in this task, one window at a time.
    let d = s.duration.as_secs_f64();
    let at = |fraction: f64| Duration::from_secs_f64(d * fraction);
    let reload_every = if s.duration >= Duration::from_secs(300) {
        60.0
    } else {
        (d / 6.0).max(10.0)
    };
    let outage = Duration::from_secs(if s.duration >= Duration::from_secs(300) {
        20
    } else {
        8
    });
    // Everything but the reloads happens in the first half: the second half is the steady
    // state whose RSS slope is judged.
    let mut plan: Vec<(Duration, &str)> = vec![
        (at(0.08), "keys rotate"),
        (at(0.12), "SIGKILL b"),
        (at(0.20), "upgrade a"),
        (at(0.28), "upstream down"),
        (at(0.36), "database cut"),
    ];
    let mut k = 1.0;
    while k * reload_every < d * 0.95 {
        plan.push((
            Duration::from_secs_f64(k * reload_every),
            if k == 3.0 { "reload invalid" } else { "reload" },
        ));
        k += 1.0;
    }
    plan.sort_by_key(|(t, _)| *t);
    let mut plan = plan.into_iter().peekable();
    let mut timeline = Timeline::default();
    let mut windows: Vec<Window> = Vec::new();
    let mut next_window = s.window;
    let mut warm_fds: [Option<usize>; 2] = [None, None];
    while load.started.elapsed() < s.duration {
        let now = load.started.elapsed();
        if now >= next_window {
            let usage = [a.pid().and_then(usage), b.pid().and_then(usage)];
            let outcomes = load.outcomes.lock().unwrap().clone();
            windows.push(report::window(
                &outcomes,
                next_window - s.window,
                next_window,
                usage,
            ));
            if next_window >= s.duration / 2 && warm_fds[0].is_none() {
                warm_fds = [usage[0].map(|u| u.1), usage[1].map(|u| u.1)];
            }
            next_window += s.window;
        }
        if let Some((when, _)) = plan.peek()
            && now >= *when
            && let Some((_, what)) = plan.next()
        {
            // A reload that fell behind an outage is folded into the next one that is due.
            let next_due = plan
                .peek()
                .is_some_and(|(t, w)| now >= *t && *w == "reload");
            if what == "reload" && next_due {
                continue;
            }
            chaos(
                what,
                &s,
                &load,
                &mut timeline,
                (&mut a, &mut b),
                &mut upstream,
                &mut relay,
                &store_url,
                outage,
            )
            .await?;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(30), driver).await;
    timeline.note(&load, "load stopped");
    // Idle connections close (the load's pool: 5 s), then the last sample.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let final_usage = [a.pid().and_then(usage), b.pid().and_then(usage)];

    // Every refresh token received and neither used nor revoked redeems exactly once.
    let (refresh, revoked, uncertain) = {
        let pools = load.pools.lock().unwrap();
        (
            pools.refresh.clone(),
            pools.revoked.clone(),
            pools.uncertain,
        )
    };
    let (redeemed_once, redeem_failures) = redeem_all(&load, &refresh, &revoked).await;

    let log_panics = [&a, &b]
        .iter()
        .map(|i| std::fs::read_to_string(&i.log).unwrap_or_default())
        .map(|text| text.matches("panicked").count())
        .sum::<usize>();
    a.stop().await;
    b.stop().await;
    upstream.kill();

    let outcomes = load.outcomes.lock().unwrap().clone();
    let mut verdict = Verdict::of(
        &outcomes,
        &windows,
        s.duration,
        warm_fds,
        final_usage,
        redeem_failures.len(),
        log_panics,
    );
    verdict.judge_rss = !s.smoke;
    let markdown = verdict.markdown(
        &s,
        &outcomes,
        &windows,
        &timeline,
        (refresh.len(), redeemed_once, revoked.len(), uncertain),
        &redeem_failures,
    );
    std::fs::write(s.results.join("soak.md"), &markdown)?;
    std::fs::write(
        s.results.join("soak.svg"),
        report::svg(&windows, &timeline.0),
    )?;
    println!("{markdown}");
    Ok(verdict.pass())
}

/// One chaos event (and its end: outages are waited out here).
#[allow(clippy::too_many_arguments)]
async fn chaos(
    what: &str,
    s: &Settings,
    load: &Load,
    timeline: &mut Timeline,
    (a, b): (&mut Instance, &mut Instance),
    upstream: &mut Upstream,
    relay: &mut Relay,
    store_url: &str,
    outage: Duration,
) -> Result<(), Error> {
    match what {
        "reload" => {
            timeline.note(load, "reload (both)");
            a.reload();
            b.reload();
        }
        "reload invalid" => {
            timeline.note(
                load,
                "invalid config reloaded at a (kept serving the old one)",
            );
            a.write_config(
                store_url,
                upstream.port,
                "[[routes]]\nprefix = \"no-slash\"\n",
            );
            a.reload();
            tokio::time::sleep(Duration::from_secs(2)).await;
            a.write_config(store_url, upstream.port, "");
            a.reload();
        }
        "keys rotate" => {
            cli(
                &s.bin,
                &a.config,
                &["keys", "rotate", "--alg", "ES256"],
                None,
            )
            .await?;
            timeline.note(load, "keys rotate (ES256)");
        }
        "SIGKILL b" => {
            load.excuses.lock().unwrap().instance_down[1] = true;
            b.kill().await;
            timeline.note(load, "b SIGKILLed");
            tokio::time::sleep(Duration::from_secs(5)).await;
            b.start(&s.bin).await?;
            load.excuses.lock().unwrap().instance_down[1] = false;
            timeline.note(load, "b restarted");
        }
        "upgrade a" => {
            load.excuses.lock().unwrap().instance_down[0] = true;
            a.stop().await;
            timeline.note(load, "a stopped (SIGTERM) for the upgrade");
            a.start(&s.upgrade).await?;
            load.excuses.lock().unwrap().instance_down[0] = false;
            timeline.note(
                load,
                "a runs the upgrade build (schema 11; b serves on the old one)",
            );
        }
        "upstream down" => {
            load.excuses.lock().unwrap().upstream_down = true;
            upstream.kill();
            timeline.note(load, "upstream killed");
            tokio::time::sleep(outage / 2).await;
            upstream.restart().await?;
            load.excuses.lock().unwrap().upstream_down = false;
            timeline.note(load, "upstream restarted");
        }
        "database cut" => {
            load.excuses.lock().unwrap().store_down = true;
            relay.cut().await;
            timeline.note(load, format!("database cut for {}s", outage.as_secs()));
            tokio::time::sleep(outage).await;
            relay.restore().await?;
            timeline.note(load, "database back");
            // Recovery: pools reconnect, revocations reload.
            tokio::time::sleep(Duration::from_secs(3)).await;
            load.excuses.lock().unwrap().store_down = false;
        }
        _ => {}
    }
    Ok(())
}

/// Every refresh token in the pool redeems once (then never again); every revoked one never.
async fn redeem_all(load: &Load, refresh: &[String], revoked: &[String]) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut once = 0;
    let web = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("web:{}", cluster::WEB_SECRET),
    );
    let client = load::client();
    let post = |token: &str, which: usize| {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", token)
            .finish();
        hyper::Request::post(format!("http://{}/oauth2/token", load.instances[which]))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic {web}"))
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap()
    };
    let status = |request| {
        let client = client.clone();
        async move {
            client
                .request(request)
                .await
                .map(|r| r.status().as_u16())
                .ok()
        }
    };
    for (i, token) in refresh.iter().enumerate() {
        let first = status(post(token, i % 2)).await;
        let second = status(post(token, (i + 1) % 2)).await;
        if first == Some(200) && second == Some(400) {
            once += 1;
        } else {
            failures.push(format!(
                "unused refresh token: first {first:?}, again {second:?}"
            ));
        }
    }
    for (i, token) in revoked.iter().enumerate() {
        let answer = status(post(token, i % 2)).await;
        if answer != Some(400) {
            failures.push(format!("revoked refresh token answered {answer:?}"));
        }
    }
    (once, failures)
}

/// The pass criteria.
struct Verdict {
    violations: usize,
    server_errors: usize,
    rss_growth: [Option<(f64, f64)>; 2],
    fds: [(Option<usize>, Option<usize>); 2],
    redeem_failures: usize,
    panics: usize,
    /// Off for a smoke run.
    judge_rss: bool,
}

impl Verdict {
    #[allow(clippy::too_many_arguments)]
    fn of(
        outcomes: &[load::Outcome],
        windows: &[Window],
        duration: Duration,
        warm_fds: [Option<usize>; 2],
        final_usage: report::Usage,
        redeem_failures: usize,
        panics: usize,
    ) -> Verdict {
        let violations = outcomes
            .iter()
            .filter(|o| o.class == Class::Violation)
            .count();
        let server_errors = outcomes.iter().filter(|o| o.status == Some(500)).count();
        // RSS over the second half: the least-squares growth across it, against the median.
        let half = duration / 2;
        let rss_growth = [0, 1].map(|i| {
            let points: Vec<(f64, f64)> = windows
                .iter()
                .filter(|w| w.end >= half)
                .filter_map(|w| w.usage[i].map(|u| (w.end.as_secs_f64(), u.0 as f64 / 1024.0)))
                .collect();
            if points.len() < 3 {
                return None;
            }
            let mut values: Vec<f64> = points.iter().map(|p| p.1).collect();
            values.sort_by(f64::total_cmp);
            let median = values[values.len() / 2];
            let growth = report::slope(&points) * (points.last()?.0 - points.first()?.0);
            Some((growth, median))
        });
        let fds = [0, 1].map(|i| (warm_fds[i], final_usage[i].map(|u| u.1)));
        Verdict {
            violations,
            server_errors,
            rss_growth,
            fds,
            redeem_failures,
            panics,
            judge_rss: true,
        }
    }

    fn rss_flat(&self) -> bool {
        // Growth over the second half within 10% of the median or 10 MiB, whichever is more.
        self.rss_growth
            .iter()
            .all(|g| g.is_none_or(|(growth, median)| growth <= (median * 0.10).max(10.0)))
    }

    fn fds_back(&self) -> bool {
        self.fds.iter().all(|(warm, last)| match (warm, last) {
            (Some(warm), Some(last)) => *last <= warm + 16,
            _ => true,
        })
    }

    fn pass(&self) -> bool {
        self.violations == 0
            && self.server_errors == 0
            && (self.rss_flat() || !self.judge_rss)
            && self.fds_back()
            && self.redeem_failures == 0
            && self.panics == 0
    }

    #[allow(clippy::too_many_arguments)]
    fn markdown(
        &self,
        s: &Settings,
        outcomes: &[load::Outcome],
        windows: &[Window],
        timeline: &Timeline,
        (unused, redeemed, revoked, uncertain): (usize, usize, usize, usize),
        redeem_failures: &[String],
    ) -> String {
        use std::fmt::Write as _;
        let mark = |ok: bool| if ok { "pass" } else { "**FAIL**" };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Soak run: {}\n",
            if self.pass() { "PASS" } else { "FAIL" }
        );
        let _ = writeln!(
            out,
            "`{}` — {} s, {} operations/s over two instances on one PostgreSQL, windows of {} s. {} operations: {} as expected, {} excused by the chaos of their moment, {} violations.\n",
            s.command,
            s.duration.as_secs(),
            s.rate,
            s.window.as_secs(),
            outcomes.len(),
            outcomes.iter().filter(|o| o.class == Class::Ok).count(),
            outcomes
                .iter()
                .filter(|o| o.class == Class::Excused)
                .count(),
            self.violations,
        );
        let _ = writeln!(out, "![RSS and p99 over time](soak.svg)\n\n## Criteria\n");
        let _ = writeln!(out, "| criterion | measured | |\n|---|---|---|");
        let _ = writeln!(
            out,
            "| no 5xx outside its chaos window, no `invalid_grant` for a good token, no good token refused | {} violations | {} |",
            self.violations,
            mark(self.violations == 0)
        );
        let _ = writeln!(
            out,
            "| never a 500 | {} | {} |",
            self.server_errors,
            mark(self.server_errors == 0)
        );
        let rss = |i: usize| match self.rss_growth[i] {
            Some((growth, median)) => {
                format!("{growth:+.1} MiB over the second half (median {median:.1} MiB)")
            }
            None => "too few samples".into(),
        };
        let rss_mark = if self.judge_rss {
            mark(self.rss_flat())
        } else {
            "not judged (smoke run: no steady state in 2 minutes)"
        };
        let _ = writeln!(
            out,
            "| RSS flat over the second half (growth ≤ max(10% of median, 10 MiB)) | a: {}; b: {} | {rss_mark} |",
            rss(0),
            rss(1)
        );
        let fds = |i: usize| format!("{:?} → {:?}", self.fds[i].0, self.fds[i].1);
        let _ = writeln!(
            out,
            "| open fds back to the warm-up level (+16) after the load | a: {}; b: {} | {} |",
            fds(0),
            fds(1),
            mark(self.fds_back())
        );
        let _ = writeln!(
            out,
            "| every unused refresh token redeems exactly once; revoked ones never | {redeemed} of {unused} unused redeemed once, {revoked} revoked refused; {uncertain} set aside (no answer: the instance died under them) | {} |",
            mark(self.redeem_failures == 0)
        );
        let _ = writeln!(
            out,
            "| no panic in the logs | {} | {} |\n",
            self.panics,
            mark(self.panics == 0)
        );
        let _ = writeln!(out, "## Chaos\n\n| t (s) | event |\n|---:|---|");
        for (t, what) in &timeline.0 {
            let _ = writeln!(out, "| {:.1} | {what} |", t.as_secs_f64());
        }
        let mut by_op: Vec<(Op, usize, usize, usize)> = Vec::new();
        for o in outcomes {
            let row = match by_op.iter_mut().find(|r| r.0 == o.op) {
                Some(row) => row,
                None => {
                    by_op.push((o.op, 0, 0, 0));
                    by_op.last_mut().unwrap()
                }
            };
            match o.class {
                Class::Ok => row.1 += 1,
                Class::Excused => row.2 += 1,
                Class::Violation => row.3 += 1,
            }
        }
        let _ = writeln!(
            out,
            "\n## Operations\n\n| operation | ok | excused | violations |\n|---|---:|---:|---:|"
        );
        for (op, ok, excused, bad) in by_op {
            let _ = writeln!(out, "| {op:?} | {ok} | {excused} | {bad} |");
        }
        let bad: Vec<&load::Outcome> = outcomes
            .iter()
            .filter(|o| o.class == Class::Violation)
            .take(20)
            .collect();
        if !bad.is_empty() || !redeem_failures.is_empty() {
            let _ = writeln!(out, "\n## First violations\n");
            for o in bad {
                let _ = writeln!(
                    out,
                    "- {:.1}s instance {} {:?}: {}",
                    o.at.as_secs_f64(),
                    ["a", "b"][o.instance],
                    o.op,
                    o.detail
                );
            }
            for failure in redeem_failures.iter().take(20) {
                let _ = writeln!(out, "- end: {failure}");
            }
        }
        let _ = writeln!(out, "\n## Windows\n\n{}", report::table(windows));
        out
    }
}
