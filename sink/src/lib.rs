//! Tributary sink: batched, effectively-once upserts into Postgres and the GetAggregates query API.
//!
//! Not built yet: issue 6 delivers it. The crate exists so the workspace has
//! the layout every later issue fills in, and the local-stack launcher leaves
//! this service out until then.
