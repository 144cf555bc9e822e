//! `examples/python/stream_and_query.py`, with stubs generated from proto/ by
//! grpcio-tools, streams events to a real pipeline that has had traffic on
//! every partition, and reads the aggregate back through the query API.
use std::{path::Path, process::Command, time::Duration};

use tributary_proto::v1::{
    AdClick, Event, SubmitBatchRequest, event::Payload, event_result::Outcome,
    ingest_service_client::IngestServiceClient,
};
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

    // Traffic first, on many keys, so every partition has a watermark: the
    // example must work on a stack in use, not only on a fresh one.
    let now = chrono::Utc::now().timestamp_millis();
    let traffic: Vec<Event> = (0..40)
        .map(|i| Event {
            event_time: Some(prost_types::Timestamp {
                seconds: now.div_euclid(1000),
                nanos: 0,
            }),
            idempotency_key: format!("traffic-{i}"),
            payload: Some(Payload::AdClick(AdClick {
                ip_address: "198.51.100.1".into(),
                user_agent: "traffic".into(),
                referring_url: "https://example.com/".into(),
                advertiser_id: format!("busy-{i}"),
                ..Default::default()
            })),
            ..Default::default()
        })
        .collect();
    let results = IngestServiceClient::connect(ingest.grpc_url())
        .await?
        .submit_batch(SubmitBatchRequest { events: traffic })
        .await?
        .into_inner()
        .results;
    assert!(
        results
            .iter()
            .all(|r| matches!(r.outcome, Some(Outcome::Ack(_))))
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

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
