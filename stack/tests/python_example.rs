//! `examples/python/stream_and_query.py`, with stubs generated from proto/ by
//! grpcio-tools, streams events to a real pipeline that has had traffic on
//! every partition, and reads the aggregate back through the query API.
use std::{path::Path, process::Command, time::Duration};

use tributary_stack::{
    TestStack,
    events::{ad_click, submit_acknowledged},
    ingest::RunningIngest,
    processor, sink,
};

mod support;

#[tokio::test]
async fn the_python_example_streams_events_and_queries_the_aggregate() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let stubs = support::python_stubs()?;

    let stack = TestStack::start().await?;
    let sink = sink::start(&stack, |_| {}).await?;
    let processor =
        processor::start(&stack, |c| c.emit_interval = Duration::from_millis(200)).await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;

    // Traffic first, on many keys, so every partition has a watermark: the
    // example must work on a stack in use, not only on a fresh one.
    let now = chrono::Utc::now().timestamp_millis();
    let traffic = (0..40)
        .map(|i| {
            ad_click(
                &format!("busy-{i}"),
                "198.51.100.1",
                now,
                &format!("traffic-{i}"),
            )
        })
        .collect();
    submit_acknowledged(&ingest.grpc_url(), traffic).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let address = ingest.grpc_addr().to_string();
    let script = root.join("examples/python/stream_and_query.py");
    let generated_path = stubs.path().to_path_buf();
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

    processor.shutdown().await?;
    sink.shutdown().await?;
    Ok(())
}
