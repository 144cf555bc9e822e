//! The pipeline against a registry that serves TLS with a private CA and
//! lets in only authenticated users: ingest, the processor and the sink
//! pass the credentials and trust the CA they are configured with, and
//! events still come out of `GetAggregates` exactly.
use std::time::Duration;

use tributary_proto::v1::{GetAggregatesRequest, query_service_client::QueryServiceClient};
use tributary_stack::{
    TestStack,
    events::{ad_click, submit_acknowledged, timestamp},
    ingest::RunningIngest,
    processor, sink,
};

const MINUTE: i64 = 60_000;

#[tokio::test]
async fn the_pipeline_authenticates_to_a_tls_registry() -> anyhow::Result<()> {
    let stack = TestStack::start_guarded().await?;
    assert!(stack.registry.url().starts_with("https://"));
    assert!(stack.registry_args().basic_auth.is_some());

    // Without credentials the registry refuses: the pipeline's success
    // below is owed to the credentials it passes.
    let refused = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(
            stack.registry_args().ca.unwrap(),
        )?)?])
        .build()?
        .get(format!("{}/subjects", stack.registry.url()))
        .send()
        .await?;
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);

    let sink = sink::start(&stack, |_| {}).await?;
    let processor = processor::start(&stack, processor::quick_windows).await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;

    let now = chrono::Utc::now().timestamp_millis();
    let w = (now / MINUTE - 2) * MINUTE;
    let events = (0..6)
        .map(|i| {
            ad_click(
                "adv-guarded",
                &format!("10.7.0.{}", i % 3),
                w + i * 1000,
                &format!("g-{i}"),
            )
        })
        .collect();
    submit_acknowledged(&ingest.grpc_url(), events).await?;

    let mut query = QueryServiceClient::connect(ingest.grpc_url()).await?;
    let request = GetAggregatesRequest {
        event_type: "ad_click".into(),
        start_time: timestamp(w),
        end_time: timestamp(w + MINUTE),
        ..Default::default()
    };
    let mut got = None;
    for _ in 0..300 {
        let aggregates = query.get_aggregates(request.clone()).await?.into_inner();
        got = aggregates
            .aggregates
            .first()
            .map(|a| (a.key.clone(), a.count, a.distinct_count));
        if got.as_ref().is_some_and(|(_, count, _)| *count == 6) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(got, Some(("adv-guarded".to_string(), 6, Some(3))));

    ingest.shutdown().await?;
    processor.shutdown().await?;
    sink.shutdown().await?;
    Ok(())
}
