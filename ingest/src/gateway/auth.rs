//! The API key check of the event routes, as an extractor: a handler that
//! takes [`Authorized`] runs only for a caller with a configured key, so
//! nothing is read or produced for anyone else.
use axum::{extract::FromRequestParts, http::request::Parts};

use super::{GatewayState, error::ApiError};

/// Proof that the request carried an accepted API key (or that none is
/// configured).
pub struct Authorized;

impl FromRequestParts<GatewayState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &GatewayState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        state.api_keys.check(header)?;
        Ok(Self)
    }
}
