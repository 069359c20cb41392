//! `kill -9` of a process writing through the store loses no committed row and leaves none
//! half-written. The writer is this test binary itself, re-run as the ignored test
//! `crash_child_writer`: it issues and rotates refresh tokens and creates codes in a loop,
//! printing each one after its transaction committed. The parent kills it with SIGKILL mid-loop,
//! reopens the store, and checks every printed row.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use authgate::config::{StoreBackend, StoreConfig};
use authgate::store::{GrantType, NewClient, NewCode, NewRefresh, NewUser, Store};

const CHILD_ENV: &str = "AUTHGATE_CRASH_CHILD_DB";
const USER_ID: i64 = 7;
const CLIENT: &str = "crash-client";

fn config(path: &Path) -> StoreConfig {
    let mut config = StoreConfig::new(StoreBackend::Sqlite {
        path: path.to_path_buf(),
    });
    config.key_secret_env = "AUTHGATE_TEST_NO_SUCH_VARIABLE".into();
    config
}

/// The writer. Does nothing unless run by the parent below (it is `#[ignore]`d, and checks the
/// environment).
#[test]
#[ignore = "run by kill_9_loses_no_committed_row as its child process"]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(&config(Path::new(&path))).await.unwrap();
        for i in 0u64.. {
            let first = store
                .issue_refresh(
                    NewRefresh {
                        user_id: USER_ID,
                        client_id: CLIENT.into(),
                        scope: format!("iter-{i}"),
                        ttl: Duration::from_secs(86_400),
                        auth_time: None,
                        resources: Vec::new(),
                    },
                    authgate::store::now(),
                )
                .await
                .unwrap();
            let second = store
                .rotate_refresh(
                    &first.token,
                    CLIENT,
                    Duration::from_secs(86_400),
                    authgate::store::now(),
                )
                .await
                .unwrap();
            let code = store
                .create_code(
                    NewCode {
                        client_id: CLIENT.into(),
                        user_id: USER_ID,
                        redirect_uri: Some("https://app.example/cb".into()),
                        scope: format!("code-{i}"),
                        pkce_challenge: Some(format!("challenge-{i}")),
                        pkce_method: Some("S256".into()),
                        ttl: Duration::from_secs(86_400),
                        nonce: None,
                        auth_time: None,
                        resources: Vec::new(),
                    },
                    authgate::store::now(),
                )
                .await
                .unwrap();
            // Printed only after every transaction above committed.
            println!("COMMITTED {i} {} {} {code}", first.token, second.token);
        }
    });
}

struct Committed {
    iteration: u64,
    rotated: String,
    current: String,
    code: String,
}

fn parse(line: &str) -> Option<Committed> {
    let mut parts = line.strip_prefix("COMMITTED ")?.split(' ');
    Some(Committed {
        iteration: parts.next()?.parse().ok()?,
        rotated: parts.next()?.to_owned(),
        current: parts.next()?.to_owned(),
        code: parts.next()?.to_owned(),
    })
}

async fn prepare(path: &Path) {
    let store = Store::open(&config(path)).await.unwrap();
    let user = NewUser {
        id: Some(USER_ID),
        account: "crash".into(),
        ..NewUser::default()
    };
    store.add_user(user, None, 0).await.unwrap();
    let client = NewClient {
        id: CLIENT.into(),
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: vec!["https://app.example/cb".into()],
        ..NewClient::default()
    };
    store.add_client(client, None, 0).await.unwrap();
    store.close().await;
}

/// Runs the writer until it has committed `at_least` iterations, then SIGKILLs it; returns every
/// line it printed (the pipe keeps what was written before the kill).
fn run_and_kill(path: &Path, at_least: usize) -> Vec<Committed> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut committed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed.len() < at_least && Instant::now() < deadline {
        match lines.next() {
            Some(Ok(line)) => committed.extend(parse(&line)),
            _ => break,
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the writer must have been killed, not finished"
    );
    committed.extend(lines.map_while(Result::ok).filter_map(|l| parse(&l)));
    committed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_committed_row() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("data").join("authgate.db");
    prepare(&path).await;
    let mut all = Vec::new();
    for round in 0..3 {
        let committed = tokio::task::block_in_place(|| run_and_kill(&path, 40 + round * 25));
        assert!(
            committed.len() >= 40,
            "round {round}: only {} rows committed",
            committed.len()
        );
        all.extend(committed);
    }
    let store = Store::open(&config(&path)).await.unwrap();
    for row in &all {
        let current = store.refresh_token(&row.current).await.unwrap();
        assert_eq!(current.user_id, USER_ID);
        assert_eq!(current.client_id, CLIENT);
        assert_eq!(current.scope, format!("iter-{}", row.iteration));
        assert_eq!((current.used_at, current.revoked_at), (None, None));
        let rotated = store.refresh_token(&row.rotated).await.unwrap();
        assert_eq!(rotated.family_id, current.family_id);
        assert!(
            rotated.used_at.is_some(),
            "the rotation committed with the new token"
        );
        let code = store
            .take_code(&row.code, authgate::store::now())
            .await
            .unwrap();
        assert_eq!(code.scope, format!("code-{}", row.iteration));
        assert_eq!(
            code.pkce_challenge,
            Some(format!("challenge-{}", row.iteration))
        );
        assert_eq!(code.client_id, CLIENT);
    }
    store.close().await;
    let url = format!("sqlite://{}", path.display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(check, "ok");
}
