//! The registry's state in Postgres, and the operations on it.
//!
//! Several registry instances may share one database, so every decision that
//! must be unique is made by Postgres: a unique index on the schema
//! fingerprint gives one global id per schema, and a per-subject advisory
//! lock serialises version assignment, compatibility checks and deletions of
//! one subject. Schemas by id are cached in memory: a global id never changes
//! meaning, so the cache never needs invalidating.
//!
//! Reads live here; writes are split by concern into `registration`,
//! `deletion` and `settings` (compatibility levels and modes).
mod deletion;
mod registration;
mod settings;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::{
    canonical::ParsedSchema,
    compatibility::CompatibilityLevel,
    error::{RegistryError, RegistryResult},
    mode::Mode,
    schema::{Candidate, SchemaReference, StoredSchema},
    version::VersionSpec,
};

/// The config row that holds the registry-wide settings.
const GLOBAL: &str = "";

/// Deepest chain of references followed; deeper chains are refused rather than risk a cycle.
const MAX_REFERENCE_DEPTH: usize = 32;

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct VersionRow {
    /// The version number.
    pub version: i32,
    /// The global id of its schema.
    pub schema_id: i32,
    /// Whether it is soft deleted.
    pub deleted: bool,
}

/// The answer to a compatibility check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatibilityVerdict {
    /// Whether the candidate is acceptable.
    pub is_compatible: bool,
    /// Confluent-style descriptions of each difference (empty when compatible).
    pub messages: Vec<String>,
}

/// Access to the registry's tables, with the id → schema cache in front.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    by_id: Arc<RwLock<HashMap<i32, Arc<StoredSchema>>>>,
}

impl Store {
    /// A store over `pool` (migrated) with an empty cache.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            by_id: Arc::default(),
        }
    }

    /// The schema with global id `id`, from memory when it was seen before.
    pub async fn schema_by_id(&self, id: i32) -> RegistryResult<Option<Arc<StoredSchema>>> {
        if let Some(hit) = self.cached(id) {
            return Ok(Some(hit));
        }
        let mut conn = self.pool.acquire().await?;
        self.load_schema(&mut conn, id).await
    }

    fn cached(&self, id: i32) -> Option<Arc<StoredSchema>> {
        self.by_id.read().expect("cache lock").get(&id).cloned()
    }

    /// Like [`Store::schema_by_id`] on a connection the caller holds, so a
    /// transaction never waits for a second pooled connection.
    async fn load_schema(
        &self,
        conn: &mut PgConnection,
        id: i32,
    ) -> RegistryResult<Option<Arc<StoredSchema>>> {
        if let Some(hit) = self.cached(id) {
            return Ok(Some(hit));
        }
        let row: Option<(String, sqlx::types::Json<Vec<SchemaReference>>)> =
            sqlx::query_as("SELECT schema_text, refs FROM registry_schemas WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        Ok(row.map(|(text, refs)| {
            let stored = Arc::new(StoredSchema::new(id, text, refs.0));
            self.by_id
                .write()
                .expect("cache lock")
                .insert(id, stored.clone());
            stored
        }))
    }

    /// Texts of the schemas `references` point to, each after its own references.
    pub async fn reference_texts(
        &self,
        references: &[SchemaReference],
    ) -> RegistryResult<Vec<String>> {
        if references.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        let mut texts = Vec::new();
        self.collect_reference_texts(&mut conn, references, 0, &mut texts)
            .await?;
        Ok(texts)
    }

    async fn collect_reference_texts(
        &self,
        conn: &mut PgConnection,
        references: &[SchemaReference],
        depth: usize,
        texts: &mut Vec<String>,
    ) -> RegistryResult<()> {
        if depth > MAX_REFERENCE_DEPTH {
            return Err(RegistryError::InvalidSchema(
                "references are nested too deeply".into(),
            ));
        }
        for reference in references {
            let spec = if reference.version == -1 {
                VersionSpec::Latest
            } else {
                VersionSpec::Number(reference.version)
            };
            let not_found = || {
                RegistryError::InvalidSchema(format!(
                    "reference '{}' not found: subject '{}' version {}",
                    reference.name, reference.subject, reference.version
                ))
            };
            let rows = rows_in(conn, &reference.subject).await?;
            let row = pick(&reference.subject, rows, spec, true).map_err(|e| match e {
                RegistryError::SubjectNotFound(_) | RegistryError::VersionNotFound(_) => {
                    not_found()
                }
                other => other,
            })?;
            let stored = self
                .load_schema(conn, row.schema_id)
                .await?
                .ok_or_else(not_found)?;
            Box::pin(self.collect_reference_texts(conn, &stored.references, depth + 1, texts))
                .await?;
            if !texts.contains(&stored.text) {
                texts.push(stored.text.clone());
            }
        }
        Ok(())
    }

    /// Parses a stored schema (with its references) for a compatibility check.
    async fn parsed(
        &self,
        conn: &mut PgConnection,
        stored: &StoredSchema,
    ) -> RegistryResult<ParsedSchema> {
        let mut references = Vec::new();
        self.collect_reference_texts(conn, &stored.references, 0, &mut references)
            .await?;
        ParsedSchema::parse(&stored.text, &references, false)
    }

    /// Subjects with at least one visible version, sorted, optionally only those starting with `prefix`.
    pub async fn subjects(
        &self,
        include_deleted: bool,
        prefix: Option<&str>,
    ) -> RegistryResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT subject FROM registry_subject_versions
             WHERE ($1 OR NOT deleted) AND starts_with(subject, COALESCE($2, ''))
             GROUP BY subject ORDER BY subject",
        )
        .bind(include_deleted)
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The visible versions of `subject`; 40401 when there are none.
    pub async fn visible_versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> RegistryResult<Vec<VersionRow>> {
        let mut conn = self.pool.acquire().await?;
        visible(subject, rows_in(&mut conn, subject).await?, include_deleted)
    }

    /// The version `spec` of `subject` among its visible versions.
    pub async fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        include_deleted: bool,
    ) -> RegistryResult<VersionRow> {
        let mut conn = self.pool.acquire().await?;
        pick(
            subject,
            rows_in(&mut conn, subject).await?,
            spec,
            include_deleted,
        )
    }

    /// Global ids of live schemas that reference `subject` version `version`.
    pub async fn referenced_by(&self, subject: &str, version: i32) -> RegistryResult<Vec<i32>> {
        let mut conn = self.pool.acquire().await?;
        referenced_by(&mut conn, subject, version).await
    }

    /// Every visible (subject, version) row, sorted, optionally only subjects starting with `prefix`.
    pub async fn all_versions(
        &self,
        include_deleted: bool,
        prefix: Option<&str>,
    ) -> RegistryResult<Vec<(String, VersionRow)>> {
        let rows: Vec<(String, i32, i32, bool)> = sqlx::query_as(
            "SELECT subject, version, schema_id, deleted FROM registry_subject_versions
             WHERE ($1 OR NOT deleted) AND starts_with(subject, COALESCE($2, ''))
             ORDER BY subject, version",
        )
        .bind(include_deleted)
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(subject, version, schema_id, deleted)| {
                (
                    subject,
                    VersionRow {
                        version,
                        schema_id,
                        deleted,
                    },
                )
            })
            .collect())
    }

    /// The (subject, version) pairs using schema `id`, sorted; 40403 for an unknown id.
    pub async fn uses_of_schema(
        &self,
        id: i32,
        include_deleted: bool,
    ) -> RegistryResult<Vec<(String, i32)>> {
        if self.schema_by_id(id).await?.is_none() {
            return Err(RegistryError::SchemaIdNotFound(id.to_string()));
        }
        Ok(sqlx::query_as(
            "SELECT subject, version FROM registry_subject_versions
             WHERE schema_id = $1 AND ($2 OR NOT deleted) ORDER BY subject, version",
        )
        .bind(id)
        .bind(include_deleted)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The highest version of `subject` whose schema is `candidate`.
    pub async fn lookup(
        &self,
        subject: &str,
        candidate: &Candidate,
        include_deleted: bool,
    ) -> RegistryResult<VersionRow> {
        self.visible_versions(subject, include_deleted).await?;
        let row: Option<VersionRow> = sqlx::query_as(
            "SELECT v.version, v.schema_id, v.deleted
             FROM registry_subject_versions v JOIN registry_schemas s ON s.id = v.schema_id
             WHERE v.subject = $1 AND s.fingerprint = $2 AND ($3 OR NOT v.deleted)
             ORDER BY v.version DESC LIMIT 1",
        )
        .bind(subject)
        .bind(&candidate.fingerprint)
        .bind(include_deleted)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or(RegistryError::SchemaNotFound)
    }
}

/// Serialises writers of one subject across every instance sharing the database.
async fn lock_subject(tx: &mut Transaction<'_, Postgres>, subject: &str) -> RegistryResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(subject)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Global ids of live schemas whose references name `subject` version `version`.
async fn referenced_by(
    conn: &mut PgConnection,
    subject: &str,
    version: i32,
) -> RegistryResult<Vec<i32>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT s.id FROM registry_schemas s
         JOIN registry_subject_versions v ON v.schema_id = s.id AND NOT v.deleted
         WHERE s.refs @> jsonb_build_array(jsonb_build_object('subject', $1::text, 'version', $2::int))
         ORDER BY s.id",
    )
    .bind(subject)
    .bind(version)
    .fetch_all(&mut *conn)
    .await?)
}

/// Every version row of `subject`, ascending, deleted ones included.
async fn rows_in(conn: &mut PgConnection, subject: &str) -> RegistryResult<Vec<VersionRow>> {
    Ok(sqlx::query_as(
        "SELECT version, schema_id, deleted FROM registry_subject_versions WHERE subject = $1 ORDER BY version",
    )
    .bind(subject)
    .fetch_all(&mut *conn)
    .await?)
}

/// The rows a reader sees; 40401 when none.
fn visible(
    subject: &str,
    rows: Vec<VersionRow>,
    include_deleted: bool,
) -> RegistryResult<Vec<VersionRow>> {
    let rows: Vec<VersionRow> = rows
        .into_iter()
        .filter(|row| include_deleted || !row.deleted)
        .collect();
    if rows.is_empty() {
        return Err(RegistryError::SubjectNotFound(subject.to_owned()));
    }
    Ok(rows)
}

/// The visible row `spec` names: 40401 without visible rows, 40402 without that version.
fn pick(
    subject: &str,
    rows: Vec<VersionRow>,
    spec: VersionSpec,
    include_deleted: bool,
) -> RegistryResult<VersionRow> {
    let rows = visible(subject, rows, include_deleted)?;
    match spec {
        VersionSpec::Latest => Ok(*rows.last().expect("visible rows are never empty")),
        VersionSpec::Number(n) => rows
            .into_iter()
            .find(|row| row.version == n)
            .ok_or(RegistryError::VersionNotFound(n)),
    }
}

/// The subject's level, else the global one, else BACKWARD.
async fn effective_compatibility(
    tx: &mut Transaction<'_, Postgres>,
    subject: &str,
) -> RegistryResult<CompatibilityLevel> {
    let value: Option<String> = sqlx::query_scalar(
        "SELECT compatibility FROM registry_config
         WHERE subject IN ($1, '') AND compatibility IS NOT NULL
         ORDER BY subject = '' LIMIT 1",
    )
    .bind(subject)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or_default())
}

/// The subject's mode, else the global one, else READWRITE; READONLY_OVERRIDE globally wins.
async fn effective_mode(tx: &mut Transaction<'_, Postgres>, subject: &str) -> RegistryResult<Mode> {
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT subject, mode FROM registry_config WHERE subject IN ($1, '')")
            .bind(subject)
            .fetch_all(&mut **tx)
            .await?;
    let mode_of = |key: &str| {
        rows.iter()
            .find(|(s, _)| s == key)
            .and_then(|(_, m)| m.as_deref())
            .and_then(|m| m.parse::<Mode>().ok())
    };
    let global = mode_of(GLOBAL);
    if global == Some(Mode::ReadOnlyOverride) {
        return Ok(Mode::ReadOnlyOverride);
    }
    Ok(mode_of(subject).or(global).unwrap_or_default())
}
