//! `tributary-query`: config → telemetry → bind → serve the query API until SIGINT/SIGTERM.
use clap::Parser as _;
use tributary_common::{metrics, shutdown, telemetry};
use tributary_edge::Edge;
use tributary_query::{config::QueryConfig, service::QueryService};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = QueryConfig::parse();
    let telemetry = telemetry::init(&config.telemetry, "tributary-query");
    let result = async {
        metrics::serve_configured(&config.telemetry).await?;
        let edge = Edge::bind(&config.edge).await?;
        tracing::info!(grpc = %edge.grpc_addr(), http = %edge.http_addr(), "query API listening");
        let query = QueryService::new(&config.query)?;
        edge.run(
            vec![Box::new(query)],
            shutdown::cancel_on(shutdown::signal()),
        )
        .await
    }
    .await;
    telemetry.shutdown().await;
    result
}
