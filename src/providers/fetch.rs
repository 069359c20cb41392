//! One bounded call to a provider: under the provider's timeout, redirects not followed, the
//! body cut at a size limit, JSON only.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use serde_json::{Map, Value};

use super::ProviderError;
use crate::outbound::HttpClient;

/// Largest answer read from a provider (discovery, token, UserInfo).
const MAX_ANSWER: usize = 64 << 10;

/// A request to send.
pub(super) struct Call<'a> {
    pub what: &'static str,
    pub uri: &'a Uri,
    /// A form body (POST) or none (GET).
    pub form: Option<String>,
    pub authorization: Option<String>,
}

/// The answer: status and a JSON object (a non-JSON body is an error).
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub json: Map<String, Value>,
}

pub(super) async fn call(
    client: &HttpClient,
    call: Call<'_>,
    timeout: Duration,
) -> Result<Answer, ProviderError> {
    let what = call.what;
    let unreachable = |detail: String| ProviderError::Unreachable { what, detail };
    let mut builder = Request::builder()
        .uri(call.uri.clone())
        .header(header::ACCEPT, "application/json");
    if let Some(value) = &call.authorization {
        let value = HeaderValue::from_str(value)
            .map_err(|_| ProviderError::invalid(what, "credentials are not a header value"))?;
        builder = builder.header(header::AUTHORIZATION, value);
    }
    let request = match call.form {
        Some(form) => builder
            .method(Method::POST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(
                Full::new(Bytes::from(form))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            ),
        None => builder.method(Method::GET).body(
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        ),
    }
    .map_err(|error| ProviderError::invalid(what, error.to_string()))?;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|error| unreachable(error.to_string()))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map_err(|error| unreachable(format!("the answer could not be read: {error}")))?;
        Ok::<_, ProviderError>((parts, body.to_bytes()))
    };
    let (parts, bytes) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| unreachable(format!("no answer within {timeout:?}")))??;
    if parts.status.is_server_error() {
        return Err(unreachable(format!("answered {}", parts.status)));
    }
    let json = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => map,
        _ if parts.status.is_redirection() => {
            return Err(ProviderError::invalid(
                what,
                format!("answered {} (redirects are not followed)", parts.status),
            ));
        }
        _ => {
            return Err(ProviderError::invalid(
                what,
                format!("answered {} without a JSON object", parts.status),
            ));
        }
    };
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        json,
    })
}
