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

/// The scope to grant: `requested` (if given) must lie within `allowed`; without a request,
/// all of `allowed`. The result is sorted and unique.
pub fn grant(requested: Option<&[String]>, allowed: &[String]) -> Result<Vec<String>, GrantError> {
    let mut granted: Vec<String> = match requested {
        None => allowed.to_vec(),
        Some(requested) => {
            if let Some(extra) = requested.iter().find(|s| !allowed.contains(s)) {
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
        .filter(|s| client.contains(s))
        .cloned()
        .collect();
    grant(requested, &still)
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
    fn parse_sorts_and_dedups() {
        assert_eq!(parse(" b a  b "), v(&["a", "b"]));
        assert!(parse("").is_empty());
    }
}
