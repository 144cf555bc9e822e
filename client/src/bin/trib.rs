//! `trib`, Tributary's command-line tool: parse the arguments, run the command
//! (see `client/src/cli/`), exit with its status.
#[path = "../cli/mod.rs"]
mod cli;

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    match cli::Cli::parse().run().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("trib: {error:#}");
            ExitCode::from(2)
        }
    }
}
