//! Postgres over TLS, configured by the database URL alone (`sslmode`,
//! `sslrootcert`): the registry and the sink connect to a server that accepts
//! only TLS; `verify-full` works with the server's CA and fails with another.
use sqlx::{Connection as _, PgConnection};
use tributary_common::config::{KafkaArgs, RegistryArgs};
use tributary_sink::config::SinkConfig;
use tributary_stack::{
    certs::TestCertificates, private_postgres::PrivatePostgres, registry::RunningRegistry,
};

async fn uses_tls(url: &str) -> anyhow::Result<bool> {
    let mut conn = PgConnection::connect(url).await?;
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await?;
    Ok(ssl)
}

fn sink_config(url: &str) -> SinkConfig {
    // The sink's Kafka clients connect lazily: no broker is needed to build it.
    SinkConfig::local(
        KafkaArgs::for_brokers("127.0.0.1:1"),
        RegistryArgs::at("http://127.0.0.1:1"),
        url,
    )
}

#[tokio::test]
async fn services_connect_to_postgres_over_tls_as_the_url_says() -> anyhow::Result<()> {
    let certs = TestCertificates::generate()?;
    let other = TestCertificates::generate()?;
    let postgres = PrivatePostgres::start_with_tls(&certs)?;
    let base = postgres.url();

    // The server refuses clear text, so a connection that works used TLS.
    let plain = PgConnection::connect(&format!("{base}?sslmode=disable")).await;
    assert!(
        plain.is_err(),
        "the server accepted a clear-text connection"
    );

    let require = format!("{base}?sslmode=require");
    assert!(uses_tls(&require).await?);
    let registry = RunningRegistry::start(&require).await?;
    let schemas: serde_json::Value = reqwest::get(format!("{}/subjects", registry.url()))
        .await?
        .json()
        .await?;
    assert_eq!(schemas, serde_json::json!([]));
    drop(registry);

    // The sink applies its migrations through the same URL.
    let ca = certs.ca();
    let verified = format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display());
    tributary_sink::startup::build(&sink_config(&verified)).await?;
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'aggregates'",
    )
    .fetch_one(&mut PgConnection::connect(&verified).await?)
    .await?;
    assert_eq!(tables, 1, "the sink's migrations did not run");

    // verify-full with a CA that did not sign the server's certificate fails.
    let wrong_ca = format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        other.ca().display()
    );
    assert!(PgConnection::connect(&wrong_ca).await.is_err());
    let error = match RunningRegistry::start(&wrong_ca).await {
        Ok(_) => anyhow::bail!("the registry trusted a certificate its CA did not sign"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("cannot connect to Postgres"), "{error}");
    let sink = tributary_sink::startup::build(&sink_config(&wrong_ca)).await;
    assert!(sink.is_err(), "the sink trusted the wrong CA");
    Ok(())
}
