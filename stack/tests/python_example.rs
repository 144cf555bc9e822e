//! `examples/python/stream_and_query.py`, with stubs generated from proto/ by
//! grpcio-tools, streams events to a real pipeline and reads the aggregate
//! back through the query API.
use std::{path::Path, process::Command, time::Duration};

use tributary_stack::{TestStack, ingest::RunningIngest, processor, sink};

#[tokio::test]
async fn the_python_example_streams_events_and_queries_the_aggregate() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let generated =
        std::env::temp_dir().join(format!("tributary-py-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&generated)?;
    let protos: Vec<String> = ["event", "ingest", "query"]
        .iter()
        .map(|p| {
            root.join(format!("proto/tributary/v1/{p}.proto"))
                .display()
                .to_string()
        })
        .collect();
    let protoc = Command::new("python3")
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}", root.join("proto").display()))
        .arg(format!("--python_out={}", generated.display()))
        .arg(format!("--grpc_python_out={}", generated.display()))
        .args(&protos)
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run python3 ({e}); dev/setup installs examples/python/requirements.txt"
            )
        })?;
    anyhow::ensure!(
        protoc.status.success(),
        "grpc_tools.protoc failed (dev/setup installs examples/python/requirements.txt): {}",
        String::from_utf8_lossy(&protoc.stderr)
    );

    let stack = TestStack::start().await?;
    let sink = sink::start(&stack, |_| {}).await?;
    let processor =
        processor::start(&stack, |c| c.emit_interval = Duration::from_millis(200)).await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;

    let address = ingest.grpc_addr().to_string();
    let script = root.join("examples/python/stream_and_query.py");
    let generated_path = generated.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(address)
            .env("PYTHONPATH", generated_path)
            .output()
    })
    .await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(
            "event 4: rejected, ad_click.ip_address: `not-an-ip` is not an IPv4 or IPv6 address"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("acked 9, rejected 1"), "{stdout}");
    assert!(stdout.contains(": count 9, distinct IPs 9"), "{stdout}");

    let _ = std::fs::remove_dir_all(&generated);
    processor.shutdown().await?;
    sink.shutdown().await?;
    Ok(())
}
