//! `tributary-ingest`. Not built yet (issue 4): exits with status 2 and says so.
use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("tributary-ingest is not built yet (issue 4); the local stack runs without it");
    ExitCode::from(2)
}
