//! `tributary-query`: config → telemetry → bind → serve the query API until SIGINT/SIGTERM.
use clap::Parser as _;
use tributary_common::{shutdown, telemetry};
use tributary_edge::Edge;
use tributary_query::{config::QueryConfig, service::QueryService};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = QueryConfig::parse();
    telemetry::run_service(&config.telemetry, "tributary-query", async {
        let edge = Edge::bind(&config.edge).await?;
        tracing::info!(grpc = %edge.grpc_addr(), http = %edge.http_addr(), "query API listening");
        let query = QueryService::new(&config.query)?;
        edge.run(
            vec![Box::new(query)],
            shutdown::cancel_on(shutdown::signal()),
        )
        .await
    })
    .await
}
