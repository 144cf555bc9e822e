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
    inner: Arc<Inner>,
}

struct Inner {
    query: tributary_client::Client,
    kafka: KafkaArgs,
    decoder: Decoder,
    registry: schemas::Registry,
    overview: OverviewFeed,
    replay: tokio::sync::Mutex<()>,
    dead_letters: tokio::sync::Mutex<tributary_common::dead_letter::read::Cache>,
    /// Cancelled when the console stops: open event streams end.
    stopping: CancellationToken,
}

impl FromRef<AppState> for Access {
    fn from_ref(state: &AppState) -> Self {
        state.access.clone()
    }
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
    pub fn dead_letter_cache(
        &self,
    ) -> &tokio::sync::Mutex<tributary_common::dead_letter::read::Cache> {
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

/// With API keys configured, every `/api/*` call needs an accepted key.
async fn require_key(State(access): State<Access>, request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(e) = access.api_keys().check(header) {
        return ApiError::from(e).into_response();
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
    let access = state.access.clone();
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
        .layer(middleware::from_fn_with_state(access, require_key))
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
            inner: Arc::new(Inner {
                query,
                kafka: kafka.clone(),
                decoder: Decoder::new(registry)?,
                registry: schemas::Registry::new(registry)?,
                overview: feed,
                replay: tokio::sync::Mutex::new(()),
                dead_letters: tokio::sync::Mutex::new(Default::default()),
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
