//! Logging setup: `tracing` with JSON lines when not on a terminal, so logs
//! are machine-readable in production and readable by people at a terminal.
use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogFormat, TelemetryArgs};

/// Installs the global `tracing` subscriber. Calling it twice is harmless
/// (the second call does nothing), so tests can start several services in
/// one process.
pub fn init(args: &TelemetryArgs) {
    let filter = EnvFilter::try_new(&args.log_filter).unwrap_or_else(|e| {
        eprintln!(
            "invalid log filter `{}` ({e}); using `info`",
            args.log_filter
        );
        EnvFilter::new("info")
    });
    let json = match args.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    // An error only means a subscriber is already installed.
    let _ = result;
}
