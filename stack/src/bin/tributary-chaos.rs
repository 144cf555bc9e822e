//! `tributary-chaos` (`dev/chaos`): crashes the pipeline on a seeded
//! schedule under load and exits 0 only when Postgres holds exactly the
//! aggregates of the acknowledged events.
use clap::Parser as _;
use tributary_stack::chaos::{self, ChaosArgs};

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let args = ChaosArgs::parse();
    Ok(if chaos::run(args).await? {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
