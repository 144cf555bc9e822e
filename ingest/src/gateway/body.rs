//! Request bodies: the media type a route accepts and the buffered bytes,
//! refused with our JSON errors (415, 413, 400) instead of axum's plain-text
//! rejections.
use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{HeaderMap, StatusCode, header},
};

use tributary_edge::error::ApiError;

use super::GatewayState;

/// The media types the gateway reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `application/json`.
    Json,
    /// `application/x-ndjson`: one JSON document per line.
    NdJson,
}

impl MediaType {
    /// The media type of `headers`' content type, ignoring parameters such as
    /// `charset`, when it is one the gateway reads.
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        let essence = content_type(headers)?
            .split(';')
            .next()?
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Self::Json),
            "application/x-ndjson" => Some(Self::NdJson),
            _ => None,
        }
    }
}

/// The raw `content-type` header, when it is text.
pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// The whole request body.
pub struct Body(pub Bytes);

impl FromRequest<GatewayState> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &GatewayState) -> Result<Self, ApiError> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::too_large(format!(
                    "the request body is larger than the limit of {} bytes (--max-message-bytes)",
                    state.max_body_bytes
                )))
            }
            Err(rejection) => Err(ApiError::invalid(
                "body",
                format!("cannot be read: {}", rejection.body_text()),
            )),
        }
    }
}

/// Parses a JSON body, naming `body` and the position when it is not JSON.
pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid("body", format!("is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn media_types_ignore_parameters_and_case() {
        assert_eq!(
            MediaType::of(&with_type("application/json; charset=utf-8")),
            Some(MediaType::Json)
        );
        assert_eq!(
            MediaType::of(&with_type("Application/X-NDJSON")),
            Some(MediaType::NdJson)
        );
        assert_eq!(MediaType::of(&with_type("text/plain")), None);
        assert_eq!(MediaType::of(&HeaderMap::new()), None);
    }
}
