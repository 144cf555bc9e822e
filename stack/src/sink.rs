//! The sink running in-process against a [`TestStack`], for tests.
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tributary_sink::{config::SinkConfig, startup};

use crate::TestStack;

/// A sink running until [`RunningSink::shutdown`] (graceful) or
/// [`RunningSink::crash`] / drop (abrupt).
pub struct RunningSink {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningSink {
    /// Starts a sink against `stack`'s broker, registry and database
    /// (migrating it), configured by `configure`.
    pub async fn start(
        stack: &TestStack,
        configure: impl FnOnce(&mut SinkConfig),
    ) -> anyhow::Result<Self> {
        let mut config =
            SinkConfig::local(stack.kafka(), stack.registry_args(), stack.database.url());
        configure(&mut config);
        let pipeline = startup::build(&config).await?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(pipeline.run(stop.clone()));
        Ok(Self { stop, task })
    }

    /// Graceful stop.
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

impl Drop for RunningSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
