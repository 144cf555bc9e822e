//! Compatibility levels, over the Avro schema-resolution judge of
//! `tributary_common::avro_resolution` (shared with every consumer).
//!
//! The judge follows the Avro specification's resolution rules the way Java
//! Avro's `SchemaCompatibility` (which Confluent uses) applies them, and
//! reports each difference with Java's incompatibility names so verbose
//! answers read like Confluent's. It is our own implementation rather than
//! `apache_avro::schema_compatibility` because that checker (0.22) gets
//! several rules wrong for a registry; `tests/avro_resolution.rs` shows each
//! case:
//! - it answers `Ok(Partial)` for a reader enum missing writer symbols and for
//!   a reader union missing writer branches, where a registry must refuse;
//! - it ignores the reader's aliases of a renamed record, enum or fixed;
//! - it never resolves named-type references, so a type defined in one schema
//!   and referenced by name in the other (`Schema::Ref`) is a "wrong type";
//! - it refuses a decimal precision change, which Avro resolution (ignoring
//!   logical types) and Confluent accept.
use std::str::FromStr;

use tributary_common::avro_resolution;

use crate::{canonical::ParsedSchema, error::RegistryError};

/// How a new version must relate to the earlier versions of its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// The new schema reads data written with the latest version.
    #[default]
    Backward,
    /// The new schema reads data written with every version.
    BackwardTransitive,
    /// The latest version reads data written with the new schema.
    Forward,
    /// Every version reads data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Confluent's name of the level.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Whether every earlier version is checked, not only the latest.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    /// The differences that make `candidate` unacceptable after `previous` at this level.
    pub fn check(self, candidate: &ParsedSchema, previous: &ParsedSchema) -> Vec<Incompatibility> {
        let backward = || can_read(previous, candidate);
        let forward = || can_read(candidate, previous);
        match self {
            Self::None => Vec::new(),
            Self::Backward | Self::BackwardTransitive => backward(),
            Self::Forward | Self::ForwardTransitive => forward(),
            Self::Full | Self::FullTransitive => {
                let mut all = backward();
                all.extend(forward());
                all
            }
        }
    }
}

impl FromStr for CompatibilityLevel {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "NONE" => Self::None,
            "BACKWARD" => Self::Backward,
            "BACKWARD_TRANSITIVE" => Self::BackwardTransitive,
            "FORWARD" => Self::Forward,
            "FORWARD_TRANSITIVE" => Self::ForwardTransitive,
            "FULL" => Self::Full,
            "FULL_TRANSITIVE" => Self::FullTransitive,
            _ => return Err(RegistryError::InvalidCompatibilityLevel),
        })
    }
}

pub use tributary_common::avro_resolution::{Incompatibility, IncompatibilityKind};

/// Every reason `reader` cannot read data written with `writer` (empty when
/// it can): the one judge, `tributary_common::avro_resolution`, which every
/// consumer's up-front check also uses.
pub fn can_read(writer: &ParsedSchema, reader: &ParsedSchema) -> Vec<Incompatibility> {
    avro_resolution::can_read(writer.resolvable(), reader.resolvable())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ParsedSchema {
        ParsedSchema::parse(text, &[], false).expect("valid test schema")
    }

    #[test]
    fn missing_field_without_default_is_reported_with_its_location_and_name() {
        let writer = parse(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#);
        let reader = parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}"#,
        );
        let found = can_read(&writer, &reader);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].kind,
            IncompatibilityKind::ReaderFieldMissingDefaultValue
        );
        assert_eq!(found[0].location, "/fields/1");
        assert_eq!(found[0].message, "b");
    }

    #[test]
    fn compatibility_level_names_parse_case_insensitively() {
        assert_eq!(
            "full_transitive".parse::<CompatibilityLevel>().unwrap(),
            CompatibilityLevel::FullTransitive
        );
        assert!("sideways".parse::<CompatibilityLevel>().is_err());
    }
}
