//! Test databases are real, isolated and cleaned up.
use sqlx::{Connection as _, PgConnection};
use tributary_stack::postgres::{TestDatabase, ensure_database, test_server_url};

#[tokio::test]
async fn a_row_written_to_a_test_database_is_read_back() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let mut conn = PgConnection::connect(db.url()).await?;
    sqlx::query(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, at TIMESTAMPTZ NOT NULL, v NUMERIC NOT NULL)",
    )
    .execute(&mut conn)
    .await?;
    sqlx::query("INSERT INTO t VALUES (1, '2026-01-02T03:04:05Z', 12.5)")
        .execute(&mut conn)
        .await?;
    let (id, at, v): (i64, String, String) = sqlx::query_as(
        "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), v::text FROM t",
    )
    .fetch_one(&mut conn)
    .await?;
    assert_eq!(
        (id, at.as_str(), v.as_str()),
        (1, "2026-01-02 03:04:05", "12.5")
    );
    Ok(())
}

#[tokio::test]
async fn test_databases_are_isolated_and_dropped_with_their_owner() -> anyhow::Result<()> {
    let (a, b) = (TestDatabase::create().await?, TestDatabase::create().await?);
    assert_ne!(a.name(), b.name());
    let mut conn_a = PgConnection::connect(a.url()).await?;
    sqlx::query("CREATE TABLE only_in_a (id INT)")
        .execute(&mut conn_a)
        .await?;
    let mut conn_b = PgConnection::connect(b.url()).await?;
    let in_b: Option<String> = sqlx::query_scalar("SELECT to_regclass('only_in_a')::text")
        .fetch_one(&mut conn_b)
        .await?;
    assert_eq!(in_b, None);
    drop(conn_a);
    drop(conn_b);

    let name = a.name().to_string();
    drop(a);
    let mut admin = PgConnection::connect(&format!("{}/postgres", test_server_url())).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    assert!(!exists, "{name} still exists after drop");
    Ok(())
}

#[tokio::test]
async fn ensure_database_creates_a_missing_database_and_accepts_an_existing_one()
-> anyhow::Result<()> {
    let holder = TestDatabase::create().await?;
    let url = format!("{}_ensured", holder.url());
    ensure_database(&url).await?;
    ensure_database(&url).await?;
    PgConnection::connect(&url).await?.close().await?;
    let mut admin = PgConnection::connect(&format!("{}/postgres", test_server_url())).await?;
    sqlx::query(&format!(
        "DROP DATABASE \"{}_ensured\" WITH (FORCE)",
        holder.name()
    ))
    .execute(&mut admin)
    .await?;
    Ok(())
}
