//! Ingest and the query API running in-process on free ports against a
//! [`TestStack`], composed as `tributary-server` composes them, for tests.
use std::{net::SocketAddr, time::Duration};

use tokio::{sync::oneshot, task::JoinHandle};
use tributary_ingest::config::IngestConfig;
use tributary_query::config::QueryArgs;
use tributary_server::{Server, ServerConfig};

use crate::TestStack;

/// Ingest (with the query API over the stack's database) served until
/// dropped or [`RunningIngest::shutdown`].
pub struct RunningIngest {
    grpc: SocketAddr,
    http: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningIngest {
    /// Starts ingest and the query API against `stack` with the default
    /// configuration (a one-minute window), changed by `configure` (e.g. to
    /// set API keys).
    pub async fn start(
        stack: &TestStack,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> anyhow::Result<Self> {
        let mut config = ServerConfig {
            ingest: IngestConfig::local(stack.kafka(), stack.registry_args()),
            query: QueryArgs {
                database_url: stack.database.url().to_string(),
                window: Duration::from_secs(60),
            },
        };
        configure(&mut config);
        let server = Server::build(config).await?;
        let (grpc, http) = (server.grpc_addr(), server.http_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        Ok(Self {
            grpc,
            http,
            stop: Some(stop),
            task,
        })
    }

    /// The gRPC endpoint, e.g. `http://127.0.0.1:40123`.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// The gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    /// The HTTP API's base URL.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Graceful shutdown, as on SIGTERM: waits until ingest has drained.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await?
    }
}

impl Drop for RunningIngest {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `tributary-server` (ingest and the query API, as the local stack runs
/// them) as a command for its own process against `stack`, listening on the
/// fixed ports `grpc` and `http`, so a test can SIGKILL it and start it
/// again on the same address. Builds the service binaries first (once per
/// test run); logs are JSON at `warn`.
pub fn server_process(
    stack: &TestStack,
    grpc: u16,
    http: u16,
) -> anyhow::Result<tokio::process::Command> {
    let binary = crate::binaries::build_service_binaries()?.join("tributary-server");
    let mut command = tokio::process::Command::new(binary);
    command
        .env("TRIBUTARY_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .env("TRIBUTARY_HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env("TRIBUTARY_KAFKA_BROKERS", stack.broker.brokers())
        .env("TRIBUTARY_REGISTRY_URL", stack.registry.url())
        .env("DATABASE_URL", stack.database.url())
        .env("TRIBUTARY_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn");
    Ok(command)
}
