//! `/subjects`: registering, looking up, listing, reading and deleting versions.
use axum::{Json, extract::State, response::Response};
use serde::Serialize;

use super::{ApiJson, ApiPath, AppState, Params, SchemaRequest, raw_json};
use crate::{
    error::{RegistryError, RegistryResult},
    schema::SchemaReference,
    store::VersionRow,
    version::VersionSpec,
};

/// `POST /subjects/{s}/versions` answer.
#[derive(Serialize)]
pub struct Registered {
    id: i32,
}

/// One version of a subject with its schema, as Confluent renders it.
#[derive(Serialize)]
pub struct SubjectSchema {
    subject: String,
    version: i32,
    id: i32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    references: Vec<SchemaReference>,
    schema: String,
}

/// Confluent accepts any subject a Kafka client can name; only empty names
/// and control characters cannot round-trip through URLs and logs.
fn validate_subject(subject: &str) -> RegistryResult<()> {
    if subject.is_empty() || subject.chars().any(char::is_control) {
        return Err(RegistryError::InvalidSubject(
            subject.escape_debug().to_string(),
        ));
    }
    Ok(())
}

/// `GET /subjects` (`?deleted`, `?subjectPrefix`).
pub async fn list(
    State(state): State<AppState>,
    params: Params,
) -> RegistryResult<Json<Vec<String>>> {
    Ok(Json(
        state
            .store
            .subjects(params.flag("deleted"), params.get("subjectPrefix"))
            .await?,
    ))
}

/// `POST /subjects/{s}/versions` (`?normalize`).
pub async fn register(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
    ApiJson(request): ApiJson<SchemaRequest>,
) -> RegistryResult<Json<Registered>> {
    validate_subject(&subject)?;
    let candidate = state.candidate(request, params.flag("normalize")).await?;
    let id = state.store.register(&subject, &candidate).await?;
    Ok(Json(Registered { id }))
}

/// `POST /subjects/{s}`: the version of `s` holding this schema (`?normalize`, `?deleted`).
pub async fn lookup(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
    ApiJson(request): ApiJson<SchemaRequest>,
) -> RegistryResult<Json<SubjectSchema>> {
    let candidate = state.candidate(request, params.flag("normalize")).await?;
    let row = state
        .store
        .lookup(&subject, &candidate, params.flag("deleted"))
        .await?;
    Ok(Json(subject_schema(&state, subject, row).await?))
}

/// `GET /subjects/{s}/versions` (`?deleted`).
pub async fn versions(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
) -> RegistryResult<Json<Vec<i32>>> {
    let rows = state
        .store
        .visible_versions(&subject, params.flag("deleted"))
        .await?;
    Ok(Json(rows.iter().map(|r| r.version).collect()))
}

/// `GET /subjects/{s}/versions/{v}` (`?deleted`).
pub async fn version(
    State(state): State<AppState>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
    params: Params,
) -> RegistryResult<Json<SubjectSchema>> {
    let spec: VersionSpec = version.parse()?;
    let row = state
        .store
        .version(&subject, spec, params.flag("deleted"))
        .await?;
    Ok(Json(subject_schema(&state, subject, row).await?))
}

/// `GET /subjects/{s}/versions/{v}/schema`: the schema text alone.
pub async fn version_text(
    State(state): State<AppState>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
    params: Params,
) -> RegistryResult<Response> {
    let spec: VersionSpec = version.parse()?;
    let row = state
        .store
        .version(&subject, spec, params.flag("deleted"))
        .await?;
    let full = subject_schema(&state, subject, row).await?;
    Ok(raw_json(full.schema))
}

/// `GET /subjects/{s}/versions/{v}/referencedby`: ids of live schemas referencing that version.
pub async fn referenced_by(
    State(state): State<AppState>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
) -> RegistryResult<Json<Vec<i32>>> {
    let spec: VersionSpec = version.parse()?;
    let row = state.store.version(&subject, spec, false).await?;
    Ok(Json(
        state.store.referenced_by(&subject, row.version).await?,
    ))
}

/// `DELETE /subjects/{s}` (`?permanent`): the deleted version numbers.
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
) -> RegistryResult<Json<Vec<i32>>> {
    Ok(Json(
        state
            .store
            .delete_subject(&subject, params.flag("permanent"))
            .await?,
    ))
}

/// `DELETE /subjects/{s}/versions/{v}` (`?permanent`): the deleted version number.
pub async fn delete_version(
    State(state): State<AppState>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
    params: Params,
) -> RegistryResult<Json<i32>> {
    let spec: VersionSpec = version.parse()?;
    Ok(Json(
        state
            .store
            .delete_version(&subject, spec, params.flag("permanent"))
            .await?,
    ))
}

pub(super) async fn subject_schema(
    state: &AppState,
    subject: String,
    row: VersionRow,
) -> RegistryResult<SubjectSchema> {
    let stored = state
        .store
        .schema_by_id(row.schema_id)
        .await?
        .ok_or_else(|| RegistryError::SchemaIdNotFound(row.schema_id.to_string()))?;
    Ok(SubjectSchema {
        subject,
        version: row.version,
        id: row.schema_id,
        references: stored.references.clone(),
        schema: stored.text.clone(),
    })
}
