//! Why a record cannot be processed. A poison record is never fatal: the
//! processor dead-letters it with the reason and counts it, so nothing
//! disappears silently.
use std::fmt;

use thiserror::Error;

/// A record that cannot be processed; it goes to the dead-letter topic with
/// `reason.as_str()` and `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{reason}: {detail}")]
pub struct Poison {
    /// The class of problem, a stable label for metrics and the dead-letter topic.
    pub reason: PoisonReason,
    /// What exactly is wrong, for a human; validation failures name the field first.
    pub detail: String,
}

impl Poison {
    /// A poison record of class `reason`.
    pub fn new(reason: PoisonReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }

    /// A record whose `field` fails semantic validation.
    pub fn invalid(field: &str, problem: impl fmt::Display) -> Self {
        Self::new(PoisonReason::Invalid, format!("{field}: {problem}"))
    }
}

/// The class of a poison record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoisonReason {
    /// No payload, or not in the Confluent wire format.
    NotFramed,
    /// The registry does not know the record's schema id.
    UnknownSchema,
    /// The body does not decode with its writer schema, or the writer schema
    /// cannot be resolved against the processor's reader schema.
    Undecodable,
    /// Decoded, but a field's value is unacceptable (the detail names the field).
    Invalid,
    /// The event time is more than the retention (`--max-event-time-skew`)
    /// before the record's timestamp, which ingest refuses, so only another
    /// producer writes such records; decoding never returns this, the
    /// windowing does.
    Expired,
}

impl PoisonReason {
    /// Every reason, e.g. to pre-register metric labels.
    pub const ALL: [PoisonReason; 5] = [
        Self::NotFramed,
        Self::UnknownSchema,
        Self::Undecodable,
        Self::Invalid,
        Self::Expired,
    ];

    /// The stable label: `not_framed`, `unknown_schema`, `undecodable`, `invalid` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFramed => "not_framed",
            Self::UnknownSchema => "unknown_schema",
            Self::Undecodable => "undecodable",
            Self::Invalid => "invalid",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for PoisonReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_have_stable_snake_case_labels() {
        let labels: Vec<&str> = PoisonReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            labels,
            [
                "not_framed",
                "unknown_schema",
                "undecodable",
                "invalid",
                "expired"
            ]
        );
    }

    #[test]
    fn invalid_poison_names_the_field_first() {
        let poison = Poison::invalid("price", "must be finite and positive, got -1");
        assert_eq!(poison.reason, PoisonReason::Invalid);
        assert_eq!(poison.detail, "price: must be finite and positive, got -1");
        assert_eq!(
            poison.to_string(),
            "invalid: price: must be finite and positive, got -1"
        );
    }
}
