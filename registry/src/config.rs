//! The registry's flags and environment variables.
use std::net::SocketAddr;

use tributary_common::config::TelemetryArgs;

/// Configuration of `tributary-registry`.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tributary-registry",
    version,
    about = "Confluent-compatible Schema Registry backed by Postgres"
)]
pub struct RegistryConfig {
    /// Address of the REST API; port 0 picks a free port (the bound address is logged).
    #[arg(
        long = "http-addr",
        env = "TRIBUTARY_HTTP_ADDR",
        default_value = "127.0.0.1:8081"
    )]
    pub http_addr: SocketAddr,

    /// Postgres connection URL; the registry's tables are created by its
    /// migrations at start. TLS as libpq's URL parameters say: `sslmode`
    /// (disable, prefer, require, verify-ca, verify-full), `sslrootcert`,
    /// `sslcert`, `sslkey`.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/tributary"
    )]
    pub database_url: String,

    /// Largest accepted schema text, in bytes; larger ones are refused with 42201.
    #[arg(long = "max-schema-bytes", env = "TRIBUTARY_REGISTRY_MAX_SCHEMA_BYTES", default_value_t = 1024 * 1024)]
    pub max_schema_bytes: usize,

    /// Logging and metrics.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

impl RegistryConfig {
    /// Settings for a registry on `http_addr` over `database_url`, everything else at its default.
    pub fn new(http_addr: SocketAddr, database_url: impl Into<String>) -> Self {
        Self {
            http_addr,
            database_url: database_url.into(),
            max_schema_bytes: 1024 * 1024,
            telemetry: TelemetryArgs::default(),
        }
    }
}
