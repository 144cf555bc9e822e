//! `GET /openapi.json` says exactly what the routes accept: Schemathesis
//! (property-based, every check) runs against the document the composed
//! server (ingest + the query API) serves, over a real broker, registry and
//! database. Schema-valid requests must be accepted, schema-invalid ones
//! refused, every response must match the document, and with no API keys
//! configured no operation may ask for one. Its settings and the reasons for
//! each are in `tests/openapi/schemathesis.toml`.
use std::{path::Path, process::Command};

use tributary_stack::{TestStack, ingest::RunningIngest};

/// Runs Schemathesis against `base_url` and returns its exit status and
/// output.
fn schemathesis(base_url: &str) -> anyhow::Result<(bool, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi");
    let output = Command::new("python3")
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(dir.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{base_url}/openapi.json"))
        .args(["--checks", "all", "--max-examples", "40", "--seed", "1"])
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &dir)
        .env("NO_COLOR", "1")
        // Schemathesis keeps a cache in its working directory: not in the tree.
        .current_dir(std::env::temp_dir())
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run python3 ({e}); dev/setup installs stack/tests/openapi/requirements.txt"
            )
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_matches_what_every_route_accepts_and_answers() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let pool = sqlx::PgPool::connect(stack.database.url()).await?;
    tributary_store::migrate(&pool).await?;

    let url = ingest.http_url();
    let (passed, output) = tokio::task::spawn_blocking(move || schemathesis(&url)).await??;
    assert!(
        passed,
        "Schemathesis found requests the routes handle otherwise than documented:\n{output}"
    );
    assert!(
        output.contains("Tested: 6"),
        "every operation is tested:\n{output}"
    );
    Ok(())
}
