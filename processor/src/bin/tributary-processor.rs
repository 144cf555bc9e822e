//! `tributary-processor`. Not built yet (issue 5): exits with status 2 and says so.
use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("tributary-processor is not built yet (issue 5); the local stack runs without it");
    ExitCode::from(2)
}
