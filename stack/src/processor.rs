//! The processor running in-process against a [`TestStack`], for tests.
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tributary_processor::{config::ProcessorConfig, startup};

use crate::TestStack;

/// A processor running until [`RunningProcessor::shutdown`] (graceful) or
/// [`RunningProcessor::crash`] / drop (abrupt: no final emit, no commit).
pub struct RunningProcessor {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningProcessor {
    /// Starts a processor against `stack`, configured by `configure`.
    pub async fn start(
        stack: &TestStack,
        configure: impl FnOnce(&mut ProcessorConfig),
    ) -> anyhow::Result<Self> {
        let mut config = ProcessorConfig::local(stack.kafka(), stack.registry_args());
        configure(&mut config);
        let pipeline = startup::build(&config).await?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(pipeline.run(stop.clone()));
        Ok(Self { stop, task })
    }

    /// Graceful stop: emits and commits, then returns.
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

impl Drop for RunningProcessor {
    fn drop(&mut self) {
        self.task.abort();
    }
}
