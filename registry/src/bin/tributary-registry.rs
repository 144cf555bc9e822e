//! `tributary-registry`: config → telemetry (span export flushed at exit) → build → serve until SIGINT/SIGTERM.
use clap::Parser as _;
use tributary_common::{metrics, shutdown, telemetry};
use tributary_registry::{config::RegistryConfig, startup::Registry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = RegistryConfig::parse();
    let telemetry = telemetry::init(&config.telemetry, "tributary-registry");
    let result = async {
        metrics::serve_configured(&config.telemetry).await?;
        let registry = Registry::build(&config).await?;
        tracing::info!(addr = %registry.local_addr(), "registry listening");
        registry.serve(shutdown::signal()).await?;
        anyhow::Ok(())
    }
    .await;
    telemetry.shutdown().await;
    result
}
