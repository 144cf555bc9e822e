//! A small client of the Confluent Schema Registry REST API, for callers
//! that need the registry's own answers (`trib schema`, the console's
//! schema pages): JSON in and out, and a refusal keeps the registry's HTTP
//! status, `error_code` and `message`, so a refusal can be told from a
//! failure. Reading and registering schemas on the data path goes through
//! [`crate::registry_client`].
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::config::RegistryArgs;

/// The registry at one base URL, reached with its credentials and CA (the
/// services' client settings).
pub struct RegistryRest {
    http: reqwest::Client,
    base: String,
}

/// The registry refused a request (a non-2xx answer).
#[derive(Debug, thiserror::Error)]
#[error("the registry answered {status}: {message} (error code {code})")]
pub struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// The registry's `error_code` (0 when the body had none).
    pub code: i64,
    /// The registry's `message`.
    pub message: String,
}

/// Why a call has no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The registry answered, refusing.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The registry did not answer (connection, timeout, body).
    #[error("the registry did not answer: {0}")]
    Unreachable(String),
}

impl From<reqwest::Error> for CallError {
    fn from(error: reqwest::Error) -> Self {
        Self::Unreachable(error.without_url().to_string())
    }
}

impl RegistryRest {
    /// The registry `args` names; each call times out after `timeout`.
    pub fn new(args: &RegistryArgs, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            http: args.http_client(timeout)?,
            base: args.base_url()?,
        })
    }

    /// Calls `method path` with an optional JSON body; a non-2xx answer is
    /// [`CallError::Refused`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CallError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(
                "accept",
                "application/vnd.schemaregistry.v1+json, application/json",
            );
        if let Some(body) = body {
            request = request
                .header("content-type", "application/vnd.schemaregistry.v1+json")
                .body(body.to_string());
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(value);
        }
        Err(Refusal {
            status,
            code: value["error_code"].as_i64().unwrap_or_default(),
            message: value["message"].as_str().unwrap_or_default().to_string(),
        }
        .into())
    }
}

/// Percent-encodes a path segment (subjects may hold any character).
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_segment_keeps_unreserved_characters_and_encodes_the_rest() {
        assert_eq!(
            super::segment("tributary.events.ad_click-value"),
            "tributary.events.ad_click-value"
        );
        assert_eq!(super::segment("a b/c%?é"), "a%20b%2Fc%25%3F%C3%A9");
    }
}
