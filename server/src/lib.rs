//! `tributary-server`: ingest and the query API in one process, at one gRPC
//! and one HTTP address, as the local stack runs them. The write path
//! (`tributary-ingest`) and the read path (`tributary-query`) do not depend
//! on each other; this crate composes them on one edge. Deployments that
//! scale them apart run `tributary-ingest` and `tributary-query` behind a
//! proxy that routes by gRPC service (docker-compose's Envoy).
use std::{future::Future, net::SocketAddr};

use tributary_common::shutdown;
use tributary_edge::Edge;
use tributary_ingest::{config::IngestConfig, startup::IngestService};
use tributary_query::{config::QueryArgs, service::QueryService};

/// Configuration of `tributary-server`: ingest's flags and the query API's.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tributary-server",
    version,
    about = "Tributary ingest and query API in one process: events in over gRPC and HTTP, aggregates out"
)]
pub struct ServerConfig {
    /// Ingest (and the listeners both share).
    #[command(flatten)]
    pub ingest: IngestConfig,

    /// The query API.
    #[command(flatten)]
    pub query: QueryArgs,
}

impl ServerConfig {
    /// Parses the command line; `--help` shows ingest's topic flag only.
    pub fn from_command_line() -> Self {
        IngestConfig::TOPICS.parse()
    }
}

/// Ingest and the query API, bound and ready to serve.
pub struct Server {
    edge: Edge,
    ingest: IngestService,
    query: QueryService,
}

impl Server {
    /// Creates the producer and the database pool and binds both listeners.
    pub async fn build(config: ServerConfig) -> anyhow::Result<Self> {
        let edge = Edge::bind(&config.ingest.edge).await?;
        let query = QueryService::new(&config.query)?;
        let ingest = IngestService::new(config.ingest)?;
        Ok(Self {
            edge,
            ingest,
            query,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.edge.grpc_addr()
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.edge.http_addr()
    }

    /// Serves until `shutdown` completes, then drains ingest.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            edge,
            ingest,
            query,
        } = self;
        edge.run(
            vec![Box::new(ingest), Box::new(query)],
            shutdown::cancel_on(shutdown),
        )
        .await
    }
}
