//! Every way a registry request can fail, and the one place where a failure
//! becomes Confluent's `{"error_code": N, "message": "..."}` response.
//!
//! Clients built against Confluent Schema Registry branch on `error_code`
//! (and some on the message text), so the codes and messages below follow
//! Confluent Schema Registry 7.x.
use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// A failed registry operation, as the client will see it.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// 40401: the subject has no (visible) versions.
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// 40402: the subject exists but not this version.
    #[error("Version {0} not found.")]
    VersionNotFound(i32),
    /// 40403 without an id: a lookup found no matching schema under the subject.
    #[error("Schema not found")]
    SchemaNotFound,
    /// 40403 for an id (kept as text so a non-numeric id reads back as sent).
    #[error("Schema {0} not found")]
    SchemaIdNotFound(String),
    /// 40404: a soft delete of a subject that is already soft deleted.
    #[error("Subject '{0}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// 40405: a permanent delete of a subject that was not soft deleted first.
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    /// 40406: a soft delete of a version that is already soft deleted.
    #[error(
        "Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently"
    )]
    VersionSoftDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: i32,
    },
    /// 40407: a permanent delete of a version that was not soft deleted first.
    #[error(
        "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
    )]
    VersionNotSoftDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: i32,
    },
    /// 40408: the subject has no compatibility level of its own.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectCompatibilityNotConfigured(String),
    /// 40409: the subject has no mode of its own.
    #[error("Subject '{0}' does not have subject-level mode configured")]
    SubjectModeNotConfigured(String),
    /// 409: the schema breaks the subject's compatibility level; `details` name each difference.
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]", details.join(", "))]
    Incompatible {
        /// The subject.
        subject: String,
        /// One line per incompatibility found.
        details: Vec<String>,
    },
    /// 42201: the schema (or one of its references) is not a valid schema.
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    /// 42202: a version that is neither 1..2^31-1 nor `latest`/`-1`.
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    /// 42203: an unknown compatibility level.
    #[error(
        "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
    )]
    InvalidCompatibilityLevel,
    /// 42204: an unknown mode.
    #[error("Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE, and IMPORT")]
    InvalidMode,
    /// 42205: a write to a subject in read-only mode.
    #[error("Subject {0} is in read-only mode")]
    ReadOnly(String),
    /// 42206: a delete of a version that live schemas still reference.
    #[error(
        "One or more references exist to the schema {{magic=1,keytype=SCHEMA,subject={subject},version={version}}}."
    )]
    ReferenceExists {
        /// The subject.
        subject: String,
        /// The version.
        version: i32,
    },
    /// 42208: a subject name the registry cannot store.
    #[error(
        "The specified subject '{0}' is not valid: a subject is non-empty text without control characters"
    )]
    InvalidSubject(String),
    /// 400: the request body is not JSON.
    #[error("Malformed JSON: {0}")]
    MalformedJson(String),
    /// 422: JSON of the wrong shape (a missing or mistyped field).
    #[error("Invalid request: {0}")]
    InvalidRequest(String),
    /// 413: a request body over the limit (set from the schema size limit).
    #[error("Request body too large")]
    BodyTooLarge,
    /// 404: no such route.
    #[error("HTTP 404 Not Found")]
    RouteNotFound,
    /// 405: the route exists for other methods.
    #[error("HTTP 405 Method Not Allowed")]
    MethodNotAllowed,
    /// 415: a request body in a media type the registry does not read.
    #[error("HTTP 415 Unsupported Media Type")]
    UnsupportedMediaType,
    /// 406: the client accepts no media type the registry writes.
    #[error("HTTP 406 Not Acceptable")]
    NotAcceptable,
    /// 40101: access control is on and the request has no valid credentials.
    #[error("Unauthorized: {0}")]
    Unauthenticated(String),
    /// 40301: the caller's role does not allow the request.
    #[error("Forbidden: user '{user}' has the {role} role; {action} needs the {needed} role")]
    Forbidden {
        /// The caller.
        user: String,
        /// The caller's role.
        role: crate::access::Role,
        /// The least role that may.
        needed: crate::access::Role,
        /// What was attempted.
        action: String,
    },
    /// 50001: Postgres failed; the detail is logged, not sent.
    #[error("Error in the backend datastore")]
    Store(#[from] sqlx::Error),
}

impl RegistryError {
    /// The HTTP status and Confluent `error_code` of this failure.
    pub fn codes(&self) -> (StatusCode, u32) {
        use RegistryError::*;
        match self {
            SubjectNotFound(_) => (StatusCode::NOT_FOUND, 40401),
            VersionNotFound(_) => (StatusCode::NOT_FOUND, 40402),
            SchemaNotFound | SchemaIdNotFound(_) => (StatusCode::NOT_FOUND, 40403),
            SubjectSoftDeleted(_) => (StatusCode::NOT_FOUND, 40404),
            SubjectNotSoftDeleted(_) => (StatusCode::NOT_FOUND, 40405),
            VersionSoftDeleted { .. } => (StatusCode::NOT_FOUND, 40406),
            VersionNotSoftDeleted { .. } => (StatusCode::NOT_FOUND, 40407),
            SubjectCompatibilityNotConfigured(_) => (StatusCode::NOT_FOUND, 40408),
            SubjectModeNotConfigured(_) => (StatusCode::NOT_FOUND, 40409),
            Incompatible { .. } => (StatusCode::CONFLICT, 409),
            InvalidSchema(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42201),
            InvalidVersion(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42202),
            InvalidCompatibilityLevel => (StatusCode::UNPROCESSABLE_ENTITY, 42203),
            InvalidMode => (StatusCode::UNPROCESSABLE_ENTITY, 42204),
            ReadOnly(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42205),
            ReferenceExists { .. } => (StatusCode::UNPROCESSABLE_ENTITY, 42206),
            InvalidSubject(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42208),
            MalformedJson(_) => (StatusCode::BAD_REQUEST, 400),
            InvalidRequest(_) => (StatusCode::UNPROCESSABLE_ENTITY, 422),
            BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, 413),
            RouteNotFound => (StatusCode::NOT_FOUND, 404),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, 405),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 415),
            NotAcceptable => (StatusCode::NOT_ACCEPTABLE, 406),
            Unauthenticated(_) => (StatusCode::UNAUTHORIZED, 40101),
            Forbidden { .. } => (StatusCode::FORBIDDEN, 40301),
            Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, 50001),
        }
    }
}

/// Confluent's error body.
#[derive(Serialize)]
struct ErrorBody {
    error_code: u32,
    message: String,
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        if let RegistryError::Store(cause) = &self {
            tracing::error!(error = %cause, "registry store error");
        }
        let (status, error_code) = self.codes();
        let mut response = (
            status,
            Json(ErrorBody {
                error_code,
                message: self.to_string(),
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            // Tells browsers and curl which scheme to answer with.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(
                    r#"Basic realm="tributary-registry", charset="UTF-8""#,
                ),
            );
        }
        response
    }
}

/// Result of a registry operation.
pub type RegistryResult<T> = Result<T, RegistryError>;
