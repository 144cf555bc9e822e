//! The Go SDK (`client/go`, module `github.com/tributary-io/tributary/client/go`)
//! against a real pipeline: its sender survives ingest being SIGKILLed
//! mid-stream (reconnects, resends every unanswered event with its original
//! idempotency key) and the aggregates it reads back are exact; a stopped
//! stack fails within seconds naming the address; TLS with a private CA and
//! API keys work; the README's example runs as written; and its unit tests,
//! `go vet`, `gofmt` and the generated-code check (`client/go/generate.sh
//! --check`: `buf generate` with the local plugins, compared with the
//! checked-in `gen/`) pass.
//!
//! The Go programs (`client/go/internal/e2e/...`) are built offline
//! (`GOPROXY=off`) from the module cache that `dev/setup` fills; Go is the
//! `go` on `PATH`, else `/usr/local/go/bin/go`.
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tributary_stack::{
    TestStack, certs::TestCertificates, cluster::log_dir, ingest::RunningIngest, tansu::free_port,
};

mod sdk_support;
use sdk_support::{KillablePipeline, last_line_json};

const EVENTS: u64 = 20_000;
/// Ingest is SIGKILLed once the program has printed this many acknowledgements.
const KILL_AT: u64 = 3_000;

fn module() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/go")
}

/// The directory of the Go toolchain's binaries (`go`, `gofmt`).
fn go_bin() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/local/go/bin")])
        .find(|dir| dir.join("go").is_file())
        .context("no Go toolchain: `go` is neither on PATH nor in /usr/local/go/bin")
}

/// `PATH` with the Go toolchain first.
fn path_with_go() -> anyhow::Result<std::ffi::OsString> {
    let mut dirs = vec![go_bin()?];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    Ok(std::env::join_paths(dirs)?)
}

/// `go ARGS…` in `dir`, offline: modules only from the module cache, go.mod
/// left as it is, the installed toolchain.
fn go(dir: &Path, args: &[&str]) -> anyhow::Result<tokio::process::Command> {
    let mut command = tokio::process::Command::new(go_bin()?.join("go"));
    command
        .args(args)
        .current_dir(dir)
        .env("PATH", path_with_go()?)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=readonly -buildvcs=false")
        .env("GOTOOLCHAIN", "local")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    Ok(command)
}

/// Runs `command` to its end within `timeout`: status, stdout, stderr.
async fn output(
    mut command: tokio::process::Command,
    what: &str,
    timeout: Duration,
) -> anyhow::Result<(std::process::ExitStatus, String, String)> {
    let output = tokio::time::timeout(timeout, command.output())
        .await
        .with_context(|| format!("{what} did not finish within {timeout:?}"))?
        .with_context(|| format!("cannot run {what}"))?;
    Ok((
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// Builds `client/go/internal/e2e/<program>` into a fresh directory and
/// returns the binary.
async fn build(program: &str) -> anyhow::Result<PathBuf> {
    let out = log_dir(&format!("sdk-go-{program}"))?;
    let binary = out.join(program);
    let target = binary.to_str().context("temp path is not UTF-8")?;
    let package = format!("./internal/e2e/{program}");
    let (status, stdout, stderr) = output(
        go(&module(), &["build", "-o", target, &package])?,
        "go build",
        Duration::from_secs(300),
    )
    .await?;
    anyhow::ensure!(
        status.success(),
        "go build {package} failed in {} (dev/setup downloads the modules):\n{stdout}{stderr}",
        module().display()
    );
    Ok(binary)
}

/// A built program, run with `args`, output piped.
fn program(binary: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn the_go_sender_resends_after_ingest_is_killed_and_its_aggregates_are_exact()
-> anyhow::Result<()> {
    let binary = build("stream").await?;
    let mut pipeline = KillablePipeline::start("sdk-go").await?;
    let url = pipeline.grpc_url();
    let run = pipeline
        .stream_killing_ingest(
            program(&binary, &[&url, &EVENTS.to_string()]),
            KILL_AT,
            Duration::from_secs(150),
        )
        .await?;
    let summary = last_line_json(&run.stdout, &run.stderr)?;
    assert!(
        run.status.success(),
        "the stream program failed ({}): {summary}\nstderr:\n{}\nlogs in {}",
        run.status,
        run.stderr,
        pipeline.logs().display()
    );

    let killed_at = run
        .killed_at
        .context("ingest was never killed: no `acked` line reached the threshold")?;
    assert!(
        killed_at < EVENTS / 2,
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
    assert_eq!(summary["acked"].as_u64(), Some(EVENTS - 40), "{summary}");
    assert_eq!(summary["exact"], serde_json::json!(true), "{summary}");
    assert!(summary["groups"].as_u64() > Some(0), "{summary}");
    assert!(summary["accuracy_checked"].as_u64() > Some(0), "{summary}");
    assert_eq!(summary["problems"], serde_json::json!([]), "{summary}");

    pipeline.stop().await?;
    let _ = std::fs::remove_dir_all(binary.parent().context("no parent")?);
    Ok(())
}

#[tokio::test]
async fn a_stopped_stack_fails_within_seconds_naming_the_address() -> anyhow::Result<()> {
    let binary = build("unreachable").await?;
    let url = format!("http://127.0.0.1:{}", free_port()?);
    let started = Instant::now();
    let (status, stdout, stderr) = output(
        program(&binary, &[&url]),
        "the unreachable program",
        Duration::from_secs(60),
    )
    .await?;
    let took = started.elapsed();
    let summary = last_line_json(&stdout, &stderr)?;
    println!("{summary} in {took:?}");
    assert!(status.success(), "{summary}\nstderr:\n{stderr}");
    for call in [
        "connect",
        "send",
        "close",
        "aggregates",
        "price_accuracy",
        "submit",
    ] {
        let result = &summary[call];
        assert_eq!(result["kind"], "unavailable", "{call}: {summary}");
        assert_eq!(result["code"], "UNAVAILABLE", "{call}: {summary}");
        assert_eq!(result["url"], url.as_str(), "{call}: {summary}");
        let message = result["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("cannot reach Tributary at {url}: ")),
            "{call}: the error does not name {url}: {summary}"
        );
        assert!(
            message.contains("connection refused"),
            "{call}: no reason: {summary}"
        );
    }
    // Connect and the sender try for their timeouts (5 s), then say so.
    for call in ["connect", "send"] {
        let seconds = summary[call]["seconds"].as_f64().unwrap_or(f64::MAX);
        assert!(
            (4.0..10.0).contains(&seconds),
            "{call} took {seconds} s: {summary}"
        );
    }
    // The query and unary calls fail at once.
    for call in ["aggregates", "price_accuracy", "submit"] {
        let seconds = summary[call]["seconds"].as_f64().unwrap_or(f64::MAX);
        assert!(seconds < 3.0, "{call} took {seconds} s: {summary}");
    }
    let _ = std::fs::remove_dir_all(binary.parent().context("no parent")?);
    Ok(())
}

#[tokio::test]
async fn over_tls_with_an_api_key_the_go_sdk_sends_and_queries_and_without_them_it_is_refused()
-> anyhow::Result<()> {
    let binary = build("tls").await?;
    let certs = TestCertificates::generate()?;
    let stack = TestStack::start().await?;
    // The aggregates table the query reads.
    let pool = sqlx::PgPool::connect(stack.database.url()).await?;
    tributary_store::migrate(&pool).await?;
    let (cert, key) = (certs.cert(), certs.key());
    let ingest = RunningIngest::start(&stack, |c| {
        c.ingest.edge.tls.cert = Some(cert.clone());
        c.ingest.edge.tls.key = Some(key.clone());
        c.ingest.edge.auth.api_keys = vec!["go-secret".into()];
    })
    .await?;
    let url = format!("https://localhost:{}", ingest.grpc_addr().port());
    let ca = certs.ca();
    let ca = ca.to_str().context("the CA path is not UTF-8")?;
    let (status, stdout, stderr) = output(
        program(&binary, &[&url, ca, "go-secret"]),
        "the tls program",
        Duration::from_secs(90),
    )
    .await?;
    let summary = last_line_json(&stdout, &stderr)?;
    println!("{summary}");
    assert!(status.success(), "{summary}\nstderr:\n{stderr}");
    assert_eq!(summary["acked"].as_u64(), Some(10), "{summary}");
    assert_eq!(
        summary["topics"],
        serde_json::json!({"tributary.events.price_tick": true}),
        "{summary}"
    );
    assert_eq!(summary["rejection"]["kind"], "rejected", "{summary}");
    assert_eq!(
        summary["rejection"]["code"], "INVALID_ARGUMENT",
        "{summary}"
    );
    assert_eq!(
        summary["rejection"]["field"], "ad_click.ip_address",
        "{summary}"
    );
    assert_eq!(
        summary["without_key"]["code"], "UNAUTHENTICATED",
        "{summary}"
    );
    assert!(
        summary["without_key"]["seconds"].as_f64() < Some(3.0),
        "{summary}"
    );
    for refused in ["without_key_close", "without_key_query"] {
        assert_eq!(summary[refused]["kind"], "status", "{summary}");
        assert_eq!(summary[refused]["code"], "UNAUTHENTICATED", "{summary}");
    }
    for unreachable in ["without_ca", "without_ca_connect", "plain_text"] {
        assert_eq!(summary[unreachable]["kind"], "unavailable", "{summary}");
        assert_eq!(summary[unreachable]["names_url"], true, "{summary}");
    }
    ingest.shutdown().await?;
    let _ = std::fs::remove_dir_all(binary.parent().context("no parent")?);
    Ok(())
}

/// The first ```go block of `client/go/README.md`.
fn readme_example() -> anyhow::Result<String> {
    let readme = std::fs::read_to_string(module().join("README.md"))?;
    let start = readme
        .find("```go\n")
        .context("client/go/README.md has no ```go block")?
        + "```go\n".len();
    let end = readme[start..]
        .find("```")
        .context("the ```go block does not end")?;
    Ok(readme[start..start + end].to_string())
}

#[tokio::test]
async fn the_readme_example_runs_as_written() -> anyhow::Result<()> {
    let example = readme_example()?;
    const DEFAULT_URL: &str = "http://127.0.0.1:50051";
    anyhow::ensure!(
        example.matches(DEFAULT_URL).count() == 1,
        "the example should connect to {DEFAULT_URL} once:\n{example}"
    );
    let stack = TestStack::start().await?;
    let pool = sqlx::PgPool::connect(stack.database.url()).await?;
    tributary_store::migrate(&pool).await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;

    // A module of its own that requires the SDK from this checkout, as a
    // user's would; only the address differs from the README.
    let dir = log_dir("sdk-go-readme")?;
    std::fs::write(
        dir.join("main.go"),
        example.replace(DEFAULT_URL, &ingest.grpc_url()),
    )?;
    std::fs::write(
        dir.join("go.mod"),
        format!(
            "module readme\n\ngo 1.26.0\n\nrequire github.com/tributary-io/tributary/client/go v0.0.0\n\n\
             replace github.com/tributary-io/tributary/client/go => {}\n",
            module().canonicalize()?.display()
        ),
    )?;
    std::fs::copy(module().join("go.sum"), dir.join("go.sum"))?;
    let mut build = go(&dir, &["build", "-o", "example", "."])?;
    // -mod=mod: the module's own go.mod gains the SDK's requirements.
    build.env("GOFLAGS", "-mod=mod -buildvcs=false");
    let (status, stdout, stderr) = output(build, "go build", Duration::from_secs(300)).await?;
    assert!(
        status.success(),
        "the README example does not build:\n{stdout}{stderr}\n{example}"
    );
    let (status, stdout, stderr) = output(
        program(&dir.join("example"), &[]),
        "the README example",
        Duration::from_secs(60),
    )
    .await?;
    println!("{stdout}{stderr}");
    assert!(
        status.success(),
        "the README example failed:\n{stdout}{stderr}"
    );
    let offset = stdout
        .lines()
        .find_map(|line| line.strip_prefix("stored at offset "))
        .with_context(|| format!("no `stored at offset` line:\n{stdout}"))?;
    offset
        .parse::<i64>()
        .context("the offset is not a number")?;
    ingest.shutdown().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn the_unit_tests_vet_and_gofmt_pass_and_the_generated_code_is_current() -> anyhow::Result<()>
{
    let dir = module();
    let (status, stdout, stderr) = output(
        go(&dir, &["test", "-count=1", "./..."])?,
        "go test",
        Duration::from_secs(300),
    )
    .await?;
    println!("{stdout}");
    assert!(status.success(), "go test failed:\n{stdout}{stderr}");
    let (status, stdout, stderr) = output(
        go(&dir, &["vet", "./..."])?,
        "go vet",
        Duration::from_secs(300),
    )
    .await?;
    assert!(status.success(), "go vet failed:\n{stdout}{stderr}");
    let mut gofmt = tokio::process::Command::new(go_bin()?.join("gofmt"));
    gofmt.args(["-l", "."]).current_dir(&dir);
    let (status, stdout, stderr) = output(gofmt, "gofmt", Duration::from_secs(60)).await?;
    assert!(
        status.success() && stdout.trim().is_empty(),
        "gofmt -l lists files that are not formatted:\n{stdout}{stderr}"
    );
    // generate.sh installs its plugins from the module cache when they are
    // missing, so it runs offline too.
    let mut check = tokio::process::Command::new(dir.join("generate.sh"));
    check
        .arg("--check")
        .current_dir(&dir)
        .env("PATH", path_with_go()?)
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let (status, stdout, stderr) =
        output(check, "generate.sh --check", Duration::from_secs(300)).await?;
    println!("{stdout}");
    assert!(
        status.success(),
        "client/go/gen is not what `client/go/generate.sh` makes from proto/:\n{stdout}{stderr}"
    );
    Ok(())
}
