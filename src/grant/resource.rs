//! RFC 8707 resource indicators: which APIs an access token is addressed to. A client asks
//! for resources (`resource`, repeatable) among those it is registered for, or gets its
//! default one; a refresh or a token exchange may narrow what was granted, never widen it.
//! The token's `aud` is then exactly the resources (RFC 9068 §3); without any, it stays the
//! client id, as before resources existed (a client with no resources configured sees no
//! change). Only dialects that speak RFC 8707 (`IssueOptions::resource_indicators`) resolve
//! resources: the legacy dialects' tokens keep their documented `aud`.

use super::GrantError;
use crate::store::{Client, is_absolute_uri};

/// RFC 8707 §2: an absolute URI without a fragment (the rule the store registers them by).
pub fn check_syntax(resources: &[String]) -> Result<(), GrantError> {
    match resources.iter().find(|r| !is_absolute_uri(r)) {
        Some(resource) => Err(GrantError::target(format!(
            "resource `{resource}` is not an absolute URI without a fragment"
        ))),
        None => Ok(()),
    }
}

/// Every requested resource is well-formed and registered for the client (what any grant
/// needs, checked before a single-use code is spent).
pub fn registered(client: &Client, requested: &[String]) -> Result<(), GrantError> {
    check_syntax(requested)?;
    match requested.iter().find(|r| !client.resources.contains(r)) {
        Some(other) => Err(GrantError::target(format!(
            "resource `{other}` is not registered for this client"
        ))),
        None => Ok(()),
    }
}

/// The resources a fresh grant addresses: the requested ones, each registered for the
/// client; none requested, the client's default (or none).
pub fn resolve(client: &Client, requested: &[String]) -> Result<Vec<String>, GrantError> {
    registered(client, requested)?;
    if requested.is_empty() {
        return Ok(client.default_resource.iter().cloned().collect());
    }
    Ok(dedup(requested))
}

/// A refresh or an exchange: within what was `granted` (and what the client may still use);
/// none requested, all of that.
pub fn narrow(
    client: &Client,
    requested: &[String],
    granted: &[String],
) -> Result<Vec<String>, GrantError> {
    check_syntax(requested)?;
    if let Some(other) = requested.iter().find(|r| !granted.contains(r)) {
        return Err(GrantError::target(format!(
            "resource `{other}` was not granted; a refresh or an exchange cannot widen the resources"
        )));
    }
    let still: Vec<String> = granted
        .iter()
        .filter(|r| client.resources.contains(r))
        .cloned()
        .collect();
    let narrowed = if requested.is_empty() {
        still
    } else {
        requested
            .iter()
            .filter(|r| still.contains(r))
            .cloned()
            .collect()
    };
    // Never fall back to the unaddressed `aud`: that would be a token for every API.
    if narrowed.is_empty() && !granted.is_empty() {
        return Err(GrantError::target(
            "the client may no longer use the resources this grant was for",
        ));
    }
    Ok(dedup(&narrowed))
}

fn dedup(resources: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(resources.len());
    for resource in resources {
        if !out.contains(resource) {
            out.push(resource.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(resources: &[&str], default: Option<&str>) -> Client {
        Client {
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
            default_resource: default.map(str::to_owned),
            ..Client::default()
        }
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn syntax() {
        assert!(check_syntax(&v(&["https://api.example/orders", "urn:example:billing"])).is_ok());
        for bad in [
            "/orders",
            "api",
            "https://api.example/#x",
            "https://a b",
            "1x:y",
            ":x",
        ] {
            let err = check_syntax(&v(&[bad])).err().map(|e| e.code());
            assert_eq!(err, Some("invalid_target"), "{bad}");
        }
    }

    #[test]
    fn resolve_within_the_registration_or_the_default() {
        let c = client(&["https://a", "https://b"], Some("https://a"));
        assert_eq!(resolve(&c, &[]).ok(), Some(v(&["https://a"])));
        assert_eq!(
            resolve(&c, &v(&["https://b", "https://b"])).ok(),
            Some(v(&["https://b"]))
        );
        let err = resolve(&c, &v(&["https://c"])).err().map(|e| e.code());
        assert_eq!(err, Some("invalid_target"));
        // No resources configured: nothing may be asked for, nothing changes.
        let plain = client(&[], None);
        assert_eq!(resolve(&plain, &[]).ok(), Some(vec![]));
        assert!(resolve(&plain, &v(&["https://a"])).is_err());
    }

    #[test]
    fn narrow_never_widens() {
        let c = client(&["https://a", "https://b"], None);
        let granted = v(&["https://a", "https://b"]);
        assert_eq!(narrow(&c, &[], &granted).ok(), Some(granted.clone()));
        assert_eq!(
            narrow(&c, &v(&["https://b"]), &granted).ok(),
            Some(v(&["https://b"]))
        );
        let only_a = v(&["https://a"]);
        let err = narrow(&c, &v(&["https://b"]), &only_a)
            .err()
            .map(|e| e.code());
        assert_eq!(err, Some("invalid_target"));
        // The client lost the resource since: refused rather than unaddressed.
        let lost = client(&["https://b"], None);
        assert!(narrow(&lost, &[], &only_a).is_err());
        // Nothing granted, nothing asked: unaddressed as before.
        assert_eq!(narrow(&c, &[], &[]).ok(), Some(vec![]));
    }
}
