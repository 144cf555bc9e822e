//! `tributary-server`: config → telemetry → build → serve ingest and the query API until SIGINT/SIGTERM → drain.
use tributary_common::{shutdown, telemetry};
use tributary_server::{Server, ServerConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ServerConfig::from_command_line();
    let telemetry = config.ingest.telemetry.clone();
    telemetry::run_service(&telemetry, "tributary-server", async {
        let server = Server::build(config).await?;
        tracing::info!(grpc = %server.grpc_addr(), http = %server.http_addr(), "ingest and query API listening");
        server.serve(shutdown::signal()).await
    })
    .await
}
