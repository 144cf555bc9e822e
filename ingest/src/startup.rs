//! Builds ingest (producer, schema cache, its gRPC service and JSON routes)
//! and runs it until shutdown: then it stops accepting, lets in-flight events
//! finish, flushes the producer and returns.
//!
//! [`IngestService`] mounts on any [`Edge`], alone (the `tributary-ingest`
//! binary) or beside the query API in one process (`tributary-server`).
use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tributary_edge::{Edge, EdgeService, auth::Charge};
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
    registry_probe: health::RegistryProbe,
}

impl IngestService {
    /// Creates the producer and the schema cache.
    pub fn new(config: IngestConfig) -> anyhow::Result<Self> {
        let ingestor = Arc::new(Ingestor::new(&config)?);
        let registry_probe = health::RegistryProbe::new(&config.registry)?;
        Ok(Self {
            config,
            ingestor,
            registry_probe,
        })
    }
}

impl EdgeService for IngestService {
    /// Adds the gRPC `IngestService`, the JSON event routes, their OpenAPI
    /// fragment and a readiness check (broker and registry, watched until
    /// `stop`) to `edge`.
    fn mount(&self, edge: &mut Edge, stop: &CancellationToken) {
        let limits = &self.config.limits;
        let access = edge.access().clone();
        tokio::spawn(health::watch(
            self.ingestor.clone(),
            self.registry_probe.clone(),
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
        edge.document(<gateway::openapi::EventRoutes as utoipa::OpenApi>::openapi());
    }

    /// Flushes the producer: every event answered is in Kafka.
    fn drain(self: Box<Self>) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> {
        Box::pin(async move {
            self.ingestor
                .publisher()
                .flush(DRAIN_TIMEOUT)
                .await
                .context("cannot flush the producer")?;
            tracing::info!("ingest stopped; every acknowledged event is in Kafka");
            Ok(())
        })
    }
}
