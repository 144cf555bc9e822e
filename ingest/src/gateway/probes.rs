//! `GET /healthz` and `GET /readyz`: liveness (the process answers) and
//! readiness (the health watcher last reached both the broker and the
//! registry), for load balancers and orchestrators.
use axum::{extract::State, http::StatusCode};

use super::GatewayState;

/// Handles `GET /healthz`: 204 while the process runs.
pub async fn healthz() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Handles `GET /readyz`: 204 when the broker and the registry are reachable,
/// 503 otherwise.
pub async fn readyz(State(state): State<GatewayState>) -> StatusCode {
    if state.readiness.is_ready() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}
