//! The JSON error responses of every HTTP route: every refusal, whether it
//! comes from a service (a rejected event, a bad query), the API key check or
//! the request itself (content type, body, routing), leaves as one JSON
//! shape, [`ErrorBody`]. Server-side
//! failures carry a request id, in the body and the `x-request-id` header, that
//! is also logged, so an operator can find what a client reports.
use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{auth::AuthError, rate_limit::Exhausted};

/// The header carrying the id of a failed request.
pub const REQUEST_ID: &str = "x-request-id";

/// The classes of error an [`ErrorBody`] names (its `error`).
pub const ERROR_CLASSES: &[&str] = &[
    "invalid_argument",
    "schema_mismatch",
    "unknown_event_type",
    "too_large",
    "unsupported_media_type",
    "unauthenticated",
    "resource_exhausted",
    "not_found",
    "method_not_allowed",
    "unavailable",
    "internal",
];

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// The class of the error in snake case, e.g. `invalid_argument`.
    #[schema(schema_with = error_class)]
    pub error: String,
    /// The offending field, when the error is about one.
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schema(required = false)]
    pub field: String,
    /// What was wrong.
    pub message: String,
    /// On 5xx and 429: the id the request was logged under (also the
    /// `x-request-id` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub request_id: Option<String>,
}

/// `ErrorBody::error`'s schema: one of [`ERROR_CLASSES`].
fn error_class() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("The class of the error."))
        .enum_values(Some(ERROR_CLASSES.iter().copied()))
        .build()
}

/// An error response: a status and an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
    /// Seconds for the `Retry-After` header (429).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error that is not about one field.
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        Self::with_field(status, error, "", message)
    }

    /// An error about `field`.
    pub fn with_field(
        status: StatusCode,
        error: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let body = ErrorBody {
            error: error.into(),
            field: field.into(),
            message: message.into(),
            request_id: None,
        };
        Self {
            status,
            body,
            retry_after_secs: None,
        }
    }

    /// A 429 for a caller over its rate limit, with `Retry-After` (whole
    /// seconds, rounded up) and a request id.
    pub fn rate_limited(exhausted: Exhausted) -> Self {
        let secs = exhausted.retry_after_secs();
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "resource_exhausted",
            format!(
                "rate limit exceeded; nothing was accepted; retry after {secs} s (--rate-limit)"
            ),
        );
        let id = uuid::Uuid::new_v4().to_string();
        tracing::debug!(request_id = %id, retry_after_secs = secs, "gateway request over the rate limit");
        error.body.request_id = Some(id);
        error.retry_after_secs = Some(secs);
        error
    }

    /// A 400 about `field` of the request.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::with_field(StatusCode::BAD_REQUEST, "invalid_argument", field, message)
    }

    /// A 413 for a request larger than a limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::with_field(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "body", message)
    }

    /// A 415 for a body of another type than `expected`.
    pub fn unsupported_media_type(given: Option<&str>, expected: &str) -> Self {
        let given = given.map_or_else(
            || "no content type".to_string(),
            |g| format!("content type `{g}`"),
        );
        Self::with_field(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "content-type",
            format!("expected {expected}, got {given}"),
        )
    }

    /// Gives a server-side failure an id, and logs it under that id.
    pub fn logged(mut self) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        tracing::error!(request_id = %id, status = self.status.as_u16(), error = %self.body.error, message = %self.body.message, "gateway request failed");
        self.body.request_id = Some(id);
        self
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            error.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = self.body.request_id.clone();
        let unauthenticated = self.status == StatusCode::UNAUTHORIZED;
        let retry_after = self.retry_after_secs;
        let mut response = (self.status, Json(self.body)).into_response();
        let headers = response.headers_mut();
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
            headers.insert(REQUEST_ID, id);
        }
        if unauthenticated {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_is_429_with_retry_after_and_a_request_id() {
        let error = ApiError::rate_limited(Exhausted {
            retry_after: std::time::Duration::from_millis(2100),
        });
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.body.error, "resource_exhausted");
        assert!(error.body.request_id.is_some());
        let response = error.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert!(response.headers().contains_key(REQUEST_ID));
    }
}
