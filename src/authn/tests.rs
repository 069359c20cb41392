use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::HeaderMap;
use hyper::header::HeaderName;
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use serde_json::json;

use std::sync::Arc;

use serde_json::Value;

use super::keyset::{KeySet, VerifyingKey};
use super::*;

const OURS: &str = "https://authgate.test";
const IDP: &str = "https://idp.test";

struct Keys {
    encoding: EncodingKey,
    public_pem: String,
}

fn es256() -> Keys {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keypair");
    Keys {
        encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("encoding key"),
        public_pem: pair.public_key_pem(),
    }
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn policy(issuer: &str, audiences: &[&str]) -> IssuerPolicy {
    IssuerPolicy {
        issuer: issuer.into(),
        algorithms: vec![Algorithm::ES256],
        audiences: audiences.iter().map(|a| a.to_string()).collect(),
        accepted_types: vec!["at+jwt".into()],
        user_claim: "sub".into(),
        group_claim: Some("gid".into()),
        roles_claim: Some("roles".into()),
        subject_prefix: None,
        delegation: true,
        require_client_id: true,
    }
}

#[derive(Default)]
struct Denylist(Mutex<Vec<String>>);

impl Revocations for Denylist {
    fn is_revoked(&self, principal: &Principal) -> bool {
        let list = self.0.lock().expect("lock");
        principal.jti.as_ref().is_some_and(|j| list.contains(j))
    }
}

struct Fixture {
    ours: Keys,
    idp: Keys,
    verifier: Verifier,
    denylist: Arc<Denylist>,
}

fn fixture() -> Fixture {
    let (ours, idp) = (es256(), es256());
    let keys = Arc::new(KeySet::default());
    let decoding =
        |k: &Keys| DecodingKey::from_ec_pem(k.public_pem.as_bytes()).expect("decoding key");
    keys.insert(
        OURS,
        "k1",
        VerifyingKey::new(Algorithm::ES256, decoding(&ours)).expect("key"),
    );
    keys.insert(
        IDP,
        "idp1",
        VerifyingKey::new(Algorithm::ES256, decoding(&idp)).expect("key"),
    );
    let denylist = Arc::new(Denylist::default());
    let verifier = Verifier::new(
        keys,
        vec![
            policy(OURS, &["api"]),
            IssuerPolicy {
                accepted_types: vec![],
                roles_claim: None,
                subject_prefix: None,
                delegation: true,
                require_client_id: true,
                ..policy(IDP, &[])
            },
        ],
        5,
        100,
        Arc::clone(&denylist) as Arc<dyn Revocations>,
    );
    Fixture {
        ours,
        idp,
        verifier,
        denylist,
    }
}

fn claims() -> Value {
    json!({"iss": OURS, "sub": "42", "aud": "api", "exp": now() + 300, "iat": now(), "nbf": now(),
           "jti": "j-1", "gid": 7, "roles": ["admin"], "scope": "read write", "client_id": "app"})
}

fn sign(keys: &Keys, kid: &str, typ: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    header.typ = Some(typ.into());
    jsonwebtoken::encode(&header, claims, &keys.encoding).expect("sign")
}

fn raw_token(header: &Value, claims: &Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{signature}", part(header), part(claims))
}

fn rejected(f: &Fixture, token: &str) -> bool {
    matches!(
        f.verifier.verify(token),
        Err(AuthnError::InvalidToken(_) | AuthnError::UnknownKey { .. })
    )
}

#[test]
fn a_good_token_gives_the_principal() {
    let f = fixture();
    let p = f
        .verifier
        .verify(&sign(&f.ours, "k1", "at+jwt", &claims()))
        .expect("valid");
    assert_eq!(p.user_id, "42");
    assert_eq!(p.group_id.as_deref(), Some("7"));
    assert!(p.has_role("admin"));
    assert_eq!(p.scopes, vec!["read", "write"]);
    assert_eq!(p.client_id.as_deref(), Some("app"));
}

#[test]
fn alg_none_is_refused() {
    let f = fixture();
    let token = raw_token(
        &json!({"alg": "none", "typ": "at+jwt", "kid": "k1"}),
        &claims(),
        "",
    );
    assert!(rejected(&f, &token));
}

#[test]
fn hmac_with_our_public_key_as_secret_is_refused() {
    let f = fixture();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    header.typ = Some("at+jwt".into());
    let forged = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(f.ours.public_pem.as_bytes()),
    )
    .expect("sign");
    assert!(rejected(&f, &forged));
    // Nor can an HMAC key be bound to a public-key slot.
    assert_eq!(
        VerifyingKey::new(Algorithm::HS256, DecodingKey::from_secret(b"s")).err(),
        Some(keyset::KeyError::Symmetric)
    );
}

#[test]
fn tampered_payload_is_refused() {
    let f = fixture();
    let token = sign(&f.ours, "k1", "at+jwt", &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let mut evil = claims();
    evil["sub"] = json!("1");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(evil.to_string()),
        parts[2]
    );
    assert!(rejected(&f, &tampered));
}

#[test]
fn unknown_kid_and_foreign_keys_are_refused() {
    let f = fixture();
    assert!(rejected(&f, &sign(&f.ours, "nope", "at+jwt", &claims())));
    // The IdP's key, claiming our issuer: the kid is looked up among OUR keys only.
    assert!(rejected(&f, &sign(&f.idp, "idp1", "at+jwt", &claims())));
    // The IdP's key under our kid: signature fails.
    assert!(rejected(&f, &sign(&f.idp, "k1", "at+jwt", &claims())));
    // The IdP's own token with the IdP's key is fine.
    let mut theirs = claims();
    theirs["iss"] = json!(IDP);
    let p = f
        .verifier
        .verify(&sign(&f.idp, "idp1", "JWT", &theirs))
        .expect("idp token");
    assert!(
        p.roles.is_empty(),
        "external tokens get no roles unless configured"
    );
}

#[test]
fn time_claims_are_enforced() {
    let f = fixture();
    let with = |name: &str, value: Value| {
        let mut c = claims();
        c[name] = value;
        sign(&f.ours, "k1", "at+jwt", &c)
    };
    assert!(rejected(&f, &with("exp", json!(now() - 60))));
    assert!(rejected(&f, &with("nbf", json!(now() + 60))));
    assert!(rejected(&f, &with("exp", json!((now() + 300).to_string()))));
    assert!(rejected(&f, &with("nbf", json!(now().to_string()))));
    let mut no_exp = claims();
    no_exp.as_object_mut().expect("object").remove("exp");
    assert!(rejected(&f, &sign(&f.ours, "k1", "at+jwt", &no_exp)));
    // Within the leeway (5 s) an expired-by-2s token still passes.
    assert!(f.verifier.verify(&with("exp", json!(now() - 2))).is_ok());
}

#[test]
fn issuer_audience_and_type_are_enforced() {
    let f = fixture();
    let with = |name: &str, value: Value| {
        let mut c = claims();
        c[name] = value;
        sign(&f.ours, "k1", "at+jwt", &c)
    };
    assert!(rejected(&f, &with("iss", json!("https://evil.test"))));
    assert!(rejected(&f, &with("aud", json!("other"))));
    let mut no_aud = claims();
    no_aud.as_object_mut().expect("object").remove("aud");
    assert!(rejected(&f, &sign(&f.ours, "k1", "at+jwt", &no_aud)));
    // Something else we signed (an identity assertion) is not an access token.
    assert!(rejected(
        &f,
        &sign(&f.ours, "k1", "id-assertion+jwt", &claims())
    ));
    assert!(rejected(&f, "garbage"));
    assert!(rejected(&f, "a.b.c"));
}

#[test]
fn crit_headers_are_refused() {
    let f = fixture();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    header.typ = Some("at+jwt".into());
    header.crit = Some(vec!["exp-ext".into()]);
    let token = jsonwebtoken::encode(&header, &claims(), &f.ours.encoding).expect("sign");
    assert!(rejected(&f, &token));
}

#[test]
fn revocation_and_key_removal_apply_to_cached_tokens() {
    let f = fixture();
    let token = sign(&f.ours, "k1", "at+jwt", &claims());
    let first = f.verifier.verify(&token).expect("valid");
    let second = f.verifier.verify(&token).expect("valid, now cached");
    let third = f.verifier.verify(&token).expect("cached");
    assert!(
        !Arc::ptr_eq(&first, &second),
        "a token is cached on its second use"
    );
    assert!(
        Arc::ptr_eq(&second, &third),
        "third verification is served from the cache"
    );
    f.denylist.0.lock().expect("lock").push("j-1".into());
    assert!(rejected(&f, &token));
    f.denylist.0.lock().expect("lock").clear();
    assert!(f.verifier.verify(&token).is_ok());
    f.verifier.keys().remove(OURS, "k1");
    assert!(rejected(&f, &token), "a cached token dies with its key");
}

#[test]
fn a_connection_memo_is_checked_like_a_cache_hit() {
    let f = fixture();
    let memo = TokenMemo::default();
    let token = sign(&f.ours, "k1", "at+jwt", &claims());
    // Remembered once the shared cache holds it (its second use), then answered from the
    // memo: the shared cache is not asked again.
    f.verifier.verify_on(&token, Some(&memo)).expect("valid");
    let second = f.verifier.verify_on(&token, Some(&memo)).expect("cached");
    let hits = f.verifier.cache_stats().hits;
    let again = f.verifier.verify_on(&token, Some(&memo)).expect("memo");
    assert!(Arc::ptr_eq(&second, &again), "the memo answers a repeat");
    assert_eq!(
        f.verifier.cache_stats().hits,
        hits,
        "not from the shared cache"
    );
    // Another token on the connection is verified on its own, and replaces the memo.
    let mut claims_43 = claims();
    claims_43["sub"] = json!("43");
    claims_43["jti"] = json!("j-2");
    let other = sign(&f.ours, "k1", "at+jwt", &claims_43);
    let second = f.verifier.verify_on(&other, Some(&memo)).expect("valid");
    assert_eq!(second.user_id, "43");
    assert_eq!(
        f.verifier
            .verify_on(&token, Some(&memo))
            .expect("valid")
            .user_id,
        "42"
    );
    // A forged variant of the remembered token is not a repeat of it.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(f.verifier.verify_on(&forged, Some(&memo)).is_err());
    // Revocation and key removal reach a remembered token.
    f.denylist.0.lock().expect("lock").push("j-1".into());
    assert!(f.verifier.verify_on(&token, Some(&memo)).is_err());
    f.denylist.0.lock().expect("lock").clear();
    assert!(f.verifier.verify_on(&token, Some(&memo)).is_ok());
    f.verifier.keys().remove(OURS, "k1");
    assert!(
        f.verifier.verify_on(&token, Some(&memo)).is_err(),
        "dies with its key"
    );
}

#[test]
fn a_memo_is_stale_for_another_verifier_and_off_without_a_cache() {
    let f = fixture();
    let memo = TokenMemo::default();
    let token = sign(&f.ours, "k1", "at+jwt", &claims());
    f.verifier.verify_on(&token, Some(&memo)).expect("valid");
    f.verifier
        .verify_on(&token, Some(&memo))
        .expect("valid, remembered");
    // A reload's verifier does not trust this one's memo: it verifies again.
    let reloaded = fixture();
    assert!(
        reloaded.verifier.verify_on(&token, Some(&memo)).is_err(),
        "the new verifier does not know this key"
    );
    // With the cache off, every request pays for the signature: no memo either.
    let keys = Arc::clone(f.verifier.keys());
    let revocations = Arc::clone(&f.denylist) as Arc<dyn Revocations>;
    let uncached = Verifier::new(keys, vec![policy(OURS, &["api"])], 5, 0, revocations);
    let a = uncached.verify_on(&token, Some(&memo)).expect("valid");
    let b = uncached.verify_on(&token, Some(&memo)).expect("valid");
    assert!(!Arc::ptr_eq(&a, &b), "verified twice");
}

#[test]
fn cached_entries_expire_with_the_token() {
    let cache = VerifiedCache::new(2);
    let principal = |exp: u64| {
        Arc::new(Principal {
            issuer: OURS.into(),
            subject: "1".into(),
            user_id: "1".into(),
            group_id: None,
            roles: vec![],
            scopes: vec![],
            client_id: None,
            audiences: vec![],
            jti: None,
            key_id: "k1".into(),
            issued_at: None,
            expires_at: exp,
            actor: None,
        })
    };
    let (a, b, c) = (cache::digest("a"), cache::digest("b"), cache::digest("c"));
    cache.insert(a, principal(100), 50);
    assert!(cache.get(&a, 99).is_some());
    assert!(cache.get(&a, 100).is_none(), "gone at exp");
    cache.insert(a, principal(100), 50);
    cache.insert(b, principal(1000), 50);
    // Full, nothing expired at 60: everything goes, the newcomer gets in.
    cache.insert(c, principal(1000), 60);
    assert!(cache.len() <= 2, "bounded");
    assert!(cache.get(&c, 60).is_some(), "a full cache makes room");
    cache.insert(b, principal(1000), 60);
    cache.insert(a, principal(1000), 200);
    assert!(cache.len() <= 2, "bounded");
    assert!(cache.get(&a, 150).is_some());
}

#[test]
fn the_doorkeeper_admits_on_second_sight() {
    let door = cache::Doorkeeper::new();
    let (x, y) = (cache::digest("x"), cache::digest("y"));
    assert!(!door.seen_before(&x));
    assert!(!door.seen_before(&y));
    assert!(door.seen_before(&x));
    assert!(door.seen_before(&y));
}

#[test]
fn token_extraction_follows_rfc_6750() {
    let access = [HeaderName::from_static("access-token")];
    let map = |pairs: &[(&'static str, &'static str)]| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), v.parse().expect("value"));
        }
        h
    };
    assert_eq!(
        extract_token(&map(&[("authorization", "Bearer abc.def")]), &access),
        Ok("abc.def")
    );
    assert_eq!(
        extract_token(&map(&[("authorization", "bearer  abc")]), &access),
        Ok("abc")
    );
    assert_eq!(
        extract_token(&map(&[("access-token", "xyz")]), &access),
        Ok("xyz")
    );
    assert_eq!(extract_token(&map(&[]), &access), Err(AuthnError::Missing));
    assert_eq!(
        extract_token(&map(&[("authorization", "Basic Zm9v")]), &access),
        Err(AuthnError::Missing)
    );
    assert!(matches!(
        extract_token(
            &map(&[("authorization", "Bearer a"), ("access-token", "b")]),
            &access
        ),
        Err(AuthnError::InvalidRequest(_))
    ));
    assert!(matches!(
        extract_token(&map(&[("authorization", "Bearer a b")]), &access),
        Err(AuthnError::InvalidRequest(_))
    ));
    assert!(matches!(
        extract_token(&map(&[("authorization", "Bearer ")]), &access),
        Err(AuthnError::InvalidRequest(_))
    ));
}

#[test]
fn refusals_are_counted_under_the_right_reason() {
    use crate::authn::AuthFailure;
    let f = fixture();
    let reason = |token: &str| f.verifier.verify(token).expect_err("refused").failure();
    let mut expired = claims();
    expired["exp"] = json!(now() - 60);
    assert_eq!(
        reason(&sign(&f.ours, "k1", "at+jwt", &expired)),
        AuthFailure::Expired
    );
    // Signed by the external issuer's key but claiming to be ours under our kid.
    assert_eq!(
        reason(&sign(&f.idp, "k1", "at+jwt", &claims())),
        AuthFailure::BadSignature
    );
    assert_eq!(reason("garbage"), AuthFailure::Invalid);
    assert_eq!(AuthnError::Missing.failure(), AuthFailure::Missing);
    assert_eq!(AuthnError::Unavailable.failure(), AuthFailure::Unavailable);
    assert_eq!(
        AuthnError::InvalidToken(TokenDefect::Revoked).failure(),
        AuthFailure::Revoked
    );
}

#[test]
fn the_key_set_generation_moves_only_when_a_key_may_be_gone() {
    let keys = KeySet::default();
    let key = || {
        let pem = es256().public_pem;
        let decoding = DecodingKey::from_ec_pem(pem.as_bytes()).expect("decoding key");
        VerifyingKey::new(Algorithm::ES256, decoding).expect("key")
    };
    let start = keys.generation();
    keys.insert(OURS, "a", key());
    keys.insert(OURS, "b", key());
    keys.remove(OURS, "missing");
    assert_eq!(keys.generation(), start, "adding keys removes none");
    keys.insert(OURS, "a", key());
    let replaced = keys.generation();
    assert_ne!(replaced, start, "a replaced key is another key");
    keys.remove(OURS, "b");
    let removed = keys.generation();
    assert_ne!(removed, replaced);
    keys.replace_issuer(OURS, vec![("a".into(), key()), ("c".into(), key())]);
    assert_ne!(keys.generation(), removed, "replacing the set replaced a");
    let before = keys.generation();
    keys.replace_issuer(IDP, vec![("x".into(), key())]);
    assert_eq!(keys.generation(), before, "a new issuer's keys remove none");
}

#[test]
fn our_tokens_without_client_id_are_not_access_tokens() {
    // ID tokens carry `azp`, never `client_id`, and no `typ`: either alone refuses them.
    let f = fixture();
    let mut id_claims = claims();
    let map = id_claims.as_object_mut().expect("object");
    map.remove("client_id");
    map.insert("azp".into(), json!("app"));
    map.insert("nonce".into(), json!("n"));
    let as_access = sign(&f.ours, "k1", "at+jwt", &id_claims);
    assert!(matches!(
        f.verifier.verify(&as_access),
        Err(AuthnError::InvalidToken(TokenDefect::NotAnAccessToken))
    ));
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    header.typ = None;
    let untyped = jsonwebtoken::encode(&header, &claims(), &f.ours.encoding).expect("sign");
    assert!(matches!(
        f.verifier.verify(&untyped),
        Err(AuthnError::InvalidToken(TokenDefect::NotAnAccessToken))
    ));
    // And the id_token_hint check accepts the untyped ID token, expired or not.
    let mut expired = id_claims.clone();
    expired["exp"] = json!(now() - 3600);
    let hint = jsonwebtoken::encode(&header, &expired, &f.ours.encoding).expect("sign");
    let seen = f.verifier.id_token_hint(&hint, OURS).expect("a hint");
    assert_eq!(seen.subject, "42");
    assert_eq!(seen.audiences, vec!["api"]);
    // An access token (typed) is no hint.
    assert!(f.verifier.id_token_hint(&as_access, OURS).is_none());
}
