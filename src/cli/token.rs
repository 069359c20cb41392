//! `authgate token issue`: an access token for a user, straight from the store and the signing
//! keys — for service accounts and for trying a route with `curl`. Same trust as the rest of
//! the admin CLI, and audited.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use authgate::authn::keyset::KeySet;
use authgate::config::parse_duration;
use authgate::keyring::Keyring;
use authgate::store::KeyAlg;
use authgate::tokens::{self, AccessTokenSpec};
use clap::Subcommand;

use super::Cli;

/// The `client_id` claim of CLI-issued tokens.
const CLI_CLIENT: &str = "authgate-cli";

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Print a signed access token for a user (login name or numeric id).
    Issue {
        /// The user: login name (account, phone or e-mail) or numeric id.
        #[arg(long)]
        user: String,
        /// Scopes to grant (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime, e.g. 15m, 1h.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Signing algorithm: ES256, EdDSA or RS256.
        #[arg(long, default_value = "ES256")]
        alg: String,
    },
}

pub async fn run(cli: &Cli, issuer: &str, command: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Issue {
        user,
        scopes,
        ttl,
        alg,
    } = command;
    let ttl = parse_duration(&ttl)
        .map_err(anyhow::Error::msg)
        .context("--ttl")?;
    if ttl.is_zero() || ttl > Duration::from_secs(366 * 86_400) {
        bail!("--ttl must be between 1s and 366d");
    }
    let alg = KeyAlg::parse(&alg)?;
    let user = super::user::find(cli, &user).await?;
    if user.disabled {
        bail!("user `{}` is disabled", user.account);
    }
    let keyring = Keyring::new(cli.store.clone(), issuer, Arc::new(KeySet::default()));
    keyring.ensure_active(alg).await?;
    keyring.refresh().await?;
    let key = keyring.signing_key(alg)?;
    let spec = AccessTokenSpec {
        user_id: user.id.to_string(),
        group_id: Some(user.group_id),
        roles: user.roles.clone(),
        client_id: Some(CLI_CLIENT.to_owned()),
        scopes,
        ttl,
        ..AccessTokenSpec::default()
    };
    let issued = tokens::issue(issuer, &key, &spec, jsonwebtoken::get_current_timestamp())?;
    let details =
        serde_json::json!({"jti": issued.jti, "kid": key.kid, "expires_at": issued.expires_at});
    cli.audit("token.issue", format!("user:{}", user.id), details)
        .await?;
    println!("{}", issued.token);
    Ok(())
}
