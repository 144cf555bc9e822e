//! `tributary-sink`: config → telemetry (span export flushed at exit) → run until SIGINT/SIGTERM.
use tributary_common::{metrics, shutdown, telemetry};
use tributary_sink::{config::SinkConfig, startup};

// glibc malloc was a quarter of ingest's CPU under load (perf, tributary-bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = SinkConfig::from_command_line();
    let telemetry = telemetry::init(&config.telemetry, "tributary-sink");
    let result = async {
        metrics::serve_configured(&config.telemetry).await?;
        startup::run(config, shutdown::signal()).await
    }
    .await;
    telemetry.shutdown().await;
    result
}
