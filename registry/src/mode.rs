//! Registry modes: whether a subject (or the whole registry) accepts writes.
use std::str::FromStr;

use crate::error::RegistryError;

/// Confluent's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Normal operation.
    #[default]
    ReadWrite,
    /// Registration and deletion are refused.
    ReadOnly,
    /// Like `ReadOnly`, but also for subjects with their own mode.
    ReadOnlyOverride,
    /// Migration from another registry: registration skips compatibility checks.
    Import,
}

impl Mode {
    /// Confluent's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadWrite => "READWRITE",
            Self::ReadOnly => "READONLY",
            Self::ReadOnlyOverride => "READONLY_OVERRIDE",
            Self::Import => "IMPORT",
        }
    }

    /// Whether registrations and deletions are refused.
    pub fn is_read_only(self) -> bool {
        matches!(self, Self::ReadOnly | Self::ReadOnlyOverride)
    }
}

impl FromStr for Mode {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "READWRITE" => Self::ReadWrite,
            "READONLY" => Self::ReadOnly,
            "READONLY_OVERRIDE" => Self::ReadOnlyOverride,
            "IMPORT" => Self::Import,
            _ => return Err(RegistryError::InvalidMode),
        })
    }
}
