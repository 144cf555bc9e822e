//! `tributary-sink`: config → telemetry (span export flushed at exit) → run until SIGINT/SIGTERM.
use tributary_common::{shutdown, telemetry};
use tributary_sink::{config::SinkConfig, startup};

// glibc malloc was a quarter of ingest's CPU under load (perf, tributary-bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = SinkConfig::from_command_line();
    let telemetry = config.telemetry.clone();
    telemetry::run_service(
        &telemetry,
        "tributary-sink",
        startup::run(config, shutdown::signal()),
    )
    .await
}
