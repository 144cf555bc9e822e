//! `trib`, Tributary's command-line tool. Its subcommands arrive with the SDK
//! issue; today it only answers `--help` and `--version`.
use clap::Parser;

/// Tributary's command-line tool.
#[derive(Parser)]
#[command(name = "trib", version, about)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
    eprintln!("trib has no subcommands yet; see `trib --help`");
    std::process::exit(2);
}
