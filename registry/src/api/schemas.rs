//! `/schemas`: schemas by global id, and the schema types the registry knows.
use axum::{
    Json,
    extract::State,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{
    ApiPath, AppState, Params, raw_json,
    subjects::{SubjectSchema, subject_schema},
};
use crate::{
    canonical::AVRO,
    error::{RegistryError, RegistryResult},
    schema::StoredSchema,
};

/// One use of a schema: a subject and version.
#[derive(Serialize)]
pub struct SubjectVersion {
    subject: String,
    version: i32,
}

/// `GET /schemas` (`?subjectPrefix`, `?deleted`, `?latestOnly`): every subject version with its schema.
pub async fn list(
    State(state): State<AppState>,
    params: Params,
) -> RegistryResult<Json<Vec<SubjectSchema>>> {
    let rows = state
        .store
        .all_versions(params.flag("deleted"), params.get("subjectPrefix"))
        .await?;
    let latest_only = params.flag("latestOnly");
    let mut listed = Vec::with_capacity(rows.len());
    for (i, (subject, row)) in rows.iter().enumerate() {
        let superseded = rows.get(i + 1).is_some_and(|(next, _)| next == subject);
        if latest_only && superseded {
            continue;
        }
        listed.push(subject_schema(&state, subject.clone(), *row).await?);
    }
    Ok(Json(listed))
}

/// `GET /schemas/types`.
pub async fn types() -> Json<[&'static str; 1]> {
    Json([AVRO])
}

/// The schema behind an id as written in the URL; a non-numeric id is simply not found.
async fn stored(state: &AppState, id: &str) -> RegistryResult<std::sync::Arc<StoredSchema>> {
    let not_found = || RegistryError::SchemaIdNotFound(id.to_owned());
    let number: i32 = id.parse().map_err(|_| not_found())?;
    state
        .store
        .schema_by_id(number)
        .await?
        .ok_or_else(not_found)
}

/// `GET /schemas/ids/{id}`: served from the pre-rendered body, as this is the hot path of every consumer.
pub async fn by_id(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> RegistryResult<Response> {
    Ok(stored(&state, &id)
        .await?
        .by_id_body
        .clone()
        .into_response())
}

/// `GET /schemas/ids/{id}/schema`: the schema text alone.
pub async fn text_by_id(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> RegistryResult<Response> {
    Ok(raw_json(stored(&state, &id).await?.text.clone()))
}

/// `GET /schemas/ids/{id}/subjects` (`?deleted`).
pub async fn subjects_by_id(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    params: Params,
) -> RegistryResult<Json<Vec<String>>> {
    let schema = stored(&state, &id).await?;
    let mut subjects: Vec<String> = state
        .store
        .uses_of_schema(schema.id, params.flag("deleted"))
        .await?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    subjects.dedup();
    Ok(Json(subjects))
}

/// `GET /schemas/ids/{id}/versions` (`?deleted`).
pub async fn versions_by_id(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    params: Params,
) -> RegistryResult<Json<Vec<SubjectVersion>>> {
    let schema = stored(&state, &id).await?;
    let uses = state
        .store
        .uses_of_schema(schema.id, params.flag("deleted"))
        .await?;
    Ok(Json(
        uses.into_iter()
            .map(|(subject, version)| SubjectVersion { subject, version })
            .collect(),
    ))
}
