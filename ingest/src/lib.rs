//! Tributary ingest: the front door. Events arrive over gRPC
//! ([`grpc`]) or the JSON gateway ([`gateway`]), take one path
//! ([`ingestor`]): parsed into domain types at the boundary ([`event`]),
//! encoded as Avro with a cached writer schema ([`writer_schema`],
//! [`avro_json`], [`encode`]) and produced to Kafka ([`publisher`]), and are
//! acknowledged only once the broker has stored them.
pub mod avro_json;
pub mod config;
pub mod encode;
pub mod event;
pub mod gateway;
pub mod grpc;
pub mod health;
pub mod ingestor;
pub mod metrics;
pub mod publisher;
pub mod rejection;
pub mod startup;
pub mod writer_schema;
