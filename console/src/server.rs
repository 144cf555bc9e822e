//! The console's HTTP server: the page (no key needed), `/api/*` (with API
//! keys configured, each call needs one, exactly as the query API's HTTP
//! routes: 401 `unauthenticated` with `WWW-Authenticate: Bearer` otherwise),
//! CORS and TLS from the edge, and the scraper behind the overview.
use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{
    Router,
    extract::{FromRef, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
    serve::ListenerExt as _,
};
use futures::Stream;
use futures::StreamExt as _;
use tokio::net::TcpListener;
use tokio_stream::wrappers::WatchStream;
use tokio_util::sync::CancellationToken;
use tributary_common::{config::KafkaArgs, config::RegistryArgs, dead_letter::read::Decoder};
use tributary_edge::{Access, config::EdgeArgs, cors, error::ApiError, tls};

use crate::{
    assets,
    config::ConsoleArgs,
    dead_letters,
    overview::{OverviewFeed, Scraper},
    query, schemas,
};

/// What the handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    access: Access,
    hosts: Arc<HostGuard>,
    inner: Arc<Inner>,
}

/// Which `Host` headers `/api/*` answers when no API key is configured (a
/// guard against DNS rebinding: a page of another site whose name was made
/// to resolve to this console's address cannot read its API): loopback
/// names and addresses, the bound address, and `--allowed-host`.
#[derive(Debug, Clone, Default)]
pub struct HostGuard {
    /// `--allowed-host`, lower case: names, or `name:port`.
    allowed: Vec<String>,
    /// The address `--http-addr` binds, unless unspecified.
    bound: Option<std::net::IpAddr>,
}

impl HostGuard {
    /// The guard for a console bound to `bound` with `allowed` hosts.
    pub fn new(allowed: &[String], bound: SocketAddr) -> Self {
        Self {
            allowed: allowed
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            bound: Some(bound.ip()).filter(|ip| !ip.is_unspecified()),
        }
    }

    /// Whether a request with `Host: host` is answered.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        if self.allowed.contains(&host) {
            return true;
        }
        // The name without the port: `[::1]:8088` → `::1`, `a:8088` → `a`.
        let name = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or_default(),
            None => host.rsplit_once(':').map_or(host.as_str(), |(n, _)| n),
        };
        let name = name.trim_end_matches('.');
        if name == "localhost" || self.allowed.iter().any(|a| a == name) {
            return true;
        }
        match name.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback() || Some(ip) == self.bound,
            Err(_) => false,
        }
    }
}

struct Inner {
    query: tributary_client::Client,
    kafka: KafkaArgs,
    decoder: Decoder,
    registry: schemas::Registry,
    overview: OverviewFeed,
    replay: tokio::sync::Mutex<()>,
    dead_letters: dead_letters::DeadLetterCache,
    /// Cancelled when the console stops: open event streams end.
    stopping: CancellationToken,
}

impl FromRef<AppState> for Access {
    fn from_ref(state: &AppState) -> Self {
        state.access.clone()
    }
}

/// What the `/api` middleware checks: keys, or without them the `Host`.
#[derive(Clone)]
struct Gate {
    access: Access,
    hosts: Arc<HostGuard>,
}

impl AppState {
    /// The query API client.
    pub fn query(&self) -> &tributary_client::Client {
        &self.inner.query
    }

    /// The broker settings (the dead-letter topic).
    pub fn kafka(&self) -> &KafkaArgs {
        &self.inner.kafka
    }

    /// Decodes dead-letter payloads through the registry.
    pub fn decoder(&self) -> &Decoder {
        &self.inner.decoder
    }

    /// The registry's REST API.
    pub fn registry(&self) -> &schemas::Registry {
        &self.inner.registry
    }

    /// The dead letters read so far (lists read only what is new).
    pub fn dead_letter_cache(&self) -> &dead_letters::DeadLetterCache {
        &self.inner.dead_letters
    }

    /// Held while a replay runs: one at a time.
    pub fn replay_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.replay
    }
}

/// A console bound to its address, ready to serve.
pub struct Console {
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
    router: Router,
    scraper: Scraper,
    stopping: CancellationToken,
}

/// With API keys configured, every `/api/*` call needs an accepted key;
/// without, its `Host` must be one [`HostGuard`] allows.
async fn require_key(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let access = &gate.access;
    if access.api_keys().enabled() {
        let header = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if let Err(e) = access.api_keys().check(header) {
            return ApiError::from(e).into_response();
        }
    } else {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| request.uri().authority().map(|a| a.to_string()));
        let allowed = host.as_deref().is_some_and(|h| gate.hosts.allows(h));
        if !allowed {
            let host = host.unwrap_or_default();
            let name = host.rsplit_once(':').map_or(host.as_str(), |(n, _)| n);
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "the console does not answer /api for Host `{host}` without API keys \
                     (a guard against DNS rebinding); start it with --allowed-host {name} \
                     (TRIBUTARY_CONSOLE_ALLOWED_HOSTS), or configure API keys"
                ),
            )
            .into_response();
        }
    }
    let mut response = next.run(request).await;
    // API answers are live data.
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// `GET /api/overview`: the latest overview.
async fn overview(State(state): State<AppState>) -> Response {
    let json = state.inner.overview.latest();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json.as_ref().clone(),
    )
        .into_response()
}

/// `GET /api/overview/stream`: server-sent events, one `overview` event with
/// the overview's JSON now and after every scrape.
async fn overview_stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let updates = WatchStream::new(state.inner.overview.subscribe())
        .map(|json| Ok(Event::default().event("overview").data(json.as_str())))
        .take_until(state.inner.stopping.clone().cancelled_owned());
    let updates = Box::pin(updates);
    Sse::new(updates).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn api_not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {} {}", request.method(), request.uri().path()),
    )
}

/// The `/api` routes over `state`.
pub fn api_router(state: AppState) -> Router {
    let gate = Gate {
        access: state.access.clone(),
        hosts: state.hosts.clone(),
    };
    Router::new()
        .route("/api/overview", get(overview))
        .route("/api/overview/stream", get(overview_stream))
        .route("/api/aggregates", get(query::aggregates))
        .route("/api/aggregates.csv", get(query::aggregates_csv))
        .route("/api/price-accuracy", get(query::price_accuracy))
        .route("/api/dead-letters", get(dead_letters::list))
        .route("/api/dead-letters/replay", post(dead_letters::replay))
        .route(
            "/api/dead-letters/{partition}/{offset}",
            get(dead_letters::show),
        )
        .route("/api/schemas", get(schemas::list))
        .route(
            "/api/schemas/{subject}/versions/{version}",
            get(schemas::version),
        )
        .route("/api/schemas/{subject}/diff", get(schemas::diff))
        .route("/api/schemas/{subject}/check", post(schemas::check))
        .route("/api/{*rest}", get(api_not_found).post(api_not_found))
        .layer(middleware::from_fn_with_state(gate, require_key))
        .with_state(state)
}

/// The whole app: the page and `/api`.
fn router(state: AppState, cors_origins: &[String]) -> anyhow::Result<Router> {
    let pages = Router::new()
        .route("/", get(assets::index))
        .route("/index.html", get(assets::index))
        .route("/healthz", get(|| async { StatusCode::NO_CONTENT }))
        .route("/{*path}", get(assets::file));
    let app = api_router(state)
        .merge(pages)
        .fallback(api_not_found)
        .method_not_allowed_fallback(|request: Request| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "{} is not allowed on {}",
                    request.method(),
                    request.uri().path()
                ),
            )
        });
    cors::apply(app, cors_origins)
}

impl Console {
    /// Reads the TLS files and API keys, connects (lazily) to the query API
    /// and the registry, and binds `args.http_addr`.
    pub async fn bind(
        args: &ConsoleArgs,
        kafka: &KafkaArgs,
        registry: &RegistryArgs,
    ) -> anyhow::Result<Self> {
        let mut edge = EdgeArgs::local();
        edge.auth = args.auth.clone();
        edge.tls = args.tls.clone();
        edge.cors_allowed_origins = args.cors_allowed_origins.clone();
        let access = Access::from_args(&edge)?;
        let tls = match args.tls.identity() {
            Some((cert, key)) => Some(tls::server_config(cert, key)?),
            None => None,
        };
        let mut client = tributary_client::ClientBuilder::new(&args.query_url)
            .connect_timeout(Duration::from_secs(3));
        if let Some(key) = &args.query_api_key {
            client = client.api_key(key);
        }
        if let Some(path) = &args.query_ca_cert {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read --query-ca-cert {}", path.display()))?;
            client = client.tls_ca_certificate(pem);
        }
        let query = client.build().context("invalid --query-url")?;
        let (scraper, feed) = Scraper::new(&args.services, args.scrape_interval)?;
        let stopping = CancellationToken::new();
        let state = AppState {
            access,
            hosts: Arc::new(HostGuard::new(&args.allowed_hosts, args.http_addr)),
            inner: Arc::new(Inner {
                query,
                kafka: kafka.clone(),
                decoder: Decoder::new(registry)?,
                registry: schemas::Registry::new(registry)?,
                overview: feed,
                replay: tokio::sync::Mutex::new(()),
                dead_letters: Default::default(),
                stopping: stopping.clone(),
            }),
        };
        let router = router(state, &args.cors_allowed_origins)?;
        let listener = TcpListener::bind(args.http_addr)
            .await
            .with_context(|| format!("cannot listen on {} (console)", args.http_addr))?;
        Ok(Self {
            listener,
            tls,
            router,
            scraper,
            stopping,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// The console's base URL (`http://` or `https://` and the bound address).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// Scrapes and serves until `stop` is cancelled, then lets in-flight
    /// requests finish (open event streams end) and returns.
    pub async fn serve(self, stop: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            tls,
            router,
            scraper,
            stopping,
        } = self;
        let scraping = tokio::spawn(scraper.run(stop.child_token()));
        let streams = stop.clone();
        tokio::spawn(async move {
            streams.cancelled().await;
            stopping.cancel();
        });
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        // Event streams never end by themselves and the graceful stop waits
        // for every connection: they end when `stop` fires (`stopping`).
        let result = match tls {
            Some(tls) => {
                let listener = tls::TlsListener::new(listener, tls).tap_io(|_| {});
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop.clone().cancelled_owned())
                    .await
            }
            None => {
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop.clone().cancelled_owned())
                    .await
            }
        };
        scraping.abort();
        result.context("console server failed")
    }
}

/// Binds and serves in the background until `stop`: the bound address and
/// the task (for tests and the local stack, in-process).
pub async fn spawn(
    args: &ConsoleArgs,
    kafka: &KafkaArgs,
    registry: &RegistryArgs,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<anyhow::Result<()>>)> {
    let console = Console::bind(args, kafka, registry).await?;
    let addr = console.local_addr();
    Ok((addr, tokio::spawn(console.serve(stop))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_keys_only_loopback_bound_and_allowed_hosts_are_answered() {
        let guard = HostGuard::new(
            &["console".into(), "Console.Example:8088".into()],
            "0.0.0.0:8088".parse().unwrap(),
        );
        for host in [
            "localhost",
            "localhost:8088",
            "LOCALHOST.:8088",
            "127.0.0.1:8088",
            "127.3.2.1",
            "[::1]:8088",
            "[::1]",
            "console:8088",
            "console",
            "console.example:8088",
        ] {
            assert!(guard.allows(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8088",
            "localhost.evil.example",
            "console.example:9999",
            "10.0.0.5:8088",
            "0.0.0.0:8088",
            "[::]:8088",
            "",
        ] {
            assert!(!guard.allows(host), "{host}");
        }
        let bound = HostGuard::new(&[], "10.0.0.5:8088".parse().unwrap());
        assert!(bound.allows("10.0.0.5:8088"));
        assert!(!bound.allows("10.0.0.6:8088"));
    }
}
