//! Readiness: ingest is SERVING only while both the broker and the registry
//! answer, checked every few seconds, and reported through `tonic-health`
//! (and `GET /readyz` on the gateway).
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic_health::{ServingStatus, server::HealthReporter};
use tributary_common::proto::v1::ingest_service_server::IngestServiceServer;

use crate::{grpc::IngestGrpc, ingestor::Ingestor};

const INGEST_SERVICE: &str = <IngestServiceServer<IngestGrpc> as NamedService>::NAME;

/// How often the dependencies are checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The last readiness verdict, shared with the HTTP gateway.
#[derive(Clone, Default)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
}

impl Readiness {
    /// Whether the broker and the registry answered the last check.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// Checks the broker and the registry until `shutdown`, updating `reporter`
/// and `readiness`.
pub async fn watch(
    ingestor: Arc<Ingestor>,
    registry_url: String,
    reporter: HealthReporter,
    readiness: Readiness,
    shutdown: CancellationToken,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("HTTP client");
    let probe = format!("{}/subjects", registry_url.trim_end_matches('/'));
    let mut last = None;
    loop {
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
        let ready = broker && registry && !shutdown.is_cancelled();
        readiness.ready.store(ready, Ordering::Relaxed);
        if last != Some(ready) {
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter.set_service_status("", status).await;
            reporter.set_service_status(INGEST_SERVICE, status).await;
            if ready {
                tracing::info!("broker and registry reachable: SERVING");
            } else {
                tracing::warn!(broker, registry, "dependency unreachable: NOT_SERVING");
            }
            last = Some(ready);
        }
        tokio::select! {
            () = tokio::time::sleep(CHECK_INTERVAL) => {}
            () = shutdown.cancelled() => {
                readiness.ready.store(false, Ordering::Relaxed);
                reporter.set_service_status("", ServingStatus::NotServing).await;
                reporter.set_service_status(INGEST_SERVICE, ServingStatus::NotServing).await;
                return;
            }
        }
    }
}
