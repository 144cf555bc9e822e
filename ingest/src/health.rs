//! Readiness: ingest is ready only while both the broker and the registry
//! answer, checked every few seconds, and reported through the edge's
//! readiness check (gRPC health and `GET /readyz`).
use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tributary_common::config::RegistryArgs;
use tributary_edge::readiness::{self, Check};
use tributary_proto::v1::ingest_service_server::IngestServiceServer;

use crate::{grpc::IngestGrpc, ingestor::Ingestor};

/// The gRPC service name ingest's readiness is reported under.
pub const INGEST_SERVICE: &str = <IngestServiceServer<IngestGrpc> as NamedService>::NAME;

/// How often the dependencies are checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// `GET /subjects` on the registry, with ingest's registry credentials and CA.
#[derive(Clone)]
pub struct RegistryProbe {
    client: reqwest::Client,
    url: String,
}

impl RegistryProbe {
    /// A probe of the registry `args` names.
    pub fn new(args: &RegistryArgs) -> anyhow::Result<Self> {
        Ok(Self {
            client: args.http_client(Duration::from_secs(1))?,
            url: format!("{}/subjects", args.base_url()?),
        })
    }
}

/// Checks the broker and the registry until `shutdown`, reporting to `check`.
pub async fn watch(
    ingestor: Arc<Ingestor>,
    registry: RegistryProbe,
    check: Check,
    shutdown: CancellationToken,
) {
    let RegistryProbe { client, url: probe } = registry;
    readiness::watch(check, CHECK_INTERVAL, shutdown, || async {
        let (broker, registry) = tokio::join!(
            ingestor
                .publisher()
                .broker_reachable(Duration::from_secs(1)),
            async {
                client
                    .get(&probe)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        );
        match (broker, registry) {
            (true, true) => Ok(()),
            (false, true) => Err("the broker is unreachable".to_string()),
            (true, false) => Err("the registry is unreachable".to_string()),
            (false, false) => Err("the broker and the registry are unreachable".to_string()),
        }
    })
    .await;
}
