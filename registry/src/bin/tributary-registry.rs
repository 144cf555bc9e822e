//! `tributary-registry`: config → telemetry (span export flushed at exit) → build → serve until SIGINT/SIGTERM.
use clap::Parser as _;
use tributary_common::{shutdown, telemetry};
use tributary_registry::{
    access,
    config::{Cli, Command},
    startup,
};

// glibc malloc was a quarter of ingest's CPU under load (perf, tributary-bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::HashPassword) = cli.command {
        return hash_password();
    }
    let config = cli.serve;
    telemetry::run_service(
        &config.telemetry,
        "tributary-registry",
        startup::run(&config, shutdown::signal()),
    )
    .await
}

/// `tributary-registry hash-password`: one line of stdin → its PHC hash on stdout.
fn hash_password() -> anyhow::Result<()> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if std::io::stdin().is_terminal() {
        eprint!("password (echoed): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "no password on stdin");
    println!("{}", access::hash_password(password)?);
    Ok(())
}
