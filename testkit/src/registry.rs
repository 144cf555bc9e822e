//! Tributary's registry running in-process on port 0, for tests.
use std::net::SocketAddr;

use tokio::{sync::oneshot, task::JoinHandle};
use tributary_registry::{config::RegistryConfig, startup::Registry};

/// A registry served on a free loopback port until dropped.
pub struct RunningRegistry {
    addr: SocketAddr,
    tls: bool,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningRegistry {
    /// Builds the registry over `database_url` (applying its migrations) and
    /// serves it in a background task.
    pub async fn start(database_url: &str) -> anyhow::Result<Self> {
        Self::start_with(RegistryConfig::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url,
        ))
        .await
    }

    /// Builds the registry as `config` says (TLS, users…) and serves it in
    /// a background task.
    pub async fn start_with(config: RegistryConfig) -> anyhow::Result<Self> {
        let tls = config.tls.identity().is_some();
        let registry = Registry::build(&config).await?;
        let addr = registry.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(registry.serve(async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            tls,
            stop: Some(stop),
            task,
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (`https://localhost:…`
    /// with TLS, the name the test certificates are made for).
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// The address the registry listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the registry and returns once its listener is closed (after
    /// a graceful shutdown of up to 5 s, then by abort), so a test that
    /// needs the registry gone does not race a still-serving task.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(std::time::Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
            let _ = (&mut self.task).await;
        }
    }
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}
