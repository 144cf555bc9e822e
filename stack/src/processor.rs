//! The processor running in-process against a [`TestStack`], for tests.
use tributary_processor::{config::ProcessorConfig, startup};

use crate::{TestStack, task::RunningTask};

/// Starts a processor against `stack`, configured by `configure`.
pub async fn start(
    stack: &TestStack,
    configure: impl FnOnce(&mut ProcessorConfig),
) -> anyhow::Result<RunningTask> {
    let mut config = ProcessorConfig::local(stack.kafka(), stack.registry_args());
    configure(&mut config);
    let pipeline = startup::build(&config).await?;
    Ok(RunningTask::spawn(|stop| pipeline.run(stop)))
}

/// Settings that close windows within seconds of the last event (2 s idle
/// advance, 200 ms emits), so tests see final aggregates quickly.
pub fn quick_windows(config: &mut ProcessorConfig) {
    config.idle_advance = std::time::Duration::from_secs(2);
    config.emit_interval = std::time::Duration::from_millis(200);
}
