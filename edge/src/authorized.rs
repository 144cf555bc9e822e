//! The API key check and rate limit of the protected HTTP routes, as an
//! extractor over any state that holds an [`Access`]: a handler that takes [`Authorized`] runs only for a caller with
//! a configured key (401 otherwise) that is within its rate limit (429 with
//! `Retry-After` otherwise), so nothing is read or produced for anyone else.
//! [`Authorized`] charges one token; a route that takes many events takes
//! [`AuthorizedBatch`] instead, which charges nothing up front, and charges
//! the batch whole with [`AuthorizedBatch::charge`] once it has counted the
//! events (so a refused batch costs nothing).
use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::request::Parts,
};

use crate::{
    access::Access,
    error::ApiError,
    rate_limit::{Caller, RateLimiter},
};

/// Proof that the request carried an accepted API key (or that none is
/// configured) and that its caller was within its rate limit for one event.
pub struct Authorized(pub AuthorizedBatch);

/// Proof that the request carried an accepted API key (or that none is
/// configured); the handler charges the rate limit.
pub struct AuthorizedBatch {
    caller: Caller,
    limiter: Option<RateLimiter>,
}

impl AuthorizedBatch {
    /// Who the request is charged to.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Charges `tokens` to the caller's rate limit, all or nothing; 429
    /// (nothing charged) over the limit.
    pub fn charge(&self, tokens: usize) -> Result<(), ApiError> {
        match &self.limiter {
            Some(limiter) if tokens > 0 => limiter
                .acquire(&self.caller, tokens as u64)
                .map_err(ApiError::rate_limited),
            _ => Ok(()),
        }
    }
}

impl<S> FromRequestParts<S> for Authorized
where
    Access: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let authorized = AuthorizedBatch::from_request_parts(parts, state).await?;
        authorized.charge(1)?;
        Ok(Self(authorized))
    }
}

impl<S> FromRequestParts<S> for AuthorizedBatch
where
    Access: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let access = Access::from_ref(state);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr);
        Ok(Self {
            caller: access.api_keys().identify(header, peer)?,
            limiter: access.rate_limiter().cloned(),
        })
    }
}
