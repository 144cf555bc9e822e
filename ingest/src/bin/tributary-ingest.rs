//! `tributary-ingest`: config → telemetry (span export flushed at exit) → bind → serve until SIGINT/SIGTERM → drain.
use tributary_common::{shutdown, telemetry};
use tributary_edge::Edge;
use tributary_ingest::{config::IngestConfig, startup::IngestService};

// glibc malloc was a quarter of ingest's CPU under load (perf, tributary-bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = IngestConfig::from_command_line();
    let telemetry = config.telemetry.clone();
    telemetry::run_service(&telemetry, "tributary-ingest", async {
        let edge = Edge::bind(&config.edge).await?;
        tracing::info!(grpc = %edge.grpc_addr(), http = %edge.http_addr(), "ingest listening");
        let ingest = IngestService::new(config)?;
        edge.run(
            vec![Box::new(ingest)],
            shutdown::cancel_on(shutdown::signal()),
        )
        .await
    })
    .await
}
