//! Soft and permanent deletion of subjects and versions, in Confluent's order:
//! a permanent delete only after a soft one, never from under a reference.
use sqlx::PgConnection;

use super::{Store, effective_mode, lock_subject, referenced_by, rows_in};
use crate::{
    error::{RegistryError, RegistryResult},
    version::VersionSpec,
};

impl Store {
    /// Deletes every version of `subject` (soft, or hard after soft) and returns their numbers.
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> RegistryResult<Vec<i32>> {
        let mut tx = self.pool.begin().await?;
        lock_subject(&mut tx, subject).await?;
        if effective_mode(&mut tx, subject).await?.is_read_only() {
            return Err(RegistryError::ReadOnly(subject.to_owned()));
        }
        let rows = rows_in(&mut tx, subject).await?;
        if rows.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        }
        let live: Vec<i32> = rows
            .iter()
            .filter(|r| !r.deleted)
            .map(|r| r.version)
            .collect();
        for row in &rows {
            refuse_if_referenced(&mut tx, subject, row.version).await?;
        }
        let deleted = if permanent {
            if !live.is_empty() {
                return Err(RegistryError::SubjectNotSoftDeleted(subject.to_owned()));
            }
            sqlx::query("DELETE FROM registry_subject_versions WHERE subject = $1")
                .bind(subject)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM registry_config WHERE subject = $1")
                .bind(subject)
                .execute(&mut *tx)
                .await?;
            rows.iter().map(|r| r.version).collect()
        } else {
            if live.is_empty() {
                return Err(RegistryError::SubjectSoftDeleted(subject.to_owned()));
            }
            sqlx::query("UPDATE registry_subject_versions SET deleted = TRUE WHERE subject = $1 AND NOT deleted")
                .bind(subject)
                .execute(&mut *tx)
                .await?;
            live
        };
        tx.commit().await?;
        Ok(deleted)
    }

    /// Deletes one version of `subject` (soft, or hard after soft) and returns its number.
    pub async fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> RegistryResult<i32> {
        let mut tx = self.pool.begin().await?;
        lock_subject(&mut tx, subject).await?;
        if effective_mode(&mut tx, subject).await?.is_read_only() {
            return Err(RegistryError::ReadOnly(subject.to_owned()));
        }
        let rows = rows_in(&mut tx, subject).await?;
        if rows.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        }
        let row = match spec {
            VersionSpec::Latest => *rows
                .iter()
                .rev()
                .find(|r| !r.deleted)
                .unwrap_or(rows.last().expect("rows is not empty")),
            VersionSpec::Number(n) => *rows
                .iter()
                .find(|r| r.version == n)
                .ok_or(RegistryError::VersionNotFound(n))?,
        };
        let (subject_owned, version) = (subject.to_owned(), row.version);
        refuse_if_referenced(&mut tx, subject, version).await?;
        if permanent {
            if !row.deleted {
                return Err(RegistryError::VersionNotSoftDeleted {
                    subject: subject_owned,
                    version,
                });
            }
            sqlx::query(
                "DELETE FROM registry_subject_versions WHERE subject = $1 AND version = $2",
            )
            .bind(subject)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        } else {
            if row.deleted {
                return Err(RegistryError::VersionSoftDeleted {
                    subject: subject_owned,
                    version,
                });
            }
            sqlx::query("UPDATE registry_subject_versions SET deleted = TRUE WHERE subject = $1 AND version = $2")
                .bind(subject)
                .bind(version)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(version)
    }
}

/// A schema other live schemas build on cannot be deleted from under them.
async fn refuse_if_referenced(
    conn: &mut PgConnection,
    subject: &str,
    version: i32,
) -> RegistryResult<()> {
    if referenced_by(conn, subject, version).await?.is_empty() {
        Ok(())
    } else {
        Err(RegistryError::ReferenceExists {
            subject: subject.to_owned(),
            version,
        })
    }
}
