//! Registering a schema under a subject, and checking compatibility without registering.
use sqlx::{PgConnection, Postgres, Transaction};

use super::{
    CompatibilityVerdict, Store, VersionRow, effective_compatibility, effective_mode, lock_subject,
    pick, rows_in,
};
use crate::{
    compatibility::CompatibilityLevel,
    error::{RegistryError, RegistryResult},
    mode::Mode,
    schema::Candidate,
    version::VersionSpec,
};

impl Store {
    /// Registers `candidate` under `subject` and returns its global id: the
    /// existing id and version when the subject already has it, otherwise a
    /// new version after the compatibility check.
    pub async fn register(&self, subject: &str, candidate: &Candidate) -> RegistryResult<i32> {
        let mut tx = self.pool.begin().await?;
        lock_subject(&mut tx, subject).await?;
        let mode = effective_mode(&mut tx, subject).await?;
        if mode.is_read_only() {
            return Err(RegistryError::ReadOnly(subject.to_owned()));
        }
        let existing: Option<i32> = sqlx::query_scalar(
            "SELECT s.id FROM registry_subject_versions v JOIN registry_schemas s ON s.id = v.schema_id
             WHERE v.subject = $1 AND s.fingerprint = $2 AND NOT v.deleted LIMIT 1",
        )
        .bind(subject)
        .bind(&candidate.fingerprint)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = existing {
            return Ok(id);
        }
        if mode != Mode::Import {
            let level = effective_compatibility(&mut tx, subject).await?;
            let verdict = self
                .check_against_subject(&mut tx, subject, candidate, level)
                .await?;
            if !verdict.is_compatible {
                return Err(RegistryError::Incompatible {
                    subject: subject.to_owned(),
                    details: verdict.messages,
                });
            }
        }
        let id = schema_id(&mut tx, candidate).await?;
        sqlx::query(
            "INSERT INTO registry_subject_versions (subject, version, schema_id)
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2 FROM registry_subject_versions WHERE subject = $1",
        )
        .bind(subject)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Checks `candidate` against the versions of `subject` its compatibility level names.
    pub async fn check_compatibility(
        &self,
        subject: &str,
        candidate: &Candidate,
        spec: Option<VersionSpec>,
    ) -> RegistryResult<CompatibilityVerdict> {
        let mut tx = self.pool.begin().await?;
        let level = effective_compatibility(&mut tx, subject).await?;
        let Some(spec) = spec else {
            return self
                .check_against_subject(&mut tx, subject, candidate, level)
                .await;
        };
        let row = match pick(subject, rows_in(&mut tx, subject).await?, spec, false) {
            Ok(row) => row,
            // Nothing registered yet: any schema may become the first version.
            Err(RegistryError::SubjectNotFound(_)) if spec == VersionSpec::Latest => {
                return Ok(CompatibilityVerdict {
                    is_compatible: true,
                    messages: Vec::new(),
                });
            }
            Err(e) => return Err(e),
        };
        let messages = self
            .describe_differences(&mut tx, candidate, &row, level)
            .await?;
        Ok(CompatibilityVerdict {
            is_compatible: messages.is_empty(),
            messages,
        })
    }

    async fn check_against_subject(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        subject: &str,
        candidate: &Candidate,
        level: CompatibilityLevel,
    ) -> RegistryResult<CompatibilityVerdict> {
        let mut messages = Vec::new();
        if level != CompatibilityLevel::None {
            let live: Vec<VersionRow> = sqlx::query_as(
                "SELECT version, schema_id, deleted FROM registry_subject_versions
                 WHERE subject = $1 AND NOT deleted ORDER BY version DESC",
            )
            .bind(subject)
            .fetch_all(&mut **tx)
            .await?;
            let checked = if level.is_transitive() {
                live.len()
            } else {
                live.len().min(1)
            };
            for row in &live[..checked] {
                messages.extend(self.describe_differences(tx, candidate, row, level).await?);
            }
        }
        Ok(CompatibilityVerdict {
            is_compatible: messages.is_empty(),
            messages,
        })
    }

    /// Confluent's verbose lines for `candidate` against one earlier version (empty when compatible).
    async fn describe_differences(
        &self,
        conn: &mut PgConnection,
        candidate: &Candidate,
        previous: &VersionRow,
        level: CompatibilityLevel,
    ) -> RegistryResult<Vec<String>> {
        let stored = self
            .load_schema(conn, previous.schema_id)
            .await?
            .ok_or_else(|| RegistryError::SchemaIdNotFound(previous.schema_id.to_string()))?;
        let parsed = self.parsed(conn, &stored).await?;
        let found = level.check(&candidate.parsed, &parsed);
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let mut lines: Vec<String> = found.iter().map(ToString::to_string).collect();
        lines.push(format!("{{oldSchemaVersion: {}}}", previous.version));
        lines.push(format!("{{oldSchema: '{}'}}", stored.text));
        lines.push(format!("{{compatibility: '{}'}}", level.as_str()));
        Ok(lines)
    }
}

/// The global id of `candidate`, assigned now if it is new. Looking up first
/// keeps ids dense: an `INSERT ... ON CONFLICT` would use up a sequence value
/// every time a known schema is registered under another subject.
async fn schema_id(conn: &mut PgConnection, candidate: &Candidate) -> RegistryResult<i32> {
    let find = || {
        sqlx::query_scalar::<_, i32>("SELECT id FROM registry_schemas WHERE fingerprint = $1")
            .bind(&candidate.fingerprint)
    };
    if let Some(id) = find().fetch_optional(&mut *conn).await? {
        return Ok(id);
    }
    let inserted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO registry_schemas (fingerprint, schema_type, schema_text, refs)
         VALUES ($1, 'AVRO', $2, $3) ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
    )
    .bind(&candidate.fingerprint)
    .bind(&candidate.parsed.text)
    .bind(sqlx::types::Json(&candidate.references))
    .fetch_optional(&mut *conn)
    .await?;
    match inserted {
        Some(id) => Ok(id),
        // Another registration inserted it concurrently and has committed.
        None => Ok(find().fetch_one(&mut *conn).await?),
    }
}
