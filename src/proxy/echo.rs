//! `builtin:echo`: answers with a JSON description of the request exactly as an upstream would
//! receive it (after path normalisation, header hygiene and identity injection). The body is
//! read and counted, never kept.

use http_body_util::BodyExt;
use hyper::{HeaderMap, Request, Response, StatusCode};
use serde_json::{Map, Value};

use super::error::ProxyError;
use crate::http::{Body, json_response};

pub async fn respond(request: Request<Body>, limit: u64) -> Result<Response<Body>, ProxyError> {
    let (parts, mut body) = request.into_parts();
    let mut body_bytes: u64 = 0;
    let mut trailers = HeaderMap::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| super::forward::classify_body_error(e, limit))?;
        match frame.into_data() {
            Ok(data) => body_bytes += data.len() as u64,
            Err(frame) => {
                if let Ok(more) = frame.into_trailers() {
                    trailers.extend(more);
                }
            }
        }
    }
    let description = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "version": format!("{:?}", parts.version),
        "headers": as_json(&parts.headers),
        "body_bytes": body_bytes,
        "trailers": as_json(&trailers),
    });
    Ok(json_response(StatusCode::OK, &description))
}

/// Header name → value; repeated fields joined with `, `.
fn as_json(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for name in headers.keys() {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        out.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
    }
    Value::Object(out)
}
