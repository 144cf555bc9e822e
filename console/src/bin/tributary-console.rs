//! `tributary-console`: config → telemetry → bind → serve the console until SIGINT/SIGTERM.
use tributary_common::{shutdown, telemetry};
use tributary_console::{
    Console,
    config::{ConsoleConfig, TOPICS},
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: ConsoleConfig = TOPICS.parse();
    telemetry::run_service(&config.telemetry, "tributary-console", async {
        let console = Console::bind(&config.console, &config.kafka, &config.registry).await?;
        tracing::info!(
            url = %console.url(),
            addr = %console.local_addr(),
            services = config.console.services.len(),
            "console listening"
        );
        console.serve(shutdown::cancel_on(shutdown::signal())).await
    })
    .await
}
