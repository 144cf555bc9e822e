//! Why a query failed, and the one place that turns it into a gRPC status.
//! The JSON gateway maps the same variants to HTTP statuses.
use tonic::Status;

/// What the query API sends to the caller instead of results.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A request parameter is missing or wrong; `field` names it as the
    /// protobuf field (e.g. `page_size`).
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The offending parameter.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The service was started without a database to query.
    #[error(
        "the query API is not configured: start ingest with --database-url (DATABASE_URL) pointing at the sink's Postgres database"
    )]
    NotConfigured,
    /// The database cannot be reached right now; the call may be retried.
    #[error("the aggregates database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database refused the query: a bug or a schema mismatch.
    #[error("the aggregates query failed: {0}")]
    Database(#[source] sqlx::Error),
}

impl QueryError {
    /// An invalid `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            message: message.into(),
        }
    }

    /// The parameter the error is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::InvalidArgument { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for QueryError {
    fn from(error: sqlx::Error) -> Self {
        // Connection trouble is transient (the caller may retry); anything
        // else means the statement itself is wrong.
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(error),
            sqlx::Error::Database(ref e)
                if e.code().is_some_and(|code| {
                    // Class 08: connection exception; 57P0x: the server is shutting down.
                    code.starts_with("08") || code.starts_with("57P0")
                }) =>
            {
                Self::Unavailable(error)
            }
            _ => Self::Database(error),
        }
    }
}

impl From<QueryError> for Status {
    fn from(error: QueryError) -> Self {
        match &error {
            // The message alone names the field: `grpc-status-details-bin` must
            // hold an encoded google.rpc.Status, and anything else makes Go
            // clients such as grpcurl report INTERNAL instead.
            QueryError::InvalidArgument { .. } => Status::invalid_argument(error.to_string()),
            QueryError::NotConfigured => Status::unavailable(error.to_string()),
            QueryError::Unavailable(_) => {
                tracing::warn!(%error, "query failed: database unavailable");
                Status::unavailable(error.to_string())
            }
            QueryError::Database(_) => {
                tracing::error!(%error, "query failed");
                Status::internal("the aggregates query failed; see the server log")
            }
        }
    }
}
