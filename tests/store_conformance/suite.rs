//! The conformance suite: one function per store operation, each run against every backend.

use std::time::{Duration, Instant};

use authgate::store::{
    AccessLink, AuditEvent, AuditFilter, ClientPatch, FailureCount, GrantType, IssuedRefresh,
    KeyAlg, KeyState, NewClient, NewCode, NewOpaque, NewRefresh, NewUser, OpaqueToken, Profile,
    SessionLimits, StoreError, TakenCode, UserPatch,
};

use super::Harness;

const T0: i64 = 1_800_000_000;
const PASSWORD: &str = "correct horse battery";

fn alice() -> NewUser {
    NewUser {
        account: "  Alice ".into(),
        phone: Some("+86 138-0000-0000".into()),
        email: Some("Alice@Example.COM".into()),
        group_id: 2,
        roles: vec!["admin".into()],
        profile: Profile {
            display_name: Some("Alice".into()),
            image_small: Some("https://img.example/a_16.jpg".into()),
            premium: true,
            content_restriction: 1,
            ..Profile::default()
        },
        ..NewUser::default()
    }
}

fn web_client(id: &str) -> NewClient {
    NewClient {
        id: id.into(),
        app_id: Some(format!("{id}-app")),
        display_name: Some("Web".into()),
        grants: vec![
            GrantType::AuthorizationCode,
            GrantType::Password,
            GrantType::RefreshToken,
        ],
        redirect_uris: vec!["https://app.example/cb".into()],
        scopes: vec!["read".into(), "write".into()],
        access_ttl: Some(Duration::from_secs(600)),
        refresh_ttl: Some(Duration::from_secs(86_400)),
        ..NewClient::default()
    }
}

/// A user and a client to hang tokens on.
async fn user_and_client(h: &Harness) -> (i64, String) {
    let user = h.store.add_user(alice(), None, T0).await.unwrap();
    h.store
        .add_client(web_client("web"), None, T0)
        .await
        .unwrap();
    (user.id, "web".into())
}

fn refresh(user_id: i64, client: &str) -> NewRefresh {
    NewRefresh {
        user_id,
        client_id: client.into(),
        scope: "read".into(),
        ttl: Duration::from_secs(3600),
        auth_time: None,
        resources: Vec::new(),
    }
}

pub async fn migrations_are_idempotent_and_refuse_a_newer_schema(h: &Harness) {
    let again = h.reopen().await.unwrap();
    again.close().await;
    h.raw("INSERT INTO authgate_schema_version (version, description, applied_at) VALUES (999, 'from the future', 0)")
        .await
        .unwrap();
    let error = h.reopen().await.err().unwrap();
    assert!(
        matches!(
            error,
            StoreError::SchemaTooNew {
                found: 999,
                supported: authgate::store::SCHEMA_VERSION
            }
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("newer than this authgate supports")
    );
}

pub async fn key_secret_must_match(h: &Harness) {
    let wrong =
        authgate::store::Store::open_with_secret(&h.config, b"not the secret, but long enough!!")
            .await
            .err()
            .unwrap();
    assert!(matches!(wrong, StoreError::KeySecret(_)), "{wrong}");
}

pub async fn users_are_added_and_found_by_any_login_name(h: &Harness) {
    let user = h.store.add_user(alice(), Some(PASSWORD), T0).await.unwrap();
    assert_eq!(user.account, "alice");
    assert_eq!(user.phone.as_deref(), Some("8613800000000"));
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    assert!(user.is_admin() && user.has_password && !user.disabled);
    for name in [
        "ALICE",
        " alice",
        "+86 (138) 0000 0000",
        "8613800000000",
        "alice@EXAMPLE.com",
    ] {
        assert_eq!(h.store.user_by_login(name).await.unwrap(), user, "{name}");
    }
    assert_eq!(h.store.user(user.id).await.unwrap(), user);
    assert!(matches!(
        h.store.user_by_login("bob").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        h.store.user(user.id + 1).await,
        Err(StoreError::NotFound { .. })
    ));
    let listed = h.store.users(None, 10).await.unwrap();
    assert_eq!(listed, vec![user]);
    let invalid = h
        .store
        .add_user(
            NewUser {
                account: "x".into(),
                phone: Some("call me".into()),
                ..NewUser::default()
            },
            None,
            T0,
        )
        .await;
    assert!(matches!(
        invalid,
        Err(StoreError::Invalid { field: "phone", .. })
    ));
}

pub async fn login_names_are_unique_across_account_phone_and_email(h: &Harness) {
    let first = NewUser {
        account: "first".into(),
        phone: Some("13800000000".into()),
        ..NewUser::default()
    };
    h.store.add_user(first, None, T0).await.unwrap();
    // Another user's account equal to that phone number: refused, and nothing half-written.
    let clash = NewUser {
        account: "138 0000 0000".into(),
        email: Some("second@example.com".into()),
        ..NewUser::default()
    };
    let error = h.store.add_user(clash, None, T0).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Conflict { what } if what.contains("13800000000")),
        "{error}"
    );
    assert!(h.store.user_by_login("second@example.com").await.is_err());
    assert_eq!(h.store.users(None, 10).await.unwrap().len(), 1);
    // E-mail equal to an existing account.
    let clash = NewUser {
        account: "third".into(),
        email: Some("FIRST".into()),
        ..NewUser::default()
    };
    assert!(h.store.add_user(clash, None, T0).await.is_err());
}

pub async fn assigned_ids_are_unique_and_explicit_ids_conflict(h: &Harness) {
    let explicit = NewUser {
        id: Some(61_347_182),
        account: "a".into(),
        ..NewUser::default()
    };
    assert_eq!(
        h.store.add_user(explicit, None, T0).await.unwrap().id,
        61_347_182
    );
    let next = NewUser {
        account: "b".into(),
        ..NewUser::default()
    };
    assert_eq!(
        h.store.add_user(next, None, T0).await.unwrap().id,
        61_347_183
    );
    let again = NewUser {
        id: Some(61_347_182),
        account: "c".into(),
        ..NewUser::default()
    };
    let error = h.store.add_user(again, None, T0).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error}");
    assert!(h.store.user_by_login("c").await.is_err());
}

pub async fn users_are_updated_and_renamed_transactionally(h: &Harness) {
    let user = h.store.add_user(alice(), None, T0).await.unwrap();
    let other = NewUser {
        account: "bob".into(),
        ..NewUser::default()
    };
    h.store.add_user(other, None, T0).await.unwrap();
    let patch = UserPatch {
        email: Some(None),
        phone: Some(Some("139 1111 2222".into())),
        group_id: Some(1),
        roles: Some(vec!["support".into(), "ADMIN".into()]),
        display_name: Some(Some("Alice A.".into())),
        image_large: Some(Some("https://img.example/a_170.jpg".into())),
        premium: Some(false),
        mail_verified: Some(true),
        policy_agreement_needed: Some(true),
        content_restriction: Some(2),
        ..UserPatch::default()
    };
    let updated = h.store.update_user(user.id, patch, T0 + 5).await.unwrap();
    assert_eq!(updated.email, None);
    assert_eq!(updated.phone.as_deref(), Some("13911112222"));
    assert_eq!(updated.roles, vec!["admin", "support"]);
    assert_eq!(updated.updated_at, T0 + 5);
    assert!(updated.profile.mail_verified && !updated.profile.premium);
    assert_eq!(h.store.user(user.id).await.unwrap(), updated);
    assert!(h.store.user_by_login("alice@example.com").await.is_err());
    assert_eq!(
        h.store.user_by_login("13911112222").await.unwrap().id,
        user.id
    );
    // Renaming onto another user's name fails and changes nothing.
    let patch = UserPatch {
        account: Some("BOB".into()),
        group_id: Some(9),
        ..UserPatch::default()
    };
    assert!(matches!(
        h.store.update_user(user.id, patch, T0 + 6).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(h.store.user(user.id).await.unwrap(), updated);
    assert_eq!(h.store.user_by_login("alice").await.unwrap().id, user.id);
}

pub async fn password_login_and_failure_modes(h: &Harness) {
    let user = h.store.add_user(alice(), Some(PASSWORD), T0).await.unwrap();
    let by_phone = h.store.verify_login("138 0000 0000", PASSWORD, T0).await;
    assert!(by_phone.is_err(), "the phone is +86…: a different number");
    assert_eq!(
        h.store
            .verify_login("+8613800000000", PASSWORD, T0)
            .await
            .unwrap()
            .id,
        user.id
    );
    assert_eq!(
        h.store
            .verify_login("ALICE@example.com", PASSWORD, T0)
            .await
            .unwrap()
            .id,
        user.id
    );
    for (login, password) in [("alice", "wrong password"), ("nobody", PASSWORD)] {
        let error = h.store.verify_login(login, password, T0).await.unwrap_err();
        assert!(matches!(error, StoreError::BadCredentials), "{error}");
    }
    h.store
        .set_password(user.id, "a new password", T0 + 10)
        .await
        .unwrap();
    assert!(h.store.verify_login("alice", PASSWORD, T0).await.is_err());
    h.store
        .verify_login("alice", "a new password", T0)
        .await
        .unwrap();
    assert_eq!(
        h.store.user(user.id).await.unwrap().not_before,
        Some(T0 + 10)
    );
    assert!(matches!(
        h.store.set_password(user.id, "short", T0).await,
        Err(StoreError::Invalid {
            field: "password",
            ..
        })
    ));
    h.store.set_disabled(user.id, true, T0 + 20).await.unwrap();
    let error = h
        .store
        .verify_login("alice", "a new password", T0)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::UserDisabled), "{error}");
}

/// `password_hash("rasmuslerdorf", PASSWORD_DEFAULT)` from PHP's manual (`password_verify`).
const PHP_BCRYPT: &str = "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a";

pub async fn php_bcrypt_hash_logs_in_and_is_upgraded_to_argon2id(h: &Harness) {
    let user = h.store.add_user(alice(), None, T0).await.unwrap();
    h.store
        .import_password_hash(user.id, PHP_BCRYPT, T0)
        .await
        .unwrap();
    assert!(
        h.store
            .verify_login("alice", "rasmuslerdorF", T0)
            .await
            .is_err()
    );
    assert_eq!(
        h.raw_text("SELECT password_hash FROM users").await,
        PHP_BCRYPT
    );
    h.store
        .verify_login("alice", "rasmuslerdorf", T0)
        .await
        .unwrap();
    let upgraded = h.raw_text("SELECT password_hash FROM users").await;
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{upgraded}"
    );
    // The upgraded hash verifies the same password, and the upgrade logged nobody out.
    h.store
        .verify_login("alice", "rasmuslerdorf", T0)
        .await
        .unwrap();
    assert_eq!(h.store.user(user.id).await.unwrap().not_before, None);
    // A legacy password shorter than today's minimum still logs in (its hash stays bcrypt).
    let short = bcrypt::hash_with_result("secret", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    h.store
        .import_password_hash(user.id, &short, T0)
        .await
        .unwrap();
    h.store.verify_login("alice", "secret", T0).await.unwrap();
    assert_eq!(h.raw_text("SELECT password_hash FROM users").await, short);
}

pub async fn unknown_login_costs_like_a_wrong_password(h: &Harness) {
    h.store.add_user(alice(), Some(PASSWORD), T0).await.unwrap();
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let _ = h.store.verify_login("alice", "wrong password", T0).await;
        wrong.push(start.elapsed());
        let start = Instant::now();
        let _ = h.store.verify_login("nobody", "wrong password", T0).await;
        unknown.push(start.elapsed());
    }
    wrong.sort();
    unknown.sort();
    let (wrong, unknown) = (wrong[2].as_secs_f64(), unknown[2].as_secs_f64());
    // Both are one Argon2 verification (~tens of ms); a missing one would be ~100× faster.
    assert!(
        unknown > wrong / 3.0 && unknown < wrong * 3.0,
        "wrong {wrong}s, unknown {unknown}s"
    );
}

pub async fn disable_and_revoke_tokens_set_not_before(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let issued = h
        .store
        .issue_refresh(refresh(user_id, &client), T0)
        .await
        .unwrap();
    h.store.revoke_user_tokens(user_id, T0 + 1).await.unwrap();
    let revs = h.store.revocations(T0 + 1).await.unwrap();
    assert_eq!(revs.not_before, vec![(user_id, T0 + 1)]);
    let error = h
        .store
        .rotate_refresh(&issued.token, &client, Duration::from_secs(60), T0 + 2)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Revoked { .. }), "{error}");

    let issued = h
        .store
        .issue_refresh(refresh(user_id, &client), T0 + 3)
        .await
        .unwrap();
    let disabled = h.store.set_disabled(user_id, true, T0 + 4).await.unwrap();
    assert!(disabled.disabled);
    assert_eq!(disabled.not_before, Some(T0 + 4));
    assert!(
        h.store
            .rotate_refresh(&issued.token, &client, Duration::from_secs(60), T0 + 5)
            .await
            .is_err()
    );
    let enabled = h.store.set_disabled(user_id, false, T0 + 6).await.unwrap();
    assert!(!enabled.disabled);
    assert_eq!(
        enabled.not_before,
        Some(T0 + 4),
        "enabling does not resurrect tokens"
    );
    assert!(matches!(
        h.store.revoke_user_tokens(user_id + 100, T0).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn clients_register_authenticate_and_change(h: &Harness) {
    let (client, secret) = h
        .store
        .add_client(web_client("web"), None, T0)
        .await
        .unwrap();
    let secret = secret.unwrap();
    assert_eq!(secret.len(), 43);
    assert!(!client.public && client.allows(GrantType::Password));
    assert_eq!(h.store.client("web").await.unwrap(), client);
    assert_eq!(h.store.client_by_app_id("web-app").await.unwrap(), client);
    assert_eq!(
        h.store.verify_client("web", Some(&secret)).await.unwrap(),
        client
    );
    for (id, presented) in [
        ("web", Some("wrong")),
        ("web", None),
        ("nope", Some(secret.as_str())),
    ] {
        let error = h.store.verify_client(id, presented).await.unwrap_err();
        assert!(matches!(error, StoreError::BadClientCredentials), "{error}");
    }
    // Chosen secret (e.g. a legacy one from the `mobile` document), then rotation.
    let legacy = "lsACyCD94FhDUtGTXi3QzcFE2uU1hqtDaKeqrdwj";
    let mut mobile = web_client("MOBrBDS8blbauoSck0ZfDbtuzpyT");
    mobile.app_id = None;
    h.store.add_client(mobile, Some(legacy), T0).await.unwrap();
    h.store
        .verify_client("MOBrBDS8blbauoSck0ZfDbtuzpyT", Some(legacy))
        .await
        .unwrap();
    let rotated = h
        .store
        .rotate_client_secret("web", None, T0 + 1)
        .await
        .unwrap();
    assert!(h.store.verify_client("web", Some(&secret)).await.is_err());
    h.store.verify_client("web", Some(&rotated)).await.unwrap();
    // Public client: no secret, cannot use client_credentials.
    let mut spa = web_client("spa");
    spa.public = true;
    spa.app_id = None;
    let (spa, none) = h.store.add_client(spa, None, T0).await.unwrap();
    assert!(spa.public && none.is_none());
    h.store.verify_client("spa", None).await.unwrap();
    h.store.verify_client("spa", Some("")).await.unwrap();
    assert!(
        h.store
            .verify_client("spa", Some("anything"))
            .await
            .is_err()
    );
    let patch = ClientPatch {
        grants: Some(vec![GrantType::ClientCredentials]),
        ..ClientPatch::default()
    };
    assert!(matches!(
        h.store.update_client("spa", patch, T0).await,
        Err(StoreError::Invalid { .. })
    ));
    // Duplicates.
    assert!(matches!(
        h.store.add_client(web_client("web"), None, T0).await,
        Err(StoreError::Conflict { .. })
    ));
    let mut alias_clash = web_client("other");
    alias_clash.app_id = Some("web-app".into());
    assert!(matches!(
        h.store.add_client(alias_clash, None, T0).await,
        Err(StoreError::Conflict { .. })
    ));
    // Update.
    let patch = ClientPatch {
        redirect_uris: Some(vec!["https://app.example/cb2".into()]),
        scopes: Some(vec!["read".into()]),
        access_ttl: Some(None),
        display_name: Some(Some("Web 2".into())),
        ..ClientPatch::default()
    };
    let updated = h.store.update_client("web", patch, T0 + 2).await.unwrap();
    assert_eq!(updated.redirect_uris, vec!["https://app.example/cb2"]);
    assert_eq!(updated.access_ttl, None);
    assert_eq!(updated.refresh_ttl, Some(Duration::from_secs(86_400)));
    assert_eq!(h.store.client("web").await.unwrap(), updated);
    let ids: Vec<String> = h
        .store
        .clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec!["MOBrBDS8blbauoSck0ZfDbtuzpyT", "spa", "web"]);
}

pub async fn client_removal_takes_its_tokens_along(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let issued = h
        .store
        .issue_refresh(refresh(user_id, &client), T0)
        .await
        .unwrap();
    h.store.remove_client(&client).await.unwrap();
    assert!(matches!(
        h.store.refresh_token(&issued.token).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        h.store.remove_client(&client).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn signing_keys_follow_the_state_machine(h: &Harness) {
    let first = h
        .store
        .add_key(KeyAlg::Es256, None, None, T0)
        .await
        .unwrap();
    assert_eq!(first.state, KeyState::Pending);
    assert!(first.public_jwk.contains("\"crv\":\"P-256\""));
    let first = h.store.activate_key(&first.kid, T0 + 1).await.unwrap();
    assert_eq!(first.state, KeyState::Active);
    let ed = h
        .store
        .add_key(KeyAlg::EdDsa, None, None, T0)
        .await
        .unwrap();
    h.store.activate_key(&ed.kid, T0 + 1).await.unwrap();
    let second = h
        .store
        .add_key(KeyAlg::Es256, None, None, T0 + 2)
        .await
        .unwrap();
    h.store.activate_key(&second.kid, T0 + 3).await.unwrap();
    let state = |kid: String| async move { h.store.key(&kid).await.unwrap().state };
    assert_eq!(
        state(first.kid.clone()).await,
        KeyState::Retiring,
        "demoted by the new one"
    );
    assert_eq!(state(second.kid.clone()).await, KeyState::Active);
    assert_eq!(
        state(ed.kid.clone()).await,
        KeyState::Active,
        "other algorithms untouched"
    );
    // Invalid transitions name the key and state.
    let error = h.store.activate_key(&first.kid, T0).await.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::KeyState {
                state: "retiring",
                action: "activate",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        h.store.retire_key(&first.kid, T0 + 4).await.unwrap().state,
        KeyState::Retired
    );
    assert!(h.store.retire_key(&first.kid, T0 + 4).await.is_err());
    assert_eq!(
        h.store.retire_key(&second.kid, T0 + 5).await.unwrap().state,
        KeyState::Retiring
    );
    assert_eq!(
        h.store.revoke_key(&ed.kid, T0 + 6).await.unwrap().state,
        KeyState::Revoked
    );
    assert!(h.store.revoke_key(&ed.kid, T0 + 6).await.is_err());
    assert!(matches!(
        h.store.activate_key("nope", T0).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(h.store.keys().await.unwrap().len(), 3);
    // The database itself refuses two active keys of one algorithm.
    let sql = "UPDATE signing_keys SET state = 'active' WHERE alg = 'ES256'";
    assert!(h.raw(sql).await.is_err());
}

pub async fn signing_keys_activate_when_due_and_decrypt(h: &Harness) {
    let rsa = h
        .store
        .add_key(KeyAlg::Rs256, Some(2048), Some(T0 + 60), T0)
        .await
        .unwrap();
    assert_eq!(rsa.bits, Some(2048));
    assert_eq!(
        h.store.activate_due_keys(T0 + 59).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        h.store.activate_due_keys(T0 + 60).await.unwrap(),
        vec![rsa.kid.clone()]
    );
    assert_eq!(h.store.key(&rsa.kid).await.unwrap().state, KeyState::Active);
    assert!(h.store.activate_due_keys(T0 + 61).await.unwrap().is_empty());
    // The private half decrypts to PKCS#8 that signs and matches the stored public key.
    let pkcs8 = h.store.key_private_pkcs8(&rsa.kid).await.unwrap();
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8).unwrap();
    use aws_lc_rs::signature::KeyPair as _;
    let jwk: serde_json::Value = serde_json::from_str(&rsa.public_jwk).unwrap();
    assert_eq!(jwk["kid"], rsa.kid.as_str());
    assert_eq!(pair.public_key().modulus_len(), 256);
    let es = h
        .store
        .add_key(KeyAlg::Es256, None, None, T0)
        .await
        .unwrap();
    let pkcs8 = h.store.key_private_pkcs8(&es.kid).await.unwrap();
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &pkcs8,
    )
    .unwrap();
    assert!(pair.public_key().as_ref().len() == 65);
    // Nothing in the database is the plain private key.
    let sealed = h
        .raw("UPDATE signing_keys SET private_sealed = public_spki WHERE kid = 'x'")
        .await;
    assert_eq!(sealed.unwrap(), 0);
}

pub async fn refresh_tokens_rotate_and_replay_revokes_the_family(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let ttl = Duration::from_secs(3600);
    let first = h
        .store
        .issue_refresh(refresh(user_id, &client), T0)
        .await
        .unwrap();
    assert_eq!(first.token.len(), 43);
    let second = h
        .store
        .rotate_refresh(&first.token, &client, ttl, T0 + 10)
        .await
        .unwrap();
    assert_eq!(second.record.family_id, first.record.family_id);
    assert_eq!(second.record.scope, "read");
    assert_eq!(second.record.expires_at, T0 + 10 + 3600);
    let third = h
        .store
        .rotate_refresh(&second.token, &client, ttl, T0 + 20)
        .await
        .unwrap();
    assert_eq!(
        h.store.refresh_token(&first.token).await.unwrap().used_at,
        Some(T0 + 10)
    );
    // The first token again: a replay. The whole family, the live third token included, dies.
    let error = h
        .store
        .rotate_refresh(&first.token, &client, ttl, T0 + 30)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Replayed { .. }), "{error}");
    let error = h
        .store
        .rotate_refresh(&third.token, &client, ttl, T0 + 31)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Revoked { .. }), "{error}");
    assert_eq!(
        h.store
            .refresh_token(&third.token)
            .await
            .unwrap()
            .revoked_at,
        Some(T0 + 30)
    );
    // Another family of the same user is untouched; RFC 7009 revocation kills it.
    let other = h
        .store
        .issue_refresh(refresh(user_id, &client), T0)
        .await
        .unwrap();
    assert!(
        !h.store
            .revoke_refresh(&other.token, "someone-else", T0)
            .await
            .unwrap()
    );
    assert!(
        h.store
            .revoke_refresh(&other.token, &client, T0 + 40)
            .await
            .unwrap()
    );
    assert!(
        h.store
            .rotate_refresh(&other.token, &client, ttl, T0 + 41)
            .await
            .is_err()
    );
}

pub async fn refresh_token_failure_modes(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let ttl = Duration::from_secs(60);
    let issued = h
        .store
        .issue_refresh(refresh(user_id, &client), T0)
        .await
        .unwrap();
    let error = h
        .store
        .rotate_refresh("not-a-token", &client, ttl, T0)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error}");
    let error = h
        .store
        .rotate_refresh(&issued.token, "other", ttl, T0)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::WrongClient { .. }), "{error}");
    let error = h
        .store
        .rotate_refresh(&issued.token, &client, ttl, T0 + 3600)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Expired { .. }), "{error}");
    // Neither the other client's attempt nor the expiry consumed or revoked it.
    let record = h.store.refresh_token(&issued.token).await.unwrap();
    assert_eq!((record.used_at, record.revoked_at), (None, None));
    h.store
        .rotate_refresh(&issued.token, &client, ttl, T0 + 1)
        .await
        .unwrap();
}

pub async fn concurrent_refreshes_with_one_token_succeed_once(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let ttl = Duration::from_secs(60);
    for round in 0..10 {
        let issued = h
            .store
            .issue_refresh(refresh(user_id, &client), T0)
            .await
            .unwrap();
        let (a, b) = tokio::join!(
            h.store.rotate_refresh(&issued.token, &client, ttl, T0 + 1),
            h.store.rotate_refresh(&issued.token, &client, ttl, T0 + 1),
        );
        let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {a:?} / {b:?}");
        let loser = if a.is_ok() { b } else { a };
        assert!(
            matches!(loser, Err(StoreError::Replayed { .. })),
            "{loser:?}"
        );
    }
}

fn opaque_claims(user_id: i64, client: &str, jti: &str, at: i64) -> OpaqueToken {
    OpaqueToken {
        jti: jti.into(),
        subject: user_id.to_string(),
        group_id: Some(2),
        roles: vec!["admin".into()],
        client_id: client.into(),
        scopes: vec!["read".into()],
        actor: None,
        issued_at: at,
        expires_at: at + 600,
        audiences: Vec::new(),
    }
}

pub async fn refresh_token_is_looked_up_with_its_user(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let issued = h
        .store
        .issue_refresh(refresh(user_id, &client), T0)
        .await
        .unwrap();
    let (token, user) = h.store.refresh_token_and_user(&issued.token).await.unwrap();
    assert_eq!(token, issued.record);
    assert_eq!(user, Some(h.store.user(user_id).await.unwrap()));
    // What the lookup shows after a rotation and a disable is what the rotation then does.
    h.store
        .rotate_refresh(&issued.token, &client, Duration::from_secs(60), T0 + 1)
        .await
        .unwrap();
    let (token, _) = h.store.refresh_token_and_user(&issued.token).await.unwrap();
    assert_eq!(token.used_at, Some(T0 + 1));
    h.store.set_disabled(user_id, true, T0 + 2).await.unwrap();
    let (_, user) = h.store.refresh_token_and_user(&issued.token).await.unwrap();
    assert!(user.unwrap().disabled);
    assert!(matches!(
        h.store.refresh_token_and_user("not-a-token").await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn rotation_stores_the_opaque_access_token_only_if_it_rotates(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let ttl = Duration::from_secs(3600);
    let first = h
        .store
        .issue_refresh(refresh(user_id, &client), T0)
        .await
        .unwrap();
    let opaque = NewOpaque::mint(opaque_claims(user_id, &client, "op-1", T0 + 1)).unwrap();
    let access = AccessLink {
        jti: "op-1",
        expires_at: T0 + 601,
    };
    let second = h
        .store
        .rotate_refresh_storing(
            &first.token,
            &client,
            ttl,
            Some(access),
            Some(&opaque),
            T0 + 1,
        )
        .await
        .unwrap();
    assert_eq!(second.record.family_id, first.record.family_id);
    assert_eq!(
        (second.record.issued_at, second.record.expires_at),
        (T0 + 1, T0 + 1 + 3600)
    );
    assert_eq!(
        h.store.opaque_token(opaque.token(), T0 + 2).await.unwrap(),
        *opaque.claims()
    );
    // Refused rotations store nothing: another client's attempt, then a replay (which
    // revokes the family and denies the access token linked to it).
    for (presented, client_id, jti) in [
        (&second.token, "other", "op-2"),
        (&first.token, client.as_str(), "op-3"),
    ] {
        let refused = NewOpaque::mint(opaque_claims(user_id, &client, jti, T0 + 3)).unwrap();
        let link = AccessLink {
            jti,
            expires_at: T0 + 603,
        };
        let error = h
            .store
            .rotate_refresh_storing(
                presented,
                client_id,
                ttl,
                Some(link),
                Some(&refused),
                T0 + 3,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::WrongClient { .. } | StoreError::Replayed { .. }
            ),
            "{error}"
        );
        assert!(matches!(
            h.store.opaque_token(refused.token(), T0 + 4).await,
            Err(StoreError::NotFound { .. })
        ));
    }
    let revs = h.store.revocations(T0 + 4).await.unwrap();
    assert_eq!(revs.denied_jtis, vec![("op-1".to_owned(), T0 + 601)]);
    assert!(
        h.store
            .refresh_token(&second.token)
            .await
            .unwrap()
            .revoked_at
            .is_some()
    );
}

pub async fn concurrent_rotations_one_wins_the_other_revokes_the_family(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let ttl = Duration::from_secs(60);
    for round in 0..10 {
        let issued = h
            .store
            .issue_refresh(refresh(user_id, &client), T0)
            .await
            .unwrap();
        let (jti_a, jti_b) = (format!("a-{round}"), format!("b-{round}"));
        let opaque_a = NewOpaque::mint(opaque_claims(user_id, &client, &jti_a, T0 + 1)).unwrap();
        let opaque_b = NewOpaque::mint(opaque_claims(user_id, &client, &jti_b, T0 + 1)).unwrap();
        let link = |jti| {
            Some(AccessLink {
                jti,
                expires_at: T0 + 601,
            })
        };
        let (a, b) = tokio::join!(
            h.store.rotate_refresh_storing(
                &issued.token,
                &client,
                ttl,
                link(&jti_a),
                Some(&opaque_a),
                T0 + 1
            ),
            h.store.rotate_refresh_storing(
                &issued.token,
                &client,
                ttl,
                link(&jti_b),
                Some(&opaque_b),
                T0 + 1
            ),
        );
        let (winner, loser, won, lost) = match (a, b) {
            (Ok(w), Err(l)) => (w, l, (&jti_a, &opaque_a), &opaque_b),
            (Err(l), Ok(w)) => (w, l, (&jti_b, &opaque_b), &opaque_a),
            (a, b) => panic!("round {round}: exactly one must win: {a:?} / {b:?}"),
        };
        assert!(matches!(loser, StoreError::Replayed { .. }), "{loser:?}");
        // The loser stored nothing; the replay revoked the family, the winner's new refresh
        // token with it, and denied the winner's access token.
        assert!(h.store.opaque_token(lost.token(), T0 + 2).await.is_err());
        assert!(h.store.opaque_token(won.1.token(), T0 + 2).await.is_ok());
        let record = h.store.refresh_token(&winner.token).await.unwrap();
        assert!(record.revoked_at.is_some(), "round {round}");
        let denied = h.store.revocations(T0 + 2).await.unwrap().denied_jtis;
        assert!(
            denied.contains(&(won.0.clone(), T0 + 601)),
            "round {round}: {denied:?}"
        );
        assert!(
            h.store
                .rotate_refresh(&winner.token, &client, ttl, T0 + 3)
                .await
                .is_err()
        );
    }
}

fn code_for(user_id: i64, client: &str) -> NewCode {
    NewCode {
        client_id: client.into(),
        user_id,
        redirect_uri: Some("https://app.example/cb".into()),
        scope: "read write".into(),
        pkce_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        pkce_method: Some("S256".into()),
        ttl: NewCode::DEFAULT_TTL,
        nonce: None,
        auth_time: None,
        resources: Vec::new(),
    }
}

pub async fn codes_are_single_use_and_replay_revokes_what_they_issued(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let code = h
        .store
        .create_code(code_for(user_id, &client), T0)
        .await
        .unwrap();
    assert_eq!(code.len(), 43);
    let taken = h.store.take_code(&code, T0 + 5).await.unwrap();
    assert_eq!(taken.client_id, client);
    assert_eq!(
        taken.redirect_uri.as_deref(),
        Some("https://app.example/cb")
    );
    assert_eq!(taken.pkce_method.as_deref(), Some("S256"));
    assert_eq!(taken.expires_at, T0 + 60);
    let issued = h
        .store
        .issue_for_code(
            &taken,
            Some(refresh(user_id, &client)),
            AccessLink {
                jti: "jti-1",
                expires_at: T0 + 600,
            },
            T0 + 5,
        )
        .await
        .unwrap()
        .unwrap();
    let error = h.store.take_code(&code, T0 + 6).await.unwrap_err();
    assert!(matches!(error, StoreError::Replayed { .. }), "{error}");
    assert!(
        h.store
            .refresh_token(&issued.token)
            .await
            .unwrap()
            .revoked_at
            .is_some()
    );
    let revs = h.store.revocations(T0 + 6).await.unwrap();
    assert_eq!(revs.denied_jtis, vec![("jti-1".to_owned(), T0 + 600)]);
    // Expired and unknown codes.
    let late = h
        .store
        .create_code(code_for(user_id, &client), T0)
        .await
        .unwrap();
    let error = h.store.take_code(&late, T0 + 60).await.unwrap_err();
    assert!(matches!(error, StoreError::Expired { .. }), "{error}");
    assert!(matches!(
        h.store.take_code("nope", T0).await,
        Err(StoreError::NotFound { .. })
    ));
    // A replay that lands between the take and the issue is covered by
    // `a_redeemed_code_issues_and_records_in_one_step`: nothing is issued.
}

pub async fn a_redeemed_code_issues_and_records_in_one_step(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let access = |jti| AccessLink {
        jti,
        expires_at: T0 + 600,
    };
    // With a refresh token: it works, and a replay of the code revokes it and the access
    // token.
    let code = h
        .store
        .create_code(code_for(user_id, &client), T0)
        .await
        .unwrap();
    let taken = h.store.take_code(&code, T0 + 1).await.unwrap();
    let issued = h
        .store
        .issue_for_code(
            &taken,
            Some(refresh(user_id, &client)),
            access("c-1"),
            T0 + 1,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issued.record.scope, "read");
    assert_eq!(
        (issued.record.issued_at, issued.record.expires_at),
        (T0 + 1, T0 + 1 + 3600)
    );
    assert_eq!(
        h.store.refresh_token(&issued.token).await.unwrap(),
        issued.record
    );
    let error = h.store.take_code(&code, T0 + 2).await.unwrap_err();
    assert!(matches!(error, StoreError::Replayed { .. }), "{error}");
    assert!(
        h.store
            .refresh_token(&issued.token)
            .await
            .unwrap()
            .revoked_at
            .is_some()
    );
    let denied = h.store.revocations(T0 + 2).await.unwrap().denied_jtis;
    assert_eq!(denied, vec![("c-1".to_owned(), T0 + 600)]);
    // Without one (the client may not refresh): the access token is recorded all the same.
    let code = h
        .store
        .create_code(code_for(user_id, &client), T0)
        .await
        .unwrap();
    let taken = h.store.take_code(&code, T0 + 3).await.unwrap();
    let none = h
        .store
        .issue_for_code(&taken, None, access("c-2"), T0 + 3)
        .await
        .unwrap();
    assert!(none.is_none());
    assert!(h.store.take_code(&code, T0 + 4).await.is_err());
    let denied = h.store.revocations(T0 + 4).await.unwrap().denied_jtis;
    assert!(denied.contains(&("c-2".to_owned(), T0 + 600)), "{denied:?}");
    // A replay between the take and the issue: nothing is issued, the access token denied.
    let code = h
        .store
        .create_code(code_for(user_id, &client), T0)
        .await
        .unwrap();
    let taken = h.store.take_code(&code, T0 + 5).await.unwrap();
    assert!(h.store.take_code(&code, T0 + 6).await.is_err());
    let error = h
        .store
        .issue_for_code(
            &taken,
            Some(refresh(user_id, &client)),
            access("c-3"),
            T0 + 7,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Replayed { .. }), "{error}");
    let denied = h.store.revocations(T0 + 7).await.unwrap().denied_jtis;
    assert!(denied.contains(&("c-3".to_owned(), T0 + 600)), "{denied:?}");
    assert_eq!(
        h.raw_text("SELECT CAST(COUNT(*) AS TEXT) FROM refresh_tokens")
            .await,
        "1",
        "only the first redemption's refresh token exists"
    );
}

pub async fn concurrent_code_redemptions_succeed_once(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    for round in 0..10 {
        let code = h
            .store
            .create_code(code_for(user_id, &client), T0)
            .await
            .unwrap();
        let (a, b) = tokio::join!(
            h.store.take_code(&code, T0 + 1),
            h.store.take_code(&code, T0 + 1)
        );
        assert_eq!(
            [&a, &b].iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: {a:?} / {b:?}"
        );
    }
}

pub async fn revocations_load_in_bulk_and_purge(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    h.store.deny_jti("old", T0 + 10).await.unwrap();
    h.store.deny_jti("new", T0 + 200_000).await.unwrap();
    h.store.deny_jti("new", T0 + 200_000).await.unwrap();
    let revs = h.store.revocations(T0 + 10).await.unwrap();
    assert_eq!(revs.denied_jtis, vec![("new".to_owned(), T0 + 200_000)]);
    assert!(revs.not_before.is_empty());
    let expired = h
        .store
        .issue_refresh(refresh(user_id, &client), T0)
        .await
        .unwrap();
    let code = h
        .store
        .create_code(code_for(user_id, &client), T0)
        .await
        .unwrap();
    let purged = h.store.purge_expired(T0 + 86_400 + 61).await.unwrap();
    assert_eq!(purged, 3, "one jti, one refresh token, one code");
    assert!(h.store.refresh_token(&expired.token).await.is_err());
    assert!(matches!(
        h.store.take_code(&code, T0).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(h.store.revocations(T0).await.unwrap().denied_jtis.len(), 1);
}

pub async fn group_and_role_changes_are_mirrored_with_the_revocations(h: &Harness) {
    let (user_id, _) = user_and_client(h).await;
    let other = h
        .store
        .add_user(
            NewUser {
                account: "bob".into(),
                group_id: 5,
                ..NewUser::default()
            },
            None,
            T0,
        )
        .await
        .unwrap();
    assert!(h.store.revocations(T0).await.unwrap().identities.is_empty());
    // A profile change or a rename is no identity change.
    let rename = UserPatch {
        account: Some("robert".into()),
        display_name: Some(Some("Bob".into())),
        ..UserPatch::default()
    };
    h.store.update_user(other.id, rename, T0 + 1).await.unwrap();
    assert!(h.store.revocations(T0).await.unwrap().identities.is_empty());
    // A group move and a demotion are, with the values as they are now.
    let demote = UserPatch {
        group_id: Some(9),
        roles: Some(vec![]),
        ..UserPatch::default()
    };
    h.store.update_user(user_id, demote, T0 + 2).await.unwrap();
    let promote = UserPatch {
        roles: Some(vec!["admin".into()]),
        ..UserPatch::default()
    };
    h.store
        .update_user(other.id, promote, T0 + 3)
        .await
        .unwrap();
    let identities = h.store.revocations(T0 + 3).await.unwrap().identities;
    let current: Vec<(i64, i64, Vec<String>)> = identities
        .into_iter()
        .map(|c| (c.user_id, c.group_id, c.roles))
        .collect();
    let mut expected = vec![
        (user_id, 9, vec![]),
        (other.id, 5, vec!["admin".to_owned()]),
    ];
    expected.sort();
    assert_eq!(current, expected);
    // Nobody was signed out by it.
    assert!(
        h.store
            .revocations(T0 + 3)
            .await
            .unwrap()
            .not_before
            .is_empty()
    );
}

pub async fn revoking_a_family_denies_its_access_tokens(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let ttl = Duration::from_secs(3600);
    let link = |jti, expires_at| Some(AccessLink { jti, expires_at });
    let first = h
        .store
        .issue_refresh_with(refresh(user_id, &client), link("at-1", T0 + 600), T0)
        .await
        .unwrap();
    let second = h
        .store
        .rotate_refresh_with(&first.token, &client, ttl, link("at-2", T0 + 610), T0 + 10)
        .await
        .unwrap();
    // An access token already expired needs no denylist entry; another family is untouched.
    h.store
        .rotate_refresh_with(&second.token, &client, ttl, link("at-3", T0 + 20), T0 + 15)
        .await
        .unwrap();
    h.store
        .issue_refresh_with(refresh(user_id, &client), link("other", T0 + 600), T0)
        .await
        .unwrap();
    assert!(
        h.store
            .revocations(T0 + 30)
            .await
            .unwrap()
            .denied_jtis
            .is_empty()
    );
    // Reuse of the first token: a replay revokes the family and its live access tokens.
    let error = h
        .store
        .rotate_refresh(&first.token, &client, ttl, T0 + 30)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Replayed { .. }), "{error}");
    let denied = h.store.revocations(T0 + 30).await.unwrap().denied_jtis;
    assert_eq!(
        denied,
        vec![("at-1".to_owned(), T0 + 600), ("at-2".to_owned(), T0 + 610)]
    );
    // Links are purged with the tokens they would have outlived.
    let purged = h.store.purge_expired(T0 + 100_000).await.unwrap();
    assert!(purged >= 4, "{purged}");
}

pub async fn login_sessions_end_by_expiry_logout_and_revocation(h: &Harness) {
    let (user_id, _) = user_and_client(h).await;
    let ttl = Duration::from_secs(600);
    let token = h
        .store
        .create_login_session(user_id, ttl, T0)
        .await
        .unwrap();
    assert_eq!(token.len(), 43);
    assert_eq!(
        h.store
            .login_session(&token, T0 + 10)
            .await
            .unwrap()
            .user
            .id,
        user_id
    );
    assert_eq!(
        h.store
            .login_session(&token, T0 + 10)
            .await
            .unwrap()
            .authenticated_at,
        T0,
        "the session's start is when the user authenticated"
    );
    assert!(matches!(
        h.store.login_session(&token, T0 + 600).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(h.store.login_session("unknown", T0).await.is_err());
    // Logout.
    let token = h
        .store
        .create_login_session(user_id, ttl, T0)
        .await
        .unwrap();
    h.store.end_login_session(&token).await.unwrap();
    assert!(h.store.login_session(&token, T0 + 1).await.is_err());
    // "Log out everywhere" ends sessions created before it, not after.
    let before = h
        .store
        .create_login_session(user_id, ttl, T0)
        .await
        .unwrap();
    h.store.revoke_user_tokens(user_id, T0 + 5).await.unwrap();
    let after = h
        .store
        .create_login_session(user_id, ttl, T0 + 6)
        .await
        .unwrap();
    assert!(h.store.login_session(&before, T0 + 7).await.is_err());
    assert!(h.store.login_session(&after, T0 + 7).await.is_ok());
    // ...and removes them (only the later one is left to expire).
    let listed = h.store.login_sessions(Some(user_id), T0 + 7).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(h.store.purge_expired(T0 + 10_000).await.unwrap() >= 1);
    assert!(
        h.store.login_session(&after, T0 + 7).await.is_err(),
        "purged"
    );
}

/// A second user, for sessions of more than one person.
async fn bob(h: &Harness) -> i64 {
    let bob = NewUser {
        account: "bob".into(),
        ..NewUser::default()
    };
    h.store.add_user(bob, None, T0).await.unwrap().id
}

fn gone<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound { .. }))
}

pub async fn session_ids_are_unique_public_and_not_the_token(h: &Harness) {
    let (user_id, _) = user_and_client(h).await;
    let ttl = Duration::from_secs(600);
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..5 {
        let token = h
            .store
            .create_login_session(user_id, ttl, T0)
            .await
            .unwrap();
        let session = h.store.login_session(&token, T0 + 1).await.unwrap();
        assert_eq!(session.last_seen_at, T0, "last seen at its start");
        assert_eq!(session.id.len(), 22, "128 random bits, base64url");
        assert_ne!(session.id, token);
        assert!(!token.contains(&session.id) && !session.id.contains(&token));
        ids.push(session.id);
        tokens.push(token);
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    // The id names the session the token opens, in the list too.
    let listed = h.store.login_sessions(None, T0 + 1).await.unwrap();
    let mut listed_ids: Vec<String> = listed.iter().map(|s| s.id.clone()).collect();
    listed_ids.sort();
    assert_eq!(listed_ids, unique);
    // A second session with a taken id is refused by the unique index.
    let taken = format!(
        "INSERT INTO login_sessions (token_hash, id, user_id, created_at, last_seen_at, expires_at)
         VALUES ({}, '{}', {user_id}, {T0}, {T0}, {})",
        match h.store.backend() {
            "postgres" => "decode('00', 'hex')",
            _ => "x'00'",
        },
        ids[0],
        T0 + 600
    );
    assert!(h.raw(&taken).await.is_err(), "ids are unique");
}

pub async fn live_sessions_end_when_idle_or_too_old(h: &Harness) {
    let (user_id, _) = user_and_client(h).await;
    let limits = SessionLimits {
        absolute: Duration::from_secs(3600),
        idle: Some(Duration::from_secs(600)),
    };
    let day = Duration::from_secs(86_400);
    let token = h
        .store
        .create_login_session(user_id, day, T0)
        .await
        .unwrap();
    let session = h
        .store
        .live_session(&token, &limits, T0 + 600)
        .await
        .unwrap();
    assert_eq!((session.user.id, session.authenticated_at), (user_id, T0));
    assert!(
        gone(h.store.live_session(&token, &limits, T0 + 601).await),
        "idle"
    );
    // The login page's own lookup knows no idle timeout.
    assert!(h.store.login_session(&token, T0 + 601).await.is_ok());
    // Seen again: idle counts from then.
    let fresh = h
        .store
        .create_login_session(user_id, day, T0)
        .await
        .unwrap();
    let id = h.store.login_session(&fresh, T0).await.unwrap().id;
    let coalesce = Duration::from_secs(60);
    let mut seen = T0;
    while seen + 500 < T0 + 3600 {
        seen += 500;
        assert!(
            h.store.live_session(&fresh, &limits, seen).await.is_ok(),
            "{seen}"
        );
        assert!(
            h.store
                .touch_login_session(&id, seen, coalesce)
                .await
                .unwrap()
        );
    }
    assert_eq!(
        h.store
            .live_session(&fresh, &limits, T0 + 3599)
            .await
            .unwrap()
            .last_seen_at,
        seen
    );
    // However active, it ends `absolute` after sign-in.
    assert!(
        gone(h.store.live_session(&fresh, &limits, T0 + 3600).await),
        "absolute lifetime"
    );
    assert!(h.store.login_session(&fresh, T0 + 3600).await.is_ok());
    // Without an idle timeout only the absolute lifetime and the stored expiry count.
    let no_idle = SessionLimits {
        absolute: Duration::from_secs(3600),
        idle: None,
    };
    assert!(
        h.store
            .live_session(&token, &no_idle, T0 + 3599)
            .await
            .is_ok()
    );
    assert!(gone(
        h.store.live_session(&token, &no_idle, T0 + 3600).await
    ));
    let short = h
        .store
        .create_login_session(user_id, Duration::from_secs(100), T0)
        .await
        .unwrap();
    assert!(
        h.store
            .live_session(&short, &no_idle, T0 + 99)
            .await
            .is_ok()
    );
    assert!(
        gone(h.store.live_session(&short, &no_idle, T0 + 100).await),
        "stored expiry"
    );
    assert!(gone(h.store.live_session("unknown", &no_idle, T0).await));
}

pub async fn touching_a_session_coalesces_writes(h: &Harness) {
    let (user_id, _) = user_and_client(h).await;
    let token = h
        .store
        .create_login_session(user_id, Duration::from_secs(600), T0)
        .await
        .unwrap();
    let id = h.store.login_session(&token, T0).await.unwrap().id;
    let coalesce = Duration::from_secs(60);
    let last_seen = |now| {
        let token = token.clone();
        async move {
            h.store
                .login_session(&token, now)
                .await
                .unwrap()
                .last_seen_at
        }
    };
    // Within `coalesce` of the last write: nothing is written.
    assert!(
        !h.store
            .touch_login_session(&id, T0 + 30, coalesce)
            .await
            .unwrap()
    );
    assert!(
        !h.store
            .touch_login_session(&id, T0 + 60, coalesce)
            .await
            .unwrap()
    );
    assert_eq!(last_seen(T0 + 60).await, T0);
    assert!(
        h.store
            .touch_login_session(&id, T0 + 61, coalesce)
            .await
            .unwrap()
    );
    assert_eq!(last_seen(T0 + 61).await, T0 + 61);
    assert!(
        !h.store
            .touch_login_session(&id, T0 + 100, coalesce)
            .await
            .unwrap()
    );
    assert_eq!(
        last_seen(T0 + 100).await,
        T0 + 61,
        "the second touch wrote nothing"
    );
    assert!(
        h.store
            .touch_login_session(&id, T0 + 122, coalesce)
            .await
            .unwrap()
    );
    // Never backwards (a late, slower instance), never twice for one instant.
    assert!(
        !h.store
            .touch_login_session(&id, T0 + 110, Duration::ZERO)
            .await
            .unwrap()
    );
    assert!(
        !h.store
            .touch_login_session(&id, T0 + 122, Duration::ZERO)
            .await
            .unwrap()
    );
    assert_eq!(last_seen(T0 + 122).await, T0 + 122);
    // Unknown and expired sessions are not written.
    assert!(
        !h.store
            .touch_login_session("unknown", T0 + 200, coalesce)
            .await
            .unwrap()
    );
    assert!(
        !h.store
            .touch_login_session(&id, T0 + 600, coalesce)
            .await
            .unwrap()
    );
}

pub async fn sessions_are_listed_by_user_without_secrets(h: &Harness) {
    let (alice, _) = user_and_client(h).await;
    let bob = bob(h).await;
    let ttl = Duration::from_secs(600);
    let mut tokens = Vec::new();
    for (user, at) in [(alice, T0), (bob, T0 + 1), (alice, T0 + 2)] {
        tokens.push(h.store.create_login_session(user, ttl, at).await.unwrap());
    }
    let ids = async |tokens: &[String]| {
        let mut ids = Vec::new();
        for t in tokens {
            ids.push(h.store.login_session(t, T0 + 3).await.unwrap().id);
        }
        ids
    };
    let ids = ids(&tokens).await;
    let all = h.store.login_sessions(None, T0 + 3).await.unwrap();
    assert_eq!(
        all.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [&ids[2], &ids[1], &ids[0]],
        "newest first"
    );
    assert_eq!(
        all.iter()
            .map(|s| (
                s.user_id,
                s.account.as_str(),
                s.created_at,
                s.last_seen_at,
                s.expires_at
            ))
            .collect::<Vec<_>>(),
        [
            (alice, "alice", T0 + 2, T0 + 2, T0 + 602),
            (bob, "bob", T0 + 1, T0 + 1, T0 + 601),
            (alice, "alice", T0, T0, T0 + 600),
        ]
    );
    let shown = format!("{all:?}");
    for token in &tokens {
        assert!(!shown.contains(token.as_str()), "no token in {shown}");
    }
    let mine = h.store.login_sessions(Some(alice), T0 + 3).await.unwrap();
    assert_eq!(
        mine.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [&ids[2], &ids[0]]
    );
    assert!(
        h.store
            .login_sessions(Some(9999), T0 + 3)
            .await
            .unwrap()
            .is_empty()
    );
    // Expired ones are not listed, nor ones the user's not-before ended.
    let later = h.store.login_sessions(None, T0 + 601).await.unwrap();
    assert_eq!(
        later.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [&ids[2]]
    );
    h.store.revoke_user_tokens(alice, T0 + 4).await.unwrap();
    let now = h.store.login_sessions(None, T0 + 5).await.unwrap();
    assert_eq!(
        now.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [&ids[1]]
    );
}

pub async fn sessions_are_revoked_by_id_and_by_user(h: &Harness) {
    let (alice, _) = user_and_client(h).await;
    let bob = bob(h).await;
    let ttl = Duration::from_secs(600);
    let limits = SessionLimits {
        absolute: ttl,
        idle: None,
    };
    let a1 = h.store.create_login_session(alice, ttl, T0).await.unwrap();
    let a2 = h.store.create_login_session(alice, ttl, T0).await.unwrap();
    let a3 = h.store.create_login_session(alice, ttl, T0).await.unwrap();
    let b1 = h.store.create_login_session(bob, ttl, T0).await.unwrap();
    let id = h.store.login_session(&a1, T0).await.unwrap().id;
    assert!(h.store.revoke_login_session(&id).await.unwrap());
    assert!(gone(h.store.login_session(&a1, T0 + 1).await));
    assert!(gone(h.store.live_session(&a1, &limits, T0 + 1).await));
    assert!(
        !h.store.revoke_login_session(&id).await.unwrap(),
        "already gone"
    );
    assert!(!h.store.revoke_login_session("unknown").await.unwrap());
    assert!(h.store.live_session(&a2, &limits, T0 + 1).await.is_ok());
    // By user: every session of that user, and only those.
    assert_eq!(h.store.revoke_user_sessions(alice).await.unwrap(), 2);
    assert!(gone(h.store.live_session(&a2, &limits, T0 + 1).await));
    assert!(gone(h.store.live_session(&a3, &limits, T0 + 1).await));
    assert!(h.store.live_session(&b1, &limits, T0 + 1).await.is_ok());
    assert_eq!(h.store.revoke_user_sessions(alice).await.unwrap(), 0);
    assert_eq!(h.store.revoke_user_sessions(9999).await.unwrap(), 0);
    // The user can sign in again.
    let again = h
        .store
        .create_login_session(alice, ttl, T0 + 2)
        .await
        .unwrap();
    assert!(h.store.live_session(&again, &limits, T0 + 3).await.is_ok());
}

pub async fn user_revocation_ends_live_sessions(h: &Harness) {
    let (user_id, _) = user_and_client(h).await;
    let ttl = Duration::from_secs(3600);
    let limits = SessionLimits {
        absolute: ttl,
        idle: Some(Duration::from_secs(600)),
    };
    let start = async |at| {
        h.store
            .create_login_session(user_id, ttl, at)
            .await
            .unwrap()
    };
    // `user revoke-tokens`: sessions started until then end, later ones live.
    let before = start(T0).await;
    h.store.revoke_user_tokens(user_id, T0 + 5).await.unwrap();
    let after = start(T0 + 6).await;
    assert!(gone(h.store.live_session(&before, &limits, T0 + 7).await));
    assert!(h.store.live_session(&after, &limits, T0 + 7).await.is_ok());
    // Renewal does not revive a revoked session.
    let id = h.store.login_sessions(None, T0 + 7).await.unwrap()[0]
        .id
        .clone();
    assert!(
        h.store
            .touch_login_session(&id, T0 + 100, Duration::ZERO)
            .await
            .unwrap()
    );
    // A password change.
    h.store
        .set_password(user_id, "another long password", T0 + 200)
        .await
        .unwrap();
    assert!(gone(h.store.live_session(&after, &limits, T0 + 201).await));
    let fresh = start(T0 + 201).await;
    assert!(
        h.store
            .live_session(&fresh, &limits, T0 + 202)
            .await
            .is_ok()
    );
    // `user disable`.
    h.store.set_disabled(user_id, true, T0 + 300).await.unwrap();
    assert!(
        h.store
            .live_session(&fresh, &limits, T0 + 301)
            .await
            .is_err()
    );
    // A session started while disabled (the login page refuses that, but) is refused too.
    let stray = start(T0 + 302).await;
    assert!(matches!(
        h.store.live_session(&stray, &limits, T0 + 303).await,
        Err(StoreError::UserDisabled)
    ));
    assert!(
        h.store
            .login_sessions(Some(user_id), T0 + 303)
            .await
            .unwrap()
            .is_empty(),
        "a disabled user has no live sessions"
    );
}

pub async fn opaque_tokens_resolve_until_they_expire(h: &Harness) {
    let (user_id, client_id) = user_and_client(h).await;
    let new = OpaqueToken {
        jti: "jti-opaque-1".into(),
        subject: user_id.to_string(),
        group_id: Some(7),
        roles: vec!["admin".into(), "ops".into()],
        client_id: client_id.clone(),
        scopes: vec![],
        actor: Some("1".into()),
        issued_at: T0,
        expires_at: T0 + 3600,
        audiences: Vec::new(),
    };
    let token = h.store.issue_opaque(new).await.unwrap();
    assert_eq!(token.len(), 43);
    let found = h.store.opaque_token(&token, T0 + 10).await.unwrap();
    assert_eq!(
        found,
        OpaqueToken {
            jti: "jti-opaque-1".into(),
            subject: user_id.to_string(),
            group_id: Some(7),
            roles: vec!["admin".into(), "ops".into()],
            client_id,
            scopes: vec![],
            actor: Some("1".into()),
            issued_at: T0,
            expires_at: T0 + 3600,
            audiences: Vec::new(),
        }
    );
    assert!(matches!(
        h.store.opaque_token(&token, T0 + 3600).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(h.store.opaque_token("unknown", T0).await.is_err());
    assert!(h.store.purge_expired(T0 + 3600).await.unwrap() >= 1);
    assert!(h.store.opaque_token(&token, T0).await.is_err(), "purged");
}

pub async fn audit_log_is_append_only(h: &Harness) {
    let event = AuditEvent::new("user.add")
        .actor("cli:root")
        .subject("user:1")
        .client("web")
        .source("127.0.0.1")
        .request("req-1")
        .details(serde_json::json!({"account": "alice"}));
    let first = h.store.audit(&event, T0).await.unwrap();
    let second = h
        .store
        .audit(&AuditEvent::new("login.failed"), T0 + 1)
        .await
        .unwrap();
    assert!(second > first);
    let log = h.store.audit_log(None, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].id, second, "newest first");
    assert_eq!(log[1].event, event);
    assert_eq!(log[1].at, T0);
    assert_eq!(h.store.audit_log(Some(second), 10).await.unwrap().len(), 1);
    assert!(h.raw("UPDATE audit_log SET action = 'x'").await.is_err());
    assert!(h.raw("DELETE FROM audit_log").await.is_err());
    assert_eq!(h.store.audit_log(None, 10).await.unwrap().len(), 2);
}

pub async fn audit_log_is_searched_by_time_actor_subject_and_kind(h: &Harness) {
    let events = [
        (T0, "token.exchange", "user:1", "user:100"),
        (T0 + 10, "token.revoke", "user:1", "user:101"),
        (T0 + 20, "user.add", "cli:root", "user:100"),
        (T0 + 30, "tokenizer_x.odd", "cli:root", "user:7"),
        (T0 + 40, "token_x", "cli:root", "user:7"),
    ];
    for (at, action, actor, subject) in events {
        let event = AuditEvent::new(action).actor(actor).subject(subject);
        h.store.audit(&event, at).await.unwrap();
    }
    let search = |filter: AuditFilter| async move {
        h.store
            .audit_search(&AuditFilter {
                limit: 100,
                ..filter
            })
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.event.action)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        search(AuditFilter::default()).await,
        [
            "token.exchange",
            "token.revoke",
            "user.add",
            "tokenizer_x.odd",
            "token_x"
        ],
        "oldest first"
    );
    // A family is `kind` or `kind.*`; `_` and `%` are not wildcards.
    let kind = |k: &str| AuditFilter {
        kind: Some(k.into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        search(kind("token")).await,
        ["token.exchange", "token.revoke"]
    );
    assert_eq!(search(kind("token.revoke")).await, ["token.revoke"]);
    assert_eq!(search(kind("token_x")).await, ["token_x"]);
    assert!(search(kind("%")).await.is_empty());
    let actor = AuditFilter {
        actor: Some("cli:root".into()),
        since: Some(T0 + 25),
        ..AuditFilter::default()
    };
    assert_eq!(search(actor).await, ["tokenizer_x.odd", "token_x"]);
    let subject = AuditFilter {
        subject: Some("user:100".into()),
        ..AuditFilter::default()
    };
    assert_eq!(search(subject).await, ["token.exchange", "user.add"]);
    // The newest `limit`, still oldest first.
    let newest = h
        .store
        .audit_search(&AuditFilter {
            limit: 2,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let actions: Vec<_> = newest.iter().map(|r| r.event.action.as_str()).collect();
    assert_eq!(actions, ["tokenizer_x.odd", "token_x"]);
    assert_eq!(newest[1].to_json()["actor"], "cli:root");
    assert_eq!(newest[1].to_json()["at"], T0 + 40);
}

pub async fn login_failures_are_counted_atomically_and_forgotten(h: &Harness) {
    let keys = [
        "pair:192.0.2.1|user:alice".to_owned(),
        "source:192.0.2.1".to_owned(),
        "account:user:alice".to_owned(),
    ];
    assert_eq!(h.store.failure_counts(&keys).await.unwrap(), [None; 3]);
    let ms = T0 * 1000;
    for i in 0..3 {
        h.store.count_failure(&keys, ms + i, 60_000).await.unwrap();
    }
    let counts = h.store.failure_counts(&keys).await.unwrap();
    for count in counts {
        assert_eq!(
            count,
            Some(FailureCount {
                failures: 3,
                last_at: ms + 2
            })
        );
    }
    // Counted at once from several tasks (instances): none is lost.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = h.store.clone();
        let keys = keys.clone();
        tasks.push(tokio::spawn(async move {
            store.count_failure(&keys, ms + 10 + i, 60_000).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let counts = h.store.failure_counts(&keys).await.unwrap();
    assert_eq!(counts[0].unwrap().failures, 11);
    // A good login clears the pair and the account, not the source.
    h.store.clear_failures(&[&keys[0], &keys[2]]).await.unwrap();
    let counts = h.store.failure_counts(&keys).await.unwrap();
    assert_eq!(counts[0], None);
    assert_eq!(counts[1].unwrap().failures, 11);
    assert_eq!(counts[2], None);
    // A failure long after the last one starts over.
    h.store
        .count_failure(&keys, ms + 200_000, 60_000)
        .await
        .unwrap();
    assert_eq!(
        h.store.failure_counts(&keys).await.unwrap()[1]
            .unwrap()
            .failures,
        1
    );
}

/// An access token `jti` to link to a family, valid for ten minutes from `T0`.
fn link(jti: &str) -> AccessLink<'_> {
    AccessLink {
        jti,
        expires_at: T0 + 600,
    }
}

pub async fn codes_carry_the_openid_nonce_and_auth_time(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let login = T0 - 30;
    let openid = NewCode {
        nonce: Some("n-0S6_WzA2Mj".into()),
        auth_time: Some(login),
        ..code_for(user_id, &client)
    };
    let code = h.store.create_code(openid, T0).await.unwrap();
    let taken = h.store.take_code(&code, T0 + 1).await.unwrap();
    assert_eq!(taken.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert_eq!(taken.auth_time, Some(login));
    // The refresh token issued for it keeps the time of the login, not of the redemption.
    let new = NewRefresh {
        auth_time: taken.auth_time,
        ..refresh(user_id, &client)
    };
    let issued = h
        .store
        .issue_for_code(&taken, Some(new), link("oidc-1"), T0 + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(issued.record.auth_time, Some(login));
    assert_eq!(
        h.store.refresh_token(&issued.token).await.unwrap(),
        issued.record
    );
    // A plain OAuth code has neither.
    let code = h
        .store
        .create_code(code_for(user_id, &client), T0)
        .await
        .unwrap();
    let taken = h.store.take_code(&code, T0 + 1).await.unwrap();
    assert_eq!((taken.nonce, taken.auth_time), (None, None));
}

pub async fn refresh_auth_time_survives_rotation(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let ttl = Duration::from_secs(3600);
    let login = T0 - 60;
    let new = NewRefresh {
        auth_time: Some(login),
        ..refresh(user_id, &client)
    };
    let first = h
        .store
        .issue_refresh_with(new, Some(link("rot-1")), T0)
        .await
        .unwrap();
    assert_eq!(first.record.auth_time, Some(login));
    // Both rotate variants: the plain one and the one that links an access token.
    let second = h
        .store
        .rotate_refresh(&first.token, &client, ttl, T0 + 10)
        .await
        .unwrap();
    let third = h
        .store
        .rotate_refresh_storing(
            &second.token,
            &client,
            ttl,
            Some(link("rot-2")),
            None,
            T0 + 20,
        )
        .await
        .unwrap();
    assert_eq!(second.record.auth_time, Some(login));
    assert_eq!(third.record.auth_time, Some(login));
    assert_eq!(
        h.store.refresh_token(&third.token).await.unwrap(),
        third.record
    );
    let (looked_up, _) = h.store.refresh_token_and_user(&third.token).await.unwrap();
    assert_eq!(looked_up.auth_time, Some(login));
    // A family without one stays without one.
    let rotated = issued_and_rotated(h, refresh(user_id, &client)).await;
    assert_eq!(rotated.record.auth_time, None);
}

/// Issues `new` at `T0` and rotates it once, 10 s later: the successor, as stored.
async fn issued_and_rotated(h: &Harness, new: NewRefresh) -> IssuedRefresh {
    let client = new.client_id.clone();
    let ttl = new.ttl;
    let first = h.store.issue_refresh(new, T0).await.unwrap();
    let rotated = h
        .store
        .rotate_refresh(&first.token, &client, ttl, T0 + 10)
        .await
        .unwrap();
    assert_eq!(
        h.store.refresh_token(&rotated.token).await.unwrap(),
        rotated.record
    );
    rotated
}

/// `result` is the store's refusal of `field` ([`StoreError::Invalid`]).
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, field: &str, case: &str) {
    match result {
        Err(StoreError::Invalid { field: refused, .. }) if refused == field => {}
        other => panic!("{case}: expected {field} to be refused, got {other:?}"),
    }
}

/// `client` (the only one, `web` with app id `web-app`, with `secret`) reads back the same on
/// every path that builds a client from a row: by id, by app id, the list, and client
/// authentication (plain and with the back-off counts' left join).
async fn reads_back_everywhere(
    h: &Harness,
    client: &authgate::store::Client,
    secret: Option<&str>,
) {
    assert_eq!(&h.store.client("web").await.unwrap(), client);
    assert_eq!(&h.store.client_by_app_id("web-app").await.unwrap(), client);
    assert_eq!(h.store.clients().await.unwrap(), vec![client.clone()]);
    assert_eq!(&h.store.verify_client("web", secret).await.unwrap(), client);
    let keys = ["k1".to_owned(), "k2".to_owned(), "k3".to_owned()];
    let (stored, _) = h
        .store
        .stored_client_and_failures("web", &keys)
        .await
        .unwrap();
    assert_eq!(&stored.verify(secret).unwrap(), client);
}

pub async fn clients_carry_openid_logout_uris_and_id_token_alg(h: &Harness) {
    let logout = "https://app.example/logged-out";
    let new = NewClient {
        post_logout_redirect_uris: vec![logout.into(), logout.into(), "app.example:/bye".into()],
        id_token_alg: Some(KeyAlg::Es256),
        ..web_client("web")
    };
    let (client, secret) = h.store.add_client(new, None, T0).await.unwrap();
    assert_eq!(
        client.post_logout_redirect_uris,
        vec![logout, "app.example:/bye"],
        "duplicates dropped, order kept"
    );
    assert_eq!(client.id_token_alg, Some(KeyAlg::Es256));
    reads_back_everywhere(h, &client, secret.as_deref()).await;
    // Update: replace, then back to the defaults.
    let patch = ClientPatch {
        post_logout_redirect_uris: Some(vec!["https://app.example/bye".into()]),
        id_token_alg: Some(Some(KeyAlg::Rs256)),
        ..ClientPatch::default()
    };
    let updated = h.store.update_client("web", patch, T0 + 1).await.unwrap();
    assert_eq!(
        updated.post_logout_redirect_uris,
        vec!["https://app.example/bye"]
    );
    assert_eq!(updated.id_token_alg, Some(KeyAlg::Rs256));
    assert_eq!(h.store.client("web").await.unwrap(), updated);
    let patch = ClientPatch {
        post_logout_redirect_uris: Some(Vec::new()),
        id_token_alg: Some(None),
        ..ClientPatch::default()
    };
    let cleared = h.store.update_client("web", patch, T0 + 2).await.unwrap();
    assert!(cleared.post_logout_redirect_uris.is_empty());
    assert_eq!(cleared.id_token_alg, None);
    assert_eq!(h.store.client("web").await.unwrap(), cleared);
    // Refused like a redirect URI: relative, or with a fragment; EdDSA is no ID token alg.
    for uri in ["/logged-out", "https://app.example/bye#top"] {
        let new = NewClient {
            post_logout_redirect_uris: vec![uri.into()],
            ..web_client("bad")
        };
        assert_invalid(
            h.store.add_client(new, None, T0).await,
            "post_logout_redirect_uris",
            uri,
        );
        let patch = ClientPatch {
            post_logout_redirect_uris: Some(vec![uri.into()]),
            ..ClientPatch::default()
        };
        assert_invalid(
            h.store.update_client("web", patch, T0 + 3).await,
            "post_logout_redirect_uris",
            "update",
        );
    }
    let new = NewClient {
        id_token_alg: Some(KeyAlg::EdDsa),
        ..web_client("bad")
    };
    assert_invalid(
        h.store.add_client(new, None, T0).await,
        "id_token_alg",
        "add",
    );
    let patch = ClientPatch {
        id_token_alg: Some(Some(KeyAlg::EdDsa)),
        ..ClientPatch::default()
    };
    assert_invalid(
        h.store.update_client("web", patch, T0 + 3).await,
        "id_token_alg",
        "update",
    );
    // Nothing refused was stored.
    assert_eq!(h.store.client("web").await.unwrap(), cleared);
    assert!(h.store.client("bad").await.is_err());
}

/// Two RFC 8707 resources, in the order they were named.
fn resources() -> Vec<String> {
    vec![
        "https://api.example/".into(),
        "https://files.example/v2".into(),
    ]
}

/// Creates `code`, takes it and issues `refresh` for it (access token `jti`), at `T0`: what
/// the code binds and the refresh token it issued.
async fn redeem(
    h: &Harness,
    code: NewCode,
    refresh: NewRefresh,
    jti: &str,
) -> (TakenCode, IssuedRefresh) {
    let code = h.store.create_code(code, T0).await.unwrap();
    let taken = h.store.take_code(&code, T0 + 1).await.unwrap();
    let issued = h
        .store
        .issue_for_code(&taken, Some(refresh), link(jti), T0 + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        h.store.refresh_token(&issued.token).await.unwrap(),
        issued.record
    );
    (taken, issued)
}

pub async fn codes_carry_their_resources(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let code = NewCode {
        resources: resources(),
        ..code_for(user_id, &client)
    };
    // The refresh family issued for it is granted what the engine passes on.
    let refresh_token = NewRefresh {
        resources: resources(),
        ..refresh(user_id, &client)
    };
    let (taken, issued) = redeem(h, code, refresh_token, "res-code-1").await;
    assert_eq!(taken.resources, resources());
    assert_eq!(issued.record.resources, resources());
    // A code without resources has none.
    let plain = code_for(user_id, &client);
    let (taken, issued) = redeem(h, plain, refresh(user_id, &client), "res-code-2").await;
    assert!(taken.resources.is_empty());
    assert!(issued.record.resources.is_empty());
}

pub async fn refresh_resources_survive_rotation(h: &Harness) {
    let (user_id, client) = user_and_client(h).await;
    let ttl = Duration::from_secs(3600);
    let new = NewRefresh {
        resources: resources(),
        ..refresh(user_id, &client)
    };
    let first = h
        .store
        .issue_refresh_with(new, Some(link("res-rot-1")), T0)
        .await
        .unwrap();
    assert_eq!(first.record.resources, resources());
    // Every rotate variant: plain, linking an access token, and storing an opaque one too
    // (on PostgreSQL the whole rotation statement).
    let second = h
        .store
        .rotate_refresh(&first.token, &client, ttl, T0 + 10)
        .await
        .unwrap();
    let third = h
        .store
        .rotate_refresh_with(
            &second.token,
            &client,
            ttl,
            Some(link("res-rot-2")),
            T0 + 20,
        )
        .await
        .unwrap();
    let opaque = NewOpaque::mint(opaque_claims(user_id, &client, "res-rot-3", T0 + 30)).unwrap();
    let fourth = h
        .store
        .rotate_refresh_storing(
            &third.token,
            &client,
            ttl,
            Some(link("res-rot-3")),
            Some(&opaque),
            T0 + 30,
        )
        .await
        .unwrap();
    for issued in [&second, &third, &fourth] {
        assert_eq!(issued.record.resources, resources());
        assert_eq!(issued.record.family_id, first.record.family_id);
        assert_eq!(
            h.store
                .refresh_token(&issued.token)
                .await
                .unwrap()
                .resources,
            resources()
        );
    }
    assert_eq!(
        h.store.refresh_token(&fourth.token).await.unwrap(),
        fourth.record
    );
    let (looked_up, _) = h.store.refresh_token_and_user(&fourth.token).await.unwrap();
    assert_eq!(looked_up.resources, resources());
    // The rotated tokens keep theirs too (the refusal path reads them).
    assert_eq!(
        h.store.refresh_token(&first.token).await.unwrap().resources,
        resources()
    );
    // A family without resources stays without.
    let rotated = issued_and_rotated(h, refresh(user_id, &client)).await;
    assert!(rotated.record.resources.is_empty());
}

pub async fn clients_carry_resources_and_a_default(h: &Harness) {
    let api = "https://api.example/";
    let files = "https://files.example/v2";
    let new = NewClient {
        resources: vec![api.into(), files.into(), api.into()],
        default_resource: Some(api.into()),
        ..web_client("web")
    };
    let (client, secret) = h.store.add_client(new, None, T0).await.unwrap();
    assert_eq!(
        client.resources,
        vec![api, files],
        "duplicates dropped, order kept"
    );
    assert_eq!(client.default_resource.as_deref(), Some(api));
    reads_back_everywhere(h, &client, secret.as_deref()).await;
    // Update: another default among the resources; then new resources keeping the default.
    let patch = ClientPatch {
        default_resource: Some(Some(files.into())),
        ..ClientPatch::default()
    };
    let updated = h.store.update_client("web", patch, T0 + 1).await.unwrap();
    assert_eq!(updated.default_resource.as_deref(), Some(files));
    assert_eq!(updated.resources, vec![api, files]);
    let other = "urn:example:resource";
    let patch = ClientPatch {
        resources: Some(vec![files.into(), other.into(), other.into()]),
        ..ClientPatch::default()
    };
    let updated = h.store.update_client("web", patch, T0 + 2).await.unwrap();
    assert_eq!(updated.resources, vec![files, other]);
    assert_eq!(updated.default_resource.as_deref(), Some(files));
    assert_eq!(h.store.client("web").await.unwrap(), updated);
    // Refused: relative, a fragment, a default not among the resources; removing the
    // default's resource (the patched client is validated as a whole).
    for uri in ["/api", "https://api.example/#top"] {
        let new = NewClient {
            resources: vec![uri.into()],
            ..web_client("bad")
        };
        assert_invalid(h.store.add_client(new, None, T0).await, "resources", uri);
        let patch = ClientPatch {
            resources: Some(vec![files.into(), uri.into()]),
            ..ClientPatch::default()
        };
        assert_invalid(
            h.store.update_client("web", patch, T0 + 3).await,
            "resources",
            uri,
        );
    }
    let bad_defaults = [
        (vec![api.to_owned()], files),
        (Vec::new(), api),
        (vec![api.to_owned()], "https://api.example"),
    ];
    for (resources, default) in bad_defaults {
        let new = NewClient {
            resources,
            default_resource: Some(default.into()),
            ..web_client("bad")
        };
        assert_invalid(
            h.store.add_client(new, None, T0).await,
            "default_resource",
            default,
        );
    }
    let refused = [
        ClientPatch {
            default_resource: Some(Some(api.into())),
            ..ClientPatch::default()
        },
        ClientPatch {
            resources: Some(vec![other.into()]),
            ..ClientPatch::default()
        },
        ClientPatch {
            resources: Some(Vec::new()),
            ..ClientPatch::default()
        },
    ];
    for patch in refused {
        assert_invalid(
            h.store.update_client("web", patch.clone(), T0 + 3).await,
            "default_resource",
            &format!("{patch:?}"),
        );
    }
    // Nothing refused was stored.
    assert_eq!(h.store.client("web").await.unwrap(), updated);
    assert!(h.store.client("bad").await.is_err());
    // Removing the default's resource together with the default is fine; then everything.
    let patch = ClientPatch {
        resources: Some(vec![other.into()]),
        default_resource: Some(None),
        ..ClientPatch::default()
    };
    let updated = h.store.update_client("web", patch, T0 + 4).await.unwrap();
    assert_eq!(updated.resources, vec![other]);
    assert_eq!(updated.default_resource, None);
    assert_eq!(h.store.client("web").await.unwrap(), updated);
    let patch = ClientPatch {
        resources: Some(Vec::new()),
        ..ClientPatch::default()
    };
    let cleared = h.store.update_client("web", patch, T0 + 5).await.unwrap();
    assert!(cleared.resources.is_empty());
    assert_eq!(h.store.client("web").await.unwrap(), cleared);
}

pub async fn clients_with_resources_are_counted(h: &Harness) {
    assert_eq!(h.store.clients_with_resources().await.unwrap(), 0);
    h.store
        .add_client(web_client("plain"), None, T0)
        .await
        .unwrap();
    assert_eq!(h.store.clients_with_resources().await.unwrap(), 0);
    for id in ["one", "two"] {
        let new = NewClient {
            resources: resources(),
            ..web_client(id)
        };
        h.store.add_client(new, None, T0).await.unwrap();
    }
    assert_eq!(h.store.clients_with_resources().await.unwrap(), 2);
    let patch = ClientPatch {
        resources: Some(Vec::new()),
        ..ClientPatch::default()
    };
    h.store.update_client("one", patch, T0 + 1).await.unwrap();
    assert_eq!(h.store.clients_with_resources().await.unwrap(), 1);
    h.store.remove_client("two").await.unwrap();
    assert_eq!(h.store.clients_with_resources().await.unwrap(), 0);
}

pub async fn provider_links_map_one_identity_to_one_user(h: &Harness) {
    let (alice, _) = user_and_client(h).await;
    let bob = bob(h).await;
    let iss = "https://idp.example";
    assert_eq!(h.store.linked_user(iss, "sub-a", T0).await.unwrap(), None);
    h.store
        .link_user("corp", iss, "sub-a", alice, T0)
        .await
        .unwrap();
    // One identity, one user: linking it again (to anyone) is a conflict.
    let again = h.store.link_user("corp", iss, "sub-a", bob, T0 + 1).await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    // The same subject at another issuer is another identity.
    h.store
        .link_user("other", "https://idp2.example", "sub-a", bob, T0 + 1)
        .await
        .unwrap();
    assert_eq!(
        h.store.linked_user(iss, "sub-a", T0 + 5).await.unwrap(),
        Some(alice)
    );
    let links = h.store.user_links(alice).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].provider.as_str(), links[0].issuer.as_str()),
        ("corp", iss)
    );
    assert_eq!((links[0].created_at, links[0].last_used_at), (T0, T0 + 5));
    assert_eq!(h.store.unlink_user(alice, "nope").await.unwrap(), 0);
    assert_eq!(h.store.unlink_user(alice, "corp").await.unwrap(), 1);
    assert_eq!(
        h.store.linked_user(iss, "sub-a", T0 + 6).await.unwrap(),
        None
    );
    assert_eq!(h.store.user_links(bob).await.unwrap().len(), 1);
}

pub async fn pending_provider_logins_are_taken_once(h: &Harness) {
    use authgate::store::PendingLogin;
    let login = PendingLogin {
        provider: "corp".into(),
        nonce: "n-1".into(),
        verifier: "v-1".into(),
        return_to: "/open/signin?rd=%2F".into(),
    };
    let ttl = Duration::from_secs(600);
    let state = h
        .store
        .begin_provider_login(&login, "binding-1", ttl, T0)
        .await
        .unwrap();
    assert_eq!(state.len(), 43);
    // Another browser (binding) can neither take nor burn it.
    let foreign = h
        .store
        .take_provider_login(&state, "binding-2", T0 + 10)
        .await;
    assert!(
        matches!(foreign, Err(StoreError::NotFound { .. })),
        "{foreign:?}"
    );
    let taken = h
        .store
        .take_provider_login(&state, "binding-1", T0 + 10)
        .await
        .unwrap();
    assert_eq!(taken, login);
    // Taken: a replayed callback finds nothing.
    let replay = h
        .store
        .take_provider_login(&state, "binding-1", T0 + 11)
        .await;
    assert!(
        matches!(replay, Err(StoreError::NotFound { .. })),
        "{replay:?}"
    );
    // Expired: nothing either (and gone).
    let late = h
        .store
        .begin_provider_login(&login, "binding-1", ttl, T0)
        .await
        .unwrap();
    let expired = h
        .store
        .take_provider_login(&late, "binding-1", T0 + 600)
        .await;
    assert!(
        matches!(expired, Err(StoreError::NotFound { .. })),
        "{expired:?}"
    );
    let unknown = h.store.take_provider_login("nope", "binding-1", T0).await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { .. })),
        "{unknown:?}"
    );
}
