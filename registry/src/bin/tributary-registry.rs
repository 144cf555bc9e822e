//! `tributary-registry`: config → telemetry → build → serve until SIGINT/SIGTERM.
use clap::Parser as _;
use tributary_common::{metrics, shutdown, telemetry};
use tributary_registry::{config::RegistryConfig, startup};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = RegistryConfig::parse();
    telemetry::init(&config.telemetry);
    metrics::serve_configured(&config.telemetry).await?;
    startup::run(&config, shutdown::signal()).await
}
