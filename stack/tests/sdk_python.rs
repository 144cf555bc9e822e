//! The Python SDK (`client/python`, package `tributary-client`) against the
//! real pipeline: its sender survives ingest being SIGKILLed mid-stream
//! (reconnects, resends every unanswered event with its original
//! idempotency key) and the aggregates read back through the SDK equal what
//! the SDK was told was stored; a stopped stack fails fast naming the
//! address; TLS with a private CA and API keys work; and the package's own
//! unit tests pass, among them the check that the generated modules are up
//! to date with `proto/`.
//!
//! The scripts run with `PYTHONPATH=client/python/src`; dev/setup installs
//! `client/python/requirements.txt` (grpcio, protobuf, grpcio-tools).
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tributary_stack::{
    TestStack, certs::TestCertificates, ingest::RunningIngest, tansu::free_port,
};

mod sdk_support;
use sdk_support::KillablePipeline;

const EVENTS: u64 = 20_000;
/// Ingest is SIGKILLed once the script has printed this many acks.
const KILL_AT: u64 = 3_000;

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/python")
}

/// `python3 <client/python/tests/script> args…` with the SDK's sources on
/// `PYTHONPATH`, its output piped.
fn python(script: &str, args: &[&str]) -> tokio::process::Command {
    let dir = python_dir();
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(dir.join("tests").join(script))
        .args(args)
        .env("PYTHONPATH", dir.join("src"))
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// The `{"summary": …}` line of a script's output.
fn summary(stdout: &str) -> anyhow::Result<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|v| v.get("summary").cloned())
        .ok_or_else(|| anyhow::anyhow!("no summary line in:\n{stdout}"))
}

#[tokio::test]
async fn the_python_sender_resends_after_ingest_is_killed_and_the_aggregates_are_exact()
-> anyhow::Result<()> {
    let started = Instant::now();
    let mut pipeline = KillablePipeline::start("sdk-python").await?;
    let url = pipeline.grpc_url();
    let events = EVENTS.to_string();
    let run = pipeline
        .stream_killing_ingest(
            python(
                "e2e_stream.py",
                &["--url", &url, "--events", &events, "--timeout", "60"],
            ),
            KILL_AT,
            Duration::from_secs(150),
        )
        .await?;
    let (stdout, stderr) = (&run.stdout, &run.stderr);
    println!("{stderr}");
    anyhow::ensure!(
        run.status.success(),
        "e2e_stream.py exited with {}\n{stdout}\n{stderr}\nlogs in {}",
        run.status,
        pipeline.logs().display()
    );
    let summary = summary(stdout)?;
    let killed_at = run
        .killed_at
        .ok_or_else(|| anyhow::anyhow!("ingest was never killed"))?;
    let (acked, rejected) = (
        summary["acked"].as_u64().unwrap_or(0),
        summary["rejected"].as_u64().unwrap_or(0),
    );
    assert_eq!(acked + rejected, EVENTS, "{summary}");
    assert!(
        killed_at < acked,
        "ingest was killed after everything was acknowledged: {killed_at}"
    );
    // The stream was opened again and carried unanswered events again.
    assert!(summary["reconnects"].as_u64() >= Some(1), "{summary}");
    assert!(summary["resent"].as_u64() >= Some(1), "{summary}");
    assert_eq!(summary["exact"], true, "{summary}");
    assert!(summary["accuracy_rows"].as_u64() > Some(0), "{summary}");
    let fields = &summary["rejected_fields"];
    assert!(
        fields["ad_click.ip_address"].as_u64() > Some(0),
        "{summary}"
    );
    assert!(fields["price_tick.price"].as_u64() > Some(0), "{summary}");
    assert_eq!(
        fields["ad_click.ip_address"].as_u64().unwrap_or(0)
            + fields["price_tick.price"].as_u64().unwrap_or(0),
        rejected,
        "{summary}"
    );
    assert_eq!(summary["problems"], serde_json::json!([]), "{summary}");
    println!(
        "killed ingest at {killed_at} acks; whole test {:?}",
        started.elapsed()
    );

    pipeline.stop().await?;
    Ok(())
}

#[tokio::test]
async fn connecting_the_python_sdk_to_a_stopped_stack_fails_fast_naming_the_address()
-> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{}", free_port()?);
    let started = Instant::now();
    let output = python("e2e_unreachable.py", &[&url]).output().await?;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    let attempts: Vec<serde_json::Value> = stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(attempts.len(), 2, "{stdout}");
    for attempt in &attempts {
        assert_eq!(attempt["url"], url.as_str(), "{attempt}");
        let error = attempt["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(&format!("cannot reach Tributary at {url}:")),
            "{attempt}"
        );
        assert!(error.contains("Connection refused"), "{attempt}");
        assert!(attempt["seconds"].as_f64() < Some(7.0), "{attempt}");
    }
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    assert!(stderr.is_empty(), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn the_python_sdk_sends_and_queries_over_tls_with_an_api_key() -> anyhow::Result<()> {
    let certs = TestCertificates::generate()?;
    let stack = TestStack::start().await?;
    // The aggregates table, for the query API (no sink runs here).
    tributary_store::migrate(&sqlx::PgPool::connect(stack.database.url()).await?).await?;
    let (cert, key) = (certs.cert(), certs.key());
    let ingest = RunningIngest::start(&stack, |c| {
        c.ingest.edge.tls.cert = Some(cert.clone());
        c.ingest.edge.tls.key = Some(key.clone());
        c.ingest.edge.auth.api_keys = vec!["py-secret".into()];
    })
    .await?;
    let url = format!("https://localhost:{}", ingest.grpc_addr().port());
    let ca = certs.ca().display().to_string();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        python("e2e_tls.py", &[&url, &ca, "py-secret"]).output(),
    )
    .await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}{stderr}");
    assert!(output.status.success(), "{stdout}{stderr}");
    let summary = summary(&stdout)?;
    assert_eq!(summary["acked"], 9, "{summary}");
    assert_eq!(
        summary["rejections"],
        serde_json::json!(["INVALID_ARGUMENT ad_click.ip_address"])
    );
    assert_eq!(
        summary["topics"],
        serde_json::json!(["tributary.events.ad_click"])
    );
    let wrong_key = &summary["wrong_key"];
    assert_eq!(wrong_key["sender"], "UNAUTHENTICATED", "{summary}");
    assert_eq!(
        wrong_key["answers"],
        serde_json::json!(["UNAUTHENTICATED"]),
        "{summary}"
    );
    assert!(wrong_key["seconds"].as_f64() < Some(3.0), "{summary}");
    assert_eq!(wrong_key["query"], "UNAUTHENTICATED", "{summary}");
    for refused in ["without_ca", "plain_text"] {
        assert_eq!(summary[refused]["names_url"], true, "{summary}");
    }
    ingest.shutdown().await?;
    Ok(())
}

#[test]
fn the_python_sdks_unit_tests_pass_and_its_generated_modules_are_up_to_date() -> anyhow::Result<()>
{
    let dir = python_dir();
    let output = std::process::Command::new("python3")
        .args(["-m", "unittest", "discover", "-s"])
        .arg(dir.join("tests"))
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python3 -m unittest discover client/python/tests (dev/setup installs client/python/requirements.txt):\n{stderr}"
    );
    assert!(stderr.contains("\nOK"), "{stderr}");
    Ok(())
}
