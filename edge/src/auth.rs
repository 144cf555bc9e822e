//! API keys: when any key is configured, every call must carry
//! `authorization: Bearer <key>` with one of them. Keys are compared as
//! SHA-256 digests in constant time, so neither content nor length leaks
//! through timing.
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::rate_limit::{Caller, Exhausted, RateLimiter};

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
        self.identify(authorization, None).map(|_| ())
    }

    /// Checks an `authorization` header value and names the caller rate
    /// limits are charged to: its key when keys are configured, otherwise
    /// its address `peer`.
    pub fn identify(
        &self,
        authorization: Option<&str>,
        peer: Option<std::net::SocketAddr>,
    ) -> Result<Caller, AuthError> {
        if !self.enabled() {
            return Ok(Caller::peer(peer));
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
            found | bool::from(known.ct_eq(&offered))
        });
        if matched {
            Ok(Caller::Key(offered))
        } else {
            Err(AuthError::Invalid)
        }
    }

    /// A tonic interceptor answering UNAUTHENTICATED.
    pub fn interceptor(&self) -> impl tonic::service::Interceptor + Clone + use<> {
        self.guard(None, Charge::Nothing)
    }

    /// A tonic interceptor answering UNAUTHENTICATED, then charging the
    /// caller's rate limit as `charge` says (RESOURCE_EXHAUSTED over it). It
    /// leaves the [`Caller`] in the request's extensions, for handlers that
    /// charge per event.
    pub fn guard(
        &self,
        limiter: Option<RateLimiter>,
        charge: Charge,
    ) -> impl tonic::service::Interceptor + Clone + use<> {
        let keys = self.clone();
        move |mut request: tonic::Request<()>| -> Result<tonic::Request<()>, tonic::Status> {
            let header = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            let caller = keys
                .identify(header, request.remote_addr())
                .map_err(|e| tonic::Status::unauthenticated(e.to_string()))?;
            if let (Some(limiter), Charge::PerCall) = (&limiter, charge) {
                limiter
                    .acquire(&caller, 1)
                    .map_err(|e| rate_limited_status(e, "this call"))?;
            }
            request.extensions_mut().insert(caller);
            Ok(request)
        }
    }
}

/// What [`ApiKeys::guard`] charges to the caller's rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Nothing: the handler charges per event.
    Nothing,
    /// One token per call.
    PerCall,
}

/// RESOURCE_EXHAUSTED for a caller over its rate limit: a `google.rpc.RetryInfo`
/// detail with the exact delay, an `ErrorInfo` with reason `RATE_LIMITED`, and
/// `retry-after` metadata in whole seconds (rounded up). `what` names what
/// was not accepted.
pub fn rate_limited_status(exhausted: Exhausted, what: &str) -> tonic::Status {
    let mut details = ErrorDetails::with_retry_info(Some(exhausted.retry_after));
    details.set_error_info(
        "RATE_LIMITED",
        "tributary.io",
        std::collections::HashMap::new(),
    );
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert(
        "retry-after",
        tonic::metadata::MetadataValue::from(exhausted.retry_after_secs()),
    );
    tonic::Status::with_error_details_and_metadata(
        tonic::Code::ResourceExhausted,
        format!(
            "rate limit exceeded: {what} was not accepted; retry after {} s (--rate-limit)",
            exhausted.retry_after_secs()
        ),
        details,
        metadata,
    )
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
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

    #[test]
    fn the_caller_is_the_key_or_without_keys_the_peer() {
        let peer = Some("192.0.2.1:5000".parse().unwrap());
        let keys = ApiKeys::new(&["k1".into(), "k2".into()]);
        let k1 = keys.identify(Some("Bearer k1"), peer).unwrap();
        let k2 = keys.identify(Some("Bearer k2"), peer).unwrap();
        assert_ne!(k1, k2);
        assert_eq!(k1, Caller::Key(digest("k1")));
        assert_eq!(
            ApiKeys::new(&[]).identify(Some("Bearer k1"), peer),
            Ok(Caller::Peer("192.0.2.1".parse().unwrap()))
        );
    }

    #[test]
    fn rate_limited_status_carries_retry_info_and_retry_after() {
        let status = rate_limited_status(
            Exhausted {
                retry_after: std::time::Duration::from_millis(1500),
            },
            "this call",
        );
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.metadata().get("retry-after").unwrap(), "2");
        let details = status.get_error_details();
        assert_eq!(
            details.retry_info().unwrap().retry_delay,
            Some(std::time::Duration::from_millis(1500))
        );
        assert_eq!(details.error_info().unwrap().reason, "RATE_LIMITED");
    }
}
