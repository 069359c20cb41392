//! `authgate session list|revoke`: the browser sessions in the store (public ids only; the
//! cookie value is never stored, its digest never shown).

use clap::{ArgGroup, Subcommand};
use serde_json::json;

use super::user::find;
use super::{Cli, format_time};
use authgate::store::now;

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List live sessions, newest first.
    List {
        /// Only this user's sessions: login name (account, phone or e-mail) or numeric id.
        #[arg(long)]
        user: Option<String>,
    },
    /// End one session (by the id `session list` shows) or every session of a user.
    #[command(group(ArgGroup::new("which").required(true).args(["id", "user"])))]
    Revoke {
        /// The session's id; generated ones are base64url and may start with `-`.
        #[arg(allow_hyphen_values = true)]
        id: Option<String>,
        /// End every session of this user: login name (account, phone or e-mail) or numeric id.
        #[arg(long)]
        user: Option<String>,
    },
}

pub(super) async fn run(cli: &Cli, command: SessionCommand) -> anyhow::Result<()> {
    match command {
        SessionCommand::List { user } => {
            let user_id = match user {
                Some(user) => Some(find(cli, &user).await?.id),
                None => None,
            };
            let sessions = cli.store.login_sessions(user_id, now()).await?;
            println!(
                "{:<32} {:<24} {:<20} {:<20} expires",
                "id", "user", "created", "last seen"
            );
            for s in &sessions {
                println!(
                    "{:<32} {:<24} {:<20} {:<20} {}",
                    s.id,
                    format!("{} ({})", s.account, s.user_id),
                    format_time(s.created_at),
                    format_time(s.last_seen_at),
                    format_time(s.expires_at),
                );
            }
            Ok(())
        }
        SessionCommand::Revoke { id: Some(id), .. } => {
            // Whose it was, for the audit record (read before it is gone).
            let owner = cli
                .store
                .login_sessions(None, now())
                .await?
                .into_iter()
                .find(|s| s.id == id)
                .map(|s| s.user_id);
            if !cli.store.revoke_login_session(&id).await? {
                anyhow::bail!("no session `{id}`");
            }
            cli.audit(
                "session.revoke",
                format!("session:{id}"),
                json!({ "user_id": owner }),
            )
            .await?;
            println!("session {id} ended");
            Ok(())
        }
        SessionCommand::Revoke { user, .. } => {
            let Some(user) = user else {
                anyhow::bail!("name a session id or --user");
            };
            let user = find(cli, &user).await?;
            let ended = cli.store.revoke_user_sessions(user.id).await?;
            cli.audit(
                "session.revoke",
                format!("user:{}", user.id),
                json!({ "sessions": ended }),
            )
            .await?;
            println!(
                "{ended} session(s) of user {} ({}) ended",
                user.id, user.account
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Session {
        #[command(subcommand)]
        command: SessionCommand,
    }

    #[test]
    fn a_session_id_may_start_with_a_hyphen() {
        // One generated id in 64 starts with `-` (base64url).
        let parsed = Session::try_parse_from(["session", "revoke", "-EXVf_JGLI6C1BtfUxkZ3w"]);
        match parsed.map(|s| s.command) {
            Ok(SessionCommand::Revoke { id, user: None }) => {
                assert_eq!(id.as_deref(), Some("-EXVf_JGLI6C1BtfUxkZ3w"));
            }
            other => panic!("{other:?}"),
        }
        // `--user` is still an option, not an id.
        let parsed = Session::try_parse_from(["session", "revoke", "--user", "alice"]);
        assert!(
            matches!(
                parsed.map(|s| s.command),
                Ok(SessionCommand::Revoke {
                    id: None,
                    user: Some(_)
                })
            ),
            "--user"
        );
    }
}
