//! `trib`, Tributary's command-line tool: parse the arguments, run the command
//! (see the crate's modules), exit with its status.
use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    // Like other Unix tools, stop quietly when the reader of our output goes
    // away (`trib send - | head -1`) instead of failing to print.
    #[cfg(unix)]
    // SAFETY: resetting a signal's disposition to its default, before any
    // other thread could rely on it, is sound.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match tributary_cli::Cli::parse().run().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("trib: {error:#}");
            ExitCode::from(2)
        }
    }
}
