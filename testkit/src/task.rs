//! A service loop running in-process as a tokio task, for tests: stopped
//! gracefully through its cancellation token, or aborted as a SIGKILL would.
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
