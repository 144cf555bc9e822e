//! `/config`: compatibility levels, registry-wide and per subject.
use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiPath, AppState, Params};
use crate::{
    compatibility::CompatibilityLevel,
    error::{RegistryError, RegistryResult},
};

/// `PUT` body; Confluent names the field `compatibility` here.
#[derive(Deserialize)]
pub struct ConfigRequest {
    compatibility: Option<String>,
}

/// `PUT` answer.
#[derive(Serialize)]
pub struct ConfigUpdated {
    compatibility: &'static str,
}

/// `GET` and `DELETE` answer; Confluent names the field `compatibilityLevel` here.
#[derive(Serialize)]
pub struct ConfigLevel {
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: &'static str,
}

fn level(level: CompatibilityLevel) -> Json<ConfigLevel> {
    Json(ConfigLevel {
        compatibility_level: level.as_str(),
    })
}

fn requested(request: ConfigRequest) -> RegistryResult<CompatibilityLevel> {
    request
        .compatibility
        .ok_or(RegistryError::InvalidCompatibilityLevel)?
        .parse()
}

/// `GET /config`.
pub async fn global(State(state): State<AppState>) -> RegistryResult<Json<ConfigLevel>> {
    Ok(level(
        state.store.compatibility(None).await?.unwrap_or_default(),
    ))
}

/// `PUT /config`.
pub async fn set_global(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ConfigRequest>,
) -> RegistryResult<Json<ConfigUpdated>> {
    let new = requested(request)?;
    state.store.set_compatibility(None, Some(new)).await?;
    Ok(Json(ConfigUpdated {
        compatibility: new.as_str(),
    }))
}

/// `DELETE /config`: back to the default; answers the level that was in force.
pub async fn reset_global(State(state): State<AppState>) -> RegistryResult<Json<ConfigLevel>> {
    Ok(level(
        state
            .store
            .set_compatibility(None, None)
            .await?
            .unwrap_or_default(),
    ))
}

/// `GET /config/{s}` (`?defaultToGlobal`).
pub async fn subject(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
) -> RegistryResult<Json<ConfigLevel>> {
    if let Some(own) = state.store.compatibility(Some(&subject)).await? {
        return Ok(level(own));
    }
    if params.flag("defaultToGlobal") {
        return Ok(level(
            state.store.compatibility(None).await?.unwrap_or_default(),
        ));
    }
    Err(RegistryError::SubjectCompatibilityNotConfigured(subject))
}

/// `PUT /config/{s}`.
pub async fn set_subject(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    ApiJson(request): ApiJson<ConfigRequest>,
) -> RegistryResult<Json<ConfigUpdated>> {
    let new = requested(request)?;
    state
        .store
        .set_compatibility(Some(&subject), Some(new))
        .await?;
    Ok(Json(ConfigUpdated {
        compatibility: new.as_str(),
    }))
}

/// `DELETE /config/{s}`: removes the subject's own level; answers the removed level.
pub async fn reset_subject(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
) -> RegistryResult<Json<ConfigLevel>> {
    match state.store.set_compatibility(Some(&subject), None).await? {
        Some(previous) => Ok(level(previous)),
        None => Err(RegistryError::SubjectNotFound(subject)),
    }
}
