//! The TypeScript SDK (`client/typescript`, `@tributary/client`) against a
//! real pipeline: its sender survives ingest being SIGKILLed mid-stream
//! (reconnects, resends every unanswered event with its original
//! idempotency key) and the aggregates it reads back are exact; a stopped
//! stack fails within seconds naming the address; TLS with a private CA and
//! API keys work; its unit tests pass and its generated code is current.
//!
//! The package must have its dependencies installed (`npm ci` in
//! `client/typescript`, which `dev/setup` runs); each test builds it with
//! `npm run build` (tsc) first.
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tributary_stack::{
    TestStack, certs::TestCertificates, ingest::RunningIngest, tansu::free_port,
};

mod sdk_support;
use sdk_support::{KillablePipeline, last_line_json};

const EVENTS: usize = 20_000;
/// Ingest is killed once the script has printed this many acknowledgements.
const KILL_AFTER_ACKS: u64 = 3_000;

fn package() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/typescript")
}

/// Builds the package (`npm run build`) once at a time across the test
/// processes nextest runs in parallel, and returns its directory.
fn build_package() -> anyhow::Result<PathBuf> {
    let dir = package();
    anyhow::ensure!(
        dir.join("node_modules/@connectrpc/connect-node").exists()
            && dir.join("node_modules/.bin/tsc").exists(),
        "the TypeScript SDK's dependencies are not installed: run `npm ci` in {} (dev/setup does)",
        dir.display()
    );
    let lock_path = std::env::temp_dir().join("tributary-sdk-typescript-build.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock()?;
    // The first test process builds; the others find the build newer than
    // every source and skip it.
    if !built_after_sources(&dir)? {
        let output = std::process::Command::new("npm")
            .args(["run", "--silent", "build"])
            .current_dir(&dir)
            .output()
            .context("cannot run npm (is Node.js installed?)")?;
        anyhow::ensure!(
            output.status.success(),
            "npm run build failed in {}:\n{}{}",
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // tsc leaves unchanged outputs alone: mark the build as done (in
        // node_modules, which neither git nor npm pack take).
        std::fs::write(dir.join("node_modules/.tributary-built"), "")?;
    }
    lock.unlock()?;
    Ok(dir)
}

/// Whether `dist/` is there and the build marker
/// (`node_modules/.tributary-built`) is newer than the sources, the compiler
/// settings and the installed dependencies.
fn built_after_sources(dir: &Path) -> anyhow::Result<bool> {
    if !dir.join("dist/index.js").exists() {
        return Ok(false);
    }
    let Ok(built) =
        std::fs::metadata(dir.join("node_modules/.tributary-built")).and_then(|m| m.modified())
    else {
        return Ok(false);
    };
    let mut inputs = vec![
        dir.join("package.json"),
        dir.join("tsconfig.json"),
        dir.join("node_modules/.package-lock.json"),
    ];
    let mut dirs = vec![dir.join("src")];
    while let Some(next) = dirs.pop() {
        for entry in std::fs::read_dir(&next)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                inputs.push(path);
            }
        }
    }
    for input in inputs {
        if std::fs::metadata(&input)?.modified()? >= built {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs `node SCRIPT ARGS...` in the package with `env`, returning its
/// status, stdout and stderr.
async fn node(
    dir: &Path,
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<(std::process::ExitStatus, String, String)> {
    let mut command = tokio::process::Command::new("node");
    command
        .arg(script)
        .args(args)
        .current_dir(dir)
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(timeout, command.output())
        .await
        .with_context(|| format!("node {script} did not finish within {timeout:?}"))??;
    Ok((
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn the_typescript_sender_resends_after_ingest_is_killed_and_its_aggregates_are_exact()
-> anyhow::Result<()> {
    let dir = build_package()?;
    let mut pipeline = KillablePipeline::start("sdk-typescript").await?;
    let mut program = tokio::process::Command::new("node");
    program
        .arg("test/e2e-stream.mjs")
        .arg(pipeline.grpc_url())
        .arg(EVENTS.to_string())
        .current_dir(&dir);
    let run = pipeline
        .stream_killing_ingest(program, KILL_AFTER_ACKS, Duration::from_secs(150))
        .await?;
    let summary = last_line_json(&run.stdout, &run.stderr)?;
    assert!(
        run.status.success(),
        "e2e-stream.mjs failed ({}): {summary}\nstderr:\n{}",
        run.status,
        run.stderr
    );

    let killed_at = run
        .killed_at
        .context("ingest was never killed: no `acked` line reached the threshold")?;
    assert!(
        killed_at < EVENTS as u64 / 2,
        "ingest was killed too late ({killed_at} acknowledged)"
    );
    // The sender noticed the kill: it reconnected and sent events again.
    assert!(summary["reconnects"].as_u64() >= Some(1), "{summary}");
    assert!(summary["resent"].as_u64() >= Some(1), "{summary}");
    // 20 bad IP addresses and 20 negative prices, each refused naming its field.
    assert_eq!(
        summary["rejected_fields"],
        serde_json::json!({"ad_click.ip_address": 20, "price_tick.price": 20}),
        "{summary}"
    );
    assert_eq!(
        summary["acked"].as_u64(),
        Some(EVENTS as u64 - 40),
        "{summary}"
    );
    assert_eq!(summary["exact"], serde_json::json!(true), "{summary}");
    assert!(summary["accuracy_checked"].as_u64() > Some(0), "{summary}");

    pipeline.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_stopped_stack_fails_within_seconds_naming_the_address() -> anyhow::Result<()> {
    let dir = build_package()?;
    let url = format!("http://127.0.0.1:{}", free_port()?);
    let started = Instant::now();
    let (status, stdout, stderr) = node(
        &dir,
        "test/e2e-unreachable.mjs",
        &[&url],
        &[],
        Duration::from_secs(30),
    )
    .await?;
    let took = started.elapsed();
    let summary = last_line_json(&stdout, &stderr)?;
    println!("{summary} in {took:?}");
    assert!(status.success(), "{summary}\nstderr:\n{stderr}");
    for call in ["send", "close", "aggregates", "submit"] {
        let message = summary[call]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&url),
            "{call}: the error does not name {url}: {summary}"
        );
        assert_eq!(
            summary[call]["name"].as_str(),
            Some("ConnectionError"),
            "{call}: {summary}"
        );
    }
    // The sender tries for its first-connect timeout (5 s), then says so.
    let sender_seconds = summary["send"]["seconds"].as_f64().unwrap_or(f64::MAX);
    assert!(
        (4.0..10.0).contains(&sender_seconds),
        "the sender took {sender_seconds} s: {summary}"
    );
    let query_seconds = summary["aggregates"]["seconds"]
        .as_f64()
        .unwrap_or(f64::MAX);
    assert!(
        query_seconds < 3.0,
        "the query took {query_seconds} s: {summary}"
    );
    Ok(())
}

#[tokio::test]
async fn over_tls_with_an_api_key_the_sdk_sends_and_queries_and_without_them_it_is_refused()
-> anyhow::Result<()> {
    let dir = build_package()?;
    let certs = TestCertificates::generate()?;
    let stack = TestStack::start().await?;
    // The aggregates table the query reads.
    let pool = sqlx::PgPool::connect(stack.database.url()).await?;
    tributary_store::migrate(&pool).await?;
    let (cert, key) = (certs.cert(), certs.key());
    let ingest = RunningIngest::start(&stack, |c| {
        c.ingest.edge.tls.cert = Some(cert.clone());
        c.ingest.edge.tls.key = Some(key.clone());
        c.ingest.edge.auth.api_keys = vec!["ts-secret".into()];
    })
    .await?;
    let url = format!("https://localhost:{}", ingest.grpc_addr().port());
    let ca = certs.ca();
    let ca = ca.to_str().context("the CA path is not UTF-8")?;
    let (status, stdout, stderr) = node(
        &dir,
        "test/e2e-tls.mjs",
        &[&url, ca, "ts-secret"],
        &[],
        Duration::from_secs(60),
    )
    .await?;
    let summary = last_line_json(&stdout, &stderr)?;
    println!("{summary}");
    assert!(status.success(), "{summary}\nstderr:\n{stderr}");
    assert_eq!(summary["acked"].as_u64(), Some(10), "{summary}");
    assert_eq!(
        summary["topic"].as_str(),
        Some("tributary.events.price_tick"),
        "{summary}"
    );
    assert_eq!(
        summary["without_key"]["code"].as_str(),
        Some("UNAUTHENTICATED"),
        "{summary}"
    );
    assert_eq!(
        summary["without_key_query"]["code"].as_str(),
        Some("UNAUTHENTICATED"),
        "{summary}"
    );
    assert_eq!(
        summary["without_ca"]["name"].as_str(),
        Some("ConnectionError"),
        "{summary}"
    );
    ingest.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn the_unit_tests_pass_and_the_generated_code_is_current() -> anyhow::Result<()> {
    let dir = build_package()?;
    let (status, stdout, stderr) = node(
        &dir,
        "--test",
        &["test/unit/"],
        &[],
        Duration::from_secs(120),
    )
    .await?;
    println!("{stdout}");
    assert!(status.success(), "node --test failed:\n{stdout}\n{stderr}");
    let (status, stdout, stderr) = node(
        &dir,
        "scripts/check-generated.mjs",
        &[],
        &[],
        Duration::from_secs(120),
    )
    .await?;
    assert!(
        status.success(),
        "src/gen is not what `npm run generate` makes from proto/:\n{stdout}\n{stderr}"
    );
    Ok(())
}
