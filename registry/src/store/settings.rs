//! Compatibility levels and modes, per subject and registry-wide (the `GLOBAL` row).
use super::{GLOBAL, Store};
use crate::{compatibility::CompatibilityLevel, error::RegistryResult, mode::Mode};

impl Store {
    /// The compatibility level set for `subject` (`None` = the global row), if any.
    pub async fn compatibility(
        &self,
        subject: Option<&str>,
    ) -> RegistryResult<Option<CompatibilityLevel>> {
        let value: Option<Option<String>> =
            sqlx::query_scalar("SELECT compatibility FROM registry_config WHERE subject = $1")
                .bind(subject.unwrap_or(GLOBAL))
                .fetch_optional(&self.pool)
                .await?;
        Ok(value.flatten().and_then(|v| v.parse().ok()))
    }

    /// Sets (or with `None` clears) the compatibility level of `subject` (`None` = global); returns the previous one.
    pub async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: Option<CompatibilityLevel>,
    ) -> RegistryResult<Option<CompatibilityLevel>> {
        let previous: Option<Option<String>> = sqlx::query_scalar(
            "WITH old AS (SELECT compatibility FROM registry_config WHERE subject = $1 FOR UPDATE),
                  upsert AS (INSERT INTO registry_config (subject, compatibility) VALUES ($1, $2)
                             ON CONFLICT (subject) DO UPDATE SET compatibility = EXCLUDED.compatibility)
             SELECT compatibility FROM old",
        )
        .bind(subject.unwrap_or(GLOBAL))
        .bind(level.map(CompatibilityLevel::as_str))
        .fetch_optional(&self.pool)
        .await?;
        Ok(previous.flatten().and_then(|v| v.parse().ok()))
    }

    /// The mode set for `subject` (`None` = the global row), if any.
    pub async fn mode(&self, subject: Option<&str>) -> RegistryResult<Option<Mode>> {
        let value: Option<Option<String>> =
            sqlx::query_scalar("SELECT mode FROM registry_config WHERE subject = $1")
                .bind(subject.unwrap_or(GLOBAL))
                .fetch_optional(&self.pool)
                .await?;
        Ok(value.flatten().and_then(|v| v.parse().ok()))
    }

    /// Sets (or with `None` clears) the mode of `subject` (`None` = global); returns the previous one.
    pub async fn set_mode(
        &self,
        subject: Option<&str>,
        mode: Option<Mode>,
    ) -> RegistryResult<Option<Mode>> {
        let previous: Option<Option<String>> = sqlx::query_scalar(
            "WITH old AS (SELECT mode FROM registry_config WHERE subject = $1 FOR UPDATE),
                  upsert AS (INSERT INTO registry_config (subject, mode) VALUES ($1, $2)
                             ON CONFLICT (subject) DO UPDATE SET mode = EXCLUDED.mode)
             SELECT mode FROM old",
        )
        .bind(subject.unwrap_or(GLOBAL))
        .bind(mode.map(Mode::as_str))
        .fetch_optional(&self.pool)
        .await?;
        Ok(previous.flatten().and_then(|v| v.parse().ok()))
    }
}
