//! Benchmark helper: `mint keygen DIR` writes an ES256 key pair for a stand-in identity
//! provider (`idp-key.pem`, `idp-pub.pem`); `mint tokens KEY ISS KID COUNT` prints COUNT
//! distinct signed tokens, one per line (two threads).
//!
//! `cargo run --release --example mint -- …` (see bench/run.sh).

use std::io::Write;

use jsonwebtoken::{Algorithm, EncodingKey, Header};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["keygen", dir] => keygen(dir),
        ["tokens", key, iss, kid, count] => tokens(key, iss, kid, count.parse().unwrap_or(1)),
        _ => {
            eprintln!("usage: mint keygen DIR | mint tokens KEY.pem ISSUER KID COUNT");
            std::process::exit(2);
        }
    }
}

fn keygen(dir: &str) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key pair");
    std::fs::write(format!("{dir}/idp-key.pem"), pair.serialize_pem()).expect("write key");
    std::fs::write(format!("{dir}/idp-pub.pem"), pair.public_key_pem()).expect("write public key");
}

fn tokens(key_path: &str, iss: &str, kid: &str, count: usize) {
    authgate::install_crypto_provider();
    let pem = std::fs::read(key_path).expect("read key");
    let key = EncodingKey::from_ec_pem(&pem).expect("ES256 key");
    let now = jsonwebtoken::get_current_timestamp();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let mint = |range: std::ops::Range<usize>| -> Vec<String> {
        range
            .map(|i| {
                let claims = serde_json::json!({
                    "iss": iss, "sub": (1000 + i % 5000).to_string(), "gid": i % 50,
                    "exp": now + 7200, "iat": now, "nbf": now - 5, "jti": format!("bench-{i}"),
                });
                jsonwebtoken::encode(&header, &claims, &key).expect("sign")
            })
            .collect()
    };
    let half = count / 2;
    let (first, second) = std::thread::scope(|s| {
        let a = s.spawn(|| mint(0..half));
        let b = s.spawn(|| mint(half..count));
        (a.join().expect("thread"), b.join().expect("thread"))
    });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for token in first.iter().chain(&second) {
        writeln!(out, "{token}").expect("write");
    }
}
