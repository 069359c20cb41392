//! The bearer validation hot path: a full signature check (cache disabled) against a repeat
//! token served by the verified-token cache, for ES256, EdDSA and RS256.
//!
//! `cargo bench --bench verify`

use std::hint::black_box;
use std::sync::Arc;

use authgate::authn::keyset::{KeySet, VerifyingKey};
use authgate::authn::{IssuerPolicy, NoRevocations, Verifier};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};

const ISS: &str = "https://authgate.bench";

fn keys(alg: Algorithm) -> (EncodingKey, DecodingKey) {
    let rc_alg = match alg {
        Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Algorithm::EdDSA => &rcgen::PKCS_ED25519,
        _ => &rcgen::PKCS_RSA_SHA256,
    };
    let pair = rcgen::KeyPair::generate_for(rc_alg).expect("keypair");
    let private = pair.serialize_pem();
    let public = pair.public_key_pem();
    match alg {
        Algorithm::ES256 => (
            EncodingKey::from_ec_pem(private.as_bytes()).expect("ec"),
            DecodingKey::from_ec_pem(public.as_bytes()).expect("ec"),
        ),
        Algorithm::EdDSA => (
            EncodingKey::from_ed_pem(private.as_bytes()).expect("ed"),
            DecodingKey::from_ed_pem(public.as_bytes()).expect("ed"),
        ),
        _ => (
            EncodingKey::from_rsa_pem(private.as_bytes()).expect("rsa"),
            DecodingKey::from_rsa_pem(public.as_bytes()).expect("rsa"),
        ),
    }
}

fn verifier(alg: Algorithm, decoding: DecodingKey, cache_entries: usize) -> Verifier {
    let keys = Arc::new(KeySet::default());
    keys.insert(ISS, "k1", VerifyingKey::new(alg, decoding).expect("key"));
    let policy = IssuerPolicy {
        issuer: ISS.into(),
        algorithms: vec![alg],
        audiences: vec!["api".into()],
        accepted_types: vec!["at+jwt".into()],
        user_claim: "sub".into(),
        group_claim: Some("gid".into()),
        roles_claim: Some("roles".into()),
        subject_prefix: None,
        delegation: true,
        require_client_id: true,
    };
    Verifier::new(
        keys,
        vec![policy],
        30,
        cache_entries,
        Arc::new(NoRevocations),
    )
}

fn token(alg: Algorithm, encoding: &EncodingKey) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let mut header = Header::new(alg);
    header.kid = Some("k1".into());
    header.typ = Some("at+jwt".into());
    let claims = serde_json::json!({"iss": ISS, "sub": "42", "aud": "api", "exp": now + 3600,
        "nbf": now, "iat": now, "jti": "bench", "gid": 7, "roles": [], "scope": "read"});
    jsonwebtoken::encode(&header, &claims, encoding).expect("sign")
}

fn bench(c: &mut Criterion) {
    authgate::install_crypto_provider();
    for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let (encoding, decoding) = keys(alg);
        let token = token(alg, &encoding);
        let cold = verifier(alg, decoding.clone(), 0);
        c.bench_function(&format!("verify/{alg:?}/signature"), |b| {
            b.iter(|| cold.verify(black_box(&token)).expect("valid"))
        });
        let warm = verifier(alg, decoding, 1000);
        warm.verify(&token).expect("valid");
        c.bench_function(&format!("verify/{alg:?}/cached"), |b| {
            b.iter(|| warm.verify(black_box(&token)).expect("valid"))
        });
        // The same token again on one client connection (its `TokenMemo`).
        let memo = authgate::authn::TokenMemo::default();
        warm.verify_on(&token, Some(&memo)).expect("valid");
        c.bench_function(&format!("verify/{alg:?}/connection-repeat"), |b| {
            b.iter(|| {
                warm.verify_on(black_box(&token), Some(&memo))
                    .expect("valid")
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
