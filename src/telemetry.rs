//! Log output: pretty for people, JSON for collectors. `RUST_LOG` overrides `log.level`.
//! Access-log events use the target `authgate::access`.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the process-wide tracing subscriber; call once, before anything logs. The filter is
/// `RUST_LOG` when set, else `log.level`.
pub fn init(config: &LogConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(use_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_writer(std::io::stderr);
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = match config.format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to anything (no-color.org):
/// escape codes in a log file or a collector are noise.
fn use_colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// A duration in milliseconds with three decimals (microsecond resolution), for log fields:
/// `0.192`, never `0.19226700000000002`.
pub fn millis(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(!use_colour(false, None));
        assert!(!use_colour(true, Some("1".into())));
        assert!(
            use_colour(true, Some("".into())),
            "an empty NO_COLOR does not count"
        );
    }

    #[test]
    fn milliseconds_are_rounded_to_microseconds() {
        let d = std::time::Duration::from_nanos(192_267_000);
        assert_eq!(millis(d), 192.267);
        assert_eq!(millis(std::time::Duration::from_nanos(192_267)), 0.192);
        assert_eq!(
            format!("{}", millis(std::time::Duration::from_nanos(1_500))),
            "0.002"
        );
    }
}
