//! Serving what the services contribute (gRPC services and HTTP routes) on
//! one gRPC and one HTTP listener, with what every listener
//! needs: TLS, gRPC health and reflection, a load-shedding concurrency limit
//! and deadline, CORS, one JSON shape for unknown routes, `TCP_NODELAY`, and
//! a graceful stop. Ingest, the query API, or both in one process (the
//! stack's `tributary-server`) are served by the same [`Edge`].
use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc};

use anyhow::Context as _;
use axum::{
    Json, Router,
    extract::{Request, State},
    http::StatusCode,
    routing::get,
    serve::ListenerExt as _,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{service::RoutesBuilder, transport::server::TcpIncoming};
use utoipa::openapi::OpenApi;

use crate::{
    access::Access,
    config::EdgeArgs,
    cors,
    error::ApiError,
    openapi,
    readiness::{Check, Readiness},
    tls,
};

/// A service served by an edge: it adds its routes (and readiness check)
/// when mounted, and finishes its work (e.g. flushes a producer) after the
/// edge has stopped serving.
pub trait EdgeService: Send {
    /// Adds the service's gRPC services, HTTP routes, OpenAPI fragment and
    /// readiness check; background work stops with `stop`.
    fn mount(&self, edge: &mut Edge, stop: &CancellationToken);

    /// Finishes after the listeners have stopped.
    fn drain(self: Box<Self>) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
}

/// Both listeners, bound, with their TLS settings and access rules.
pub struct Edge {
    args: EdgeArgs,
    access: Access,
    grpc: TcpListener,
    http: TcpListener,
    grpc_tls: Option<tonic::transport::ServerTlsConfig>,
    http_tls: Option<rustls::ServerConfig>,
    readiness: Readiness,
    grpc_services: RoutesBuilder,
    http_routes: Router,
    openapi: OpenApi,
}

impl Edge {
    /// Reads the TLS files and API keys and binds both listeners.
    pub async fn bind(args: &EdgeArgs) -> anyhow::Result<Self> {
        let access = Access::from_args(args)?;
        cors::layer(&args.cors_allowed_origins)?;
        let (grpc_tls, http_tls) = match args.tls.identity() {
            Some((cert, key)) => (
                Some(tls::grpc_server_config(cert, key)?),
                Some(tls::server_config(cert, key)?),
            ),
            _ => (None, None),
        };
        let grpc = TcpListener::bind(args.grpc_addr)
            .await
            .with_context(|| format!("cannot listen on {} (gRPC)", args.grpc_addr))?;
        let http = TcpListener::bind(args.http_addr)
            .await
            .with_context(|| format!("cannot listen on {} (HTTP)", args.http_addr))?;
        let (health, service) = tonic_health::server::health_reporter();
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let mut grpc_services = RoutesBuilder::default();
        grpc_services.add_service(service);
        Ok(Self {
            args: args.clone(),
            access,
            grpc,
            http,
            grpc_tls,
            http_tls,
            readiness: Readiness::new(health),
            grpc_services,
            http_routes: Router::new(),
            openapi: openapi::base(),
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().expect("bound listener")
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("bound listener")
    }

    /// Who may call, and how often.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// A readiness check for the gRPC service `service`: the process is
    /// ready (gRPC health `""`, `GET /readyz`) when every check is.
    pub fn readiness_check(&self, service: &'static str) -> Check {
        self.readiness.check(service)
    }

    /// Merges a service's OpenAPI document (its paths and schemas) into
    /// `GET /openapi.json`.
    pub fn document(&mut self, document: OpenApi) -> &mut Self {
        self.openapi.merge(document);
        self
    }

    /// The gRPC services to serve, to add to.
    pub fn grpc(&mut self) -> &mut RoutesBuilder {
        &mut self.grpc_services
    }

    /// Adds HTTP routes (without a fallback: the edge answers unknown routes).
    pub fn http(&mut self, routes: Router) -> &mut Self {
        self.http_routes = std::mem::take(&mut self.http_routes).merge(routes);
        self
    }

    /// Mounts `services`, serves them until `stop` is cancelled (binaries:
    /// `common::shutdown::cancel_on(signal())`), lets in-flight requests
    /// finish, then drains each service in order.
    pub async fn run(
        mut self,
        services: Vec<Box<dyn EdgeService>>,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        for service in &services {
            service.mount(&mut self, &stop);
        }
        self.serve(stop).await?;
        for service in services {
            service.drain().await?;
        }
        Ok(())
    }

    /// Serves until `stop` is cancelled, then lets in-flight requests finish
    /// and returns.
    pub async fn serve(self, stop: CancellationToken) -> anyhow::Result<()> {
        let Self {
            args,
            access,
            grpc,
            http,
            grpc_tls,
            http_tls,
            readiness,
            grpc_services: mut routes,
            http_routes: router,
            mut openapi,
            ..
        } = self;
        if !access.api_keys().enabled() {
            openapi::without_security(&mut openapi);
        }
        routes.add_service(reflection().build_v1()?);
        // grpcurl and many other tools still speak v1alpha.
        routes.add_service(reflection().build_v1alpha()?);
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = grpc_tls {
            server = server
                .tls_config(tls)
                .context("invalid TLS configuration")?;
        }
        let grpc_server = server
            .timeout(args.request_timeout)
            // Windows that bound what a paused stream holds unread, so that
            // h2's small-frame budget never cuts off a client backpressure
            // only had to slow (see EdgeArgs::http2_stream_window).
            .initial_stream_window_size(args.http2_stream_window)
            .initial_connection_window_size(args.http2_connection_window)
            .http2_adaptive_window(Some(false))
            .layer(
                tower::ServiceBuilder::new()
                    .load_shed()
                    .concurrency_limit(args.max_concurrent_requests)
                    .into_inner(),
            )
            .add_routes(routes.routes())
            // No Nagle: acks are small writes that must not wait for the
            // peer's delayed ACK (40 ms on Linux).
            .serve_with_incoming_shutdown(
                TcpIncoming::from(grpc).with_nodelay(Some(true)),
                stop.clone().cancelled_owned(),
            );

        let document = Arc::new(
            serde_json::to_value(&openapi).context("cannot serialize the OpenAPI document")?,
        );
        let probes = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(readiness)
            .route("/openapi.json", get(openapi_json).with_state(document));
        let router = router
            .merge(probes)
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed);
        let app = cors::apply(router, &args.cors_allowed_origins)?
            .into_make_service_with_connect_info::<SocketAddr>();
        let http_stop = stop.clone();
        let http_server = async move {
            match http_tls {
                Some(tls) => {
                    // tap_io gives the listener axum's ConnectInfo<SocketAddr>.
                    let listener = tls::TlsListener::new(http, tls).tap_io(|_| {});
                    axum::serve(listener, app)
                        .with_graceful_shutdown(http_stop.cancelled_owned())
                        .await
                }
                None => {
                    let http = http.tap_io(|tcp| {
                        if let Err(e) = tcp.set_nodelay(true) {
                            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                        }
                    });
                    axum::serve(http, app)
                        .with_graceful_shutdown(http_stop.cancelled_owned())
                        .await
                }
            }
        };
        let (grpc_result, http_result) = tokio::join!(grpc_server, http_server);
        grpc_result.context("gRPC server failed")?;
        http_result.context("HTTP server failed")?;
        Ok(())
    }
}

/// Reflection over every Tributary service, both reflection protocols (so
/// whichever a tool speaks, it lists both), and the google.rpc error detail
/// types its statuses carry, so tools can decode them.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tributary_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// `GET /openapi.json`: this process's OpenAPI document.
#[utoipa::path(
    get,
    tag = "probes",
    path = "/openapi.json",
    responses((status = 200, description = "OpenAPI 3.1.", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json(
    State(document): State<Arc<serde_json::Value>>,
) -> Json<serde_json::Value> {
    Json(document.as_ref().clone())
}

/// `GET /healthz`: liveness.
#[utoipa::path(
    get,
    tag = "probes",
    path = "/healthz",
    responses((status = 204, description = "The process is running."))
)]
pub(crate) async fn healthz() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `GET /readyz`: 204 when every service of the process is ready, 503 otherwise.
#[utoipa::path(
    get,
    tag = "probes",
    path = "/readyz",
    responses(
        (status = 204, description = "Every service in this process can reach what it needs (ingest: the broker and the registry; the query API: the database)."),
        (status = 503, description = "Some dependency is unreachable."),
    )
)]
pub(crate) async fn readyz(State(readiness): State<Readiness>) -> StatusCode {
    if readiness.is_ready() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route {} {}; see GET /openapi.json",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}; see GET /openapi.json",
            request.method(),
            request.uri().path()
        ),
    )
}
