//! Content negotiation as Confluent does it: requests in one of the registry's
//! JSON media types (else 415), clients that accept one of them (else 406), and
//! every response labelled `application/vnd.schemaregistry.v1+json`.
use axum::{
    extract::Request,
    http::{HeaderMap, HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::error::RegistryError;

/// The media type of every response.
pub const SCHEMA_REGISTRY_V1_JSON: &str = "application/vnd.schemaregistry.v1+json";

/// Media types the registry reads and writes.
const JSON_TYPES: &[&str] = &[
    SCHEMA_REGISTRY_V1_JSON,
    "application/vnd.schemaregistry+json",
    "application/json",
];

/// Middleware: refuses unreadable bodies and unsatisfiable `Accept`, labels responses.
pub async fn negotiate(request: Request, next: Next) -> Response {
    let refusal = if sends_body(request.method()) && !readable(request.headers()) {
        Some(RegistryError::UnsupportedMediaType)
    } else if !acceptable(request.headers()) {
        Some(RegistryError::NotAcceptable)
    } else {
        None
    };
    let mut response = match refusal {
        Some(error) => error.into_response(),
        None => next.run(request).await,
    };
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCHEMA_REGISTRY_V1_JSON),
    );
    response
}

fn sends_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT)
}

fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A missing `Content-Type` is read as JSON, as curl users expect.
fn readable(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE) {
        None => true,
        Some(value) => value
            .to_str()
            .is_ok_and(|v| JSON_TYPES.contains(&media_type(v).as_str())),
    }
}

fn acceptable(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::ACCEPT) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    if value.trim().is_empty() {
        return true;
    }
    value.split(',').any(|entry| {
        let refused = entry.split(';').skip(1).any(|param| {
            param
                .trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                == Some(0.0)
        });
        let media = media_type(entry);
        !refused
            && (media == "*/*" || media == "application/*" || JSON_TYPES.contains(&media.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn accept_lists_with_one_json_type_or_wildcard_are_acceptable() {
        assert!(acceptable(&accept(
            "application/vnd.schemaregistry.v1+json, application/json; q=0.9"
        )));
        assert!(acceptable(&accept("text/html, */*;q=0.1")));
        assert!(!acceptable(&accept("text/html")));
        assert!(!acceptable(&accept("application/json;q=0")));
    }
}
