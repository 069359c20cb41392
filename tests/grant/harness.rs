//! A grant engine over a fresh SQLite store, with users, clients and an active ES256 key.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use authgate::authn::keyset::KeySet;
use authgate::authn::{IssuerPolicy, Verifier};
use authgate::config::{StoreBackend, StoreConfig};
use authgate::grant::{
    ClientCredentials, Engine, EngineConfig, Grant, GrantError, GrantRequest, IssueOptions, Login,
    Throttle, ThrottlePolicy, TokenRequest,
};
use authgate::keyring::Keyring;
use authgate::store::{GrantType, KeyAlg, NewClient, NewUser, Store, now};
use jsonwebtoken::Algorithm;

use crate::support::{add_clients, add_users, new_user, oauth_client};

pub const ISSUER: &str = "https://gw.test";
pub const PASSWORD: &str = "correct horse battery staple";
pub const ALICE: i64 = 100;
pub const BOSS: i64 = 1;
pub const OTHER_ADMIN: i64 = 2;
pub const SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
pub const WEB_SECRET: &str = "web-client-secret-0123456789";
pub const REDIRECT: &str = "https://app.example/cb";

pub struct Harness {
    pub engine: Engine,
    pub store: Store,
    pub keyring: Arc<Keyring>,
    pub verifier: Arc<Verifier>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn new() -> Harness {
        authgate::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authgate.db");
        let config = StoreConfig::new(StoreBackend::Sqlite { path });
        let store = Store::open_with_secret(&config, b"grant-engine tests key secret 32b+")
            .await
            .unwrap();
        let keys = Arc::new(KeySet::default());
        let keyring = Arc::new(Keyring::new(store.clone(), ISSUER, Arc::clone(&keys)));
        keyring.ensure_active(KeyAlg::Es256).await.unwrap();
        keyring.refresh().await.unwrap();
        let policy = IssuerPolicy {
            issuer: ISSUER.into(),
            algorithms: vec![Algorithm::ES256, Algorithm::RS256],
            audiences: vec![],
            accepted_types: vec![authgate::tokens::ACCESS_TOKEN_TYPE.into()],
            user_claim: "sub".into(),
            group_claim: Some("gid".into()),
            roles_claim: Some("roles".into()),
            subject_prefix: None,
            delegation: true,
            require_client_id: true,
        };
        let verifier = Arc::new(Verifier::new(
            keys,
            vec![policy],
            5,
            100,
            keyring.revocations(),
        ));
        let engine = Engine::new(
            store.clone(),
            Arc::clone(&keyring),
            Arc::clone(&verifier),
            Arc::new(Throttle::new(ThrottlePolicy::default())),
            EngineConfig::new(ISSUER),
        );
        let harness = Harness {
            engine,
            store,
            keyring,
            verifier,
            _dir: dir,
        };
        harness.populate().await;
        harness
    }

    async fn populate(&self) {
        let t = now();
        let users = [
            NewUser {
                phone: Some("138 0000 0000".into()),
                email: Some("Alice@Example.com".into()),
                ..new_user(ALICE, "alice", 7, &[])
            },
            new_user(BOSS, "boss", 7, &["admin"]),
            new_user(OTHER_ADMIN, "root2", 7, &["admin"]),
        ];
        add_users(&self.store, users, Some(PASSWORD), t).await;
        use GrantType::*;
        let clients = [
            (
                "web",
                false,
                vec![Password, RefreshToken, AuthorizationCode, TokenExchange],
            ),
            ("spa", true, vec![AuthorizationCode, RefreshToken]),
            ("svc", false, vec![ClientCredentials]),
            ("norefresh", false, vec![Password]),
        ]
        .map(|(id, public, grants)| NewClient {
            app_id: public.then(|| format!("{id}-app")),
            ..oauth_client(id, public, grants, REDIRECT)
        });
        add_clients(&self.store, clients, WEB_SECRET, t).await;
    }

    pub async fn token(
        &self,
        client: ClientCredentials,
        grant: GrantRequest,
        scope: Option<&[&str]>,
    ) -> Result<Grant, GrantError> {
        self.token_from(SOURCE, client, grant, scope).await
    }

    pub async fn token_from(
        &self,
        source: IpAddr,
        client: ClientCredentials,
        grant: GrantRequest,
        scope: Option<&[&str]>,
    ) -> Result<Grant, GrantError> {
        let request = TokenRequest {
            client,
            grant,
            scope: scope.map(|s| s.iter().map(|x| (*x).to_owned()).collect()),
            source,
            resources: Vec::new(),
            options: IssueOptions::default(),
        };
        self.engine.token(request).await
    }

    pub async fn login(
        &self,
        client: &str,
        login: Login,
        password: &str,
    ) -> Result<Grant, GrantError> {
        let grant = GrantRequest::Password {
            login,
            password: password.into(),
        };
        self.token(basic(client), grant, None).await
    }
}

pub fn basic(id: &str) -> ClientCredentials {
    ClientCredentials::Basic {
        id: id.into(),
        secret: WEB_SECRET.into(),
    }
}

pub fn refresh(token: &str) -> GrantRequest {
    GrantRequest::RefreshToken {
        refresh_token: token.into(),
    }
}

/// The JWT's claims, unverified (for looking at `act`, `sub`, …).
pub use crate::support::jwt_claims as claims;
