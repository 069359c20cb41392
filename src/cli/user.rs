//! `authgate user add|set|set-password|disable|enable|revoke-tokens|list|show|links|unlink`.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{Cli, clearable, format_time, read_secret};
use authgate::store::{NewUser, Profile, StoreError, User, UserPatch, now};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password comes from stdin (--password-stdin) or a prompt.
    Add(AddArgs),
    /// Change a user's names, group, roles or profile.
    Set(SetArgs),
    /// Set a new password (from stdin or a prompt); the user's tokens stop working.
    SetPassword {
        /// Login name (account, phone or e-mail) or numeric id.
        user: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Refuse the user's logins and every token issued until now.
    Disable {
        /// Login name (account, phone or e-mail) or numeric id.
        user: String,
    },
    /// Allow logins again (tokens revoked by `disable` stay revoked).
    Enable {
        /// Login name (account, phone or e-mail) or numeric id.
        user: String,
    },
    /// Log the user out everywhere: every token issued until now is refused.
    RevokeTokens {
        /// Login name (account, phone or e-mail) or numeric id.
        user: String,
    },
    /// List users by id.
    List {
        /// Start after this id.
        #[arg(long)]
        after: Option<i64>,
        /// At most this many users.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one user.
    Show {
        /// Login name (account, phone or e-mail) or numeric id.
        user: String,
    },
    /// The identity-provider identities linked to a user (`[[login.providers]]`).
    Links {
        /// Login name (account, phone or e-mail) or numeric id.
        user: String,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user's links through one provider: that identity no longer signs in as the
    /// user (sessions and tokens already issued stay until `revoke-tokens` or their end).
    Unlink {
        /// Login name (account, phone or e-mail) or numeric id.
        user: String,
        /// The provider's `name` in `[[login.providers]]`.
        #[arg(long)]
        provider: String,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The account (user name); a login name like the phone and e-mail.
    account: String,
    /// A fixed numeric id (default: the next free one).
    #[arg(long)]
    id: Option<i64>,
    /// A phone number, also a login name (normalised to digits).
    #[arg(long)]
    phone: Option<String>,
    /// An e-mail address, also a login name (lower-cased).
    #[arg(long)]
    email: Option<String>,
    /// The group the user belongs to (injected as group_id).
    #[arg(long, default_value_t = 0)]
    group_id: i64,
    /// Give the user the `admin` role.
    #[arg(long)]
    admin: bool,
    /// More roles (repeatable).
    #[arg(long = "role")]
    roles: Vec<String>,
    /// The name shown by the dialects (default: the account).
    #[arg(long)]
    display_name: Option<String>,
    /// Read the password from the first line of stdin.
    #[arg(long)]
    password_stdin: bool,
}

/// Flags that take a text value clear the field when given an empty string (`--phone ""`).
#[derive(Debug, Args)]
pub struct SetArgs {
    /// Login name (account, phone or e-mail) or numeric id.
    user: String,
    /// A new account (user name).
    #[arg(long)]
    account: Option<String>,
    /// A new phone number ("" removes it).
    #[arg(long)]
    phone: Option<String>,
    /// A new e-mail address ("" removes it).
    #[arg(long)]
    email: Option<String>,
    /// Move the user to this group (tokens already issued follow within seconds).
    #[arg(long)]
    group_id: Option<i64>,
    /// Add (`--admin`) or remove (`--admin=false`) the admin role.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    admin: Option<bool>,
    /// Add a role (repeatable).
    #[arg(long)]
    add_role: Vec<String>,
    /// Remove a role (repeatable).
    #[arg(long)]
    remove_role: Vec<String>,
    /// The name shown by the dialects ("" resets it).
    #[arg(long)]
    display_name: Option<String>,
    /// Profile image URL, small (16×16).
    #[arg(long)]
    image_small: Option<String>,
    /// Profile image URL, medium (50×50).
    #[arg(long)]
    image_medium: Option<String>,
    /// Profile image URL, large (170×170).
    #[arg(long)]
    image_large: Option<String>,
    /// The premium flag the mobile dialect reports.
    #[arg(long)]
    premium: Option<bool>,
    /// Content-restriction level (0 = none).
    #[arg(long)]
    content_restriction: Option<i64>,
    /// Whether the e-mail address is verified (mobile dialect).
    #[arg(long)]
    mail_verified: Option<bool>,
    /// Whether the user must accept the policy again (mobile dialect).
    #[arg(long)]
    policy_agreement_needed: Option<bool>,
}

pub(super) async fn run(cli: &Cli, command: UserCommand) -> anyhow::Result<()> {
    let store = &cli.store;
    match command {
        UserCommand::Add(args) => add(cli, args).await,
        UserCommand::Set(args) => set(cli, args).await,
        UserCommand::SetPassword {
            user,
            password_stdin,
        } => {
            let user = find(cli, &user).await?;
            let password = read_secret("password", password_stdin)?;
            store.set_password(user.id, &password, now()).await?;
            cli.audit("user.set-password", subject(&user), json!({}))
                .await?;
            println!(
                "password of user {} ({}) changed; earlier tokens are refused",
                user.id, user.account
            );
            Ok(())
        }
        UserCommand::Disable { user } => toggle(cli, &user, true).await,
        UserCommand::Enable { user } => toggle(cli, &user, false).await,
        UserCommand::RevokeTokens { user } => {
            let user = find(cli, &user).await?;
            store.revoke_user_tokens(user.id, now()).await?;
            cli.audit("user.revoke-tokens", subject(&user), json!({}))
                .await?;
            println!(
                "every token of user {} ({}) issued until now is refused",
                user.id, user.account
            );
            Ok(())
        }
        UserCommand::List { after, limit } => {
            let users = store.users(after, limit).await?;
            println!(
                "{:>12}  {:<24} {:<16} {:<28} {:>6}  {:<12} state",
                "id", "account", "phone", "email", "group", "roles"
            );
            for u in users {
                println!(
                    "{:>12}  {:<24} {:<16} {:<28} {:>6}  {:<12} {}",
                    u.id,
                    u.account,
                    u.phone.as_deref().unwrap_or("-"),
                    u.email.as_deref().unwrap_or("-"),
                    u.group_id,
                    if u.roles.is_empty() {
                        "-".to_owned()
                    } else {
                        u.roles.join(",")
                    },
                    if u.disabled { "disabled" } else { "enabled" },
                );
            }
            Ok(())
        }
        UserCommand::Show { user } => {
            print!("{}", describe(&find(cli, &user).await?));
            Ok(())
        }
        UserCommand::Links { user, json } => links(cli, &user, json).await,
        UserCommand::Unlink { user, provider } => {
            let user = find(cli, &user).await?;
            let removed = store.unlink_user(user.id, &provider).await?;
            if removed == 0 {
                anyhow::bail!(
                    "user {} ({}) has no link through provider `{provider}`",
                    user.id,
                    user.account
                );
            }
            cli.audit(
                "provider.unlink",
                subject(&user),
                json!({"provider": provider, "links": removed}),
            )
            .await?;
            println!(
                "user {} ({}): {removed} link(s) through `{provider}` removed",
                user.id, user.account
            );
            Ok(())
        }
    }
}

async fn links(cli: &Cli, user: &str, as_json: bool) -> anyhow::Result<()> {
    let user = find(cli, user).await?;
    let links = cli.store.user_links(user.id).await?;
    if as_json {
        for link in &links {
            let line = json!({
                "user_id": link.user_id,
                "provider": link.provider,
                "issuer": link.issuer,
                "subject": link.subject,
                "linked_at": link.created_at,
                "last_sign_in": link.last_used_at,
            });
            println!("{line}");
        }
        return Ok(());
    }
    if links.is_empty() {
        println!("user {} ({}) has no provider links", user.id, user.account);
        return Ok(());
    }
    println!(
        "{:<16} {:<40} {:<28} {:<20} last sign-in",
        "provider", "issuer", "subject", "linked"
    );
    for link in links {
        println!(
            "{:<16} {:<40} {:<28} {:<20} {}",
            link.provider,
            link.issuer,
            link.subject,
            format_time(link.created_at),
            format_time(link.last_used_at),
        );
    }
    Ok(())
}

async fn add(cli: &Cli, args: AddArgs) -> anyhow::Result<()> {
    let password = read_secret("password", args.password_stdin)?;
    let mut roles = args.roles;
    if args.admin {
        roles.push("admin".to_owned());
    }
    let new = NewUser {
        id: args.id,
        account: args.account,
        phone: args.phone,
        email: args.email,
        group_id: args.group_id,
        roles,
        profile: Profile {
            display_name: args.display_name,
            ..Profile::default()
        },
    };
    let user = cli.store.add_user(new, Some(&password), now()).await?;
    let details = json!({"account": user.account, "group_id": user.group_id, "roles": user.roles});
    cli.audit("user.add", subject(&user), details).await?;
    println!("user {} added (account {})", user.id, user.account);
    Ok(())
}

async fn set(cli: &Cli, args: SetArgs) -> anyhow::Result<()> {
    let user = find(cli, &args.user).await?;
    let mut roles = user.roles.clone();
    match args.admin {
        Some(true) => roles.push("admin".to_owned()),
        Some(false) => roles.retain(|r| r != "admin"),
        None => {}
    }
    roles.extend(args.add_role.iter().cloned());
    roles.retain(|r| !args.remove_role.iter().any(|x| x.eq_ignore_ascii_case(r)));
    let patch = UserPatch {
        account: args.account,
        phone: clearable(args.phone),
        email: clearable(args.email),
        group_id: args.group_id,
        roles: (roles != user.roles).then_some(roles),
        display_name: clearable(args.display_name),
        image_small: clearable(args.image_small),
        image_medium: clearable(args.image_medium),
        image_large: clearable(args.image_large),
        premium: args.premium,
        content_restriction: args.content_restriction,
        mail_verified: args.mail_verified,
        policy_agreement_needed: args.policy_agreement_needed,
    };
    let updated = cli.store.update_user(user.id, patch, now()).await?;
    cli.audit("user.set", subject(&updated), changes(&user, &updated))
        .await?;
    print!("{}", describe(&updated));
    Ok(())
}

async fn toggle(cli: &Cli, user: &str, disabled: bool) -> anyhow::Result<()> {
    let user = find(cli, user).await?;
    let user = cli.store.set_disabled(user.id, disabled, now()).await?;
    let action = if disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    cli.audit(action, subject(&user), json!({})).await?;
    let state = if disabled {
        "disabled; its tokens are refused"
    } else {
        "enabled"
    };
    println!("user {} ({}) {state}", user.id, user.account);
    Ok(())
}

/// A login name, or a numeric id if no login name matches.
pub(crate) async fn find(cli: &Cli, text: &str) -> anyhow::Result<User> {
    match cli.store.user_by_login(text).await {
        Ok(user) => Ok(user),
        Err(StoreError::NotFound { .. }) => match text.trim().parse::<i64>() {
            Ok(id) => cli
                .store
                .user(id)
                .await
                .with_context(|| format!("no user `{text}`")),
            Err(_) => anyhow::bail!("no user `{text}`"),
        },
        Err(e) => Err(e.into()),
    }
}

fn subject(user: &User) -> String {
    format!("user:{}", user.id)
}

/// The fields that changed, old and new (names and profile only; there are no secrets here).
fn changes(before: &User, after: &User) -> serde_json::Value {
    let (b, a) = (describe(before), describe(after));
    let changed: Vec<_> = a.lines().filter(|l| !b.lines().any(|x| x == *l)).collect();
    json!({ "changed": changed })
}

fn describe(u: &User) -> String {
    let p = &u.profile;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    format!(
        "id: {}\naccount: {}\nphone: {}\nemail: {}\ngroup_id: {}\nroles: {}\nstate: {}\n\
         password: {}\ndisplay_name: {}\nimage_small: {}\nimage_medium: {}\nimage_large: {}\n\
         premium: {}\ncontent_restriction: {}\nmail_verified: {}\npolicy_agreement_needed: {}\n\
         tokens_not_before: {}\ncreated: {}\nupdated: {}\n",
        u.id,
        u.account,
        opt(&u.phone),
        opt(&u.email),
        u.group_id,
        if u.roles.is_empty() {
            "-".to_owned()
        } else {
            u.roles.join(",")
        },
        if u.disabled { "disabled" } else { "enabled" },
        if u.has_password { "set" } else { "none" },
        opt(&p.display_name),
        opt(&p.image_small),
        opt(&p.image_medium),
        opt(&p.image_large),
        p.premium,
        p.content_restriction,
        p.mail_verified,
        p.policy_agreement_needed,
        u.not_before.map_or_else(|| "-".to_owned(), format_time),
        format_time(u.created_at),
        format_time(u.updated_at),
    )
}
