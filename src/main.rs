//! The `authgate` command line: parse arguments, load the config, run the command.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod cli;

use authgate::config::{self, Config};
use authgate::server::Gateway;

/// mimalloc: the proxy path allocates a few dozen small objects per request (header maps, URIs,
/// hyper's request/response state); glibc's malloc spends noticeably more CPU on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "authgate",
    version,
    about = "A reverse-proxy authentication gateway"
)]
struct Cli {
    /// The config file; relative paths inside it resolve against its directory.
    #[arg(
        long,
        global = true,
        default_value = "gateway.toml",
        env = "AUTHGATE_CONFIG"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve: HTTPS proxy, token endpoints and the admin listener.
    Serve,
    /// Validate the config and print the resolved route table.
    Check,
    /// Manage users (add, set, set-password, disable, enable, revoke-tokens, list, show).
    User {
        #[command(subcommand)]
        command: cli::UserCommand,
    },
    /// Manage OAuth clients / apps (add, set, list, rotate-secret, remove).
    Client {
        #[command(subcommand)]
        command: cli::ClientCommand,
    },
    /// Manage signing keys (list, add, activate, retire, revoke, rotate).
    Keys {
        #[command(subcommand)]
        command: cli::KeysCommand,
    },
    /// Browser sessions of the login page (list, revoke).
    Session {
        #[command(subcommand)]
        command: cli::SessionCommand,
    },
    /// Ask the running gateway to reload its config (SIGHUP to the pid in server.pid_file).
    Reload,
    /// What the gateway would do with a request: route, policy, token verdict, headers.
    Explain(cli::ExplainArgs),
    /// List audit records (logins acted for, revocations, key and admin changes).
    Audit(cli::AuditArgs),
    /// Issue an access token for a user (service accounts, trying routes with curl).
    Token {
        #[command(subcommand)]
        command: cli::TokenCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once: many errors already quote their
/// source in their own message (`cannot listen on …: Address already in use`).
fn one_line(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = match config::load(&cli.config) {
        Ok(config) => config,
        // The running gateway would refuse it just the same: it is not asked.
        Err(error) if matches!(cli.command, Command::Reload) => {
            anyhow::bail!("refused, the gateway keeps its current config: {error}")
        }
        Err(error) => return Err(error.into()),
    };
    match cli.command {
        Command::Check => {
            let mut served: Vec<authgate::config::Served> = authgate::dialects::served(&config)
                .into_iter()
                .map(|(path, endpoint)| {
                    let (dialect, methods, what) = endpoint.describe();
                    authgate::config::Served {
                        path,
                        methods,
                        dialect,
                        what,
                    }
                })
                .collect();
            served.push(authgate::config::Served {
                path: authgate::keyring::JWKS_PATH.to_owned(),
                methods: "GET, HEAD",
                dialect: "-",
                what: "our public signing keys (JWKS)",
            });
            served.sort_by(|a, b| a.path.cmp(&b.path));
            print!("{}", authgate::config::describe(&config, &served));
            for warning in cli::resource_warnings(&config) {
                println!("\nwarning: {warning}");
            }
            Ok(())
        }
        Command::Serve => serve(config),
        Command::User { command } => cli::user(&config, command),
        Command::Client { command } => cli::client(&config, command),
        Command::Keys { command } => cli::keys(&config, command),
        Command::Token { command } => cli::token(&config, command),
        Command::Session { command } => cli::session(&config, command),
        Command::Audit(args) => cli::audit(&config, args),
        Command::Explain(args) => cli::explain(&config, args),
        Command::Reload => reload(&config),
    }
}

/// Sends SIGHUP to the gateway whose pid `server.pid_file` holds and prints what it did with
/// the config (it writes the outcome beside the pid file); a refusal exits 1.
fn reload(config: &Config) -> anyhow::Result<()> {
    let Some(path) = &config.server.pid_file else {
        anyhow::bail!("server.pid_file is not set in {}", config.source.display());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} (is the gateway running?)", path.display()))?;
    let pid: u32 = text
        .trim()
        .parse()
        .with_context(|| format!("{} does not hold a process id", path.display()))?;
    let outcome_path = authgate::server::reload::outcome_path(path);
    let before = std::fs::read_to_string(&outcome_path).ok();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .context("cannot run kill")?;
    if !status.success() {
        anyhow::bail!("kill -HUP {pid} failed (is the gateway still running?)");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let now = std::fs::read_to_string(&outcome_path).ok();
        if let Some(line) = now.filter(|line| Some(line) != before.as_ref()) {
            let outcome = line.trim().split_once(' ').map_or("", |(_, o)| o);
            if outcome == "reloaded" {
                println!("reloaded {} (gateway {pid})", config.source.display());
                return Ok(());
            }
            anyhow::bail!("{outcome} (gateway {pid})");
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "sent SIGHUP to {pid}, but it did not report a reload within 15 s (see its log)"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    authgate::telemetry::init(&config.log);
    // One worker: a current-thread runtime. Same work, but no cross-thread scheduler (no
    // injection queue, work stealing or eventfd wake-ups between a parked worker and the
    // thread that drives the runtime).
    let mut builder = match config.server.worker_threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        threads => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if threads > 0 {
                builder.worker_threads(threads);
            }
            builder
        }
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let gateway = Gateway::bind(config).await?;
        gateway.run(shutdown_signal()).await?;
        Ok(())
    })
}

/// SIGTERM (service managers) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the gateway");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
