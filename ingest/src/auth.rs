//! API keys: when any key is configured, every call must carry
//! `authorization: Bearer <key>` with one of them. Keys are compared as
//! SHA-256 digests in constant time, so neither content nor length leaks
//! through timing.
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

/// The accepted keys; an empty set accepts every call.
#[derive(Clone, Default)]
pub struct ApiKeys {
    digests: Arc<Vec<[u8; 32]>>,
}

/// Why a call was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization` header.
    #[error("missing `authorization: Bearer <api key>`")]
    Missing,
    /// A header that is not a Bearer token.
    #[error("the authorization header is not `Bearer <api key>`")]
    Malformed,
    /// A key that is not configured.
    #[error("the API key is not valid")]
    Invalid,
}

impl ApiKeys {
    /// Accepts exactly `keys` (everything when empty).
    pub fn new(keys: &[String]) -> Self {
        Self {
            digests: Arc::new(keys.iter().map(|k| digest(k)).collect()),
        }
    }

    /// Whether any key is configured.
    pub fn enabled(&self) -> bool {
        !self.digests.is_empty()
    }

    /// Checks an `authorization` header value.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), AuthError> {
        if !self.enabled() {
            return Ok(());
        }
        let header = authorization.ok_or(AuthError::Missing)?;
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(AuthError::Malformed)?
            .trim();
        let offered = digest(key);
        // Compare with every key, without stopping early.
        let matched = self.digests.iter().fold(false, |found, known| {
            found | constant_time_eq(known, &offered)
        });
        if matched {
            Ok(())
        } else {
            Err(AuthError::Invalid)
        }
    }

    /// A tonic interceptor answering UNAUTHENTICATED.
    pub fn interceptor(&self) -> impl tonic::service::Interceptor + Clone + use<> {
        let keys = self.clone();
        move |request: tonic::Request<()>| {
            let header = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            match keys.check(header) {
                Ok(()) => Ok(request),
                Err(e) => Err(tonic::Status::unauthenticated(e.to_string())),
            }
        }
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_keys_every_call_is_let_in() {
        assert_eq!(ApiKeys::new(&[]).check(None), Ok(()));
    }

    #[test]
    fn with_keys_only_a_configured_bearer_key_is_let_in() {
        let keys = ApiKeys::new(&["k1".into(), "k2".into()]);
        assert_eq!(keys.check(Some("Bearer k2")), Ok(()));
        assert_eq!(keys.check(None), Err(AuthError::Missing));
        assert_eq!(keys.check(Some("Basic k2")), Err(AuthError::Malformed));
        assert_eq!(keys.check(Some("Bearer k3")), Err(AuthError::Invalid));
        assert_eq!(keys.check(Some("Bearer k")), Err(AuthError::Invalid));
    }
}
