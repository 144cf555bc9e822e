//! A service loop running in-process as a tokio task, for tests: stopped
//! gracefully through its cancellation token, or aborted as a SIGKILL would.
//! Its logs go to the test's captured output, which the test runner shows
//! when the test fails.
use std::future::Future;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running service loop; aborted when dropped.
pub struct RunningTask {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningTask {
    /// Spawns `run(stop)`, a loop that ends when `stop` is cancelled.
    pub fn spawn<F, Fut>(run: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        capture_logs();
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(stop.clone()));
        Self { stop, task }
    }

    /// Graceful stop: the loop finishes its work and returns.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        (&mut self.task).await?
    }

    /// Abrupt stop, as a SIGKILL would: the task is aborted mid-flight.
    pub async fn crash(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends this test process's logs (info and up, or as `RUST_LOG` says) to
/// the test's captured output. The first call installs the subscriber; later
/// ones, and a process that has one already, keep what is there.
pub fn capture_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}
