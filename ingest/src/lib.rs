//! Tributary ingest: the gRPC front door and the legacy JSON gateway.
//!
//! Not built yet: issue 4 delivers it. The crate exists so the workspace has
//! the layout every later issue fills in, and the local-stack launcher leaves
//! this service out until then.
