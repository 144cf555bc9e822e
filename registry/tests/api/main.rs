//! Conformance tests of the Confluent REST API, against the registry served on
//! port 0 over a fresh Postgres database per test.
mod access;
mod bad_input;
mod client;
mod compatibility;
mod concurrency;
mod config;
mod content_type;
mod deletion;
mod interop;
mod mode;
mod schemas;
mod store_failure;
mod subjects;
