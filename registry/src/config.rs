//! The registry's flags and environment variables.
use std::net::SocketAddr;

use tributary_common::config::TelemetryArgs;
use tributary_edge::config::TlsArgs;

use crate::access::UsersArgs;

/// The command line of `tributary-registry`: serve (the default), or a tool.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tributary-registry",
    version,
    about = "Confluent-compatible Schema Registry backed by Postgres",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A tool to run instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// How to serve.
    #[command(flatten)]
    pub serve: RegistryConfig,
}

/// Tools of `tributary-registry`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Reads a password from stdin (one line; prompts on a terminal) and
    /// prints its salted Argon2id hash, for a `NAME:ROLE:HASH` line of
    /// `--users-file`.
    HashPassword,
}

/// Configuration of a serving `tributary-registry`.
#[derive(clap::Args, Debug, Clone)]
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

    /// TLS for the REST API.
    #[command(flatten)]
    pub tls: TlsArgs,

    /// Who may call (HTTP basic authentication with roles); off without users.
    #[command(flatten)]
    pub users: UsersArgs,

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
            tls: TlsArgs::default(),
            users: UsersArgs::default(),
            telemetry: TelemetryArgs::default(),
        }
    }
}
