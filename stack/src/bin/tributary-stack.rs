//! `tributary-stack`: the README's run command. Parses its flags and runs the
//! local stack until Ctrl-C.
use clap::Parser as _;
use tributary_common::{metrics, telemetry};
use tributary_stack::launcher::{self, LauncherConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = LauncherConfig::parse();
    let telemetry = telemetry::init(&config.telemetry, "tributary-stack");
    let result = async {
        metrics::serve_configured(&config.telemetry).await?;
        launcher::run(config).await
    }
    .await;
    telemetry.shutdown().await;
    result
}
