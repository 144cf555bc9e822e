//! `tributary-processor`: config → telemetry (span export flushed at exit) → run until SIGINT/SIGTERM → final emit and commit.
use tributary_common::{shutdown, telemetry};
use tributary_processor::{config::ProcessorConfig, startup};

// glibc malloc was a quarter of ingest's CPU under load (perf, tributary-bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ProcessorConfig::from_command_line();
    let telemetry = config.telemetry.clone();
    telemetry::run_service(
        &telemetry,
        "tributary-processor",
        startup::run(config, shutdown::signal()),
    )
    .await
}
