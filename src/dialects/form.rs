//! The parts of a token request every dialect reads the same way: an
//! `application/x-www-form-urlencoded` body (or query) as a parameter map, and HTTP Basic
//! client credentials (RFC 6749 §2.3.1).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::HeaderMap;
use hyper::header::{self, HeaderValue};

/// Why the request's parameters or credentials could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    /// The endpoint takes only a form body (the `oauth2` dialect, the login pages).
    #[error("the request body must be application/x-www-form-urlencoded")]
    ContentType,
    /// RFC 6749 §3.1: no parameter may appear twice.
    #[error("the parameter `{0}` is repeated")]
    Repeated(String),
    /// More than one `Authorization` header, bad base64 or UTF-8, no colon, or an empty id.
    #[error("the Authorization header is not valid HTTP Basic client authentication")]
    BadBasic,
    /// A JSON body that is not an object of strings, numbers and booleans.
    #[error("the request body must be a JSON object of strings and numbers")]
    Json,
    /// Neither a form nor JSON (the legacy dialects take both).
    #[error("the request body must be application/x-www-form-urlencoded or application/json")]
    FormOrJson,
}

/// A required parameter is absent (or empty, which RFC 6749 §3.1 counts as absent). Each
/// dialect words it as its document does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the parameter `{name}` is required")]
pub struct MissingParameter {
    /// The parameter's name.
    pub name: &'static str,
}

/// Request parameters. RFC 6749 §3.1: a parameter without a value is treated as omitted, and
/// none may appear twice — except those an extension defines as repeatable ([`REPEATABLE`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Form {
    params: HashMap<String, String>,
    /// The repeatable parameters' values, in order.
    lists: HashMap<String, Vec<String>>,
}

/// Parameters that may appear more than once: RFC 8707 §2's `resource`.
pub const REPEATABLE: [&str; 1] = ["resource"];

impl Form {
    /// An `application/x-www-form-urlencoded` body or query string.
    pub fn parse(input: &[u8]) -> Result<Form, FormError> {
        let mut params = HashMap::new();
        let mut lists: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in form_urlencoded::parse(input) {
            if value.is_empty() {
                continue;
            }
            if REPEATABLE.contains(&name.as_ref()) {
                lists
                    .entry(name.into_owned())
                    .or_default()
                    .push(value.into_owned());
                continue;
            }
            if params
                .insert(name.clone().into_owned(), value.into_owned())
                .is_some()
            {
                return Err(FormError::Repeated(name.into_owned()));
            }
        }
        Ok(Form { params, lists })
    }

    /// A JSON object body (the legacy dialects accept one): strings, numbers and booleans
    /// become parameters; `null` and empty strings count as omitted.
    pub fn from_json(input: &[u8]) -> Result<Form, FormError> {
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(input).map_err(|_| FormError::Json)?;
        let mut params = HashMap::new();
        for (name, value) in object {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                _ => return Err(FormError::Json),
            };
            if !text.is_empty() {
                params.insert(name, text);
            }
        }
        Ok(Form {
            params,
            lists: HashMap::new(),
        })
    }

    /// The body as its `Content-Type` says: a form or a JSON object.
    pub fn from_body(headers: &HeaderMap, body: &[u8]) -> Result<Form, FormError> {
        if is_form(headers) {
            Form::parse(body)
        } else if is_json(headers) {
            Form::from_json(body)
        } else {
            Err(FormError::FormOrJson)
        }
    }

    /// A parameter's value (never empty); a repeatable one's first.
    pub fn get(&self, name: &str) -> Option<&str> {
        match self.params.get(name) {
            Some(value) => Some(value),
            None => self.all(name).first().map(String::as_str),
        }
    }

    /// Every value of a repeatable parameter, in order (empty when absent).
    pub fn all(&self, name: &str) -> &[String] {
        self.lists.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// Removes and returns a parameter (so secrets do not linger in the map).
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.params.remove(name)
    }

    /// Removes and returns a parameter the request cannot do without.
    pub fn required(&mut self, name: &'static str) -> Result<String, MissingParameter> {
        self.take(name).ok_or(MissingParameter { name })
    }
}

/// Is the body declared as a form? (Parameters such as `charset` are allowed.)
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Is the body declared as JSON? (Parameters such as `charset` are allowed.)
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// `Authorization: Basic` client credentials, if the request carries that scheme. The id and
/// secret are form-urlencoded before base64 (RFC 6749 §2.3.1), so they are decoded here.
/// Another scheme is not client authentication and is ignored.
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, FormError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(FormError::BadBasic);
    }
    parse_basic(value)
}

fn parse_basic(value: &HeaderValue) -> Result<Option<(String, String)>, FormError> {
    let text = value.to_str().map_err(|_| FormError::BadBasic)?.trim();
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .map_err(|_| FormError::BadBasic)?;
    let decoded = String::from_utf8(decoded).map_err(|_| FormError::BadBasic)?;
    let (id, secret) = decoded.split_once(':').ok_or(FormError::BadBasic)?;
    let id = unescape(id);
    if id.is_empty() {
        return Err(FormError::BadBasic);
    }
    Ok(Some((id, unescape(secret))))
}

fn unescape(part: &str) -> String {
    form_urlencoded::parse(format!("x={part}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let form = Form::parse(b"a=1&b=&c=x%20y+z").expect("form");
        assert_eq!(form.get("a"), Some("1"));
        assert_eq!(form.get("b"), None, "an empty value counts as omitted");
        assert_eq!(form.get("c"), Some("x y z"));
        assert_eq!(
            Form::parse(b"a=1&a=2"),
            Err(FormError::Repeated("a".into()))
        );
        assert!(
            Form::parse(b"a=&a=2").is_ok(),
            "an empty repeat is no value"
        );
    }

    #[test]
    fn json_bodies() {
        let form = Form::from_json(br#"{"user_id": 42, "password": "pw", "x": null, "e": ""}"#)
            .expect("json");
        assert_eq!(form.get("user_id"), Some("42"));
        assert_eq!(form.get("password"), Some("pw"));
        assert_eq!(form.get("x"), None);
        assert_eq!(form.get("e"), None);
        assert_eq!(Form::from_json(br#"{"a": [1]}"#), Err(FormError::Json));
        assert_eq!(Form::from_json(b"[1]"), Err(FormError::Json));
    }

    #[test]
    fn content_types() {
        let mut headers = HeaderMap::new();
        assert!(!is_form(&headers));
        for (value, ok) in [
            ("application/x-www-form-urlencoded", true),
            ("Application/X-WWW-Form-Urlencoded; charset=UTF-8", true),
            ("application/json", false),
            ("multipart/form-data; boundary=x", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_form(&headers), ok, "{value}");
        }
    }

    #[test]
    fn basic() {
        let header = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(v));
            basic_credentials(&h)
        };
        // "web:s3cret"
        assert_eq!(
            header("Basic d2ViOnMzY3JldA=="),
            Ok(Some(("web".into(), "s3cret".into())))
        );
        // "my%20app:a%3Ab" — urlencoded before base64, per RFC 6749 §2.3.1
        assert_eq!(
            header("basic bXklMjBhcHA6YSUzQWI="),
            Ok(Some(("my app".into(), "a:b".into())))
        );
        assert_eq!(header("Bearer abc"), Ok(None));
        assert_eq!(header("Basic !!!"), Err(FormError::BadBasic));
        // "nocolon"
        assert_eq!(header("Basic bm9jb2xvbg=="), Err(FormError::BadBasic));
        assert_eq!(basic_credentials(&HeaderMap::new()), Ok(None));
    }
}
