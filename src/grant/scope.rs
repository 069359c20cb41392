//! Scopes: what a client may ask for, what a refresh may keep. A request names scopes; the
//! client's registration bounds them; a refresh can narrow the scope it was granted, never
//! widen it (RFC 6749 §6).

use super::GrantError;

/// Parses an RFC 6749 §3.3 `scope` value (space-separated) into sorted, unique tokens.
pub fn parse(text: &str) -> Vec<String> {
    let mut scopes: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

/// What a client registered without a scope list may ask for: OpenID Connect's scopes
/// (a client with a list gets them only if listed).
pub const UNREGISTERED: [&str; 5] = ["email", "offline_access", "openid", "phone", "profile"];

/// May a client registered for `allowed` have `scope`?
fn allows(allowed: &[String], scope: &str) -> bool {
    if allowed.is_empty() {
        UNREGISTERED.contains(&scope)
    } else {
        allowed.iter().any(|a| a == scope)
    }
}

/// The scope to grant: `requested` (if given) must lie within `allowed` ([`UNREGISTERED`] for
/// an empty registration); without a request, all of `allowed`. The result is sorted and
/// unique.
pub fn grant(requested: Option<&[String]>, allowed: &[String]) -> Result<Vec<String>, GrantError> {
    let mut granted: Vec<String> = match requested {
        None => allowed.to_vec(),
        Some(requested) => {
            if let Some(extra) = requested.iter().find(|s| !allows(allowed, s)) {
                return Err(GrantError::scope(format!(
                    "scope `{extra}` is not granted to this client"
                )));
            }
            requested.to_vec()
        }
    };
    granted.sort();
    granted.dedup();
    Ok(granted)
}

/// A refresh: within what the refresh token was granted *and* what the client is registered
/// for today (a client's registration may have shrunk since).
pub fn narrow(
    requested: Option<&[String]>,
    granted: &[String],
    client: &[String],
) -> Result<Vec<String>, GrantError> {
    if let Some(extra) = requested
        .into_iter()
        .flatten()
        .find(|s| !granted.contains(s))
    {
        return Err(GrantError::scope(format!(
            "scope `{extra}` was not granted to this refresh token; a refresh cannot widen it"
        )));
    }
    let still: Vec<String> = granted
        .iter()
        .filter(|s| allows(client, s))
        .cloned()
        .collect();
    let mut narrowed: Vec<String> = match requested {
        None => still,
        Some(requested) => {
            if let Some(extra) = requested.iter().find(|s| !still.contains(s)) {
                return Err(GrantError::scope(format!(
                    "scope `{extra}` is not granted to this client"
                )));
            }
            requested.to_vec()
        }
    };
    narrowed.sort();
    narrowed.dedup();
    Ok(narrowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn requests_stay_within_the_registration() {
        let allowed = v(&["read", "write"]);
        assert_eq!(grant(None, &allowed).ok(), Some(v(&["read", "write"])));
        assert_eq!(
            grant(Some(&v(&["write", "write"])), &allowed).ok(),
            Some(v(&["write"]))
        );
        let err = grant(Some(&v(&["admin"])), &allowed).err();
        assert_eq!(err.map(|e| e.code()), Some("invalid_scope"));
    }

    #[test]
    fn refresh_narrows_never_widens() {
        let granted = v(&["read"]);
        let client = v(&["read", "write"]);
        assert_eq!(narrow(None, &granted, &client).ok(), Some(v(&["read"])));
        assert_eq!(
            narrow(Some(&[]), &granted, &client).ok(),
            Some(Vec::<String>::new())
        );
        let err = narrow(Some(&v(&["read", "write"])), &granted, &client).err();
        assert_eq!(err.map(|e| e.code()), Some("invalid_scope"));
        // The client lost `read` since: the refresh keeps only what is still registered.
        assert_eq!(narrow(None, &granted, &v(&["write"])).ok(), Some(vec![]));
    }

    #[test]
    fn an_unregistered_client_may_ask_for_openid_scopes_only() {
        let none: Vec<String> = Vec::new();
        assert_eq!(grant(None, &none).ok(), Some(vec![]));
        assert_eq!(
            grant(Some(&v(&["openid", "profile"])), &none).ok(),
            Some(v(&["openid", "profile"]))
        );
        let err = grant(Some(&v(&["admin"])), &none).err();
        assert_eq!(err.map(|e| e.code()), Some("invalid_scope"));
        // A client with a list gets them only if listed.
        let err = grant(Some(&v(&["openid"])), &v(&["read"])).err();
        assert_eq!(err.map(|e| e.code()), Some("invalid_scope"));
        // A refresh keeps them.
        let granted = v(&["email", "openid"]);
        assert_eq!(narrow(None, &granted, &none).ok(), Some(granted.clone()));
        assert_eq!(
            narrow(Some(&v(&["openid"])), &granted, &none).ok(),
            Some(v(&["openid"]))
        );
    }

    #[test]
    fn parse_sorts_and_dedups() {
        assert_eq!(parse(" b a  b "), v(&["a", "b"]));
        assert!(parse("").is_empty());
    }
}
