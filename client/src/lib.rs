//! Tributary's Rust SDK: the generated gRPC clients, re-exported. The
//! ergonomic layer (typed builders, the resending stream sender, paging) comes
//! with the SDK issue.
pub use tributary_common::proto::v1::{
    self as proto, ingest_service_client::IngestServiceClient,
    query_service_client::QueryServiceClient,
};
