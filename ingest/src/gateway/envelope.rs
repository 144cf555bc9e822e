//! The JSON event envelope of `POST /v1/events`, read by the shared
//! [`tributary_proto::envelope`] (the SDK and `trib send` read the same
//! format); a bad envelope becomes that event's rejection.
use serde_json::Value;
use tributary_proto::v1 as proto;

use crate::rejection::Rejection;

/// Reads one envelope into an event for the event path.
pub fn parse(value: &Value) -> Result<proto::Event, Rejection> {
    tributary_proto::envelope::parse(value).map_err(|e| Rejection::invalid(e.field, e.message))
}
