//! `/compatibility`: would this schema be accepted, without registering it.
use axum::{Json, extract::State};
use serde::Serialize;

use super::{ApiJson, ApiPath, AppState, Params, SchemaRequest};
use crate::{error::RegistryResult, version::VersionSpec};

/// Confluent's answer; `messages` only when `?verbose=true`.
#[derive(Serialize)]
pub struct CompatibilityAnswer {
    is_compatible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<String>>,
}

/// `POST /compatibility/subjects/{s}/versions/{v}` (`?verbose`, `?normalize`): against one version.
pub async fn against_version(
    State(state): State<AppState>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
    params: Params,
    ApiJson(request): ApiJson<SchemaRequest>,
) -> RegistryResult<Json<CompatibilityAnswer>> {
    let spec: VersionSpec = version.parse()?;
    answer(state, subject, Some(spec), params, request).await
}

/// `POST /compatibility/subjects/{s}/versions` (`?verbose`, `?normalize`): against the
/// versions the subject's level names, exactly as registration would check.
pub async fn against_subject(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
    ApiJson(request): ApiJson<SchemaRequest>,
) -> RegistryResult<Json<CompatibilityAnswer>> {
    answer(state, subject, None, params, request).await
}

async fn answer(
    state: AppState,
    subject: String,
    spec: Option<VersionSpec>,
    params: Params,
    request: SchemaRequest,
) -> RegistryResult<Json<CompatibilityAnswer>> {
    let candidate = state.candidate(request, params.flag("normalize")).await?;
    let verdict = state
        .store
        .check_compatibility(&subject, &candidate, spec)
        .await?;
    let messages = params.flag("verbose").then_some(verdict.messages);
    Ok(Json(CompatibilityAnswer {
        is_compatible: verdict.is_compatible,
        messages,
    }))
}
