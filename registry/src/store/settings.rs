//! Compatibility levels and modes, per subject and registry-wide (the `GLOBAL` row).
use std::str::FromStr;

use super::{GLOBAL, Store};
use crate::{compatibility::CompatibilityLevel, error::RegistryResult, mode::Mode};

/// A per-subject setting: one column of `registry_config`.
#[derive(Clone, Copy)]
enum Setting {
    Compatibility,
    Mode,
}

impl Setting {
    fn column(self) -> &'static str {
        match self {
            Setting::Compatibility => "compatibility",
            Setting::Mode => "mode",
        }
    }
}

impl Store {
    /// The compatibility level set for `subject` (`None` = the global row), if any.
    pub async fn compatibility(
        &self,
        subject: Option<&str>,
    ) -> RegistryResult<Option<CompatibilityLevel>> {
        self.setting(Setting::Compatibility, subject).await
    }

    /// Sets (or with `None` clears) the compatibility level of `subject` (`None` = global); returns the previous one.
    pub async fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: Option<CompatibilityLevel>,
    ) -> RegistryResult<Option<CompatibilityLevel>> {
        self.set_setting(
            Setting::Compatibility,
            subject,
            level.map(CompatibilityLevel::as_str),
        )
        .await
    }

    /// The mode set for `subject` (`None` = the global row), if any.
    pub async fn mode(&self, subject: Option<&str>) -> RegistryResult<Option<Mode>> {
        self.setting(Setting::Mode, subject).await
    }

    /// Sets (or with `None` clears) the mode of `subject` (`None` = global); returns the previous one.
    pub async fn set_mode(
        &self,
        subject: Option<&str>,
        mode: Option<Mode>,
    ) -> RegistryResult<Option<Mode>> {
        self.set_setting(Setting::Mode, subject, mode.map(Mode::as_str))
            .await
    }

    async fn setting<T: FromStr>(
        &self,
        setting: Setting,
        subject: Option<&str>,
    ) -> RegistryResult<Option<T>> {
        let column = setting.column();
        let value: Option<Option<String>> = sqlx::query_scalar(&format!(
            "SELECT {column} FROM registry_config WHERE subject = $1"
        ))
        .bind(subject.unwrap_or(GLOBAL))
        .fetch_optional(&self.pool)
        .await?;
        Ok(value.flatten().and_then(|v| v.parse().ok()))
    }

    async fn set_setting<T: FromStr>(
        &self,
        setting: Setting,
        subject: Option<&str>,
        value: Option<&str>,
    ) -> RegistryResult<Option<T>> {
        // The column name comes from `Setting`, never from input.
        let column = setting.column();
        let previous: Option<Option<String>> = sqlx::query_scalar(&format!(
            "WITH old AS (SELECT {column} FROM registry_config WHERE subject = $1 FOR UPDATE),
                  upsert AS (INSERT INTO registry_config (subject, {column}) VALUES ($1, $2)
                             ON CONFLICT (subject) DO UPDATE SET {column} = EXCLUDED.{column})
             SELECT {column} FROM old"
        ))
        .bind(subject.unwrap_or(GLOBAL))
        .bind(value)
        .fetch_optional(&self.pool)
        .await?;
        Ok(previous.flatten().and_then(|v| v.parse().ok()))
    }
}
