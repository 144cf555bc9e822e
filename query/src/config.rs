//! The query API's flags and environment variables.
use std::time::Duration;

use tributary_common::config::TelemetryArgs;
use tributary_edge::config::EdgeArgs;

/// Where the aggregates are and how they were windowed.
#[derive(clap::Args, Debug, Clone)]
pub struct QueryArgs {
    /// Postgres database the sink writes aggregates to (libpq URL; TLS as its
    /// parameters say: `sslmode`, `sslrootcert`, ...). The pool connects on
    /// first use, so the service starts while Postgres is down; queries then
    /// answer UNAVAILABLE / 503.
    #[arg(long = "database-url", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// The processor's window size (its `--window`): the query API rolls
    /// windows up to multiples of it and refuses other granularities.
    #[arg(long = "window", env = "TRIBUTARY_WINDOW", value_parser = humantime::parse_duration, default_value = "1m")]
    pub window: Duration,
}

/// Configuration of `tributary-query`.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tributary-query",
    version,
    about = "Tributary query API: serves the aggregates in Postgres over gRPC (QueryService) and HTTP (GET /v1/aggregates, /v1/price-accuracy)"
)]
pub struct QueryConfig {
    /// Listeners, TLS, API keys, rate limits, CORS.
    #[command(flatten)]
    pub edge: EdgeArgs,

    /// The database and the window size.
    #[command(flatten)]
    pub query: QueryArgs,

    /// Logging, tracing and metrics.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}
