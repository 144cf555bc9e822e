//! `tributary-bench`: see the crate documentation and the README's
//! Performance section.
use clap::Parser as _;
use tributary_bench::config::BenchConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber_init();
    let config = BenchConfig::parse();
    let report = tributary_bench::run(&config).await?;
    let (json, md) = report.write(&config.out)?;
    println!("{}", report.markdown());
    eprintln!("[bench] wrote {} and {}", json.display(), md.display());
    Ok(())
}

fn tracing_subscriber_init() {
    let telemetry = tributary_common::config::TelemetryArgs {
        log_format: tributary_common::config::LogFormat::Text,
        log_filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        metrics_addr: None,
    };
    tributary_common::telemetry::init(&telemetry);
}
