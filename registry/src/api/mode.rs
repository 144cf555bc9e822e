//! `/mode`: whether the registry, or one subject, accepts writes.
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiPath, AppState, Params};
use crate::{
    access::{Principal, Role},
    error::{RegistryError, RegistryResult},
    mode::Mode,
};

/// `PUT` body and every answer.
#[derive(Deserialize)]
pub struct ModeRequest {
    mode: Option<String>,
}

/// Every answer of `/mode`.
#[derive(Serialize)]
pub struct ModeBody {
    mode: &'static str,
}

fn body(mode: Mode) -> Json<ModeBody> {
    Json(ModeBody {
        mode: mode.as_str(),
    })
}

/// The requested mode; `IMPORT` (which lets ids be chosen, overwriting
/// what readers rely on) needs the admin role.
fn requested(request: ModeRequest, caller: &Principal) -> RegistryResult<Mode> {
    let mode: Mode = request.mode.ok_or(RegistryError::InvalidMode)?.parse()?;
    if mode == Mode::Import {
        caller.require(Role::Admin, "setting IMPORT mode")?;
    }
    Ok(mode)
}

/// `GET /mode`.
pub async fn global(State(state): State<AppState>) -> RegistryResult<Json<ModeBody>> {
    Ok(body(state.store.mode(None).await?.unwrap_or_default()))
}

/// `PUT /mode`.
pub async fn set_global(
    State(state): State<AppState>,
    caller: Principal,
    ApiJson(request): ApiJson<ModeRequest>,
) -> RegistryResult<Json<ModeBody>> {
    let new = requested(request, &caller)?;
    state.store.set_mode(None, Some(new)).await?;
    Ok(body(new))
}

/// `GET /mode/{s}` (`?defaultToGlobal`).
pub async fn subject(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
) -> RegistryResult<Json<ModeBody>> {
    if let Some(own) = state.store.mode(Some(&subject)).await? {
        return Ok(body(own));
    }
    if params.flag("defaultToGlobal") {
        return Ok(body(state.store.mode(None).await?.unwrap_or_default()));
    }
    Err(RegistryError::SubjectModeNotConfigured(subject))
}

/// `PUT /mode/{s}`.
pub async fn set_subject(
    State(state): State<AppState>,
    caller: Principal,
    ApiPath(subject): ApiPath<String>,
    ApiJson(request): ApiJson<ModeRequest>,
) -> RegistryResult<Json<ModeBody>> {
    let new = requested(request, &caller)?;
    state.store.set_mode(Some(&subject), Some(new)).await?;
    Ok(body(new))
}

/// `DELETE /mode/{s}`: removes the subject's own mode; answers the removed mode.
pub async fn reset_subject(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
) -> RegistryResult<Json<ModeBody>> {
    match state.store.set_mode(Some(&subject), None).await? {
        Some(previous) => Ok(body(previous)),
        None => Err(RegistryError::SubjectNotFound(subject)),
    }
}
