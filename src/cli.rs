//! The admin commands on the store: `authgate user …`, `authgate client …`, `authgate keys …`,
//! `authgate token …`, `authgate session …`, `authgate audit`.
//! Each opens the store the config names (creating and migrating it on first use), does one
//! thing, writes an audit record, and prints a short answer. Passwords and secrets are read from
//! stdin or a terminal prompt, never from argv, and never printed (except a generated client
//! secret, once, on stdout).

mod audit;
mod client;
mod explain;
mod keys;
mod session;
mod token;
mod user;

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::{Context as _, bail};

use authgate::config::Config;
use authgate::store::{AuditEvent, Store, now};

pub use audit::AuditArgs;
pub use client::ClientCommand;
pub use explain::ExplainArgs;
pub use keys::KeysCommand;
pub use session::SessionCommand;
pub use token::TokenCommand;
pub use user::UserCommand;

/// `authgate user …`
pub fn user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    with_store(config, |store| Box::pin(user::run(store, command)))
}

/// `authgate client …`
pub fn client(config: &Config, command: ClientCommand) -> anyhow::Result<()> {
    with_store(config, |store| Box::pin(client::run(store, command)))
}

/// `authgate keys …`
pub fn keys(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let delay = config.store.key_activation_delay;
    with_store(config, move |store| {
        Box::pin(keys::run(store, command, delay))
    })
}

/// `authgate session …`
pub fn session(config: &Config, command: SessionCommand) -> anyhow::Result<()> {
    with_store(config, |cli| Box::pin(session::run(cli, command)))
}

/// `authgate audit …`
pub fn audit(config: &Config, args: AuditArgs) -> anyhow::Result<()> {
    with_store(config, |cli| Box::pin(audit::run(&cli.store, args)))
}

/// `authgate explain …`
pub fn explain(config: &Config, args: ExplainArgs) -> anyhow::Result<()> {
    explain::run(config, args)
}

/// `authgate token …`
pub fn token(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    let issuer = config.auth.issuer.clone();
    with_store(config, move |store| {
        Box::pin(async move { token::run(store, &issuer, command).await })
    })
}

/// `authgate check`'s warning that needs the store (RFC 8707): an authenticated route without
/// `audiences` accepts tokens addressed to any API, which matters once clients ask for
/// resources. The store is read only if it exists (a fresh SQLite config creates nothing);
/// a store that cannot be read costs a note, never the check's verdict.
pub fn resource_warnings(config: &Config) -> Vec<String> {
    use authgate::config::{AuthPolicy, StoreBackend};
    if let StoreBackend::Sqlite { path } = &config.store.backend
        && !path.exists()
    {
        return Vec::new();
    }
    let open_routes: Vec<String> = config
        .routes
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.auth != AuthPolicy::Public && r.auth.reads_bearer() && r.audiences.is_empty()
        })
        .map(|(i, r)| format!("routes[{i}] `{}`", r.name))
        .collect();
    if open_routes.is_empty() {
        return Vec::new();
    }
    let counted = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                let open = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    Store::open(&config.store),
                );
                let store = open.await.context("timed out")??;
                let count = store.clients_with_resources().await;
                store.close().await;
                Ok(count?)
            })
        });
    match counted {
        Ok(0) => Vec::new(),
        Ok(clients) => open_routes
            .into_iter()
            .map(|route| {
                format!(
                    "{route} is authenticated but has no `audiences`, while {clients} client(s) ask for resources (RFC 8707): it accepts tokens meant for other APIs"
                )
            })
            .collect(),
        Err(error) => vec![format!(
            "the store could not be read to check routes against client resources: {error:#}"
        )],
    }
}

type CommandFuture<'a> = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

/// Runs one command on a freshly opened store and closes it (WAL checkpointed) afterwards.
fn with_store(
    config: &Config,
    command: impl for<'a> FnOnce(&'a Cli) -> CommandFuture<'a>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = Store::open(&config.store)
            .await
            .with_context(|| format!("store {}", config.store.backend))?;
        let cli = Cli {
            store,
            actor: actor(),
        };
        let result = command(&cli).await;
        cli.store.close().await;
        result
    })
}

/// What a command runs against: the store and who is acting.
pub(crate) struct Cli {
    pub store: Store,
    pub actor: String,
}

impl Cli {
    /// Appends an audit record for a CLI action.
    pub async fn audit(
        &self,
        action: &str,
        subject: String,
        details: serde_json::Value,
    ) -> anyhow::Result<()> {
        let event = AuditEvent::new(action)
            .actor(self.actor.clone())
            .subject(subject)
            .details(details);
        self.store
            .audit(&event, now())
            .await
            .context("cannot write the audit record")?;
        // Every audited action may change revocations or keys: running instances reload now.
        self.store.announce_change().await;
        Ok(())
    }
}

/// `cli:<login name>` of whoever runs the command: the sudo caller, else `$USER`/`$LOGNAME`,
/// else the OS user of the process (containers and CI often set no `$USER`).
fn actor() -> String {
    let name = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(os_user)
        .unwrap_or_else(|| "unknown".to_owned());
    format!("cli:{name}")
}

/// The process's real user: its uid (`/proc/self/status`) looked up in `/etc/passwd`, or
/// `uid:<n>` when it has no entry there.
fn os_user() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    });
    Some(name.unwrap_or_else(|| format!("uid:{uid}")))
}

/// A secret (password, client secret) from the first line of stdin (`from_stdin`) or, on a
/// terminal, from a prompt without echo, asked twice.
pub(crate) fn read_secret(what: &str, from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .with_context(|| format!("cannot read the {what} from stdin"))?;
        let secret = line.trim_end_matches(['\n', '\r']).to_owned();
        if secret.is_empty() {
            bail!("no {what} on stdin");
        }
        return Ok(secret);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no {what}: pass --{}-stdin and pipe it in, or run in a terminal",
            stdin_flag(what)
        );
    }
    let first = rpassword::prompt_password(format!("{what}: "))?;
    let second = rpassword::prompt_password(format!("{what} again: "))?;
    if first != second {
        bail!("the two {what}s differ");
    }
    Ok(first)
}

fn stdin_flag(what: &str) -> &'static str {
    if what.contains("secret") {
        "secret"
    } else {
        "password"
    }
}

/// Unix seconds as `2026-11-24 14:56:12Z` (UTC).
pub(crate) fn format_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `Option<String>` from a flag where an empty value means "clear".
pub(crate) fn clearable(value: Option<String>) -> Option<Option<String>> {
    value.map(|v| if v.trim().is_empty() { None } else { Some(v) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_civil_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_time(1_800_000_000), "2027-01-15 08:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00Z");
    }

    #[test]
    fn empty_flags_clear() {
        assert_eq!(clearable(None), None);
        assert_eq!(clearable(Some(String::new())), Some(None));
        assert_eq!(clearable(Some("x".into())), Some(Some("x".into())));
    }
}
