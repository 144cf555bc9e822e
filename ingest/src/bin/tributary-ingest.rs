//! `tributary-ingest`: config → telemetry (span export flushed at exit) → build → serve until SIGINT/SIGTERM → drain.
use clap::Parser as _;
use tributary_common::{metrics, shutdown, telemetry};
use tributary_ingest::{config::IngestConfig, startup::Ingest};

// glibc malloc was a quarter of ingest's CPU under load (perf, tributary-bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = IngestConfig::parse();
    let telemetry = telemetry::init(&config.telemetry, "tributary-ingest");
    let result = async {
        metrics::serve_configured(&config.telemetry).await?;
        let ingest = Ingest::build(config).await?;
        tracing::info!(grpc = %ingest.grpc_addr(), http = %ingest.http_addr(), "ingest listening");
        ingest.serve(shutdown::signal()).await
    }
    .await;
    telemetry.shutdown().await;
    result
}
