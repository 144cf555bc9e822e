//! What `trib send` and `trib poll` report at the end: how many events were
//! acknowledged, and the rejected ones grouped by reason (error code and
//! field), each with where it came from and its message.
use std::{collections::BTreeMap, fmt};

use tributary_client::{Outcome, proto::EventErrorCode};

/// The running tally of outcomes.
#[derive(Default)]
pub struct Summary {
    acked: u64,
    rejected: u64,
    failed: u64,
    /// reason → (where, message), in arrival order.
    reasons: BTreeMap<String, Vec<(String, String)>>,
}

impl Summary {
    /// Records a refusal of the event from `at` (e.g. `line 3`).
    pub fn reject(&mut self, reason: String, at: String, message: String) {
        self.rejected += 1;
        self.reasons.entry(reason).or_default().push((at, message));
    }

    /// Records what ingest answered for the event from `at`.
    pub fn record(&mut self, at: String, outcome: tributary_client::Result<Outcome>) {
        match outcome {
            Ok(Outcome::Acked(_)) => self.acked += 1,
            Ok(Outcome::Rejected(error)) => {
                let code = EventErrorCode::try_from(error.code)
                    .unwrap_or(EventErrorCode::Unspecified)
                    .as_str_name()
                    .trim_start_matches("EVENT_ERROR_CODE_")
                    .to_lowercase();
                let reason = if error.field.is_empty() {
                    code
                } else {
                    format!("{code} {}", error.field)
                };
                self.reject(reason, at, error.message);
            }
            Err(error) => {
                self.failed += 1;
                self.reasons
                    .entry("not sent".into())
                    .or_default()
                    .push((at, error.to_string()));
            }
        }
    }

    /// Events acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Events refused or never answered so far.
    pub fn refused(&self) -> u64 {
        self.rejected + self.failed
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "acked: {}", self.acked)?;
        writeln!(f, "rejected: {}", self.rejected)?;
        if self.failed > 0 {
            writeln!(f, "not sent: {}", self.failed)?;
        }
        for (reason, events) in &self.reasons {
            writeln!(f, "  {reason} ({})", events.len())?;
            for (at, message) in events {
                writeln!(f, "    {at}: {message}")?;
            }
        }
        Ok(())
    }
}
