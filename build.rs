//! Turns the test databases' environment variables into `cfg`s, so a test that needs
//! PostgreSQL or MariaDB is `#[ignore]`d (with the reason) when its variable is unset, instead
//! of returning early and reporting `ok`: `cargo test` then counts it as ignored.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_pg)");
    println!("cargo::rustc-check-cfg=cfg(no_mysql)");
    for (var, cfg) in [
        ("AUTHGATE_TEST_DATABASE_URL", "no_pg"),
        ("AUTHGATE_TEST_MYSQL_URL", "no_mysql"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    println!("cargo::rerun-if-changed=build.rs");
}
