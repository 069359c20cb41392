//! The admin CLI end to end (`authgate user|client|keys|session …` as a process), on SQLite
//! and, when `AUTHGATE_TEST_DATABASE_URL` is set, on PostgreSQL in a schema of its own.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use authgate::store::{KeyAlg, Store};
use support::PgSchema;

const KEY_SECRET: &str = "cli test key secret, at least 32 characters";

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

struct Env {
    dir: tempfile::TempDir,
    _pg: Option<PgSchema>,
}

impl Env {
    fn config(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_authgate"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .env("AUTHGATE_KEY_SECRET", KEY_SECRET)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).unwrap();
        }
        drop(pipe);
        let out = child.wait_with_output().unwrap();
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(out.ok, "{args:?} failed: {}", out.stderr);
        out.stdout
    }

    /// Runs and expects failure with exactly one `error: …` line; returns it.
    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(!out.ok, "{args:?} should fail: {}", out.stdout);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {:?}", out.stderr);
        assert!(lines[0].starts_with("error: "), "{}", lines[0]);
        lines[0].to_owned()
    }

    async fn store(&self) -> Store {
        let config = authgate::config::load(&self.config()).unwrap();
        Store::open_with_secret(&config.store, KEY_SECRET.as_bytes())
            .await
            .unwrap()
    }
}

fn write_config(dir: &Path, store_url: &str) {
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
         [store]\nurl = \"{store_url}\"\nkey_activation_delay = \"10m\"\n"
    );
    std::fs::write(dir.join("gateway.toml"), toml).unwrap();
}

fn sqlite_env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "sqlite://state/authgate.db");
    Env { dir, _pg: None }
}

async fn postgres_env() -> Env {
    let schema = PgSchema::create("authgate_cli").await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &schema.url);
    Env {
        dir,
        _pg: Some(schema),
    }
}

const PASSWORD: &str = "a long password 1";

async fn walk(env: &Env) {
    // Users.
    let out = env.ok(
        &[
            "user",
            "add",
            "Alice",
            "--id",
            "42",
            "--phone",
            "+86 138 0000 0000",
            "--email",
            "Alice@Example.com",
            "--group-id",
            "2",
            "--admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(out, "user 42 added (account alice)\n");
    let error = env.fails(
        &["user", "add", "8613800000000", "--password-stdin"],
        Some("another password\n"),
    );
    assert!(
        error.contains("login name `8613800000000` already exists"),
        "{error}"
    );
    env.fails(&["user", "add", "bob"], None); // no password, not a terminal
    env.fails(&["user", "add", "bob", "--password-stdin"], Some("short\n"));
    let shown = env.ok(&["user", "show", "alice@example.com"], None);
    assert!(
        shown.contains("id: 42\n")
            && shown.contains("roles: admin\n")
            && shown.contains("password: set\n"),
        "{shown}"
    );
    let set = env.ok(
        &[
            "user",
            "set",
            "42",
            "--display-name",
            "Alice A",
            "--premium",
            "true",
            "--admin=false",
            "--add-role",
            "support",
            "--email",
            "",
        ],
        None,
    );
    assert!(
        set.contains("roles: support\n")
            && set.contains("email: -\n")
            && set.contains("premium: true\n"),
        "{set}"
    );
    assert!(env.ok(&["user", "list"], None).contains("alice"));
    env.ok(
        &["user", "set-password", "alice", "--password-stdin"],
        Some("the new password\n"),
    );
    env.ok(&["user", "revoke-tokens", "alice"], None);
    env.ok(&["user", "disable", "alice"], None);
    assert!(
        env.ok(&["user", "show", "alice"], None)
            .contains("state: disabled")
    );
    env.ok(&["user", "enable", "alice"], None);
    assert!(
        env.fails(&["user", "show", "nobody"], None)
            .contains("no user `nobody`")
    );

    // Clients.
    let out = env.ok(
        &[
            "client",
            "add",
            "web",
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--redirect-uri",
            "https://app.example/cb",
            "--scope",
            "read",
            "--app-id",
            "web-app",
        ],
        None,
    );
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .unwrap()
        .to_owned();
    assert_eq!(secret.len(), 43);
    env.ok(
        &[
            "client",
            "add",
            "mobile",
            "--grant",
            "password",
            "--secret-stdin",
        ],
        Some("lsACyCD94FhDUtGTXi3QzcFE2uU1hqtDaKeqrdwj\n"),
    );
    env.fails(
        &[
            "client",
            "add",
            "spa",
            "--public",
            "--grant",
            "client_credentials",
        ],
        None,
    );
    env.fails(&["client", "add", "x", "--grant", "magic"], None);
    env.ok(
        &[
            "client",
            "set",
            "web",
            "--scope",
            "read",
            "--scope",
            "write",
            "--access-ttl",
            "1h",
        ],
        None,
    );
    let list = env.ok(&["client", "list"], None);
    assert!(
        list.contains("web-app") && !list.contains(&secret),
        "{list}"
    );
    let rotated = env.ok(&["client", "rotate-secret", "web"], None);
    let new_secret = rotated
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .unwrap()
        .to_owned();

    // Keys.
    let out = env.ok(&["keys", "rotate"], None);
    assert!(out.contains("(ES256) is pending"), "{out}");
    let out = env.ok(&["keys", "rotate", "--alg", "EdDSA", "--delay", "0s"], None);
    assert!(out.contains("(EdDSA) is active"), "{out}");
    let out = env.ok(&["keys", "add", "--alg", "RS256"], None);
    let kid = out.split_whitespace().nth(1).unwrap().to_owned();
    env.ok(&["keys", "activate", &kid], None);
    env.ok(&["keys", "retire", &kid], None);
    env.ok(&["keys", "revoke", &kid], None);
    assert!(
        env.fails(&["keys", "activate", &kid], None)
            .contains("is revoked; cannot activate")
    );
    let keys = env.ok(&["keys", "list"], None);
    assert_eq!(keys.lines().count(), 4, "{keys}");
    env.fails(&["keys", "add", "--alg", "HS256"], None);

    // What the CLI wrote is what the store reads; every action left an audit record.
    let store = env.store().await;
    store.verify_client("web", Some(&new_secret)).await.unwrap();
    assert!(store.verify_client("web", Some(&secret)).await.is_err());
    store
        .verify_client("mobile", Some("lsACyCD94FhDUtGTXi3QzcFE2uU1hqtDaKeqrdwj"))
        .await
        .unwrap();
    store
        .verify_login("8613800000000", "the new password", authgate::store::now())
        .await
        .unwrap();
    let log = store.audit_log(None, 100).await.unwrap();
    let actions: Vec<&str> = log.iter().rev().map(|r| r.event.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user.add",
            "user.set",
            "user.set-password",
            "user.revoke-tokens",
            "user.disable",
            "user.enable",
            "client.add",
            "client.add",
            "client.set",
            "client.rotate-secret",
            "keys.rotate",
            "keys.rotate",
            "keys.add",
            "keys.activate",
            "keys.retire",
            "keys.revoke"
        ]
    );
    assert!(log.iter().all(|r| {
        r.event
            .actor
            .as_deref()
            .is_some_and(|a| a.starts_with("cli:"))
    }));
    let everything = format!("{log:?}");
    for secret in [
        PASSWORD,
        "the new password",
        &secret,
        &new_secret,
        "lsACyCD94FhDUtGTXi3QzcFE2uU1hqtDaKeqrdwj",
    ] {
        assert!(
            !everything.contains(secret),
            "a secret leaked into the audit log"
        );
    }
    store.close().await;
    env.ok(&["client", "remove", "web"], None);
    env.fails(&["client", "remove", "web"], None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_walk_on_sqlite() {
    let env = sqlite_env();
    walk(&env).await;
    let db = env.dir.path().join("state").join("authgate.db");
    assert!(
        db.exists(),
        "relative store path resolves against the config's directory"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(db), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_pg, ignore = "needs PostgreSQL: set AUTHGATE_TEST_DATABASE_URL")]
async fn cli_walk_on_postgres() {
    walk(&postgres_env().await).await;
}

/// `client add|set|show|list` with the OpenID Connect flags: post-logout redirect URIs and the
/// ID token algorithm are stored, shown, cleared and audited.
async fn openid_client_flags(env: &Env) {
    let out = env.ok(
        &[
            "client",
            "add",
            "rp",
            "--public",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "https://rp.example/cb",
            "--post-logout-redirect-uri",
            "https://rp.example/bye",
            "--post-logout-redirect-uri",
            "https://rp.example/bye",
            "--id-token-alg",
            "es256",
        ],
        None,
    );
    assert_eq!(out, "client rp added (public)\n");
    let shown = env.ok(&["client", "show", "rp"], None);
    assert!(
        shown.contains("post_logout_redirect_uris: https://rp.example/bye\n")
            && shown.contains("id_token_alg: ES256\n"),
        "{shown}"
    );
    assert!(env.ok(&["client", "list"], None).contains("ES256"));
    // EdDSA is no ID token algorithm (clap says so, with the possible values); a post-logout
    // URI is checked like a redirect URI (the store says so).
    let eddsa = env.run(&["client", "set", "rp", "--id-token-alg", "EdDSA"], None);
    assert!(
        !eddsa.ok && eddsa.stderr.contains("--id-token-alg"),
        "{}",
        eddsa.stderr
    );
    let relative = env.fails(
        &["client", "set", "rp", "--post-logout-redirect-uri", "/bye"],
        None,
    );
    assert!(relative.contains("post_logout_redirect_uris"), "{relative}");
    let both = env.run(
        &[
            "client",
            "set",
            "rp",
            "--post-logout-redirect-uri",
            "https://rp.example/x",
            "--no-post-logout-redirect-uris",
        ],
        None,
    );
    assert!(!both.ok, "the list and its removal conflict");
    // Replace, then back to none and the default.
    let out = env.ok(
        &[
            "client",
            "set",
            "rp",
            "--post-logout-redirect-uri",
            "https://rp.example/a",
            "--post-logout-redirect-uri",
            "https://rp.example/b",
            "--id-token-alg",
            "RS256",
        ],
        None,
    );
    assert!(
        out.contains("post-logout redirect URIs https://rp.example/a https://rp.example/b;")
            && out.contains("ID token alg RS256\n"),
        "{out}"
    );
    let store = env.store().await;
    let client = store.client("rp").await.unwrap();
    assert_eq!(
        client.post_logout_redirect_uris,
        ["https://rp.example/a", "https://rp.example/b"]
    );
    assert_eq!(client.id_token_alg, Some(KeyAlg::Rs256));
    env.ok(
        &[
            "client",
            "set",
            "rp",
            "--no-post-logout-redirect-uris",
            "--id-token-alg",
            "default",
        ],
        None,
    );
    let shown = env.ok(&["client", "show", "rp"], None);
    assert!(
        shown.contains("post_logout_redirect_uris: -\n")
            && shown.contains("id_token_alg: RS256 (default)\n"),
        "{shown}"
    );
    let client = store.client("rp").await.unwrap();
    assert!(client.post_logout_redirect_uris.is_empty());
    assert_eq!(client.id_token_alg, None);
    store.close().await;
    // The audit records name both.
    let audit = env.ok(&["audit", "--subject", "client:rp", "--json"], None);
    let details: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["details"].clone())
        .collect();
    assert_eq!(details.len(), 3, "{audit}");
    assert_eq!(
        details[0]["post_logout_redirect_uris"],
        serde_json::json!(["https://rp.example/bye"])
    );
    assert_eq!(details[0]["id_token_alg"], "ES256");
    assert_eq!(details[1]["id_token_alg"], "RS256");
    assert_eq!(
        details[2]["post_logout_redirect_uris"],
        serde_json::json!([])
    );
    assert!(details[2]["id_token_alg"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_flags_on_sqlite() {
    openid_client_flags(&sqlite_env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_pg, ignore = "needs PostgreSQL: set AUTHGATE_TEST_DATABASE_URL")]
async fn openid_client_flags_on_postgres() {
    openid_client_flags(&postgres_env().await).await;
}

/// `client add|set|show` with the RFC 8707 flags: resources and the default resource are
/// stored, shown, replaced, cleared (`--no-resources`, `--default-resource none`), checked by
/// the store and audited.
async fn resource_client_flags(env: &Env) {
    let api = "https://api.example/";
    let files = "https://files.example/v2";
    let out = env.ok(
        &[
            "client",
            "add",
            "rs",
            "--public",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "https://rs.example/cb",
            "--resource",
            api,
            "--resource",
            files,
            "--resource",
            api,
            "--default-resource",
            api,
        ],
        None,
    );
    assert_eq!(out, "client rs added (public)\n");
    let shown = env.ok(&["client", "show", "rs"], None);
    assert!(
        shown.contains(&format!("resources: {api} {files}\n"))
            && shown.contains(&format!("default_resource: {api}\n")),
        "{shown}"
    );
    // The store's checks: a fragment, a relative URI, a default not among the resources,
    // and removing the default's resource.
    let fragment = env.fails(
        &[
            "client",
            "set",
            "rs",
            "--resource",
            "https://api.example/#x",
        ],
        None,
    );
    assert!(fragment.contains("resources"), "{fragment}");
    let relative = env.fails(
        &[
            "client",
            "add",
            "bad",
            "--grant",
            "password",
            "--resource",
            "/api",
        ],
        None,
    );
    assert!(relative.contains("resources"), "{relative}");
    let stranger = env.fails(
        &[
            "client",
            "set",
            "rs",
            "--default-resource",
            "https://other.example/",
        ],
        None,
    );
    assert!(stranger.contains("default_resource"), "{stranger}");
    let dropped = env.fails(&["client", "set", "rs", "--resource", files], None);
    assert!(dropped.contains("default_resource"), "{dropped}");
    let emptied = env.fails(&["client", "set", "rs", "--no-resources"], None);
    assert!(emptied.contains("default_resource"), "{emptied}");
    let both = env.run(
        &["client", "set", "rs", "--resource", api, "--no-resources"],
        None,
    );
    assert!(!both.ok, "the list and its removal conflict");
    // Replace the list and the default together; then clear both.
    let out = env.ok(
        &[
            "client",
            "set",
            "rs",
            "--resource",
            files,
            "--default-resource",
            files,
        ],
        None,
    );
    assert!(
        out.contains(&format!("; resources {files}; default resource {files};")),
        "{out}"
    );
    let store = env.store().await;
    let client = store.client("rs").await.unwrap();
    assert_eq!(client.resources, [files]);
    assert_eq!(client.default_resource.as_deref(), Some(files));
    let out = env.ok(
        &[
            "client",
            "set",
            "rs",
            "--no-resources",
            "--default-resource",
            "none",
        ],
        None,
    );
    assert!(out.contains("; resources -; default resource -;"), "{out}");
    let shown = env.ok(&["client", "show", "rs"], None);
    assert!(
        shown.contains("resources: -\n") && shown.contains("default_resource: -\n"),
        "{shown}"
    );
    let client = store.client("rs").await.unwrap();
    assert!(client.resources.is_empty());
    assert_eq!(client.default_resource, None);
    assert!(store.client("bad").await.is_err());
    store.close().await;
    // The audit records name both; refused changes left none.
    let audit = env.ok(&["audit", "--subject", "client:rs", "--json"], None);
    let details: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["details"].clone())
        .collect();
    assert_eq!(details.len(), 3, "{audit}");
    assert_eq!(details[0]["resources"], serde_json::json!([api, files]));
    assert_eq!(details[0]["default_resource"], api);
    assert_eq!(details[1]["resources"], serde_json::json!([files]));
    assert_eq!(details[1]["default_resource"], files);
    assert_eq!(details[2]["resources"], serde_json::json!([]));
    assert!(details[2]["default_resource"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_client_flags_on_sqlite() {
    resource_client_flags(&sqlite_env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_pg, ignore = "needs PostgreSQL: set AUTHGATE_TEST_DATABASE_URL")]
async fn resource_client_flags_on_postgres() {
    resource_client_flags(&postgres_env().await).await;
}

/// `session list|revoke`: sessions created through the store are listed (ids, accounts and
/// times, never the cookie value), ended by id and by user, each revocation audited; an unknown
/// id or user is one error line.
async fn session_commands(env: &Env) {
    for account in ["alice", "bob"] {
        env.ok(
            &["user", "add", account, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
    }
    let store = env.store().await;
    let alice = store.user_by_login("alice").await.unwrap().id;
    let bob = store.user_by_login("bob").await.unwrap().id;
    let now = authgate::store::now();
    let day = std::time::Duration::from_secs(86_400);
    let mut tokens = Vec::new();
    for (user, at) in [(alice, now - 20), (alice, now - 10), (bob, now - 5)] {
        tokens.push(store.create_login_session(user, day, at).await.unwrap());
    }
    let mut ids = Vec::new();
    for token in &tokens {
        ids.push(store.login_session(token, now).await.unwrap().id);
    }
    let listed = env.ok(&["session", "list"], None);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 4, "{listed}");
    assert!(
        lines[0].starts_with("id")
            && lines[0].contains("last seen")
            && lines[0].ends_with("expires"),
        "{listed}"
    );
    // Newest first.
    for (line, (id, who)) in lines[1..].iter().zip([
        (&ids[2], format!("bob ({bob})")),
        (&ids[1], format!("alice ({alice})")),
        (&ids[0], format!("alice ({alice})")),
    ]) {
        assert!(
            line.starts_with(id.as_str()) && line.contains(&who),
            "{listed}"
        );
    }
    for token in &tokens {
        assert!(
            !listed.contains(token.as_str()),
            "no cookie value: {listed}"
        );
    }
    let mine = env.ok(&["session", "list", "--user", "alice"], None);
    assert_eq!(mine.lines().count(), 3, "{mine}");
    assert!(!mine.contains(ids[2].as_str()), "{mine}");
    // By id.
    let out = env.ok(&["session", "revoke", &ids[0]], None);
    assert_eq!(out, format!("session {} ended\n", ids[0]));
    assert!(store.login_session(&tokens[0], now).await.is_err());
    assert!(store.login_session(&tokens[1], now).await.is_ok());
    let error = env.fails(&["session", "revoke", &ids[0]], None);
    assert_eq!(error, format!("error: no session `{}`", ids[0]));
    env.fails(&["session", "revoke", "no-such-session"], None);
    // By user.
    let out = env.ok(&["session", "revoke", "--user", "alice"], None);
    assert_eq!(out, format!("1 session(s) of user {alice} (alice) ended\n"));
    assert!(store.login_session(&tokens[1], now).await.is_err());
    assert!(store.login_session(&tokens[2], now).await.is_ok());
    let error = env.fails(&["session", "revoke", "--user", "nobody"], None);
    assert_eq!(error, "error: no user `nobody`");
    let error = env.fails(&["session", "list", "--user", "nobody"], None);
    assert_eq!(error, "error: no user `nobody`");
    assert!(!env.run(&["session", "revoke"], None).ok, "an id or --user");
    assert!(
        !env.run(&["session", "revoke", &ids[2], "--user", "bob"], None)
            .ok,
        "not both"
    );
    let left = env.ok(&["session", "list"], None);
    assert_eq!(left.lines().count(), 2, "{left}");
    assert!(left.contains(ids[2].as_str()), "{left}");
    store.close().await;
    // One audit record per revocation; the refused ones left none.
    let audit = env.ok(&["audit", "--kind", "session", "--json"], None);
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{audit}");
    assert_eq!(records[0]["action"], "session.revoke");
    assert_eq!(records[0]["subject"], format!("session:{}", ids[0]));
    assert_eq!(records[0]["details"]["user_id"], alice);
    assert!(records[0]["actor"].as_str().unwrap().starts_with("cli:"));
    assert_eq!(records[1]["action"], "session.revoke");
    assert_eq!(records[1]["subject"], format!("user:{alice}"));
    assert_eq!(records[1]["details"]["sessions"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_commands_on_sqlite() {
    session_commands(&sqlite_env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_pg, ignore = "needs PostgreSQL: set AUTHGATE_TEST_DATABASE_URL")]
async fn session_commands_on_postgres() {
    session_commands(&postgres_env().await).await;
}

#[test]
fn postgres_without_a_key_secret_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "postgres://postgres@127.0.0.1:1/none");
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .arg("--config")
        .arg(dir.path().join("gateway.toml"))
        .args(["keys", "list"])
        .env_remove("AUTHGATE_KEY_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("needs a key secret: set AUTHGATE_KEY_SECRET"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
}

#[test]
fn audit_lists_and_the_audit_file_ships_every_record() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = sqlite_env();
    let config = env.config();
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str("[audit]\nfile = \"audit.jsonl\"\n");
    std::fs::write(&config, toml).unwrap();
    env.ok(
        &["user", "add", "alice", "--id", "100", "--password-stdin"],
        Some("a password for alice\n"),
    );
    env.ok(
        &["client", "add", "web", "--public", "--grant", "password"],
        None,
    );
    env.ok(&["user", "revoke-tokens", "100"], None);

    // The table: oldest first, one line each, never a password.
    let table = env.ok(&["audit"], None);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].contains("user.add") && lines[0].contains("subject=user:100"));
    assert!(!table.contains("a password for alice"));
    // Filters: a family of actions, a subject, a time.
    let users = env.ok(&["audit", "--kind", "user", "--json"], None);
    let records: Vec<serde_json::Value> = users
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{users}");
    assert!(
        records
            .iter()
            .all(|r| r["action"].as_str().unwrap().starts_with("user."))
    );
    assert!(
        records
            .iter()
            .all(|r| r["actor"].as_str().unwrap().starts_with("cli:"))
    );
    let web = env.ok(&["audit", "--subject", "client:web", "--json"], None);
    assert_eq!(web.lines().count(), 1, "{web}");
    assert_eq!(env.ok(&["audit", "--since", "2999-01-01"], None), "");
    assert_eq!(env.ok(&["audit", "--since", "1h"], None).lines().count(), 3);
    let bad = env.fails(&["audit", "--since", "yesterday"], None);
    assert!(bad.contains("--since"), "{bad}");

    // The file: the same records as JSON lines, owner-only.
    let path = env.dir.path().join("audit.jsonl");
    let shipped: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let listed: Vec<serde_json::Value> = env
        .ok(&["audit", "--json"], None)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(shipped, listed);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn audit_records_name_the_os_user_when_the_environment_does_not() {
    let env = sqlite_env();
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .arg("--config")
        .arg(env.config())
        .args(["user", "add", "dora", "--password-stdin"])
        .env("AUTHGATE_KEY_SECRET", KEY_SECRET)
        .env_remove("USER")
        .env_remove("LOGNAME")
        .env_remove("SUDO_USER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{PASSWORD}\n").as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let whoami = Command::new("id").arg("-un").output().unwrap();
    let me = String::from_utf8(whoami.stdout).unwrap().trim().to_owned();
    let audit = env.ok(&["audit", "--json"], None);
    assert!(
        audit.contains(&format!("\"cli:{me}\"")),
        "expected actor cli:{me}: {audit}"
    );
    assert!(!audit.contains("cli:unknown"), "{audit}");
}
