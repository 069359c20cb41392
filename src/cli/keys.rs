//! `authgate keys list|add|activate|retire|revoke|rotate`.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{Cli, format_time};
use authgate::config::parse_duration;
use authgate::store::{KeyAlg, SigningKey, now};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys, oldest first.
    List,
    /// Generate a key in state `pending` (published, not yet signing).
    Add(AlgArgs),
    /// pending → active; the algorithm's previous active key becomes retiring.
    Activate {
        /// A key id; generated ones are base64url and may start with `-`.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// active → retiring (verifies, no longer signs); pending/retiring → retired.
    Retire {
        /// A key id; generated ones are base64url and may start with `-`.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Emergency: tokens signed by this key stop verifying at once.
    Revoke {
        /// A key id; generated ones are base64url and may start with `-`.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Add a pending key that becomes active after a delay (`[store] key_activation_delay`).
    Rotate {
        #[command(flatten)]
        alg: AlgArgs,
        /// Override the delay ("0s" activates at once).
        #[arg(long)]
        delay: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct AlgArgs {
    /// ES256 (default), EdDSA or RS256.
    #[arg(long, default_value = "ES256")]
    alg: String,
    /// RS256 modulus size: 2048 (default), 3072 or 4096.
    #[arg(long)]
    bits: Option<u32>,
}

pub(super) async fn run(cli: &Cli, command: KeysCommand, delay: Duration) -> anyhow::Result<()> {
    let store = &cli.store;
    match command {
        KeysCommand::List => {
            println!(
                "{:<44} {:<6} {:>5} {:<9} {:<21} activate after",
                "kid", "alg", "bits", "state", "created"
            );
            for key in store.keys().await? {
                println!(
                    "{:<44} {:<6} {:>5} {:<9} {:<21} {}",
                    key.kid,
                    key.alg.as_str(),
                    key.bits.map_or_else(|| "-".to_owned(), |b| b.to_string()),
                    key.state.as_str(),
                    format_time(key.created_at),
                    key.activate_after
                        .map_or_else(|| "-".to_owned(), format_time),
                );
            }
            Ok(())
        }
        KeysCommand::Add(args) => {
            let key = store
                .add_key(KeyAlg::parse(&args.alg)?, args.bits, None, now())
                .await?;
            audit(cli, "keys.add", &key).await?;
            println!(
                "key {} ({}) added: pending; `authgate keys activate {}` to sign with it",
                key.kid,
                key.alg.as_str(),
                key.kid
            );
            Ok(())
        }
        KeysCommand::Activate { kid } => {
            let key = store.activate_key(&kid, now()).await?;
            audit(cli, "keys.activate", &key).await?;
            println!("key {} ({}) is active", key.kid, key.alg.as_str());
            Ok(())
        }
        KeysCommand::Retire { kid } => {
            let key = store.retire_key(&kid, now()).await?;
            audit(cli, "keys.retire", &key).await?;
            println!("key {} is {}", key.kid, key.state.as_str());
            Ok(())
        }
        KeysCommand::Revoke { kid } => {
            let key = store.revoke_key(&kid, now()).await?;
            audit(cli, "keys.revoke", &key).await?;
            println!(
                "key {} is revoked: tokens signed by it no longer verify",
                key.kid
            );
            Ok(())
        }
        KeysCommand::Rotate { alg, delay: given } => {
            let delay = match given {
                Some(text) => parse_duration(&text).map_err(|m| anyhow::anyhow!("--delay: {m}"))?,
                None => delay,
            };
            let at = now();
            let due = at.saturating_add(i64::try_from(delay.as_secs()).unwrap_or(i64::MAX));
            let key = store
                .add_key(KeyAlg::parse(&alg.alg)?, alg.bits, Some(due), at)
                .await?;
            store.activate_due_keys(at).await?;
            let key = store.key(&key.kid).await?;
            audit(cli, "keys.rotate", &key).await?;
            println!(
                "key {} ({}) is {}; it signs from {}",
                key.kid,
                key.alg.as_str(),
                key.state.as_str(),
                format_time(due)
            );
            Ok(())
        }
    }
}

async fn audit(cli: &Cli, action: &str, key: &SigningKey) -> anyhow::Result<()> {
    let details = json!({"alg": key.alg.as_str(), "bits": key.bits, "state": key.state.as_str(), "activate_after": key.activate_after});
    cli.audit(action, format!("key:{}", key.kid), details).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Keys {
        #[command(subcommand)]
        command: KeysCommand,
    }

    #[test]
    fn a_key_id_may_start_with_a_hyphen() {
        // One generated kid in 64 starts with `-` (base64url).
        for verb in ["activate", "retire", "revoke"] {
            let parsed = Keys::try_parse_from(["keys", verb, "-Oc26R6h1sXPRft"]);
            let kid = match parsed.map(|k| k.command) {
                Ok(KeysCommand::Activate { kid })
                | Ok(KeysCommand::Retire { kid })
                | Ok(KeysCommand::Revoke { kid }) => kid,
                other => panic!("{verb}: {other:?}"),
            };
            assert_eq!(kid, "-Oc26R6h1sXPRft");
        }
    }
}
