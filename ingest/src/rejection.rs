//! Why an event was not accepted. One type for every edge: the gRPC stream
//! and batch results carry it as `EventError`, unary calls as a `Status` with
//! the field in its message and details, the JSON gateway as a 4xx/5xx body.
use tonic_types::{ErrorDetails, StatusExt as _};
use tributary_proto::v1::{EventError, EventErrorCode};

/// An event that was refused, and nothing of it was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Rejection {
    /// The class of the error.
    pub code: EventErrorCode,
    /// The offending field's path, e.g. `ad_click.ip_address`; empty when the
    /// error is not about one field.
    pub field: String,
    /// What was wrong.
    pub message: String,
}

impl Rejection {
    /// A missing or invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: EventErrorCode::InvalidArgument,
            field: field.into(),
            message: message.into(),
        }
    }

    /// A payload that does not match the registered schema.
    pub fn schema_mismatch(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: EventErrorCode::SchemaMismatch,
            field: field.into(),
            message: message.into(),
        }
    }

    /// An event type with no registered schema.
    pub fn unknown_type(event_type: &str, detail: impl std::fmt::Display) -> Self {
        Self {
            code: EventErrorCode::UnknownEventType,
            field: "event_type".into(),
            message: format!("no schema is registered for event type `{event_type}`: {detail}"),
        }
    }

    /// The broker or registry could not be reached in time; safe to retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            code: EventErrorCode::Unavailable,
            field: String::new(),
            message: message.into(),
        }
    }

    /// An unexpected failure; nothing was stored.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: EventErrorCode::Internal,
            field: String::new(),
            message: message.into(),
        }
    }

    /// `field: message`, or the message alone.
    pub fn describe(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }

    /// Whether the client made the mistake (as opposed to the pipeline).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self.code,
            EventErrorCode::Unavailable | EventErrorCode::Internal
        )
    }

    /// The gRPC `EventError`.
    pub fn to_proto(&self) -> EventError {
        EventError {
            code: self.code as i32,
            field: self.field.clone(),
            message: self.message.clone(),
        }
    }

    /// The gRPC status of a unary call.
    pub fn to_status(&self) -> tonic::Status {
        let code = match self.code {
            EventErrorCode::Unavailable => tonic::Code::Unavailable,
            EventErrorCode::Internal | EventErrorCode::Unspecified => tonic::Code::Internal,
            EventErrorCode::UnknownEventType => tonic::Code::NotFound,
            EventErrorCode::TooLarge => tonic::Code::ResourceExhausted,
            EventErrorCode::InvalidArgument | EventErrorCode::SchemaMismatch => {
                tonic::Code::InvalidArgument
            }
        };
        // Standard google.rpc error details, which every gRPC client can
        // decode: the reason as ErrorInfo and, for a field, a BadRequest
        // field violation.
        let mut details = ErrorDetails::with_error_info(
            self.code.as_str_name(),
            "tributary.io",
            std::collections::HashMap::from([("field".to_string(), self.field.clone())]),
        );
        if !self.field.is_empty() {
            details.add_bad_request_violation(self.field.clone(), self.message.clone());
        }
        tonic::Status::with_error_details(code, self.describe(), details)
    }
}
