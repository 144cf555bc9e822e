//! `tributary-processor`: config → telemetry → run until SIGINT/SIGTERM → final emit and commit.
use clap::Parser as _;
use tributary_common::{metrics, shutdown, telemetry};
use tributary_processor::{config::ProcessorConfig, startup};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ProcessorConfig::parse();
    telemetry::init(&config.telemetry);
    metrics::serve_configured(&config.telemetry).await?;
    startup::run(config, shutdown::signal()).await
}
