//! `trib`, Tributary's command-line tool: the commands, one module each;
//! `main.rs` only parses and runs them.
//! A command returns its exit status: 0 when everything went through, 1 when
//! something was refused (a rejected event, an incompatible schema), and an
//! error (exit 2) when it could not do its work at all.
mod db;
mod dlq;
mod poll;
mod query;
mod schema;
mod send;
mod summary;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tributary_client::{Client, ClientBuilder};

/// Tributary's command-line tool.
#[derive(Parser)]
#[command(name = "trib", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Streams events from a JSONL file (or stdin) to ingest.
    Send(send::SendArgs),
    /// Shows aggregates as a table or JSON.
    Query(query::QueryArgs),
    /// Schema Registry workflow: register, check, list, show, delete, config.
    Schema(schema::SchemaArgs),
    /// Polls an HTTP JSON API and streams what it returns as events.
    Poll(poll::PollArgs),
    /// The dead-letter topic: list, show and replay what was dropped.
    Dlq(dlq::DlqArgs),
    /// Database administration.
    Db {
        #[command(subcommand)]
        command: db::DbCommand,
    },
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Send(args) => send::run(args).await,
            Command::Query(args) => query::run(args).await,
            Command::Schema(args) => schema::run(args).await,
            Command::Poll(args) => poll::run(args).await,
            Command::Dlq(args) => dlq::run(args).await,
            Command::Db { command } => db::run(command).await,
        }
    }
}

/// Where ingest is and how to authenticate, shared by the commands that call it.
#[derive(Args, Clone)]
struct IngestArgs {
    /// Ingest's gRPC endpoint.
    #[arg(long, env = "TRIBUTARY_URL", default_value = tributary_client::DEFAULT_URL)]
    url: String,
    /// Sent as `authorization: Bearer <key>`.
    #[arg(long = "api-key", env = "TRIBUTARY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// A PEM CA certificate to trust for an https:// URL, besides the system's roots.
    #[arg(long = "ca-cert", env = "TRIBUTARY_CA_CERT")]
    ca_cert: Option<std::path::PathBuf>,
}

impl IngestArgs {
    fn client(&self) -> anyhow::Result<Client> {
        let mut builder = ClientBuilder::new(&self.url);
        if let Some(key) = &self.api_key {
            builder = builder.api_key(key);
        }
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            builder = builder.tls_ca_certificate(pem);
        }
        Ok(builder.build()?)
    }
}
