//! The console's flags and environment variables.
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use tributary_common::config::{KafkaArgs, RegistryArgs, TelemetryArgs, TopicUse};
use tributary_edge::config::{AuthArgs, TlsArgs};

/// A service whose Prometheus metrics the console scrapes:
/// `NAME=METRICS_URL[,READY_URL]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTarget {
    /// The name shown (`ingest`, `processor`, `sink`, ...).
    pub name: String,
    /// Its `GET /metrics` URL.
    pub metrics_url: String,
    /// Its readiness URL (`/readyz`, ready when it answers 2xx). Without one
    /// the service is taken as a Kafka consumer: ready when its metrics have
    /// a `tributary_consumer_lag` series (partitions are assigned).
    pub ready_url: Option<String>,
}

impl std::str::FromStr for ServiceTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, urls) = s
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not NAME=METRICS_URL[,READY_URL]"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("`{s}` has an empty NAME"));
        }
        let mut urls = urls.split(',').map(str::trim);
        let check = |url: &str| -> Result<String, String> {
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(url.to_string()),
                _ => Err(format!("`{url}` (in `{s}`) is not an http(s) URL")),
            }
        };
        let metrics_url = check(urls.next().unwrap_or_default())?;
        let ready_url = urls
            .next()
            .filter(|u| !u.is_empty())
            .map(check)
            .transpose()?;
        if urls.next().is_some() {
            return Err(format!("`{s}` has more than two URLs"));
        }
        Ok(Self {
            name: name.to_string(),
            metrics_url,
            ready_url,
        })
    }
}

/// Where the console listens, who may call it, and what it watches.
#[derive(clap::Args, Debug, Clone)]
pub struct ConsoleArgs {
    /// Address of the console (the page and `/api/*`); port 0 picks a free
    /// port (the bound address is logged).
    #[arg(
        long = "http-addr",
        env = "TRIBUTARY_CONSOLE_HTTP_ADDR",
        default_value = "127.0.0.1:8088"
    )]
    pub http_addr: SocketAddr,

    /// TLS (`--tls-cert`, `--tls-key`), as every other listener.
    #[command(flatten)]
    pub tls: TlsArgs,

    /// API keys (`--api-key`, `--api-keys-file`): with any configured, every
    /// `/api/*` call needs `authorization: Bearer <key>` (the page itself
    /// loads without one and asks for it).
    #[command(flatten)]
    pub auth: AuthArgs,

    /// A browser origin allowed to call the console's API cross-origin
    /// (CORS), or `*` (repeatable; `,`-separated in the environment
    /// variable). None: no CORS headers; the console's own page is
    /// same-origin and needs none.
    #[arg(
        long = "cors-allowed-origin",
        env = "TRIBUTARY_CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_parser = parse_origin
    )]
    pub cors_allowed_origins: Vec<String>,

    /// A host name (or `name:port`) the console answers `/api/*` for when no
    /// API key is configured (repeatable; `,`-separated in the environment
    /// variable), e.g. `--allowed-host console` behind docker-compose. A
    /// guard against DNS rebinding: without keys, an `/api/*` call is
    /// answered only when its `Host` is a loopback name or address
    /// (`localhost`, `127.0.0.0/8`, `[::1]`), the address `--http-addr`
    /// binds (unless `0.0.0.0`/`[::]`), or one of these; any other is 403.
    /// With API keys configured the `Host` is not checked.
    #[arg(
        long = "allowed-host",
        env = "TRIBUTARY_CONSOLE_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    pub allowed_hosts: Vec<String>,

    /// The query API's gRPC endpoint (QueryService), for aggregates and
    /// price accuracy.
    #[arg(
        long = "query-url",
        env = "TRIBUTARY_CONSOLE_QUERY_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub query_url: String,

    /// The API key the console sends to the query API.
    #[arg(
        long = "query-api-key",
        env = "TRIBUTARY_CONSOLE_QUERY_API_KEY",
        hide_env_values = true
    )]
    pub query_api_key: Option<String>,

    /// A PEM CA certificate to trust for an https:// `--query-url`, besides
    /// the system's roots.
    #[arg(long = "query-ca-cert", env = "TRIBUTARY_CONSOLE_QUERY_CA_CERT")]
    pub query_ca_cert: Option<PathBuf>,

    /// A service to watch: `NAME=METRICS_URL[,READY_URL]`, e.g.
    /// `ingest=http://127.0.0.1:9101/metrics,http://127.0.0.1:8080/readyz`
    /// (repeatable; `;`-separated in the environment variable). Up: its last
    /// scrape answered. Ready: READY_URL answered 2xx, or, without one (a
    /// consumer: processor, sink), its metrics have a
    /// `tributary_consumer_lag` series (it has partitions assigned).
    #[arg(
        long = "service",
        env = "TRIBUTARY_CONSOLE_SERVICES",
        value_delimiter = ';',
        value_name = "NAME=METRICS_URL[,READY_URL]"
    )]
    pub services: Vec<ServiceTarget>,

    /// How often the services' metrics are scraped (and the overview pushed
    /// to open pages).
    #[arg(long = "scrape-interval", env = "TRIBUTARY_CONSOLE_SCRAPE_INTERVAL", value_parser = parse_interval, default_value = "1s")]
    pub scrape_interval: Duration,
}

impl ConsoleArgs {
    /// Loopback on a free port, no TLS, no keys, nothing watched, the query
    /// API at `query_url`: for tests.
    pub fn local(query_url: impl Into<String>) -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: TlsArgs::default(),
            auth: AuthArgs::default(),
            cors_allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            query_url: query_url.into(),
            query_api_key: None,
            query_ca_cert: None,
            services: Vec::new(),
            scrape_interval: Duration::from_secs(1),
        }
    }
}

/// Configuration of `tributary-console`.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tributary-console",
    version,
    about = "Tributary's web console: pipeline health, aggregates, price accuracy, dead letters and schemas in a browser"
)]
pub struct ConsoleConfig {
    /// Listener, access, the query API and the services watched.
    #[command(flatten)]
    pub console: ConsoleArgs,

    /// The broker (dead letters are read from and replayed to it).
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// The Schema Registry (schemas, and decoding dead letters).
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Logging, tracing and metrics.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// The topic flags the console uses: only the dead-letter topic.
pub const TOPICS: TopicUse = TopicUse {
    events: None,
    aggregates: None,
    dead_letters: Some(
        "The dead-letter topic the console lists and replays from (replays are recorded in `<topic>.replayed`).",
    ),
};

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(100) {
        return Err("the scrape interval must be at least 100ms".into());
    }
    Ok(d)
}

/// An origin as the edge takes it: scheme, host and port (`*` for any).
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

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn a_service_is_a_name_a_metrics_url_and_maybe_a_ready_url() {
        let s: ServiceTarget = "ingest=http://127.0.0.1:9101/metrics,http://127.0.0.1:8080/readyz"
            .parse()
            .unwrap();
        assert_eq!(s.name, "ingest");
        assert_eq!(s.metrics_url, "http://127.0.0.1:9101/metrics");
        assert_eq!(s.ready_url.as_deref(), Some("http://127.0.0.1:8080/readyz"));
        let s: ServiceTarget = "sink=http://127.0.0.1:9103/metrics".parse().unwrap();
        assert_eq!(s.ready_url, None);
        assert!("sink".parse::<ServiceTarget>().is_err());
        assert!("=http://x/metrics".parse::<ServiceTarget>().is_err());
        assert!("sink=ftp://x/metrics".parse::<ServiceTarget>().is_err());
        assert!(
            "sink=http://a/m,http://b/r,http://c"
                .parse::<ServiceTarget>()
                .is_err()
        );
    }

    #[test]
    fn flags_and_their_defaults() {
        let config = ConsoleConfig::try_parse_from([
            "tributary-console",
            "--service",
            "ingest=http://127.0.0.1:9101/metrics,http://127.0.0.1:8080/readyz",
            "--service",
            "sink=http://127.0.0.1:9103/metrics",
            "--scrape-interval",
            "500ms",
            "--allowed-host",
            "console",
            "--allowed-host",
            "console.example:8088",
        ])
        .unwrap();
        assert_eq!(
            config.console.allowed_hosts,
            ["console", "console.example:8088"]
        );
        assert_eq!(config.console.services.len(), 2);
        assert_eq!(config.console.scrape_interval, Duration::from_millis(500));
        assert_eq!(config.console.query_url, "http://127.0.0.1:50051");
        assert!(
            ConsoleConfig::try_parse_from(["tributary-console", "--scrape-interval", "1ms"])
                .is_err()
        );
        TOPICS
            .apply(<ConsoleConfig as clap::CommandFactory>::command())
            .debug_assert();
    }
}
