//! `trib query` against ingest and the query API: durations in the one
//! syntax (`1d`), and a refusal printed once, readably.
use tributary_stack::{TestStack, ingest::RunningIngest};

/// A stack with the aggregates tables and ingest (with the query API) on it.
async fn served() -> anyhow::Result<(TestStack, RunningIngest)> {
    let stack = TestStack::start().await?;
    let pool = sqlx::PgPool::connect(stack.database.url()).await?;
    tributary_store::migrate(&pool).await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    Ok((stack, ingest))
}

async fn trib_query(url: &str, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(tokio::process::Command::new(env!("CARGO_BIN_EXE_trib"))
        .args(["query", "--url", url])
        .args(args)
        .output()
        .await?)
}

#[tokio::test]
async fn trib_query_takes_a_granularity_in_days() -> anyhow::Result<()> {
    let (_stack, ingest) = served().await?;
    let output = trib_query(
        &ingest.grpc_url(),
        &[
            "--type",
            "ad_click",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-03T00:00:00Z",
            "--granularity",
            "1d",
            "--json",
        ],
    )
    .await?;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8(output.stdout)?.trim(), "[]");
    Ok(())
}

#[tokio::test]
async fn a_refused_query_is_reported_once_in_one_readable_line() -> anyhow::Result<()> {
    let (_stack, ingest) = served().await?;
    let output = trib_query(&ingest.grpc_url(), &["--type", "no_such_type"]).await?;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr)?;
    assert_eq!(
        stderr,
        "trib: Client specified an invalid argument: event_type: unknown event type `no_such_type`: it is not built in and has no stored aggregates\n"
    );
    Ok(())
}
