//! Ingest running in-process on free ports against a [`TestStack`], for tests.
use std::net::SocketAddr;

use tokio::{sync::oneshot, task::JoinHandle};
use tributary_ingest::{config::IngestConfig, startup::Ingest};

use crate::TestStack;

/// Ingest served until dropped or [`RunningIngest::shutdown`].
pub struct RunningIngest {
    grpc: SocketAddr,
    http: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningIngest {
    /// Starts ingest against `stack` with the default configuration, changed
    /// by `configure` (e.g. to set API keys).
    pub async fn start(
        stack: &TestStack,
        configure: impl FnOnce(&mut IngestConfig),
    ) -> anyhow::Result<Self> {
        let mut config = IngestConfig::local(stack.kafka(), stack.registry_args());
        configure(&mut config);
        let ingest = Ingest::build(config).await?;
        let (grpc, http) = (ingest.grpc_addr(), ingest.http_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ingest.serve(async {
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

    /// The JSON gateway's base URL.
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
