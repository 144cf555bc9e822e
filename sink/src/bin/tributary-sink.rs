//! `tributary-sink`. Not built yet (issue 6): exits with status 2 and says so.
use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("tributary-sink is not built yet (issue 6); the local stack runs without it");
    ExitCode::from(2)
}
