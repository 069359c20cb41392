//! Browser sessions on the proxy path: the `__Host-authgate-session` cookie the login and
//! sign-in pages set, resolved through the store (`store/session.rs`) to the same
//! [`Principal`] a token of ours would give its user, so authorization, impersonation and
//! identity injection are the bearer path's.
//!
//! The store is the source of truth; a resolved session is kept in memory for at most
//! `recheck` (the revocation propagation bound, `auth.refresh_interval`), so a session ended
//! at another instance (logout, `authgate session revoke`) stops working within it. Every
//! use also passes the keyring's revocation snapshot, like a cached token: the user's
//! not-before (password change, `revoke-tokens`, disable) ends the session, and a changed group
//! or role set applies at once. A logout at this instance forgets the session here
//! immediately ([`Sessions::forget`]).
//!
//! Idle renewal is server-side: the last-seen time lives in the store and is written at most
//! once per renewal interval (`touch_login_session`), never per request, so it works where no
//! `Set-Cookie` reaches the browser.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use super::cache::{TokenDigest, bound, digest};
use super::{Principal, Revocations};
use crate::store::{LoginSession, SessionLimits, Store, StoreError, secs};

/// The session cookie: host-only (`__Host-`: `Secure`, `Path=/`, no `Domain`), so a sibling
/// subdomain can neither read nor plant it.
pub const SESSION_COOKIE: &str = "__Host-authgate-session";
/// The session cookie shared across subdomains (`[forward_auth] cookie_domain`): `__Host-`
/// forbids a `Domain`, so it is `__Secure-` prefixed (still `Secure`-only).
pub const SHARED_SESSION_COOKIE: &str = "__Secure-authgate-session";

/// The session cookie's name and, when shared across subdomains, its `Domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCookie {
    /// [`SESSION_COOKIE`], or [`SHARED_SESSION_COOKIE`] with a domain.
    pub name: &'static str,
    /// `Domain=` of the shared cookie.
    pub domain: Option<String>,
}

impl SessionCookie {
    /// The cookie `config` sets and reads.
    pub fn of(config: &crate::config::Config) -> Self {
        match config
            .forward_auth
            .as_ref()
            .and_then(|f| f.cookie_domain.clone())
        {
            Some(domain) => SessionCookie {
                name: SHARED_SESSION_COOKIE,
                domain: Some(domain),
            },
            None => SessionCookie {
                name: SESSION_COOKIE,
                domain: None,
            },
        }
    }

    /// The `Set-Cookie` value for `value` (empty with `max_age` 0: cleared).
    pub fn set(&self, value: &str, max_age: u64) -> String {
        let domain = self
            .domain
            .as_ref()
            .map(|d| format!("; Domain={d}"))
            .unwrap_or_default();
        format!(
            "{}={value}; Path=/{domain}; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax",
            self.name
        )
    }
}

/// How long an unknown cookie value is answered from memory.
const NEGATIVE_TTL_SECS: i64 = 5;
/// Bound on remembered sessions and unknown values (a flood of random cookies must not grow
/// memory).
const MAX_ENTRIES: usize = 100_000;

/// The limits one request's session must meet: `[login]`'s, narrowed by the route's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `[login]`'s: beyond them the session is over everywhere.
    pub login: SessionLimits,
    /// The route's own (shorter) lifetime and idle timeout: beyond them the person signs in
    /// again for this route.
    pub route_absolute: Option<Duration>,
    /// See [`Limits::route_absolute`].
    pub route_idle: Option<Duration>,
}

impl Limits {
    /// The idle timeout that applies here (the shorter of `[login]`'s and the route's).
    fn idle(&self) -> Option<Duration> {
        match (self.login.idle, self.route_idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// How stale the stored last-seen time may get before a use writes it again.
    pub fn renewal(&self) -> Duration {
        crate::config::LoginConfig::renewal_for(self.idle())
    }
}

/// A session that answers this request.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The session's user, as a token of ours for them would say (current group and roles).
    pub principal: Arc<Principal>,
    /// The session's public id (the audit record's, `authgate session list`'s).
    pub id: String,
}

/// Why a cookie does not answer this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No live session: unknown, ended, expired, idle, revoked, or the user disabled.
    None,
    /// A live session, but older or idler than this route allows: sign in again.
    TooOld,
    /// The store cannot be read (503, retry).
    Unavailable,
}

struct Entry {
    principal: Arc<Principal>,
    id: String,
    created_at: i64,
    expires_at: i64,
    /// As last written (by us) or read from the store.
    last_seen: AtomicI64,
    loaded_at: i64,
}

/// Resolves session cookies; one per gateway, shared by the proxy and the login pages (whose
/// logout must reach the proxy's memory at once) and kept across config reloads.
pub struct Sessions {
    store: Store,
    issuer: String,
    revocations: Arc<dyn Revocations>,
    cache: DashMap<TokenDigest, Arc<Entry>>,
    unknown: DashMap<TokenDigest, i64>,
}

impl Sessions {
    /// Sessions of users of `store`, their principals under our issuer `issuer`.
    pub fn new(store: Store, issuer: &str, revocations: Arc<dyn Revocations>) -> Self {
        Sessions {
            store,
            issuer: issuer.to_owned(),
            revocations,
            cache: DashMap::new(),
            unknown: DashMap::new(),
        }
    }

    /// The session behind `cookie` if it answers a request under `limits` at `now`; a
    /// resolved session is re-read from the store once older than `recheck`. A use renews the
    /// session's last-seen time (coalesced, in the background).
    pub async fn resolve(
        &self,
        cookie: &str,
        limits: &Limits,
        recheck: Duration,
        now: i64,
    ) -> Result<Resolved, Refusal> {
        // Our cookie values are the store's 43-character tokens, as opaque tokens are.
        if !super::opaque::is_opaque(cookie) {
            return Err(Refusal::None);
        }
        let key = digest(cookie);
        let mut entry = match self.cache.get(&key).map(|e| Arc::clone(e.value())) {
            Some(entry) if now - entry.loaded_at < secs(recheck) => entry,
            _ => self.load(cookie, key, limits, now).await?,
        };
        // Idle by what this instance knows: another instance may have renewed it since.
        let idle = limits.idle();
        let idle_for = |entry: &Entry| now - entry.last_seen.load(Ordering::Relaxed);
        if idle.is_some_and(|idle| idle_for(&entry) > secs(idle)) && entry.loaded_at < now {
            entry = self.load(cookie, key, limits, now).await?;
        }
        if now >= entry.expires_at
            || now >= entry.created_at.saturating_add(secs(limits.login.absolute))
            || limits
                .login
                .idle
                .is_some_and(|idle| idle_for(&entry) > secs(idle))
        {
            self.cache.remove(&key);
            return Err(Refusal::None);
        }
        let too_old = limits
            .route_absolute
            .is_some_and(|ttl| now >= entry.created_at.saturating_add(secs(ttl)))
            || limits
                .route_idle
                .is_some_and(|idle| idle_for(&entry) > secs(idle));
        if too_old {
            return Err(Refusal::TooOld);
        }
        let principal =
            match super::unrevoked(self.revocations.as_ref(), Arc::clone(&entry.principal)) {
                Ok(principal) => principal,
                Err(super::AuthnError::Unavailable) => return Err(Refusal::Unavailable),
                Err(_) => {
                    self.cache.remove(&key);
                    return Err(Refusal::None);
                }
            };
        if idle.is_some() {
            self.renew(&entry, limits.renewal(), now);
        }
        Ok(Resolved {
            principal,
            id: entry.id.clone(),
        })
    }

    /// Forgets what this instance remembers of `cookie` (its session ended here).
    pub fn forget(&self, cookie: &str) {
        self.cache.remove(&digest(cookie));
    }

    /// Server-side idle renewal, at most once per `renewal`: the write goes to the store in
    /// the background (the request does not wait for it); our memory is updated at once.
    fn renew(&self, entry: &Entry, renewal: Duration, now: i64) {
        let seen = entry.last_seen.load(Ordering::Relaxed);
        // Whole seconds, as stored: at most one write per second however short the interval.
        if now - seen < secs(renewal).max(1)
            || entry
                .last_seen
                .compare_exchange(seen, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = self.store.clone();
        let id = entry.id.clone();
        tokio::spawn(async move {
            if let Err(error) = store.touch_login_session(&id, now, renewal).await {
                tracing::warn!(%error, "renewing a session failed");
            }
        });
    }

    async fn load(
        &self,
        cookie: &str,
        key: TokenDigest,
        limits: &Limits,
        now: i64,
    ) -> Result<Arc<Entry>, Refusal> {
        if self.unknown.get(&key).is_some_and(|until| *until > now) {
            return Err(Refusal::None);
        }
        match self.store.live_session(cookie, &limits.login, now).await {
            Ok(session) => {
                let entry = Arc::new(self.entry(&session, now));
                bound(&self.cache, MAX_ENTRIES, |e| e.expires_at > now);
                self.cache.insert(key, Arc::clone(&entry));
                Ok(entry)
            }
            Err(StoreError::NotFound { .. } | StoreError::UserDisabled) => {
                self.cache.remove(&key);
                bound(&self.unknown, MAX_ENTRIES, |until| *until > now);
                self.unknown.insert(key, now + NEGATIVE_TTL_SECS);
                Err(Refusal::None)
            }
            Err(error) => {
                tracing::warn!(%error, "reading a session failed");
                Err(Refusal::Unavailable)
            }
        }
    }

    fn entry(&self, session: &LoginSession, now: i64) -> Entry {
        let user = &session.user;
        let id = user.id.to_string();
        let created = session.authenticated_at;
        let expires_at = session.expires_at;
        Entry {
            principal: Arc::new(Principal {
                issuer: self.issuer.clone(),
                subject: id.clone(),
                user_id: id,
                group_id: Some(user.group_id.to_string()),
                roles: user.roles.clone(),
                scopes: Vec::new(),
                client_id: None,
                audiences: Vec::new(),
                jti: None,
                key_id: String::new(),
                issued_at: u64::try_from(created).ok(),
                expires_at: u64::try_from(expires_at).unwrap_or(u64::MAX),
                actor: None,
            }),
            id: session.id.clone(),
            created_at: created,
            expires_at,
            last_seen: AtomicI64::new(session.last_seen_at),
            loaded_at: now,
        }
    }
}
