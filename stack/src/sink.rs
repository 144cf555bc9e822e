//! The sink running in-process against a [`TestStack`], for tests.
use tributary_sink::{config::SinkConfig, startup};

use crate::{TestStack, task::RunningTask};

/// Starts a sink against `stack`'s broker, registry and database (migrating
/// it), configured by `configure`.
pub async fn start(
    stack: &TestStack,
    configure: impl FnOnce(&mut SinkConfig),
) -> anyhow::Result<RunningTask> {
    let mut config = SinkConfig::local(stack.kafka(), stack.registry_args(), stack.database.url());
    configure(&mut config);
    let pipeline = startup::build(&config).await?;
    Ok(RunningTask::spawn(|stop| pipeline.run(stop)))
}
