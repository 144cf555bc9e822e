//! `tributary-sink`: config → telemetry → run until SIGINT/SIGTERM.
use clap::Parser as _;
use tributary_common::{metrics, shutdown, telemetry};
use tributary_sink::{config::SinkConfig, startup};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = SinkConfig::parse();
    telemetry::init(&config.telemetry);
    metrics::serve_configured(&config.telemetry).await?;
    startup::run(config, shutdown::signal()).await
}
