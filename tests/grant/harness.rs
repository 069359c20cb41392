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
            (
                ALICE,
                "alice",
                Some("138 0000 0000"),
                Some("Alice@Example.com"),
                vec![],
            ),
            (BOSS, "boss", None, None, vec!["admin".to_owned()]),
            (OTHER_ADMIN, "root2", None, None, vec!["admin".to_owned()]),
        ];
        for (id, account, phone, email, roles) in users {
            let new = NewUser {
                id: Some(id),
                account: account.into(),
                phone: phone.map(Into::into),
                email: email.map(Into::into),
                group_id: 7,
                roles,
                ..NewUser::default()
            };
            self.store.add_user(new, Some(PASSWORD), t).await.unwrap();
        }
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
        ];
        for (id, public, grants) in clients {
            let new = NewClient {
                id: id.into(),
                app_id: public.then(|| format!("{id}-app")),
                public,
                grants,
                redirect_uris: vec![REDIRECT.into()],
                scopes: vec!["read".into(), "write".into()],
                ..NewClient::default()
            };
            let secret = (!public).then_some(WEB_SECRET);
            self.store.add_client(new, secret, t).await.unwrap();
        }
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
pub fn claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
