//! `trib`, Tributary's command-line tool: parse the arguments, run the command
//! (see the crate's modules), exit with its status.
use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    match tributary_cli::Cli::parse().run().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("trib: {error:#}");
            ExitCode::from(2)
        }
    }
}
