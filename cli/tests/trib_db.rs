//! `trib db migrate` creates the sink's tables, and running it again is harmless.
use sqlx::PgPool;
use tributary_stack::postgres::TestDatabase;

#[tokio::test]
async fn trib_db_migrate_creates_the_tables_and_is_idempotent() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    for _ in 0..2 {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_trib"))
            .args(["db", "migrate", "--database-url", db.url()])
            .output()?;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8(output.stdout)?,
            format!("migrated {}\n", db.url())
        );
    }
    let pool = PgPool::connect(db.url()).await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('aggregates', 'sink_offsets') ORDER BY 1",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(tables, ["aggregates", "sink_offsets"]);
    Ok(())
}
