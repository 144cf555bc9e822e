//! Readiness: each service behind the edge reports whether it can reach what
//! it needs (ingest: the broker and the registry; the query API: the
//! database) through a [`Check`]. The process is ready when every check is:
//! gRPC health's overall status `""` is SERVING, and `GET /readyz` answers
//! 204. Each check also sets its own gRPC service's status.
use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio_util::sync::CancellationToken;
use tonic_health::{ServingStatus, server::HealthReporter};

/// Every check of this process, and the gRPC health statuses they drive.
#[derive(Clone)]
pub struct Readiness {
    checks: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    reporter: HealthReporter,
}

impl Readiness {
    /// No checks yet, reporting to `reporter`.
    pub fn new(reporter: HealthReporter) -> Self {
        Self {
            checks: Arc::default(),
            reporter,
        }
    }

    /// A new check for the gRPC service `service` (e.g.
    /// `tributary.v1.IngestService`), not ready until it says so.
    pub fn check(&self, service: &'static str) -> Check {
        let ready = Arc::new(AtomicBool::new(false));
        self.checks
            .lock()
            .expect("readiness lock")
            .push(ready.clone());
        Check {
            service,
            ready,
            readiness: self.clone(),
        }
    }

    /// Whether every check is ready (and there is at least one).
    pub fn is_ready(&self) -> bool {
        let checks = self.checks.lock().expect("readiness lock");
        !checks.is_empty() && checks.iter().all(|c| c.load(Ordering::Relaxed))
    }
}

/// One service's readiness.
pub struct Check {
    service: &'static str,
    ready: Arc<AtomicBool>,
    readiness: Readiness,
}

impl Check {
    /// Records the service's state and publishes it (its own gRPC health
    /// status and the process's overall one).
    pub async fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
        let status = |ready| {
            if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            }
        };
        let reporter = &self.readiness.reporter;
        reporter
            .set_service_status(self.service, status(ready))
            .await;
        reporter
            .set_service_status("", status(self.readiness.is_ready()))
            .await;
    }
}

/// Probes a service's dependencies every `interval` until `stop`, reporting
/// each change to `check` (and logging it with the probe's reason); not
/// ready once stopped. `probe` answers `Err(reason)` when something the
/// service needs is unreachable.
pub async fn watch<P, F>(check: Check, interval: Duration, stop: CancellationToken, mut probe: P)
where
    P: FnMut() -> F,
    F: Future<Output = Result<(), String>>,
{
    let mut last = None;
    loop {
        let outcome = probe().await;
        let ready = outcome.is_ok() && !stop.is_cancelled();
        if last != Some(ready) {
            check.set(ready).await;
            match outcome {
                Ok(()) => tracing::info!(service = check.service, "ready: SERVING"),
                Err(reason) => {
                    tracing::warn!(service = check.service, %reason, "not ready: NOT_SERVING")
                }
            }
            last = Some(ready);
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stop.cancelled() => {
                check.set(false).await;
                return;
            }
        }
    }
}
