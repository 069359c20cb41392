//! `authgate client add|set|list|show|rotate-secret|remove`.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{Cli, clearable, read_secret};
use authgate::config::parse_duration;
use authgate::store::{Client, ClientPatch, GrantType, KeyAlg, NewClient, now};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. A confidential client's secret is generated and printed once,
    /// unless --secret-stdin gives one.
    Add(AddArgs),
    /// Change a client (list flags replace the whole list).
    Set(SetArgs),
    /// List clients.
    List,
    /// Show one client, every setting but its secret.
    Show {
        /// The client id (`client_id`).
        id: String,
    },
    /// Replace a confidential client's secret (generated and printed once, or from stdin).
    RotateSecret {
        /// The client id (`client_id`).
        id: String,
        /// Read the new secret from the first line of stdin instead of generating one.
        #[arg(long)]
        secret_stdin: bool,
    },
    /// Remove a client with its refresh tokens and codes.
    Remove {
        /// The client id (`client_id`).
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The client id its requests send (`client_id`).
    id: String,
    /// Allowed grant (repeatable): authorization_code, implicit, password, client_credentials,
    /// refresh_token, token_exchange (RFC 8693: admins acting for users).
    #[arg(long = "grant", required = true)]
    grants: Vec<String>,
    /// Redirect URI, matched exactly (repeatable).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// OpenID Connect post-logout redirect URI, matched exactly (repeatable).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Algorithm of its ID tokens (default: RS256).
    // The store refuses other algorithms too; listing the choices puts them in `--help`.
    #[arg(long, value_parser = ["RS256", "ES256"], ignore_case = true)]
    id_token_alg: Option<String>,
    /// RFC 8707 resource its tokens may be issued for: an absolute URI without a fragment
    /// (repeatable).
    #[arg(long = "resource")]
    resources: Vec<String>,
    /// The resource a request naming none gets (one of --resource).
    #[arg(long)]
    default_resource: Option<String>,
    /// Allowed scope (repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// A public client (no secret: apps, SPAs).
    #[arg(long)]
    public: bool,
    /// The alias the `app` dialect sends in its `app_id` header.
    #[arg(long)]
    app_id: Option<String>,
    /// A name for people (`client list`, the login page).
    #[arg(long)]
    name: Option<String>,
    /// Access-token lifetime for this client (e.g. "1h"; default: the dialect's).
    #[arg(long)]
    access_ttl: Option<String>,
    /// Refresh-token lifetime for this client (e.g. "30d").
    #[arg(long)]
    refresh_ttl: Option<String>,
    /// Read the secret from the first line of stdin instead of generating one.
    #[arg(long)]
    secret_stdin: bool,
}

/// Text flags clear the field when given an empty string (`--app-id ""`, `--access-ttl ""`).
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The client id (`client_id`).
    id: String,
    /// Allowed grant (repeatable; replaces the list).
    #[arg(long = "grant")]
    grants: Vec<String>,
    /// Redirect URI, matched exactly (repeatable; replaces the list).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Remove every redirect URI.
    #[arg(long, conflicts_with = "redirect_uris")]
    no_redirect_uris: bool,
    /// OpenID Connect post-logout redirect URI, matched exactly (repeatable; replaces the
    /// list).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Remove every post-logout redirect URI.
    #[arg(long, conflicts_with = "post_logout_redirect_uris")]
    no_post_logout_redirect_uris: bool,
    /// Algorithm of its ID tokens ("default": RS256).
    #[arg(long, value_parser = ["RS256", "ES256", "default"], ignore_case = true)]
    id_token_alg: Option<String>,
    /// RFC 8707 resource its tokens may be issued for: an absolute URI without a fragment
    /// (repeatable; replaces the list, which must keep the default resource).
    #[arg(long = "resource")]
    resources: Vec<String>,
    /// Remove every resource (with --default-resource none if there is a default).
    #[arg(long, conflicts_with = "resources")]
    no_resources: bool,
    /// The resource a request naming none gets, one of the resources ("none" removes it).
    #[arg(long)]
    default_resource: Option<String>,
    /// Allowed scope (repeatable; replaces the list).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Remove every scope.
    #[arg(long, conflicts_with = "scopes")]
    no_scopes: bool,
    /// The alias the `app` dialect sends in its `app_id` header ("" removes it).
    #[arg(long)]
    app_id: Option<String>,
    /// A name for people ("" removes it).
    #[arg(long)]
    name: Option<String>,
    /// Access-token lifetime for this client (e.g. "1h"; "" for the dialect's).
    #[arg(long)]
    access_ttl: Option<String>,
    /// Refresh-token lifetime for this client (e.g. "30d"; "" for the default).
    #[arg(long)]
    refresh_ttl: Option<String>,
}

pub(super) async fn run(cli: &Cli, command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Add(args) => add(cli, args).await,
        ClientCommand::Set(args) => set(cli, args).await,
        ClientCommand::List => {
            println!(
                "{:<32} {:<13} {:<20} {:<50} {:<15} name",
                "id", "type", "app_id", "grants", "id_token_alg"
            );
            for c in cli.store.clients().await? {
                println!(
                    "{:<32} {:<13} {:<20} {:<50} {:<15} {}",
                    c.id,
                    kind(&c),
                    c.app_id.as_deref().unwrap_or("-"),
                    grants(&c),
                    id_token_alg(&c),
                    c.display_name.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        ClientCommand::Show { id } => {
            print!("{}", describe(&cli.store.client(&id).await?));
            Ok(())
        }
        ClientCommand::RotateSecret { id, secret_stdin } => {
            let given = secret_stdin
                .then(|| read_secret("client secret", true))
                .transpose()?;
            let secret = cli
                .store
                .rotate_client_secret(&id, given.as_deref(), now())
                .await?;
            cli.audit("client.rotate-secret", format!("client:{id}"), json!({}))
                .await?;
            println!("client {id}: secret replaced");
            if given.is_none() {
                print_secret(&secret);
            }
            Ok(())
        }
        ClientCommand::Remove { id } => {
            cli.store.remove_client(&id).await?;
            cli.audit("client.remove", format!("client:{id}"), json!({}))
                .await?;
            println!("client {id} removed, with its refresh tokens and codes");
            Ok(())
        }
    }
}

async fn add(cli: &Cli, args: AddArgs) -> anyhow::Result<()> {
    let given = (args.secret_stdin)
        .then(|| read_secret("client secret", true))
        .transpose()?;
    let new = NewClient {
        id: args.id,
        app_id: args.app_id,
        display_name: args.name,
        public: args.public,
        grants: parse_grants(&args.grants)?,
        redirect_uris: args.redirect_uris,
        scopes: args.scopes,
        access_ttl: ttl("access-ttl", args.access_ttl)?.flatten(),
        refresh_ttl: ttl("refresh-ttl", args.refresh_ttl)?.flatten(),
        post_logout_redirect_uris: args.post_logout_redirect_uris,
        id_token_alg: args
            .id_token_alg
            .as_deref()
            .map(KeyAlg::parse)
            .transpose()?,
        resources: args.resources,
        default_resource: args.default_resource,
    };
    let (client, secret) = cli.store.add_client(new, given.as_deref(), now()).await?;
    let details = json!({
        "public": client.public,
        "grants": grants(&client),
        "app_id": client.app_id,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "id_token_alg": client.id_token_alg.map(KeyAlg::as_str),
        "resources": client.resources,
        "default_resource": client.default_resource,
    });
    cli.audit("client.add", format!("client:{}", client.id), details)
        .await?;
    println!("client {} added ({})", client.id, kind(&client));
    if let (Some(secret), None) = (secret, given) {
        print_secret(&secret);
    }
    Ok(())
}

async fn set(cli: &Cli, args: SetArgs) -> anyhow::Result<()> {
    let list = |v: Vec<String>, clear: bool| match (v.is_empty(), clear) {
        (_, true) => Some(Vec::new()),
        (true, false) => None,
        (false, false) => Some(v),
    };
    let patch = ClientPatch {
        grants: match args.grants.is_empty() {
            true => None,
            false => Some(parse_grants(&args.grants)?),
        },
        redirect_uris: list(args.redirect_uris, args.no_redirect_uris),
        scopes: list(args.scopes, args.no_scopes),
        app_id: clearable(args.app_id),
        display_name: clearable(args.name),
        access_ttl: ttl("access-ttl", args.access_ttl)?,
        refresh_ttl: ttl("refresh-ttl", args.refresh_ttl)?,
        post_logout_redirect_uris: list(
            args.post_logout_redirect_uris,
            args.no_post_logout_redirect_uris,
        ),
        id_token_alg: match args.id_token_alg.as_deref() {
            None => None,
            Some(alg) if alg.eq_ignore_ascii_case("default") => Some(None),
            Some(alg) => Some(Some(KeyAlg::parse(alg)?)),
        },
        resources: list(args.resources, args.no_resources),
        default_resource: args.default_resource.map(|uri| {
            let none = uri.trim().is_empty() || uri.eq_ignore_ascii_case("none");
            (!none).then_some(uri)
        }),
    };
    let client = cli.store.update_client(&args.id, patch, now()).await?;
    let details = json!({
        "grants": grants(&client),
        "redirect_uris": client.redirect_uris,
        "scopes": client.scopes,
        "app_id": client.app_id,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "id_token_alg": client.id_token_alg.map(KeyAlg::as_str),
        "resources": client.resources,
        "default_resource": client.default_resource,
    });
    cli.audit("client.set", format!("client:{}", client.id), details)
        .await?;
    println!(
        "client {} ({}): grants {}; redirect URIs {}; post-logout redirect URIs {}; \
         resources {}; default resource {}; scopes {}; app id {}; ID token alg {}",
        client.id,
        kind(&client),
        grants(&client),
        join_or_dash(&client.redirect_uris),
        join_or_dash(&client.post_logout_redirect_uris),
        join_or_dash(&client.resources),
        client.default_resource.as_deref().unwrap_or("-"),
        join_or_dash(&client.scopes),
        client.app_id.as_deref().unwrap_or("-"),
        id_token_alg(&client),
    );
    Ok(())
}

/// `client show`: one `name: value` line per setting, `-` for none.
fn describe(c: &Client) -> String {
    let ttl =
        |t: Option<Duration>| t.map_or_else(|| "-".to_owned(), |d| format!("{}s", d.as_secs()));
    let lines = [
        ("id", c.id.clone()),
        ("type", kind(c).to_owned()),
        ("app_id", c.app_id.clone().unwrap_or_else(|| "-".to_owned())),
        (
            "name",
            c.display_name.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        ("grants", grants(c)),
        ("redirect_uris", join_or_dash(&c.redirect_uris)),
        (
            "post_logout_redirect_uris",
            join_or_dash(&c.post_logout_redirect_uris),
        ),
        ("resources", join_or_dash(&c.resources)),
        (
            "default_resource",
            c.default_resource.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        ("scopes", join_or_dash(&c.scopes)),
        ("access_ttl", ttl(c.access_ttl)),
        ("refresh_ttl", ttl(c.refresh_ttl)),
        ("id_token_alg", id_token_alg(c).to_owned()),
    ];
    lines
        .iter()
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect()
}

/// The client's ID token algorithm; the default is named as such.
fn id_token_alg(c: &Client) -> &'static str {
    c.id_token_alg.map_or("RS256 (default)", KeyAlg::as_str)
}

fn print_secret(secret: &str) {
    println!("client_secret: {secret}");
    eprintln!("(shown once: only its digest is stored)");
}

fn parse_grants(grants: &[String]) -> anyhow::Result<Vec<GrantType>> {
    Ok(grants
        .iter()
        .map(|g| GrantType::parse(g))
        .collect::<Result<_, _>>()?)
}

/// `None`: flag absent; `Some(None)`: "" (clear); `Some(Some(d))`: a duration.
fn ttl(flag: &str, value: Option<String>) -> anyhow::Result<Option<Option<Duration>>> {
    match clearable(value) {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(text)) => match parse_duration(&text) {
            Ok(d) => Ok(Some(Some(d))),
            Err(message) => anyhow::bail!("--{flag}: {message}"),
        },
    }
}

fn kind(c: &Client) -> &'static str {
    if c.public { "public" } else { "confidential" }
}

fn grants(c: &Client) -> String {
    c.grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn join_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(" ")
    }
}
