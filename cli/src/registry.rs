//! A small client of the Confluent Schema Registry REST API, for `trib
//! schema`. Errors keep the registry's HTTP status, `error_code` and
//! `message`, so commands can tell a refusal from a failure.
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tributary_common::config::RegistryArgs;

/// The registry at one base URL.
pub struct Registry {
    http: reqwest::Client,
    base: String,
}

/// The registry refused a request.
#[derive(Debug, thiserror::Error)]
#[error("the registry answered {status}: {message} (error code {code})")]
pub struct Refusal {
    pub status: StatusCode,
    pub code: i64,
    pub message: String,
}

impl Registry {
    /// The registry `args` names, reached with its credentials and CA (the
    /// services' client settings).
    pub fn new(args: &RegistryArgs) -> anyhow::Result<Self> {
        Ok(Self {
            http: args.http_client(std::time::Duration::from_secs(30))?,
            base: args.base_url()?,
        })
    }

    /// Calls `method path` with an optional JSON body; a non-2xx answer is a [`Refusal`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
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
