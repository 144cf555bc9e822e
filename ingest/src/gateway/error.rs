//! The gateway's refusals of events: a [`Rejection`] of the event path as
//! the edge's one JSON error shape ([`ApiError`]).
use axum::http::StatusCode;
use tributary_edge::error::ApiError;
use tributary_proto::v1::EventErrorCode;

use crate::rejection::Rejection;

/// The response to a rejected event; `rename` turns the event path's field
/// names into the ones the route's clients know.
pub fn from_rejection(rejection: Rejection, rename: impl Fn(&str) -> String) -> ApiError {
    let status = match rejection.code {
        EventErrorCode::InvalidArgument
        | EventErrorCode::SchemaMismatch
        | EventErrorCode::UnknownEventType => StatusCode::BAD_REQUEST,
        EventErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        EventErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        EventErrorCode::Internal | EventErrorCode::Unspecified => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let error = ApiError::with_field(
        status,
        &code_name(rejection.code).to_ascii_lowercase(),
        rename(&rejection.field),
        rejection.message,
    );
    if status.is_server_error() {
        error.logged()
    } else {
        error
    }
}

/// The name of an event error code without the proto prefix, e.g.
/// `INVALID_ARGUMENT`.
pub fn code_name(code: EventErrorCode) -> &'static str {
    let name = code.as_str_name();
    name.strip_prefix("EVENT_ERROR_CODE_").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse as _;
    use tributary_edge::error::REQUEST_ID;

    use super::*;

    #[test]
    fn client_errors_keep_the_field_and_carry_no_request_id() {
        let error = from_rejection(Rejection::invalid("ad_click.ip_address", "bad"), |f| {
            f.to_string()
        });
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            serde_json::to_value(&error.body).unwrap(),
            serde_json::json!({"error": "invalid_argument", "field": "ad_click.ip_address", "message": "bad"})
        );
    }

    #[test]
    fn unavailable_is_503_with_a_request_id() {
        let error = from_rejection(Rejection::unavailable("broker down"), |f| f.to_string());
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.body.error, "unavailable");
        assert!(error.body.request_id.is_some());
        let response = error.into_response();
        assert!(response.headers().contains_key(REQUEST_ID));
    }

    #[test]
    fn internal_is_500() {
        let error = from_rejection(Rejection::internal("oops"), |f| f.to_string());
        assert_eq!(error.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.body.error, "internal");
    }
}
