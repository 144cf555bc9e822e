//! The flags of every client-facing listener: addresses, TLS, API keys,
//! rate limits, CORS and request limits. Ingest and the query API take the
//! same flags (flattened into their own), so one deployment configures both
//! the same way.
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use crate::rate_limit::RateLimiter;

/// The default `--http2-stream-window`: a paused stream of 100-byte
/// messages, one per DATA frame, holds 64 KiB unread, which h2 charges
/// 64 KiB × (256 − 100) / 100 ≈ 100 KiB of framing overhead; the default
/// connection window's budget (8 MiB) covers about 80 such streams paused
/// at once on one connection (budget / stream window = 128 windows of
/// unread data, whatever the two sizes). Against 16 KiB and against hyper's
/// 1 MiB, streaming ingest through the SDK measured the same within the
/// machine's noise (dev/bench --stage produce --runs 3: 27.6k, 26.9k and
/// 32.0k events/s).
pub const DEFAULT_STREAM_WINDOW: u32 = 64 * 1024;

/// The default `--http2-connection-window` (h2's budget for small frames is
/// half of it).
pub const DEFAULT_CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// Where and how the gRPC and HTTP listeners serve.
#[derive(clap::Args, Debug, Clone)]
pub struct EdgeArgs {
    /// Address of the gRPC API (the services, health, reflection); port 0 picks a free port.
    #[arg(
        long = "grpc-addr",
        env = "TRIBUTARY_GRPC_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub grpc_addr: SocketAddr,

    /// Address of the JSON HTTP API (routes, probes, OpenAPI document); port 0 picks a free port.
    #[arg(
        long = "http-addr",
        env = "TRIBUTARY_HTTP_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub http_addr: SocketAddr,

    #[command(flatten)]
    pub tls: TlsArgs,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub rate_limit: RateLimitArgs,

    /// A browser origin allowed to call the HTTP API cross-origin (CORS),
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

    /// Deadline of a unary request.
    #[arg(long = "request-timeout", env = "TRIBUTARY_REQUEST_TIMEOUT", value_parser = humantime::parse_duration, default_value = "30s")]
    pub request_timeout: Duration,

    /// HTTP/2 flow-control window of each gRPC stream, in bytes: how much a
    /// client may send that ingest has not read yet. While ingest waits for
    /// the broker it stops reading (backpressure), and h2 charges each small
    /// unread DATA frame against a per-connection budget of half the
    /// connection window; clients that send one small message per frame
    /// (grpcio, grpc-js) were disconnected (`too_many_data_frames`) with a
    /// larger window. Larger: more throughput per stream over long
    /// round trips; smaller: less memory per paused stream.
    #[arg(
        long = "http2-stream-window",
        env = "TRIBUTARY_HTTP2_STREAM_WINDOW",
        default_value_t = DEFAULT_STREAM_WINDOW
    )]
    pub http2_stream_window: u32,

    /// HTTP/2 flow-control window of each gRPC connection, in bytes (all its
    /// streams together); h2 allows the frames unread on a connection half
    /// of it as framing overhead.
    #[arg(
        long = "http2-connection-window",
        env = "TRIBUTARY_HTTP2_CONNECTION_WINDOW",
        default_value_t = DEFAULT_CONNECTION_WINDOW
    )]
    pub http2_connection_window: u32,

    /// gRPC requests being handled at once (a stream counts until it is
    /// accepted); more are refused with RESOURCE_EXHAUSTED instead of queueing.
    #[arg(
        long = "max-concurrent-requests",
        env = "TRIBUTARY_MAX_CONCURRENT_REQUESTS",
        default_value_t = 1024
    )]
    pub max_concurrent_requests: usize,
}

impl EdgeArgs {
    /// Loopback on free ports, no TLS, no keys, no limits: for tests and
    /// the local stack.
    pub fn local() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            grpc_addr: any,
            http_addr: any,
            tls: TlsArgs::default(),
            auth: AuthArgs::default(),
            rate_limit: RateLimitArgs::default(),
            cors_allowed_origins: Vec::new(),
            request_timeout: Duration::from_secs(30),
            http2_stream_window: DEFAULT_STREAM_WINDOW,
            http2_connection_window: DEFAULT_CONNECTION_WINDOW,
            max_concurrent_requests: 1024,
        }
    }
}

/// TLS for a service's listeners: the same flags for ingest, the query API
/// and the registry.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// PEM certificate chain for TLS on every listener of the service
    /// (gRPC and HTTP); with `--tls-key`, they accept only TLS (rustls; TLS
    /// 1.2 and 1.3; HTTP/2 and HTTP/1.1 by ALPN).
    #[arg(
        id = "tls_cert",
        long = "tls-cert",
        env = "TRIBUTARY_TLS_CERT",
        requires = "tls_key"
    )]
    pub cert: Option<PathBuf>,

    /// PEM private key for `--tls-cert`.
    #[arg(
        id = "tls_key",
        long = "tls-key",
        env = "TRIBUTARY_TLS_KEY",
        requires = "tls_cert"
    )]
    pub key: Option<PathBuf>,
}

impl TlsArgs {
    /// Serves with the PEM certificate chain `cert` and its key `key`.
    pub fn files(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: Some(cert.into()),
            key: Some(key.into()),
        }
    }

    /// The certificate and key files, when TLS is on.
    pub fn identity(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        }
    }
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

impl AuthArgs {
    /// Every configured key, from the flags and the file.
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

/// Per-caller rate limits: a token bucket per API key.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RateLimitArgs {
    /// Events per second each caller may send, over gRPC and HTTP together
    /// (a query request counts as one event). A caller is its API key;
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
    /// The limiter these flags configure, if any.
    pub fn limiter(&self) -> Option<RateLimiter> {
        RateLimiter::new(self.per_second?, self.burst)
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

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
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        edge: EdgeArgs,
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
        let flags = Flags::try_parse_from([
            "edge",
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
        assert_eq!(flags.edge.rate_limit.per_second, Some(50.0));
        assert_eq!(flags.edge.rate_limit.burst, Some(200.0));
        assert_eq!(
            flags.edge.cors_allowed_origins,
            ["https://a.example", "http://localhost:3000"]
        );
        assert!(Flags::try_parse_from(["edge", "--rate-limit", "0"]).is_err());
        assert!(Flags::try_parse_from(["edge", "--rate-limit-burst", "5"]).is_err());
    }

    #[test]
    fn durations_take_days() {
        let flags = Flags::try_parse_from(["edge", "--request-timeout", "1d"]).unwrap();
        assert_eq!(flags.edge.request_timeout, Duration::from_secs(86_400));
    }
}
