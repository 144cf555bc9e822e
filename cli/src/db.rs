//! `trib db migrate`: applies the sink's migrations (the aggregates and
//! offsets tables) to a database.
use std::process::ExitCode;

use clap::Subcommand;
use sqlx::postgres::PgPoolOptions;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Applies the sink's migrations (the aggregates and offsets tables).
    Migrate {
        /// Postgres connection URL.
        #[arg(
            long = "database-url",
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/tributary"
        )]
        database_url: String,
    },
}

pub async fn run(command: DbCommand) -> anyhow::Result<ExitCode> {
    match command {
        DbCommand::Migrate { database_url } => {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect(&database_url)
                .await?;
            tributary_store::migrate(&pool).await?;
            println!("migrated {database_url}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
