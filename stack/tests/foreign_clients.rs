//! gRPC clients other than the Rust SDK, streaming one event per message as
//! fast as they can into ingest on a durable (SQLite) broker that is slower
//! than they are: every event is acknowledged and no connection is cut.
//!
//! grpcio and grpc-js send each message in a DATA frame of its own. While
//! ingest waits for the broker it stops reading the stream (backpressure),
//! and h2 charges every small unread frame against a per-connection budget
//! (half the connection window); with hyper's default 1 MiB windows a
//! paused stream of ~100-byte messages overran it and the client got
//! `GOAWAY ENHANCE_YOUR_CALM too_many_data_frames`. The edge's stream window
//! (`--http2-stream-window`) bounds what a paused stream holds unread.
use std::{path::Path, process::Command, time::Duration};

use tributary_stack::{TestStack, ingest::RunningIngest};

mod support;

/// Events each client streams (`TRIBUTARY_FLOOD_EVENTS` overrides).
fn events() -> usize {
    std::env::var("TRIBUTARY_FLOOD_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000)
}

/// Runs a flood client to completion and returns its JSON summary.
async fn flood(mut command: Command) -> anyhow::Result<serde_json::Value> {
    let output = tokio::time::timeout(
        Duration::from_secs(600),
        tokio::task::spawn_blocking(move || command.output()),
    )
    .await???;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| anyhow::anyhow!("no summary\nstdout:\n{stdout}\nstderr:\n{stderr}"))?;
    Ok(summary)
}

/// The peak resident memory of this process (ingest and the registry run in
/// it), in MiB.
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

fn assert_all_acknowledged(client: &str, summary: &serde_json::Value, count: usize) {
    // Backpressure holds the client back instead of buffering its events:
    // memory stays bounded whatever the count.
    let peak = peak_rss_mib();
    println!("{client}: peak RSS of ingest's process {peak} MiB");
    assert!(
        peak < 512,
        "{client}: ingest's process peaked at {peak} MiB"
    );
    assert_eq!(
        (
            summary["status"].as_str(),
            summary["acked"].as_u64(),
            summary["rejected"].as_u64()
        ),
        (Some("OK"), Some(count as u64), Some(0)),
        "{client}: {summary}"
    );
}

#[tokio::test]
async fn grpcio_streaming_at_full_speed_is_slowed_never_disconnected() -> anyhow::Result<()> {
    let stubs = support::python_stubs()?;
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let count = events();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/flood.py");
    let mut command = Command::new("python3");
    command
        .arg(script)
        .arg(ingest.grpc_addr().to_string())
        .arg(count.to_string())
        .arg("grpcio")
        .env("PYTHONPATH", stubs.path());
    let summary = flood(command).await?;
    println!("grpcio: {summary}");
    assert_all_acknowledged("grpcio", &summary, count);
    ingest.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn grpc_js_streaming_at_full_speed_is_slowed_never_disconnected() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    anyhow::ensure!(
        clients.join("node_modules/@grpc/grpc-js").exists(),
        "@grpc/grpc-js is not installed in {}: dev/setup installs it (npm ci)",
        clients.display()
    );
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let count = events();
    let mut command = Command::new("node");
    command
        .arg(clients.join("flood.mjs"))
        .arg(root.join("proto"))
        .arg(ingest.grpc_addr().to_string())
        .arg(count.to_string())
        .arg("grpc-js");
    let summary = flood(command).await?;
    println!("grpc-js: {summary}");
    assert_all_acknowledged("grpc-js", &summary, count);
    ingest.shutdown().await?;
    Ok(())
}
