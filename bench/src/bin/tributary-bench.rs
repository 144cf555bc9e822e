//! `tributary-bench`: see the crate documentation and the README's
//! Performance section.
use clap::Parser as _;
use tributary_bench::config::BenchConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = telemetry();
    let config = BenchConfig::parse();
    let report = tributary_bench::run(&config).await?;
    let (json, md) = report.write(&config.out)?;
    println!("{}", report.markdown());
    eprintln!("[bench] wrote {} and {}", json.display(), md.display());
    Ok(())
}

/// Warnings and errors as text on stderr; nothing is exported.
fn telemetry() -> tributary_common::telemetry::Telemetry {
    let telemetry = tributary_common::config::TelemetryArgs {
        log_format: tributary_common::config::LogFormat::Text,
        log_filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        metrics_addr: None,
    };
    tributary_common::telemetry::init(&telemetry, "tributary-bench")
}
