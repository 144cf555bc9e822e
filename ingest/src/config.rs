//! Ingest's flags and environment variables.
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use tributary_common::config::{KafkaArgs, RegistryArgs, TelemetryArgs, parse_duration};

/// Configuration of `tributary-ingest`.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tributary-ingest",
    version,
    about = "Tributary ingest: validates events, encodes them as Avro and produces them to Kafka"
)]
pub struct IngestConfig {
    /// Address of the gRPC API (IngestService, health, reflection); port 0 picks a free port.
    #[arg(
        long = "grpc-addr",
        env = "TRIBUTARY_GRPC_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub grpc_addr: SocketAddr,

    /// Address of the legacy JSON gateway (POST /submit, POST /v1/events); port 0 picks a free port.
    #[arg(
        long = "http-addr",
        env = "TRIBUTARY_HTTP_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub http_addr: SocketAddr,

    /// PEM certificate chain for TLS on both listeners (gRPC and the JSON
    /// gateway); with `--tls-key`, they accept only TLS (rustls; TLS 1.2 and
    /// 1.3; HTTP/2 and HTTP/1.1 by ALPN).
    #[arg(long = "tls-cert", env = "TRIBUTARY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for `--tls-cert`.
    #[arg(long = "tls-key", env = "TRIBUTARY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Partitions of a topic ingest creates for an event type it sees first.
    #[arg(long, env = "TRIBUTARY_PARTITIONS", default_value_t = 4)]
    pub partitions: i32,

    /// Schema Registry.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Which schema events are written with.
    #[command(flatten)]
    pub schemas: SchemaArgs,

    /// Limits and protection.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// API keys.
    #[command(flatten)]
    pub auth: AuthArgs,

    /// Per-caller rate limits.
    #[command(flatten)]
    pub rate_limit: RateLimitArgs,

    /// A browser origin allowed to call the JSON gateway cross-origin (CORS),
    /// e.g. `https://dashboard.example.com`, or `*` for any (repeatable;
    /// `,`-separated in the environment variable). None: no CORS headers, so
    /// browsers refuse cross-origin calls.
    #[arg(
        long = "cors-allowed-origin",
        env = "TRIBUTARY_CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_parser = parse_origin
    )]
    pub cors_allowed_origins: Vec<String>,

    /// Postgres database the sink writes aggregates to, served by
    /// QueryService and `GET /v1/aggregates`; when unset those answer
    /// UNAVAILABLE / 503. TLS as libpq's URL parameters say (`sslmode`,
    /// `sslrootcert`, ...).
    #[arg(long = "database-url", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The processor's window size (its `--window`): the query API rolls
    /// windows up to multiples of it and refuses other granularities.
    #[arg(long = "window", env = "TRIBUTARY_WINDOW", value_parser = parse_duration, default_value = "1m")]
    pub window: Duration,

    /// Logging.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// How the writer schema of each event type is chosen.
#[derive(clap::Args, Debug, Clone)]
pub struct SchemaArgs {
    /// `auto-register`: register the built-in schema of ad_click and
    /// price_tick (development default); `latest`: use the subject's latest
    /// registered version. Schema-driven types always use the latest version.
    #[arg(long = "schema-policy", env = "TRIBUTARY_SCHEMA_POLICY", value_enum, default_value_t = SchemaPolicy::AutoRegister)]
    pub policy: SchemaPolicy,

    /// Pin an event type to a schema id, as TYPE=ID (repeatable; `,`-separated
    /// in the environment variable). Overrides the policy for that type.
    #[arg(long = "schema-id", env = "TRIBUTARY_SCHEMA_IDS", value_delimiter = ',', value_parser = parse_pin)]
    pub pinned: Vec<(String, u32)>,

    /// How long a "latest version" lookup is trusted before it is refreshed,
    /// so a newly registered version is picked up without a restart.
    #[arg(long = "schema-refresh", env = "TRIBUTARY_SCHEMA_REFRESH", value_parser = parse_duration, default_value = "30s")]
    pub refresh: Duration,
}

/// See [`SchemaArgs::policy`].
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaPolicy {
    /// Register the built-in schema (idempotent) and write with it.
    AutoRegister,
    /// Write with the subject's latest registered version.
    Latest,
}

/// Limits that protect the service and the pipeline.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// How far an event's event_time may be from now, either way.
    #[arg(long = "max-event-time-skew", env = "TRIBUTARY_MAX_EVENT_TIME_SKEW", value_parser = parse_duration, default_value = "24h")]
    pub max_event_time_skew: Duration,

    /// How long the broker may take to acknowledge an event before the call
    /// fails with UNAVAILABLE (nothing unacknowledged is reported as stored).
    #[arg(long = "produce-timeout", env = "TRIBUTARY_PRODUCE_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub produce_timeout: Duration,

    /// Deadline of a unary request.
    #[arg(long = "request-timeout", env = "TRIBUTARY_REQUEST_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    pub request_timeout: Duration,

    /// gRPC requests being handled at once (a stream counts until it is
    /// accepted); more are refused with RESOURCE_EXHAUSTED instead of queueing.
    #[arg(
        long = "max-concurrent-requests",
        env = "TRIBUTARY_MAX_CONCURRENT_REQUESTS",
        default_value_t = 1024
    )]
    pub max_concurrent_requests: usize,

    /// Events of one stream being produced at once; a faster client is slowed
    /// down by flow control.
    #[arg(
        long = "max-in-flight-per-stream",
        env = "TRIBUTARY_MAX_IN_FLIGHT_PER_STREAM",
        default_value_t = 2048
    )]
    pub max_in_flight_per_stream: usize,

    /// Largest gRPC message or HTTP body, in bytes.
    #[arg(long = "max-message-bytes", env = "TRIBUTARY_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,
}

/// API keys: when any is configured, every call must carry
/// `authorization: Bearer <key>` with one of them.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AuthArgs {
    /// Accepted API keys (`,`-separated in the environment variable).
    #[arg(
        long = "api-key",
        env = "TRIBUTARY_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// A file with one accepted API key per line (blank lines and `#` comments ignored).
    #[arg(long = "api-keys-file", env = "TRIBUTARY_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
}

/// Per-caller rate limits: a token bucket per API key.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RateLimitArgs {
    /// Events per second each caller may send, over gRPC and the gateway
    /// together (a query request counts as one event). A caller is its API key;
    /// without configured keys, its IP address (IPv6: its /64). Over the limit
    /// a call gets RESOURCE_EXHAUSTED with RetryInfo and `retry-after`
    /// metadata, or HTTP 429 with `Retry-After`; a stream is answered up to
    /// the last event within the limit and then ends with RESOURCE_EXHAUSTED.
    /// Unset: no limit.
    #[arg(long = "rate-limit", env = "TRIBUTARY_RATE_LIMIT", value_parser = parse_rate)]
    pub per_second: Option<f64>,

    /// Most events a caller may send at once after being idle: the bucket
    /// size (default: one second's worth of `--rate-limit`, at least 1). A batch larger than
    /// this is let through only with a full bucket, and its excess is paid
    /// back before the caller's next event.
    #[arg(long = "rate-limit-burst", env = "TRIBUTARY_RATE_LIMIT_BURST", requires = "per_second", value_parser = parse_rate)]
    pub burst: Option<f64>,
}

impl RateLimitArgs {
    /// The limiter, when a limit is configured.
    pub fn limiter(&self) -> Option<crate::rate_limit::RateLimiter> {
        crate::rate_limit::RateLimiter::new(self.per_second?, self.burst)
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

/// A browser origin, `scheme://host[:port]` (a trailing `/` is dropped), or `*`.
fn parse_origin(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s == "*" {
        return Ok(s.to_string());
    }
    let url = url::Url::parse(s).map_err(|e| format!("`{s}` is not an origin: {e}"))?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !plain {
        return Err(format!(
            "`{s}` is not an origin such as https://app.example.com or http://localhost:3000"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

impl AuthArgs {
    /// Every configured key, from the flag and the file.
    pub fn load(&self) -> anyhow::Result<Vec<String>> {
        let mut keys: Vec<String> = self
            .api_keys
            .iter()
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect();
        if let Some(path) = &self.api_keys_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("cannot read API keys file {}: {e}", path.display())
            })?;
            keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
        }
        Ok(keys)
    }
}

impl IngestConfig {
    /// Settings for tests and embedding: both listeners on free loopback
    /// ports, everything else at its default.
    pub fn local(kafka: KafkaArgs, registry: RegistryArgs) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            grpc_addr: any,
            http_addr: any,
            tls_cert: None,
            tls_key: None,
            kafka,
            partitions: 4,
            registry,
            schemas: SchemaArgs {
                policy: SchemaPolicy::AutoRegister,
                pinned: Vec::new(),
                refresh: Duration::from_secs(30),
            },
            limits: LimitArgs {
                max_event_time_skew: Duration::from_secs(24 * 3600),
                produce_timeout: Duration::from_secs(10),
                request_timeout: Duration::from_secs(30),
                max_concurrent_requests: 1024,
                max_in_flight_per_stream: 2048,
                max_message_bytes: 4 * 1024 * 1024,
            },
            auth: AuthArgs::default(),
            rate_limit: RateLimitArgs::default(),
            cors_allowed_origins: Vec::new(),
            database_url: None,
            window: Duration::from_secs(60),
            telemetry: TelemetryArgs::default(),
        }
    }
}

fn parse_pin(s: &str) -> Result<(String, u32), String> {
    let (event_type, id) = s
        .split_once('=')
        .ok_or_else(|| format!("expected TYPE=ID, got `{s}`"))?;
    let id = id
        .trim()
        .parse()
        .map_err(|_| format!("`{id}` is not a schema id"))?;
    Ok((event_type.trim().to_string(), id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_schema_ids_are_type_equals_id() {
        assert_eq!(parse_pin("ad_click=7"), Ok(("ad_click".to_string(), 7)));
        assert!(parse_pin("ad_click").is_err());
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            parse_origin("https://app.example.com/").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            parse_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        assert_eq!(
            parse_origin("HTTPS://App.Example.com:443").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(parse_origin("*").unwrap(), "*");
        assert!(parse_origin("https://app.example.com/path").is_err());
        assert!(parse_origin("app.example.com").is_err());
        assert!(parse_origin("ftp://app.example.com").is_err());
    }

    #[test]
    fn rate_limit_flags() {
        use clap::Parser as _;
        let config = IngestConfig::try_parse_from([
            "tributary-ingest",
            "--rate-limit",
            "50",
            "--rate-limit-burst",
            "200",
            "--cors-allowed-origin",
            "https://a.example",
            "--cors-allowed-origin",
            "http://localhost:3000",
        ])
        .unwrap();
        assert_eq!(config.rate_limit.per_second, Some(50.0));
        assert_eq!(config.rate_limit.burst, Some(200.0));
        assert_eq!(
            config.cors_allowed_origins,
            ["https://a.example", "http://localhost:3000"]
        );
        assert!(IngestConfig::try_parse_from(["tributary-ingest", "--rate-limit", "0"]).is_err());
        assert!(
            IngestConfig::try_parse_from(["tributary-ingest", "--rate-limit-burst", "5"]).is_err()
        );
    }
}
