//! The JSON event envelope of `POST /v1/events`, read by the shared
//! [`tributary_proto::envelope`] (the SDK and `trib send` read the same
//! format); a bad envelope becomes that event's rejection.
use serde_json::Value;
use tributary_proto::envelope::JsonEvent;

use crate::rejection::Rejection;

/// Reads one envelope into an event for the event path, keeping its
/// `generic` payload and extra fields as written.
pub fn read(value: Value) -> Result<JsonEvent, Rejection> {
    tributary_proto::envelope::read(value).map_err(|e| Rejection::invalid(e.field, e.message))
}
