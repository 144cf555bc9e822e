//! `tributary-server`: config → telemetry → build → serve ingest and the query API until SIGINT/SIGTERM → drain.
use tributary_common::{metrics, shutdown, telemetry};
use tributary_server::{Server, ServerConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ServerConfig::from_command_line();
    let telemetry = telemetry::init(&config.ingest.telemetry, "tributary-server");
    let result = async {
        metrics::serve_configured(&config.ingest.telemetry).await?;
        let server = Server::build(config).await?;
        tracing::info!(grpc = %server.grpc_addr(), http = %server.http_addr(), "ingest and query API listening");
        server.serve(shutdown::signal()).await
    }
    .await;
    telemetry.shutdown().await;
    result
}
