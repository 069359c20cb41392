//! The revocation snapshot: which of our tokens are refused (the `jti` denylist, per-user
//! not-before) and which users' group or roles changed since their token was issued, as the
//! verifier consults them on every request. Loaded whole from the store by the keyring; a load
//! that started earlier never overwrites one that started later.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::authn::{Principal, Revocations, TokenDefect};
use crate::store::{Store, StoreError};

/// Revoked access tokens, as the verifier consults them on every request.
#[derive(Default)]
pub struct RevocationCache {
    issuer: String,
    snapshot: RwLock<Snapshot>,
    /// Unix seconds of the last successful load; 0 = never.
    loaded_at: AtomicU64,
    /// Seconds after which an unrefreshed snapshot is not trusted; 0 = always trusted.
    max_staleness: AtomicU64,
    /// Loads are numbered when they start reading the store (`Snapshot::load`).
    loads: AtomicU64,
}

#[derive(Default)]
struct Snapshot {
    /// The number of the load that read this snapshot: a load that started earlier (the
    /// periodic refresh racing a reload right after a revocation) may finish later, and must
    /// not put back what it read before the revocation committed.
    load: u64,
    jtis: HashSet<String>,
    /// user id → not-before (Unix seconds).
    not_before: HashMap<String, u64>,
    /// user id → current (group, roles), for users whose group or roles changed.
    identities: HashMap<String, (String, Vec<String>)>,
}

impl Revocations for RevocationCache {
    fn is_stale(&self, principal: &Principal) -> bool {
        let max = self.max_staleness.load(Ordering::Relaxed);
        let loaded = self.loaded_at.load(Ordering::Relaxed);
        principal.issuer == self.issuer
            && max > 0
            && loaded > 0
            && jsonwebtoken::get_current_timestamp().saturating_sub(loaded) > max
    }

    fn is_revoked(&self, principal: &Principal) -> bool {
        // Denylist and not-before are about our own tokens and our own users.
        if principal.issuer != self.issuer {
            return false;
        }
        let Ok(snapshot) = self.snapshot.read() else {
            return true; // a poisoned lock fails closed
        };
        if principal
            .jti
            .as_ref()
            .is_some_and(|jti| snapshot.jtis.contains(jti))
        {
            return true;
        }
        match snapshot.not_before.get(&principal.user_id) {
            // `<=`: whole seconds, so a token from the very second of the revocation is refused too.
            Some(not_before) => principal.issued_at.is_none_or(|iat| iat <= *not_before),
            None => false,
        }
    }

    fn current(&self, principal: &Principal) -> Result<Option<Principal>, TokenDefect> {
        if principal.issuer != self.issuer {
            return Ok(None);
        }
        let Ok(snapshot) = self.snapshot.read() else {
            return Err(TokenDefect::Uncheckable); // poisoned: fail closed
        };
        // A token-exchange token acts for its admin only while they are one.
        if let Some(actor) = &principal.actor {
            if snapshot
                .identities
                .get(actor)
                .is_some_and(|(_, roles)| !roles.iter().any(|r| r == crate::authn::ADMIN_ROLE))
            {
                return Err(TokenDefect::ActorNoLongerAdmin);
            }
            if snapshot
                .not_before
                .get(actor)
                .is_some_and(|nb| principal.issued_at.is_none_or(|iat| iat <= *nb))
            {
                return Err(TokenDefect::ActorSignedOut);
            }
        }
        Ok(snapshot
            .identities
            .get(&principal.user_id)
            .map(|(group, roles)| Principal {
                group_id: Some(group.clone()),
                roles: roles.clone(),
                ..principal.clone()
            }))
    }
}

impl RevocationCache {
    /// Nothing revoked yet, for our `issuer`; never stale until a bound is set.
    pub(super) fn new(issuer: &str) -> Self {
        RevocationCache {
            issuer: issuer.to_owned(),
            ..RevocationCache::default()
        }
    }

    /// See [`super::Keyring::set_max_staleness`].
    pub(super) fn set_max_staleness(&self, max: Duration) {
        self.max_staleness.store(max.as_secs(), Ordering::Relaxed);
    }

    /// Replaces the snapshot with the store's revocations as of `now`.
    pub(super) async fn load(&self, store: &Store, now: i64) -> Result<(), StoreError> {
        let load = self.loads.fetch_add(1, Ordering::SeqCst) + 1;
        let revoked = store.revocations(now).await?;
        let snapshot = Snapshot {
            load,
            jtis: revoked
                .denied_jtis
                .into_iter()
                .map(|(jti, _)| jti)
                .collect(),
            not_before: revoked
                .not_before
                .into_iter()
                .map(|(user, at)| (user.to_string(), u64::try_from(at).unwrap_or(0)))
                .collect(),
            identities: revoked
                .identities
                .into_iter()
                .map(|c| (c.user_id.to_string(), (c.group_id.to_string(), c.roles)))
                .collect(),
        };
        if let Ok(mut current) = self.snapshot.write()
            && current.load < load
        {
            *current = snapshot;
        }
        self.loaded_at
            .store(u64::try_from(now).unwrap_or(0), Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(issuer: &str) -> Principal {
        Principal {
            issuer: issuer.into(),
            subject: "7".into(),
            user_id: "7".into(),
            group_id: None,
            roles: vec![],
            scopes: vec![],
            client_id: None,
            audiences: vec![],
            jti: Some("j".into()),
            key_id: "k".into(),
            issued_at: Some(1),
            expires_at: u64::MAX,
            actor: None,
        }
    }

    fn cache_with(
        identities: &[(&str, &str, &[&str])],
        not_before: &[(&str, u64)],
    ) -> RevocationCache {
        let snapshot = Snapshot {
            identities: identities
                .iter()
                .map(|(user, group, roles)| {
                    let roles = roles.iter().map(|r| r.to_string()).collect();
                    (user.to_string(), (group.to_string(), roles))
                })
                .collect(),
            not_before: not_before
                .iter()
                .map(|(u, t)| (u.to_string(), *t))
                .collect(),
            ..Snapshot::default()
        };
        RevocationCache {
            issuer: "https://gw".into(),
            snapshot: RwLock::new(snapshot),
            loaded_at: AtomicU64::new(0),
            max_staleness: AtomicU64::new(0),
            loads: AtomicU64::new(0),
        }
    }

    #[test]
    fn current_group_and_roles_replace_the_token_s() {
        let cache = cache_with(&[("7", "9", &["admin"])], &[]);
        let mut token = principal("https://gw");
        token.group_id = Some("3".into());
        let current = cache.current(&token).expect("usable").expect("changed");
        assert_eq!(current.group_id.as_deref(), Some("9"));
        assert_eq!(current.roles, vec!["admin".to_owned()]);
        // Unchanged users and other issuers' tokens keep their claims.
        assert_eq!(cache.current(&principal("https://idp")), Ok(None));
        let cache = cache_with(&[("8", "9", &[])], &[]);
        assert_eq!(cache.current(&principal("https://gw")), Ok(None));
    }

    #[test]
    fn a_token_exchange_token_needs_its_admin_to_still_be_one() {
        let mut token = principal("https://gw");
        token.actor = Some("1".into());
        let demoted = cache_with(&[("1", "1", &[])], &[]);
        assert!(demoted.current(&token).is_err());
        let still_admin = cache_with(&[("1", "1", &["admin"])], &[]);
        assert_eq!(still_admin.current(&token), Ok(None));
        let signed_out = cache_with(&[], &[("1", 5)]);
        assert!(signed_out.current(&token).is_err(), "issued at 1, before 5");
    }

    #[test]
    fn an_old_snapshot_is_stale_for_our_own_tokens_only() {
        let now = jsonwebtoken::get_current_timestamp();
        let cache = |loaded: u64, max: u64| RevocationCache {
            issuer: "https://gw".into(),
            snapshot: RwLock::default(),
            loaded_at: AtomicU64::new(loaded),
            max_staleness: AtomicU64::new(max),
            loads: AtomicU64::new(0),
        };
        let own = principal("https://gw");
        assert!(cache(now - 100, 60).is_stale(&own));
        assert!(!cache(now - 10, 60).is_stale(&own));
        assert!(!cache(now - 100, 0).is_stale(&own), "0 disables the bound");
        assert!(
            !cache(0, 60).is_stale(&own),
            "never loaded: not yet serving"
        );
        assert!(!cache(now - 100, 60).is_stale(&principal("https://idp")));
    }
}
