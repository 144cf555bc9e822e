//! The SDK's errors: what can go wrong connecting, building an event, sending
//! or querying. A refused event is not an error of the sender: it is an
//! [`Outcome::Rejected`](crate::Outcome::Rejected) with the server's reason.
use thiserror::Error;

/// Anything the SDK can fail with.
#[derive(Debug, Error)]
pub enum Error {
    /// The endpoint URL cannot be used.
    #[error("invalid endpoint `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The API key cannot be sent as an HTTP header value.
    #[error("the API key is not a valid header value")]
    InvalidApiKey,
    /// An event (or its JSON envelope) is invalid; nothing was sent.
    #[error("{field}: {message}")]
    InvalidEvent {
        /// The path of the offending field, e.g. `ad_click.ip_address`.
        field: String,
        /// Why it is invalid.
        message: String,
    },
    /// A call failed with a status the SDK does not retry. Shown as the
    /// code and message once (the status is not also chained as a source,
    /// whose display would repeat them with its metadata).
    #[error("{}: {}", .0.code(), .0.message())]
    Status(tonic::Status),
    /// The sender gave up: the server stayed unreachable for longer than the
    /// sender's retry timeout. `last` is the last failure seen.
    #[error("gave up after {attempts} attempts to reach ingest: {last}")]
    GaveUp {
        /// How many times the stream was (re)opened.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The sender never reached ingest within
    /// [`SenderOptions::first_connect_timeout`](crate::SenderOptions::first_connect_timeout):
    /// nothing was sent.
    #[error("cannot reach ingest at {url}: {last}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// The last failure.
        last: String,
    },
    /// The sender was closed, or its background task ended.
    #[error("the sender is closed")]
    Closed,
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Self::Status(status)
    }
}

impl Error {
    /// An [`Error::InvalidEvent`].
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidEvent {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `Result` with the SDK's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;
