//! Logging and tracing setup: `tracing` with JSON lines when not on a
//! terminal, so logs are machine-readable in production and readable by
//! people at a terminal; and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, a
//! `tracing-opentelemetry` layer that exports spans over OTLP/gRPC, so one
//! trace follows an event through ingest, Kafka, the processor and the sink
//! (see [`crate::trace_context`]).
use std::{
    io::IsTerminal,
    sync::atomic::{AtomicBool, Ordering},
};

use opentelemetry::{global, trace::TracerProvider as _};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogFormat, TelemetryArgs};

/// The variable that turns span export on (the OTel SDK's own name; it also
/// reads `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`,
/// `OTEL_EXPORTER_OTLP_TIMEOUT` and the `OTEL_BSP_*` batch settings).
pub const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Whether spans go to an OpenTelemetry tracer in this process; hot paths
/// skip per-record trace work when they do not.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether the installed subscriber records spans into OpenTelemetry.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Keeps the tracer provider of [`init`]; [`Telemetry::shutdown`] (or
/// dropping it) exports the spans still buffered. Keep it alive until the
/// service has drained.
#[must_use = "dropping the guard stops span export; keep it until the service exits"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered and stops the exporter (off the
    /// async workers: the export waits for the collector).
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            EXPORTING.store(false, Ordering::Relaxed);
            let result = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = result {
                eprintln!("span export did not shut down cleanly: {e}");
            }
        }
    }
}

impl Drop for Telemetry {
    /// The same as [`Telemetry::shutdown`] when that was not called (e.g. on
    /// an early error return).
    fn drop(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        EXPORTING.store(false, Ordering::Relaxed);
        let stop = move || provider.shutdown();
        let result = match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(stop)
            }
            _ => stop(),
        };
        if let Err(e) = result {
            eprintln!("span export did not shut down cleanly: {e}");
        }
    }
}

/// Installs the global `tracing` subscriber for `service` (the OTel
/// `service.name`, unless `OTEL_SERVICE_NAME` is set), exporting spans over
/// OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Call it inside the Tokio
/// runtime (the gRPC exporter's channel lives there). Calling it twice is
/// harmless (the second call installs nothing), so tests can start several
/// services in one process.
pub fn init(args: &TelemetryArgs, service: &str) -> Telemetry {
    let endpoint = std::env::var(OTLP_ENDPOINT_VAR)
        .ok()
        .filter(|e| !e.trim().is_empty());
    let provider = endpoint.and_then(|endpoint| match otlp_provider(&endpoint, service) {
        Ok(provider) => Some(provider),
        Err(e) => {
            eprintln!("cannot export spans to `{endpoint}` ({e}); tracing stays local");
            None
        }
    });
    install(args, provider)
}

/// A service's `main` around `run`: logging and span export for `service`
/// (buffered spans flushed at exit, after a failure too), the Prometheus
/// endpoint when `--metrics-addr` is set, then `run` to its end. Every
/// service binary starts this way.
pub async fn run_service(
    args: &TelemetryArgs,
    service: &str,
    run: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let telemetry = init(args, service);
    let result = async {
        crate::metrics::serve_configured(args).await?;
        run.await
    }
    .await;
    telemetry.shutdown().await;
    result
}

/// Like [`init`], with spans going to `provider` (e.g. one with the SDK's
/// in-memory exporter, for tests). When a subscriber is installed already,
/// nothing changes and the returned guard holds nothing.
pub fn init_with_tracer_provider(args: &TelemetryArgs, provider: SdkTracerProvider) -> Telemetry {
    install(args, Some(provider))
}

/// A tracer provider exporting to the OTLP/gRPC collector at `endpoint`
/// (e.g. `http://otel-collector:4317`) in batches, as `service` (unless
/// `OTEL_SERVICE_NAME` is set).
pub fn otlp_provider(endpoint: &str, service: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none_or(|name| name.is_empty()) {
        resource = resource.with_service_name(service.to_string());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

fn install(args: &TelemetryArgs, provider: Option<SdkTracerProvider>) -> Telemetry {
    let filter = EnvFilter::try_new(&args.log_filter).unwrap_or_else(|e| {
        eprintln!(
            "invalid log filter `{}` ({e}); using `info`",
            args.log_filter
        );
        EnvFilter::new("info")
    });
    let json = match args.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("tributary")));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    // An error only means a subscriber is installed already: this provider
    // would never see a span.
    if result.is_err() {
        if let Some(provider) = provider {
            let _ = provider.shutdown();
        }
        return Telemetry { provider: None };
    }
    global::set_text_map_propagator(TraceContextPropagator::new());
    if let Some(provider) = &provider {
        global::set_tracer_provider(provider.clone());
        EXPORTING.store(true, Ordering::Relaxed);
    }
    Telemetry { provider }
}
