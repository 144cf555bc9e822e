//! Tributary processor: evolution-safe Avro decoding and event-time windowed aggregation.
//!
//! Not built yet: issue 5 delivers it. The crate exists so the workspace has
//! the layout every later issue fills in, and the local-stack launcher leaves
//! this service out until then.
