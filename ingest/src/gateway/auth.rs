//! The API key check and rate limit of the protected routes, as an
//! extractor: a handler that takes [`Authorized`] runs only for a caller with
//! a configured key (401 otherwise) that is within its rate limit (429 with
//! `Retry-After` otherwise), so nothing is read or produced for anyone else.
//! [`Authorized`] charges one token; a route that takes many events takes
//! [`AuthorizedBatch`] instead, which charges nothing up front, and charges
//! the batch whole with [`AuthorizedBatch::charge`] once it has counted the
//! events (so a refused batch costs nothing).
use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};

use super::{GatewayState, error::ApiError};
use crate::rate_limit::{Caller, RateLimiter};

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

impl FromRequestParts<GatewayState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &GatewayState) -> Result<Self, ApiError> {
        let authorized = AuthorizedBatch::from_request_parts(parts, state).await?;
        authorized.charge(1)?;
        Ok(Self(authorized))
    }
}

impl FromRequestParts<GatewayState> for AuthorizedBatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &GatewayState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr);
        Ok(Self {
            caller: state.api_keys.identify(header, peer)?,
            limiter: state.rate_limiter.clone(),
        })
    }
}
