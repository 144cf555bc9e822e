//! Builds ingest (producer, schema cache, its gRPC service and JSON routes)
//! and runs it until shutdown: then it stops accepting, lets in-flight events
//! finish, flushes the producer and returns.
//!
//! [`IngestService`] is the part that mounts on any [`Edge`], alone
//! ([`Ingest`], the `tributary-ingest` binary) or beside the query API in one
//! process (`tributary-server`).
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tributary_common::shutdown;
use tributary_edge::{Edge, auth::Charge};
use tributary_proto::v1::ingest_service_server::IngestServiceServer;

use crate::{
    config::IngestConfig,
    gateway::{self, GatewayState},
    grpc::IngestGrpc,
    health,
    ingestor::Ingestor,
};

/// How long in-flight events get to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Ingest's event path, ready to mount on an [`Edge`].
pub struct IngestService {
    config: IngestConfig,
    ingestor: Arc<Ingestor>,
}

impl IngestService {
    /// Creates the producer and the schema cache.
    pub fn new(config: IngestConfig) -> anyhow::Result<Self> {
        let ingestor = Arc::new(Ingestor::new(&config)?);
        Ok(Self { config, ingestor })
    }

    /// Adds the gRPC `IngestService`, the JSON event routes, their OpenAPI
    /// fragment and a readiness check (broker and registry, watched until
    /// `stop`) to `edge`.
    pub fn mount(&self, edge: &mut Edge, stop: &CancellationToken) {
        let limits = &self.config.limits;
        let access = edge.access().clone();
        tokio::spawn(health::watch(
            self.ingestor.clone(),
            self.config.registry.url.clone(),
            edge.readiness_check(health::INGEST_SERVICE),
            stop.clone(),
        ));
        // Ingest calls are charged per event by the handlers.
        let service = InterceptedService::new(
            IngestServiceServer::new(
                IngestGrpc::new(
                    self.ingestor.clone(),
                    limits.max_in_flight_per_stream,
                    stop.clone(),
                )
                .with_rate_limit(access.rate_limiter().cloned()),
            )
            .max_decoding_message_size(limits.max_message_bytes),
            access.guard(Charge::Nothing),
        );
        edge.grpc().add_service(service);
        edge.http(gateway::router(GatewayState {
            ingestor: self.ingestor.clone(),
            access,
            max_body_bytes: limits.max_message_bytes,
        }));
        edge.document(gateway::openapi::document());
    }

    /// Flushes the producer: every event answered is in Kafka.
    pub async fn drain(self) -> anyhow::Result<()> {
        self.ingestor
            .publisher()
            .flush(DRAIN_TIMEOUT)
            .await
            .context("cannot flush the producer")?;
        tracing::info!("ingest stopped; every acknowledged event is in Kafka");
        Ok(())
    }
}

/// Ingest alone, bound to its addresses and ready to serve.
pub struct Ingest {
    edge: Edge,
    service: IngestService,
}

impl Ingest {
    /// Creates the producer and binds both listeners.
    pub async fn build(config: IngestConfig) -> anyhow::Result<Self> {
        let edge = Edge::bind(&config.edge).await?;
        let service = IngestService::new(config)?;
        Ok(Self { edge, service })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.edge.grpc_addr()
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.edge.http_addr()
    }

    /// Serves until `shutdown` completes, then drains and flushes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self { mut edge, service } = self;
        let stop = shutdown::cancel_on(shutdown);
        service.mount(&mut edge, &stop);
        edge.serve(stop).await?;
        service.drain().await
    }
}
