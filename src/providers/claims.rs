//! What a provider's claims say about a person: who may sign in (`allowed_domains`,
//! `allowed_tenants`, `required_claim`), the verified e-mail, the mapped group and admin role.

use serde_json::{Map, Value};

use crate::config::{Allowed, ClaimMatch, GroupMapping};

/// A sign-in's claims (the ID token's, completed from UserInfo).
pub type Claims = Map<String, Value>;

/// A claim's values as text: a string, a number, a boolean, or an array of those.
pub fn values(claims: &Claims, name: &str) -> Vec<String> {
    fn one(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match claims.get(name) {
        Some(Value::Array(list)) => list.iter().filter_map(one).collect(),
        Some(value) => one(value).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The e-mail address, lower case, when the provider says it is verified (`email_verified`
/// true, or the string "true" that some providers send).
pub fn verified_email(claims: &Claims) -> Option<String> {
    let verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    let email = claims.get("email")?.as_str()?;
    (verified && email.contains('@')).then(|| email.to_ascii_lowercase())
}

fn matches(rule: &ClaimMatch, claims: &Claims) -> bool {
    values(claims, &rule.claim)
        .iter()
        .any(|value| rule.values.contains(value))
}

/// Why a person may not sign in through this provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    /// `allowed_domains`.
    #[error("neither hd nor a verified e-mail is in allowed_domains")]
    Domain,
    /// `allowed_tenants`.
    #[error("tid is not in allowed_tenants")]
    Tenant,
    /// `required_claim`.
    #[error("the required claim does not hold a required value")]
    Claim,
}

/// Every restriction that is set must pass.
pub fn check_allowed(allowed: &Allowed, claims: &Claims) -> Result<(), NotAllowed> {
    if !allowed.domains.is_empty() {
        let hd = claims
            .get("hd")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        let email_domain = verified_email(claims)
            .and_then(|email| email.rsplit_once('@').map(|(_, d)| d.to_owned()));
        let ok = [hd, email_domain]
            .into_iter()
            .flatten()
            .any(|domain| allowed.domains.contains(&domain));
        if !ok {
            return Err(NotAllowed::Domain);
        }
    }
    if !allowed.tenants.is_empty() {
        let tid = claims
            .get("tid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !allowed.tenants.iter().any(|t| t == tid) {
            return Err(NotAllowed::Tenant);
        }
    }
    if let Some(rule) = &allowed.claim
        && !matches(rule, claims)
    {
        return Err(NotAllowed::Claim);
    }
    Ok(())
}

/// The group the claims map to: with a table, the first claim value it names; without, the
/// claim's value as a number; else the default.
pub fn group(mapping: &GroupMapping, claims: &Claims) -> i64 {
    let found = values(claims, &mapping.claim);
    let mapped = if mapping.map.is_empty() {
        found.iter().find_map(|v| v.parse::<i64>().ok())
    } else {
        found.iter().find_map(|v| {
            mapping
                .map
                .iter()
                .find(|(name, _)| name == v)
                .map(|(_, id)| *id)
        })
    };
    mapped.filter(|id| *id >= 0).unwrap_or(mapping.default)
}

/// Whether the claims mark an admin.
pub fn admin(rule: &ClaimMatch, claims: &Claims) -> bool {
    matches(rule, claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Claims {
        match value {
            Value::Object(map) => map,
            _ => Claims::new(),
        }
    }

    #[test]
    fn domains_need_hd_or_a_verified_email() {
        let allowed = Allowed {
            domains: vec!["example.com".into()],
            ..Allowed::default()
        };
        let ok = claims(json!({"email": "A@Example.com", "email_verified": true}));
        assert_eq!(check_allowed(&allowed, &ok), Ok(()));
        let unverified = claims(json!({"email": "a@example.com", "email_verified": false}));
        assert_eq!(
            check_allowed(&allowed, &unverified),
            Err(NotAllowed::Domain)
        );
        let hd = claims(json!({"hd": "example.com"}));
        assert_eq!(check_allowed(&allowed, &hd), Ok(()));
        let other = claims(json!({"email": "a@example.org", "email_verified": "true"}));
        assert_eq!(check_allowed(&allowed, &other), Err(NotAllowed::Domain));
    }

    #[test]
    fn tenants_and_claims() {
        let allowed = Allowed {
            tenants: vec!["t1".into()],
            claim: Some(ClaimMatch {
                claim: "groups".into(),
                values: vec!["staff".into()],
            }),
            ..Allowed::default()
        };
        let ok = claims(json!({"tid": "t1", "groups": ["x", "staff"]}));
        assert_eq!(check_allowed(&allowed, &ok), Ok(()));
        let tenant = claims(json!({"tid": "t2", "groups": ["staff"]}));
        assert_eq!(check_allowed(&allowed, &tenant), Err(NotAllowed::Tenant));
        let claim = claims(json!({"tid": "t1", "groups": "staffers"}));
        assert_eq!(check_allowed(&allowed, &claim), Err(NotAllowed::Claim));
    }

    #[test]
    fn group_mapping() {
        let numeric = GroupMapping {
            claim: "gid".into(),
            map: Vec::new(),
            default: 3,
        };
        assert_eq!(group(&numeric, &claims(json!({"gid": 7}))), 7);
        assert_eq!(group(&numeric, &claims(json!({"gid": "8"}))), 8);
        assert_eq!(group(&numeric, &claims(json!({"gid": "x"}))), 3);
        assert_eq!(group(&numeric, &claims(json!({}))), 3);
        let table = GroupMapping {
            claim: "groups".into(),
            map: vec![("eng".into(), 7), ("sales".into(), 8)],
            default: 0,
        };
        let both = claims(json!({"groups": ["other", "sales", "eng"]}));
        assert_eq!(group(&table, &both), 8);
        assert_eq!(group(&table, &claims(json!({"groups": ["none"]}))), 0);
    }
}
