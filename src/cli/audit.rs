//! `authgate audit`: the audit log from the store, filtered, oldest first (the newest `--limit`
//! matches), as a table or as JSON lines (the audit file's format).

use anyhow::{Context as _, bail};
use clap::Args;

use authgate::store::{AuditFilter, Store, now};

#[derive(Args)]
pub struct AuditArgs {
    /// Only records since then: a duration back from now (`90m`, `24h`, `7d`), a date
    /// (`2026-11-24`, `2026-11-24T13:00:00Z`, UTC) or Unix seconds.
    #[arg(long)]
    since: Option<String>,
    /// Only records by this actor (`user:1`, `cli:alice`, `system`).
    #[arg(long)]
    actor: Option<String>,
    /// Only records about this subject (`user:1001`, `client:web`, `key:<kid>`).
    #[arg(long)]
    subject: Option<String>,
    /// Only this action (`token.exchange`) or family of actions (`token`, `user`, `keys`).
    #[arg(long)]
    kind: Option<String>,
    /// At most this many records (the newest).
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(store: &Store, args: AuditArgs) -> anyhow::Result<()> {
    let filter = AuditFilter {
        since: args.since.as_deref().map(|s| since(s, now())).transpose()?,
        actor: args.actor,
        subject: args.subject,
        kind: args.kind,
        limit: args.limit,
    };
    let records = store
        .audit_search(&filter)
        .await
        .context("cannot read the audit log")?;
    for record in &records {
        if args.json {
            println!("{}", record.to_json());
            continue;
        }
        let e = &record.event;
        let mut line = format!(
            "{}  {:<20} actor={} subject={}",
            super::format_time(record.at),
            e.action,
            e.actor.as_deref().unwrap_or("-"),
            e.subject.as_deref().unwrap_or("-"),
        );
        for (name, value) in [
            ("client", &e.client_id),
            ("from", &e.source_addr),
            ("request", &e.request_id),
        ] {
            if let Some(value) = value {
                line.push_str(&format!(" {name}={value}"));
            }
        }
        if e.details.as_object().is_none_or(|d| !d.is_empty()) {
            line.push_str(&format!(" {}", e.details));
        }
        println!("{line}");
    }
    if !args.json && records.is_empty() {
        eprintln!("no audit records match");
    }
    Ok(())
}

/// `--since` as Unix seconds.
fn since(text: &str, now: i64) -> anyhow::Result<i64> {
    let text = text.trim();
    if let Ok(unix) = text.parse::<i64>() {
        return Ok(unix);
    }
    if let Some(date) = parse_utc(text) {
        return Ok(date);
    }
    match authgate::config::parse_duration(text) {
        Ok(ago) => Ok(now - i64::try_from(ago.as_secs()).unwrap_or(i64::MAX / 2)),
        Err(_) => bail!(
            "--since `{text}` is not a duration (`24h`), a date (`2026-11-24`, `2026-11-24T13:00:00Z`) or Unix seconds"
        ),
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC) as Unix seconds.
fn parse_utc(text: &str) -> Option<i64> {
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, Some(time.strip_suffix('Z')?)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let seconds = match time {
        None => 0,
        Some(time) => {
            let mut parts = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
            let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
            if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..61).contains(&s) {
                return None;
            }
            h * 3600 + m * 60 + s
        }
    };
    Some(days_from_civil(year, month, day) * 86_400 + seconds)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm, the inverse
/// of the one in `format_time`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_durations_dates_and_unix_seconds() {
        let now = 1_800_000_000;
        assert_eq!(since("90m", now).unwrap(), now - 5400);
        assert_eq!(since("7d", now).unwrap(), now - 7 * 86_400);
        assert_eq!(since("1700000000", now).unwrap(), 1_700_000_000);
        assert_eq!(since("1970-01-01", now).unwrap(), 0);
        assert_eq!(since("2000-02-29", now).unwrap(), 951_782_400);
        assert_eq!(since("2027-01-15T08:00:00Z", now).unwrap(), 1_800_000_000);
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-11-24T25:00:00Z",
            "2026-11-24T10:00:00",
        ] {
            assert!(since(bad, now).is_err(), "{bad}");
        }
        // The two date conversions agree.
        for unix in [0, 951_782_400, 1_800_000_000, 4_102_444_800] {
            let text = super::super::format_time(unix).replace(' ', "T");
            assert_eq!(since(&text, now).unwrap(), unix, "{text}");
        }
    }
}
