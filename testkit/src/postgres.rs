//! Postgres databases for the stack and for tests: the local stack's database
//! is created when missing; each test gets a fresh database that is dropped
//! with it, so tests run in parallel without sharing state.
use std::time::Duration;

use anyhow::Context as _;
use sqlx::{Connection as _, Executor as _, PgConnection};

/// The server tests and the local stack use unless `TRIBUTARY_TEST_POSTGRES`
/// (tests) or `DATABASE_URL` (stack) says otherwise.
pub const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432";

/// The Postgres server tests create their databases on.
pub fn test_server_url() -> String {
    std::env::var("TRIBUTARY_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_SERVER_URL.to_string())
}

/// Splits `postgres://host/dbname?opts` into the server URL (maintenance
/// database `postgres`) and the database name.
fn split_database_url(url: &str) -> anyhow::Result<(String, String)> {
    let mut parsed =
        url::Url::parse(url).with_context(|| format!("invalid database URL `{url}`"))?;
    let name = parsed.path().trim_start_matches('/').to_string();
    anyhow::ensure!(!name.is_empty(), "database URL `{url}` names no database");
    parsed.set_path("/postgres");
    Ok((parsed.to_string(), name))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the database named in `database_url` unless it exists.
pub async fn ensure_database(database_url: &str) -> anyhow::Result<()> {
    let (server, name) = split_database_url(database_url)?;
    let mut conn = PgConnection::connect(&server)
        .await
        .with_context(|| format!("cannot connect to Postgres at {server}"))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        match conn
            .execute(format!("CREATE DATABASE {}", quote_ident(&name)).as_str())
            .await
        {
            Ok(_) => {}
            // Another process created it between the check and the create.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create database {name}")),
        }
    }
    Ok(())
}

/// A fresh, uniquely named database that is dropped when this value is.
pub struct TestDatabase {
    server: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database on the test server.
    pub async fn create() -> anyhow::Result<Self> {
        let server = test_server_url();
        let name = format!("tributary_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .with_context(|| format!("cannot connect to the test Postgres at {server}"))?;
        conn.execute(format!("CREATE DATABASE {}", quote_ident(&name)).as_str())
            .await
            .with_context(|| format!("cannot create test database {name}"))?;
        let url = format!("{server}/{name}");
        Ok(Self { server, name, url })
    }

    /// The database's connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside or outside a runtime; a dedicated thread with its
        // own runtime works in both cases.
        let server = format!("{}/postgres", self.server);
        let statement = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        );
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn =
                    tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&server))
                        .await
                        .ok()?
                        .ok()?;
                conn.execute(statement.as_str()).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_is_split_into_server_and_name() {
        let (server, name) =
            split_database_url("postgres://postgres@127.0.0.1:5432/tributary?sslmode=disable")
                .unwrap();
        assert_eq!(
            server,
            "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
        );
        assert_eq!(name, "tributary");
    }

    #[test]
    fn database_url_without_a_name_is_refused() {
        assert!(split_database_url("postgres://127.0.0.1:5432").is_err());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
