//! `trib`, Tributary's command-line tool. Today: `trib db migrate`; the
//! event, query and schema commands arrive with the SDK issue.
use clap::{Parser, Subcommand};
use sqlx::postgres::PgPoolOptions;

/// Tributary's command-line tool.
#[derive(Parser)]
#[command(name = "trib", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Database administration.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Subcommand)]
enum DbCommand {
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Db {
            command: DbCommand::Migrate { database_url },
        } => {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect(&database_url)
                .await?;
            tributary_sink::schema::migrate(&pool).await?;
            println!("migrated {database_url}");
        }
    }
    Ok(())
}
