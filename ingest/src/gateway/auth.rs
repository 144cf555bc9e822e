//! The API key check and rate limit of the protected routes, as an
//! extractor: a handler that takes [`Authorized`] runs only for a caller with
//! a configured key (401 otherwise) that is within its rate limit (429 with
//! `Retry-After` otherwise), so nothing is read or produced for anyone else.
//! The extractor charges one token; a handler that takes many events charges
//! the rest with [`Authorized::charge`].
use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};

use super::{GatewayState, error::ApiError};
use crate::rate_limit::{Caller, RateLimiter};

/// Proof that the request carried an accepted API key (or that none is
/// configured) and that its caller was within its rate limit.
pub struct Authorized {
    caller: Caller,
    limiter: Option<RateLimiter>,
}

impl Authorized {
    /// Who the request is charged to.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Charges `tokens` more to the caller's rate limit (for the events of a
    /// batch beyond the one the extractor charged); 429 over the limit.
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
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr);
        let caller = state.api_keys.identify(header, peer)?;
        let authorized = Self {
            caller,
            limiter: state.rate_limiter.clone(),
        };
        authorized.charge(1)?;
        Ok(authorized)
    }
}
