//! The Confluent Schema Registry REST API: routes, shared state and the
//! request extractors that turn malformed input into registry errors (never
//! axum's plain-text rejections). One module per resource.
mod compatibility;
mod config;
mod mode;
mod schemas;
mod subjects;

use std::collections::HashMap;

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request},
    http::request::Parts,
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, de::DeserializeOwned};
use sqlx::PgPool;

use crate::{
    access::{self, Users},
    canonical::{AVRO, ParsedSchema},
    config::RegistryConfig,
    content_type,
    error::{RegistryError, RegistryResult},
    schema::{Candidate, SchemaReference},
    store::Store,
};

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The registry's state.
    pub store: Store,
    /// Largest accepted schema text, in bytes.
    pub max_schema_bytes: usize,
}

impl AppState {
    /// State over `pool` with the limits of `config`.
    pub fn new(pool: PgPool, config: &RegistryConfig) -> Self {
        Self {
            store: Store::new(pool),
            max_schema_bytes: config.max_schema_bytes,
        }
    }

    /// Validates a submitted schema (size, type, references, Avro) into a candidate.
    async fn candidate(
        &self,
        request: SchemaRequest,
        normalize: bool,
    ) -> RegistryResult<Candidate> {
        let schema = request.schema.filter(|s| !s.trim().is_empty());
        let schema = schema
            .ok_or_else(|| RegistryError::InvalidSchema("the request has no schema".into()))?;
        if schema.len() > self.max_schema_bytes {
            return Err(RegistryError::InvalidSchema(format!(
                "the schema is {} bytes, more than the limit of {} bytes",
                schema.len(),
                self.max_schema_bytes
            )));
        }
        if let Some(kind) = request
            .schema_type
            .filter(|t| !t.eq_ignore_ascii_case(AVRO))
        {
            return Err(RegistryError::InvalidSchema(format!(
                "unsupported schema type '{kind}': this registry stores AVRO schemas only"
            )));
        }
        let mut references = request.references.unwrap_or_default();
        if normalize {
            // Confluent's normalize also makes the order of references irrelevant.
            references.sort();
            references.dedup();
        }
        let texts = self.store.reference_texts(&references).await?;
        let parsed = ParsedSchema::parse(&schema, &texts, normalize)?;
        Ok(Candidate::new(parsed, references))
    }
}

/// The body of register, lookup and compatibility requests.
#[derive(Debug, Deserialize)]
struct SchemaRequest {
    schema: Option<String>,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    references: Option<Vec<SchemaReference>>,
}

/// Every route of the registry, behind `users`' access control.
pub fn router(state: AppState, users: Users) -> Router {
    // Room for a maximal schema even when JSON escaping doubles it.
    let body_limit = state
        .max_schema_bytes
        .saturating_mul(2)
        .saturating_add(64 * 1024);
    Router::new()
        .route("/", get(|| async { axum::Json(serde_json::json!({})) }))
        .route("/schemas", get(schemas::list))
        .route("/schemas/types", get(schemas::types))
        .route("/schemas/ids/{id}", get(schemas::by_id))
        .route("/schemas/ids/{id}/schema", get(schemas::text_by_id))
        .route("/schemas/ids/{id}/subjects", get(schemas::subjects_by_id))
        .route("/schemas/ids/{id}/versions", get(schemas::versions_by_id))
        .route("/subjects", get(subjects::list))
        .route(
            "/subjects/{subject}",
            post(subjects::lookup).delete(subjects::delete),
        )
        .route(
            "/subjects/{subject}/versions",
            get(subjects::versions).post(subjects::register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(subjects::version).delete(subjects::delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(subjects::version_text),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(subjects::referenced_by),
        )
        .route(
            "/config",
            get(config::global)
                .put(config::set_global)
                .delete(config::reset_global),
        )
        .route(
            "/config/{subject}",
            get(config::subject)
                .put(config::set_subject)
                .delete(config::reset_subject),
        )
        .route("/mode", get(mode::global).put(mode::set_global))
        .route(
            "/mode/{subject}",
            get(mode::subject)
                .put(mode::set_subject)
                .delete(mode::reset_subject),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility::against_subject),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility::against_version),
        )
        .fallback(|| async { RegistryError::RouteNotFound })
        .method_not_allowed_fallback(|| async { RegistryError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(content_type::negotiate))
        .layer(middleware::from_fn_with_state(users, access::guard))
        .with_state(state)
}

/// A path extractor whose failures (bad percent-encoding, invalid UTF-8) are registry errors.
struct ApiPath<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = RegistryError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|rejection| {
                RegistryError::InvalidRequest(format!(
                    "invalid URL path: {}",
                    rejection.body_text()
                ))
            })
    }
}

/// A JSON body extractor that reports malformed JSON (400) apart from JSON of the wrong shape (422).
struct ApiJson<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let error = if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    RegistryError::BodyTooLarge
                } else {
                    RegistryError::MalformedJson(rejection.body_text())
                };
                error.into_response()
            })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            let error = match e.classify() {
                serde_json::error::Category::Data => RegistryError::InvalidRequest(e.to_string()),
                _ => RegistryError::MalformedJson(e.to_string()),
            };
            error.into_response()
        })
    }
}

/// Query parameters; only their presence and truthiness matter to the registry.
struct Params(HashMap<String, String>);

impl Params {
    /// Whether `name` is set to `true` (any case).
    fn flag(&self, name: &str) -> bool {
        self.0
            .get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The value of `name`, if given.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = RegistryError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(Params(
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

/// A response whose body is a stored schema text, which is itself JSON.
fn raw_json(text: String) -> Response {
    text.into_response()
}
