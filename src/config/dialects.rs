//! `[tokens]` (engine-wide lifetimes) and `[dialects.*]` (which token endpoints are served, at
//! which paths, with which lifetimes). A path set to `""` switches that endpoint off; a whole
//! dialect is switched off with `enabled = false`. Also [`TokenFormat`], what a dialect's
//! `token_format` chooses (the grant engine issues it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::{
    RawApp, RawDialects, RawMobile, RawOauth2, RawOauth2Paths, RawPassport, RawTokens,
};
use super::{ConfigError, Resolver};

/// What an access token is on the wire. Both pass the proxy path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenFormat {
    /// A signed JWT: verified with the key set, no store lookup.
    #[default]
    Jwt,
    /// A 43-character random reference; its claims live in the store (resolved and cached on
    /// the proxy path). For clients that keep tokens in fixed-width columns.
    Opaque,
}

/// The grant engine's default lifetimes (a dialect or a client may set its own).
#[derive(Debug, Clone)]
pub struct TokensConfig {
    /// `access_ttl` (default 1 h).
    pub access_ttl: Duration,
    /// `refresh_ttl` (default 30 days); each rotation starts a new lifetime.
    pub refresh_ttl: Duration,
    /// Upper bound of a token-exchange (admin acting as a user) token.
    pub exchange_ttl: Duration,
    /// `code_ttl` (default 60 s): authorization codes.
    pub code_ttl: Duration,
}

/// `[dialects.*]`: the token-endpoint dialects served, each an independent wire format over the
/// one grant engine. Their paths are distinct from each other and from the reserved well-known paths.
#[derive(Debug, Clone, Default)]
pub struct DialectsConfig {
    /// `None` when switched off.
    pub oauth2: Option<Oauth2Config>,
    /// `None` unless `[dialects.passport]` is present (and not `enabled = false`).
    pub passport: Option<PassportConfig>,
    /// `None` unless `[dialects.app]` is present (and not `enabled = false`).
    pub app: Option<AppConfig>,
    /// `None` unless `[dialects.mobile]` is present (and not `enabled = false`).
    pub mobile: Option<MobileConfig>,
}

/// The `mobile` dialect (seed 000): `/auth/token` by GET or POST.
#[derive(Debug, Clone)]
pub struct MobileConfig {
    /// `path` (default `/auth/token`): the token endpoint, GET (query) or POST (form or JSON).
    pub path: String,
    /// The document's `expires_in`: 3600.
    pub access_ttl: Duration,
    /// `refresh_ttl`; `None`: `[tokens] refresh_ttl`.
    pub refresh_ttl: Option<Duration>,
    /// Opaque 43-character references by default, like the document's tokens.
    pub token_format: TokenFormat,
}

/// The `app` dialect (seed 002): `/token/id`, `/token/login`, `/token/user`.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// By user id, by any login name, by user name; `None` is switched off.
    pub id: Option<String>,
    /// `paths.login` (default `/token/login`): by phone, e-mail or user name.
    pub login: Option<String>,
    /// `paths.user` (default `/token/user`): by user name.
    pub user: Option<String>,
    /// The document is silent; 7 days (it offers no refresh, so a session is a login).
    pub access_ttl: Duration,
    /// Returned as `encrypt_type` (whether the client should encrypt its connection).
    pub encrypt_type: i32,
    /// `aud` of the `store_token` (the file-storage service).
    pub storage_audience: String,
    /// `aud` of the `push_token` (the push service).
    pub push_audience: String,
    /// The secret shared with the storage service (`access_key_secret` is an HMAC under it):
    /// this environment variable, else `storage_secret_file`.
    pub storage_secret_env: String,
    /// `None`: `storage-secret` beside the SQLite database (PostgreSQL: the variable is
    /// required, so every instance shares it).
    pub storage_secret_file: Option<PathBuf>,
    /// `public_key` is then the key of `store_token` and `push_token` only.
    pub token_format: TokenFormat,
}

/// The `passport` dialect (seed 001): Laravel Passport's `/oauth/token`.
#[derive(Debug, Clone)]
pub struct PassportConfig {
    /// `path` (default `/oauth/token`): the token endpoint (POST, form or JSON).
    pub path: String,
    /// Default one year, as the document shows.
    pub access_ttl: Duration,
    /// `refresh_ttl`; `None`: `[tokens] refresh_ttl`.
    pub refresh_ttl: Option<Duration>,
    /// What `username` may be: the document's phone number, or any login name.
    pub login: PassportLogin,
    /// Size of the RS256 key generated when none is active (Passport's default: 4096).
    pub rsa_bits: u32,
    /// `token_format` (default JWT, Passport-shaped RS256).
    pub token_format: TokenFormat,
}

/// `dialects.passport.login`: which login names the password grant's `username` may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassportLogin {
    /// A phone number only, as the document says (the default).
    Phone,
    /// Any login name: phone, e-mail or user name.
    Any,
}

/// The `oauth2` dialect (seed 003 plus the standard endpoints). `None` paths are switched off.
#[derive(Debug, Clone)]
pub struct Oauth2Config {
    /// `paths.token` (default `/oauth2/token`): every grant.
    pub token: Option<String>,
    /// `paths.password` (default `/oauth2/password`): the password grant only.
    pub password: Option<String>,
    /// `paths.client_credentials` (default `/oauth2/client-credentials`).
    pub client_credentials: Option<String>,
    /// `paths.refresh_token` (default `/oauth2/refresh-token`).
    pub refresh_token: Option<String>,
    /// `paths.authorize` (default `/oauth2/authorize`): the authorization-code exchange.
    pub authorize: Option<String>,
    /// `paths.revoke` (default `/oauth2/revoke`): RFC 7009.
    pub revoke: Option<String>,
    /// `paths.introspect` (default `/oauth2/introspect`): RFC 7662, confidential clients only.
    pub introspect: Option<String>,
    /// The browser flows' pages (seed 003): code flow, implicit flow, logout.
    pub authorize_page: Option<String>,
    /// `paths.implicit` (default `/open/implicit`): the implicit flow's login page.
    pub implicit: Option<String>,
    /// `paths.logout` (default `/open/logout`): ends the login session.
    pub logout: Option<String>,
    /// `paths.signin` (default `/open/signin`): the sign-in page of session routes
    /// (`?rd=` the page to return to).
    pub signin: Option<String>,
    /// `access_ttl`; `None`: `[tokens] access_ttl` (a client's own lifetime comes first).
    pub access_ttl: Option<Duration>,
    /// `refresh_ttl`; `None`: `[tokens] refresh_ttl`.
    pub refresh_ttl: Option<Duration>,
    /// `token_format` (default JWT).
    pub token_format: TokenFormat,
    /// `[dialects.oauth2.openid]`: OpenID Connect on top of the dialect (`None`: off).
    pub openid: Option<OpenIdConfig>,
}

/// `[login]`: the login page's sessions (and, later, the routes' browser sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginConfig {
    /// `session_ttl` (default 30 min): the longest a session lives after sign-in, however
    /// active. `[dialects.oauth2] login_session_ttl` is its older name.
    pub session_ttl: Duration,
    /// `idle_timeout` (default off): a session unused this long ends. Renewal is kept in the
    /// store (last-seen time), written at most once per [`LoginConfig::renewal_interval`].
    pub idle_timeout: Option<Duration>,
    /// `password_form` (default true): the login pages show the password form; false: only
    /// the providers' buttons.
    pub password_form: bool,
    /// `[[login.providers]]`: upstream OpenID Connect providers (buttons on the login pages).
    pub providers: Vec<super::ProviderConfig>,
}

impl LoginConfig {
    /// How stale the stored last-seen time may get before a use writes it again: a quarter of
    /// the idle timeout, at most a minute (so an idle timeout is honoured to within that).
    pub fn renewal_interval(&self) -> Duration {
        Self::renewal_for(self.idle_timeout)
    }

    /// The renewal interval under an `idle` timeout (the login page's, or a session route's
    /// narrower one).
    pub fn renewal_for(idle: Option<Duration>) -> Duration {
        idle.map_or(Duration::from_secs(60), |idle| {
            (idle / 4).min(Duration::from_secs(60))
        })
    }
}

/// `[dialects.oauth2.openid]`: ID tokens, UserInfo, discovery, RP-initiated logout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIdConfig {
    /// `paths.userinfo` (default `/oauth2/userinfo`; `""` switches UserInfo off).
    pub userinfo: Option<String>,
    /// Lifetime of an ID token (default 1 h).
    pub id_token_ttl: Duration,
    /// Size of the RS256 key generated when none exists yet (default 2048).
    pub rsa_bits: u32,
}

/// Paths the gateway serves itself; no endpoint may take them.
const RESERVED: &[&str] = &[
    "/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
];

impl Resolver {
    pub(super) fn tokens(&self, raw: &RawTokens) -> Result<TokensConfig, ConfigError> {
        let positive = |key: &str, value: Option<&str>, default: Duration| {
            let d = self.duration(key, value, default)?;
            if d.is_zero() {
                return Err(self.err(key, "must be longer than 0s"));
            }
            Ok(d)
        };
        Ok(TokensConfig {
            access_ttl: positive(
                "tokens.access_ttl",
                raw.access_ttl.as_deref(),
                Duration::from_secs(3600),
            )?,
            refresh_ttl: positive(
                "tokens.refresh_ttl",
                raw.refresh_ttl.as_deref(),
                Duration::from_secs(30 * 86_400),
            )?,
            exchange_ttl: positive(
                "tokens.exchange_ttl",
                raw.exchange_ttl.as_deref(),
                Duration::from_secs(300),
            )?,
            code_ttl: positive(
                "tokens.code_ttl",
                raw.code_ttl.as_deref(),
                Duration::from_secs(60),
            )?,
        })
    }

    pub(super) fn dialects(&self, raw: &RawDialects) -> Result<DialectsConfig, ConfigError> {
        let mut seen: HashMap<String, String> = RESERVED
            .iter()
            .map(|p| ((*p).to_owned(), "a built-in endpoint".to_owned()))
            .collect();
        let default = RawOauth2::default();
        let oauth2 = raw.oauth2.as_ref().unwrap_or(&default);
        let oauth2 = self.oauth2(oauth2, &mut seen)?;
        let passport = match &raw.passport {
            Some(raw) if raw.enabled != Some(false) => Some(self.passport(raw, &mut seen)?),
            _ => None,
        };
        let app = match &raw.app {
            Some(raw) if raw.enabled != Some(false) => Some(self.app(raw, &mut seen)?),
            _ => None,
        };
        let mobile = match &raw.mobile {
            Some(raw) if raw.enabled != Some(false) => Some(self.mobile(raw, &mut seen)?),
            _ => None,
        };
        Ok(DialectsConfig {
            oauth2,
            passport,
            app,
            mobile,
        })
    }

    fn mobile(
        &self,
        raw: &RawMobile,
        seen: &mut HashMap<String, String>,
    ) -> Result<MobileConfig, ConfigError> {
        let path = self
            .endpoint_path(
                "dialects.mobile.path",
                raw.path.as_deref().unwrap_or("/auth/token"),
                seen,
            )?
            .ok_or_else(|| {
                self.err(
                    "dialects.mobile.path",
                    "must not be empty (set enabled = false to switch the dialect off)",
                )
            })?;
        Ok(MobileConfig {
            path,
            access_ttl: self
                .optional_ttl("dialects.mobile.access_ttl", raw.access_ttl.as_deref())?
                .unwrap_or(Duration::from_secs(3600)),
            refresh_ttl: self
                .optional_ttl("dialects.mobile.refresh_ttl", raw.refresh_ttl.as_deref())?,
            token_format: self.token_format(
                "dialects.mobile.token_format",
                raw.token_format.as_deref(),
                TokenFormat::Opaque,
            )?,
        })
    }

    fn token_format(
        &self,
        key: &str,
        value: Option<&str>,
        default: TokenFormat,
    ) -> Result<TokenFormat, ConfigError> {
        match value {
            None => Ok(default),
            Some("jwt") => Ok(TokenFormat::Jwt),
            Some("opaque") => Ok(TokenFormat::Opaque),
            Some(other) => {
                Err(self.err(key, format!("`{other}` is not one of \"jwt\", \"opaque\"")))
            }
        }
    }

    fn app(
        &self,
        raw: &RawApp,
        seen: &mut HashMap<String, String>,
    ) -> Result<AppConfig, ConfigError> {
        let paths = raw.paths.as_ref();
        let mut path = |field: &str, value: Option<&String>, default: &str| {
            self.endpoint_path(
                &format!("dialects.app.paths.{field}"),
                value.map(String::as_str).unwrap_or(default),
                seen,
            )
        };
        let id = path("id", paths.and_then(|p| p.id.as_ref()), "/token/id")?;
        let login = path(
            "login",
            paths.and_then(|p| p.login.as_ref()),
            "/token/login",
        )?;
        let user = path("user", paths.and_then(|p| p.user.as_ref()), "/token/user")?;
        let audience = |key: &str, value: Option<&String>, default: &str| {
            let value = value.map(String::as_str).unwrap_or(default);
            if value.trim().is_empty() {
                return Err(self.err(key, "must not be empty"));
            }
            Ok(value.to_owned())
        };
        let storage_secret_env = raw
            .storage_secret_env
            .clone()
            .unwrap_or_else(|| "AUTHGATE_STORAGE_SECRET".to_owned());
        if storage_secret_env.is_empty()
            || storage_secret_env.contains('=')
            || storage_secret_env.contains('\0')
        {
            return Err(self.err(
                "dialects.app.storage_secret_env",
                format!("`{storage_secret_env}` is not an environment variable name"),
            ));
        }
        Ok(AppConfig {
            id,
            login,
            user,
            access_ttl: self
                .optional_ttl("dialects.app.access_ttl", raw.access_ttl.as_deref())?
                .unwrap_or(Duration::from_secs(7 * 86_400)),
            encrypt_type: raw.encrypt_type.unwrap_or(0),
            storage_audience: audience(
                "dialects.app.storage_audience",
                raw.storage_audience.as_ref(),
                "authgate:storage",
            )?,
            push_audience: audience(
                "dialects.app.push_audience",
                raw.push_audience.as_ref(),
                "authgate:push",
            )?,
            storage_secret_env,
            storage_secret_file: raw.storage_secret_file.as_deref().map(|f| self.path(f)),
            token_format: self.token_format(
                "dialects.app.token_format",
                raw.token_format.as_deref(),
                TokenFormat::Jwt,
            )?,
        })
    }

    fn passport(
        &self,
        raw: &RawPassport,
        seen: &mut HashMap<String, String>,
    ) -> Result<PassportConfig, ConfigError> {
        let path = self
            .endpoint_path(
                "dialects.passport.path",
                raw.path.as_deref().unwrap_or("/oauth/token"),
                seen,
            )?
            .ok_or_else(|| {
                self.err(
                    "dialects.passport.path",
                    "must not be empty (set enabled = false to switch the dialect off)",
                )
            })?;
        let login = match raw.login.as_deref() {
            None | Some("phone") => PassportLogin::Phone,
            Some("any") => PassportLogin::Any,
            Some(other) => {
                return Err(self.err(
                    "dialects.passport.login",
                    format!("`{other}` is not one of \"phone\", \"any\""),
                ));
            }
        };
        let rsa_bits = raw.rsa_bits.unwrap_or(4096);
        if ![2048, 3072, 4096].contains(&rsa_bits) {
            return Err(self.err("dialects.passport.rsa_bits", "must be 2048, 3072 or 4096"));
        }
        Ok(PassportConfig {
            path,
            access_ttl: self
                .optional_ttl("dialects.passport.access_ttl", raw.access_ttl.as_deref())?
                .unwrap_or(Duration::from_secs(31_536_000)),
            refresh_ttl: self
                .optional_ttl("dialects.passport.refresh_ttl", raw.refresh_ttl.as_deref())?,
            login,
            rsa_bits,
            token_format: self.token_format(
                "dialects.passport.token_format",
                raw.token_format.as_deref(),
                TokenFormat::Jwt,
            )?,
        })
    }

    fn oauth2(
        &self,
        raw: &RawOauth2,
        seen: &mut HashMap<String, String>,
    ) -> Result<Option<Oauth2Config>, ConfigError> {
        if raw.enabled == Some(false) {
            return Ok(None);
        }
        let paths = raw.paths.as_ref();
        // Each endpoint: its key under `dialects.oauth2.paths`, where the raw file keeps it, and
        // its default path.
        type Pick = fn(&RawOauth2Paths) -> Option<&String>;
        let mut path = |field: &str, pick: Pick, default: &str| {
            self.endpoint_path(
                &format!("dialects.oauth2.paths.{field}"),
                paths.and_then(pick).map(String::as_str).unwrap_or(default),
                seen,
            )
        };
        Ok(Some(Oauth2Config {
            token: path("token", |p| p.token.as_ref(), "/oauth2/token")?,
            password: path("password", |p| p.password.as_ref(), "/oauth2/password")?,
            client_credentials: path(
                "client_credentials",
                |p| p.client_credentials.as_ref(),
                "/oauth2/client-credentials",
            )?,
            refresh_token: path(
                "refresh_token",
                |p| p.refresh_token.as_ref(),
                "/oauth2/refresh-token",
            )?,
            authorize: path("authorize", |p| p.authorize.as_ref(), "/oauth2/authorize")?,
            revoke: path("revoke", |p| p.revoke.as_ref(), "/oauth2/revoke")?,
            introspect: path(
                "introspect",
                |p| p.introspect.as_ref(),
                "/oauth2/introspect",
            )?,
            authorize_page: path(
                "authorize_page",
                |p| p.authorize_page.as_ref(),
                "/open/authorize/index",
            )?,
            implicit: path("implicit", |p| p.implicit.as_ref(), "/open/implicit")?,
            logout: path("logout", |p| p.logout.as_ref(), "/open/logout")?,
            signin: path("signin", |p| p.signin.as_ref(), "/open/signin")?,
            access_ttl: self
                .optional_ttl("dialects.oauth2.access_ttl", raw.access_ttl.as_deref())?,
            refresh_ttl: self
                .optional_ttl("dialects.oauth2.refresh_ttl", raw.refresh_ttl.as_deref())?,
            token_format: self.token_format(
                "dialects.oauth2.token_format",
                raw.token_format.as_deref(),
                TokenFormat::Jwt,
            )?,
            openid: self.openid(raw, seen)?,
        }))
    }

    /// `[login]`, with `[dialects.oauth2] login_session_ttl` as the older name of
    /// `session_ttl` (both set: an error naming both).
    pub(super) fn login(
        &self,
        raw: &super::raw::RawLogin,
        dialects: &RawDialects,
    ) -> Result<LoginConfig, ConfigError> {
        let old = dialects
            .oauth2
            .as_ref()
            .and_then(|o| o.login_session_ttl.as_deref());
        let session_ttl = match (raw.session_ttl.as_deref(), old) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    "login.session_ttl",
                    "is also set as dialects.oauth2.login_session_ttl (its older name): keep one",
                ));
            }
            (Some(text), None) => self.optional_ttl("login.session_ttl", Some(text))?,
            (None, Some(text)) => {
                self.optional_ttl("dialects.oauth2.login_session_ttl", Some(text))?
            }
            (None, None) => None,
        }
        .unwrap_or(Duration::from_secs(30 * 60));
        let idle_timeout = self.optional_ttl("login.idle_timeout", raw.idle_timeout.as_deref())?;
        if idle_timeout.is_some_and(|idle| idle >= session_ttl) {
            return Err(self.err(
                "login.idle_timeout",
                "must be shorter than login.session_ttl (or a session could never idle out)",
            ));
        }
        let login_pages = dialects
            .oauth2
            .as_ref()
            .is_none_or(|o| o.enabled != Some(false));
        let providers = self.providers(&raw.providers, login_pages)?;
        let password_form = raw.password_form.unwrap_or(true);
        if !password_form && providers.is_empty() {
            return Err(self.err(
                "login.password_form",
                "false needs at least one [[login.providers]] (or nobody could sign in)",
            ));
        }
        Ok(LoginConfig {
            session_ttl,
            idle_timeout,
            password_form,
            providers,
        })
    }

    /// On unless `[dialects.oauth2.openid] enabled = false`.
    fn openid(
        &self,
        raw: &RawOauth2,
        seen: &mut HashMap<String, String>,
    ) -> Result<Option<OpenIdConfig>, ConfigError> {
        let openid = raw.openid.as_ref();
        if openid.and_then(|o| o.enabled) == Some(false) {
            return Ok(None);
        }
        let userinfo = raw.paths.as_ref().and_then(|p| p.userinfo.as_deref());
        let rsa_bits = openid.and_then(|o| o.rsa_bits).unwrap_or(2048);
        if !matches!(rsa_bits, 2048 | 3072 | 4096) {
            return Err(self.err(
                "dialects.oauth2.openid.rsa_bits",
                "must be 2048, 3072 or 4096",
            ));
        }
        Ok(Some(OpenIdConfig {
            userinfo: self.endpoint_path(
                "dialects.oauth2.paths.userinfo",
                userinfo.unwrap_or("/oauth2/userinfo"),
                seen,
            )?,
            id_token_ttl: self
                .optional_ttl(
                    "dialects.oauth2.openid.id_token_ttl",
                    openid.and_then(|o| o.id_token_ttl.as_deref()),
                )?
                .unwrap_or(Duration::from_secs(3600)),
            rsa_bits,
        }))
    }

    fn optional_ttl(
        &self,
        key: &str,
        value: Option<&str>,
    ) -> Result<Option<Duration>, ConfigError> {
        match value {
            None => Ok(None),
            Some(text) => {
                let d = self.duration(key, Some(text), Duration::ZERO)?;
                if d.is_zero() {
                    return Err(self.err(key, "must be longer than 0s"));
                }
                Ok(Some(d))
            }
        }
    }

    /// `""` switches the endpoint off; anything else must be a normalised absolute path that
    /// no other endpoint uses.
    fn endpoint_path(
        &self,
        key: &str,
        value: &str,
        seen: &mut HashMap<String, String>,
    ) -> Result<Option<String>, ConfigError> {
        if value.is_empty() {
            return Ok(None);
        }
        let normalized = crate::http::path::normalize(value).ok();
        if !value.starts_with('/') || normalized.as_deref() != Some(value) || value.contains('?') {
            return Err(self.err(
                key,
                format!("`{value}` is not a normalised absolute path like \"/oauth2/token\""),
            ));
        }
        if let Some(other) = seen.insert(value.to_owned(), key.to_owned()) {
            return Err(self.err(key, format!("`{value}` is already used by {other}")));
        }
        Ok(Some(value.to_owned()))
    }
}
