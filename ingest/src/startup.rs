//! Builds ingest (producer, schema cache, gRPC and HTTP listeners) and runs it
//! until shutdown: then it stops accepting, lets in-flight events finish,
//! flushes the producer and returns.
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{service::interceptor::InterceptedService, transport::server::TcpIncoming};
use tributary_common::proto::{
    self,
    v1::{ingest_service_server::IngestServiceServer, query_service_server::QueryServiceServer},
};
use tributary_sink::query::{QueryApi, QueryGrpc};

use crate::{
    auth::{ApiKeys, Charge},
    config::IngestConfig,
    gateway::{self, GatewayState},
    grpc::IngestGrpc,
    health::{self, Readiness},
    ingestor::Ingestor,
    rate_limit::RateLimiter,
};

/// The query API over `--database-url`, or one that answers UNAVAILABLE when
/// no database is configured (ingest alone is still useful). The pool connects
/// on first use, so ingest starts while Postgres is down.
fn query_api(config: &IngestConfig) -> anyhow::Result<QueryApi> {
    anyhow::ensure!(!config.window.is_zero(), "--window must be positive");
    match &config.database_url {
        Some(url) => QueryApi::connect_lazy(url, config.window)
            .context("invalid --database-url (DATABASE_URL)"),
        None => {
            tracing::warn!(
                "no --database-url: QueryService and GET /v1/aggregates answer UNAVAILABLE"
            );
            Ok(QueryApi::not_configured())
        }
    }
}

/// How long in-flight events get to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Ingest, bound to its addresses and ready to serve.
pub struct Ingest {
    config: IngestConfig,
    ingestor: Arc<Ingestor>,
    api_keys: ApiKeys,
    rate_limiter: Option<RateLimiter>,
    queries: QueryApi,
    grpc: TcpListener,
    http: TcpListener,
    grpc_tls: Option<tonic::transport::ServerTlsConfig>,
    http_tls: Option<rustls::ServerConfig>,
}

impl Ingest {
    /// Creates the producer and binds both listeners.
    pub async fn build(config: IngestConfig) -> anyhow::Result<Self> {
        let api_keys = ApiKeys::new(&config.auth.load()?);
        let rate_limiter = config.rate_limit.limiter();
        gateway::cors::layer(&config.cors_allowed_origins)?;
        let grpc_tls = tls_config(&config)?;
        let http_tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(gateway::tls::server_config(cert, key)?),
            _ => None,
        };
        let ingestor = Arc::new(Ingestor::new(&config)?);
        let queries = query_api(&config)?;
        let grpc = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("cannot listen on {} (gRPC)", config.grpc_addr))?;
        let http = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen on {} (HTTP)", config.http_addr))?;
        Ok(Self {
            config,
            ingestor,
            api_keys,
            rate_limiter,
            queries,
            grpc,
            http,
            grpc_tls,
            http_tls,
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

    /// Serves until `shutdown` completes, then drains and flushes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            config,
            ingestor,
            api_keys,
            rate_limiter,
            queries,
            grpc,
            http,
            grpc_tls,
            http_tls,
        } = self;
        let stop = CancellationToken::new();
        let readiness = Readiness::default();

        let (reporter, health_service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let watcher = tokio::spawn(health::watch(
            ingestor.clone(),
            config.registry.url.clone(),
            reporter,
            readiness.clone(),
            stop.clone(),
        ));
        // Both reflection protocols: grpcurl and many other tools still speak v1alpha.
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;
        let limits = &config.limits;
        // Ingest calls are charged per event by the handlers; queries per call.
        let service = InterceptedService::new(
            IngestServiceServer::new(
                IngestGrpc::new(
                    ingestor.clone(),
                    limits.max_in_flight_per_stream,
                    stop.clone(),
                )
                .with_rate_limit(rate_limiter.clone()),
            )
            .max_decoding_message_size(limits.max_message_bytes),
            api_keys.guard(rate_limiter.clone(), Charge::Nothing),
        );
        let query_service = InterceptedService::new(
            QueryServiceServer::new(QueryGrpc::new(queries.clone())),
            api_keys.guard(rate_limiter.clone(), Charge::PerCall),
        );
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = grpc_tls {
            server = server
                .tls_config(tls)
                .context("invalid TLS configuration")?;
        }
        let grpc_server = server
            .timeout(limits.request_timeout)
            .layer(
                tower::ServiceBuilder::new()
                    .load_shed()
                    .concurrency_limit(limits.max_concurrent_requests)
                    .into_inner(),
            )
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(service)
            .add_service(query_service)
            // No Nagle: acks are small writes that must not wait for the
            // peer's delayed ACK (40 ms on Linux).
            .serve_with_incoming_shutdown(
                TcpIncoming::from(grpc).with_nodelay(Some(true)),
                stop.clone().cancelled_owned(),
            );

        let router = gateway::router(GatewayState {
            ingestor: ingestor.clone(),
            readiness,
            api_keys,
            queries,
            max_body_bytes: limits.max_message_bytes,
            rate_limiter,
        });
        let app = gateway::cors::apply(router, &config.cors_allowed_origins)?
            .into_make_service_with_connect_info::<SocketAddr>();
        let http_stop = stop.clone();
        let http_server = async move {
            match http_tls {
                Some(tls) => {
                    // tap_io gives the listener axum's ConnectInfo<SocketAddr>.
                    let listener = gateway::tls::TlsListener::new(http, tls).tap_io(|_| {});
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

        let trigger = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: no new events accepted; finishing in-flight events");
            trigger.cancel();
        });
        let (grpc_result, http_result) = tokio::join!(grpc_server, http_server);
        grpc_result.context("gRPC server failed")?;
        http_result.context("HTTP server failed")?;
        let _ = watcher.await;
        ingestor
            .publisher()
            .flush(DRAIN_TIMEOUT)
            .await
            .context("cannot flush the producer")?;
        tracing::info!("ingest stopped; every acknowledged event is in Kafka");
        Ok(())
    }
}

/// Reflection over every service ingest serves, and the google.rpc error
/// detail types its statuses carry, so tools can decode them.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// The gRPC listener's TLS settings, when a certificate and key are configured.
fn tls_config(config: &IngestConfig) -> anyhow::Result<Option<tonic::transport::ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let read = |path: &std::path::PathBuf| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
    Ok(Some(
        tonic::transport::ServerTlsConfig::new().identity(identity),
    ))
}
