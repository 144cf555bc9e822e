//! Per-key rate limits over gRPC against a real stack: over the limit a call
//! gets RESOURCE_EXHAUSTED with a google.rpc.RetryInfo detail and
//! `retry-after` metadata and nothing is produced, another key is
//! unaffected, a stream is charged per event (answered up to the limit, then
//! ended with RESOURCE_EXHAUSTED), and after the delay the key works again.
mod support;

use std::time::{Duration, Instant};

use support::records_in;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;
use tributary_proto::v1::{
    AdClick, Event, GetAggregatesRequest, SubmitBatchRequest, SubmitEventRequest,
    SubmitEventsRequest, event::Payload, event_result::Outcome,
    ingest_service_client::IngestServiceClient, query_service_client::QueryServiceClient,
};
use tributary_stack::{TestStack, ingest::RunningIngest};

const AD_CLICK_TOPIC: &str = "tributary.events.ad_click";

fn click(i: usize) -> Event {
    Event {
        event_time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        idempotency_key: format!("rate-{i}"),
        payload: Some(Payload::AdClick(AdClick {
            ip_address: "203.0.113.9".into(),
            user_agent: "rate-test".into(),
            referring_url: "https://example.com/".into(),
            advertiser_id: "adv-rate".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn with_key<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

/// The `retry-after` metadata, checked against the RetryInfo detail.
fn retry_after(status: &Status) -> u64 {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let secs: u64 = status
        .metadata()
        .get("retry-after")
        .unwrap_or_else(|| panic!("no retry-after metadata: {status:?}"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let details = status.get_error_details();
    let delay = details
        .retry_info()
        .and_then(|r| r.retry_delay)
        .unwrap_or_else(|| panic!("no RetryInfo detail: {status:?}"));
    assert!(delay > Duration::ZERO && delay <= Duration::from_secs(secs));
    assert!(Duration::from_secs(secs) - delay < Duration::from_secs(1));
    assert_eq!(details.error_info().unwrap().reason, "RATE_LIMITED");
    secs
}

#[tokio::test]
async fn over_its_rate_limit_a_key_gets_resource_exhausted_with_retry_info() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |c| {
        c.ingest.edge.auth.api_keys = vec!["busy".into(), "quiet".into(), "warm-up".into()];
        c.ingest.edge.rate_limit.per_second = Some(1.0);
        c.ingest.edge.rate_limit.burst = Some(3.0);
    })
    .await?;
    let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;
    let submit = |key: &str, i: usize| {
        with_key(
            key,
            SubmitEventRequest {
                event: Some(click(i)),
            },
        )
    };
    // The first event creates the topic, which takes a while: not on the
    // keys under test.
    client.submit_event(submit("warm-up", 0)).await?;

    let started = Instant::now();
    for i in 1..=3 {
        client.submit_event(submit("busy", i)).await?;
    }
    let refused = client.submit_event(submit("busy", 4)).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the burst took {:?}: tokens refilled meanwhile",
        started.elapsed()
    );
    let wait = retry_after(&refused);
    assert_eq!(wait, 1);

    // Queries are charged to the same bucket, one per call.
    let mut queries = QueryServiceClient::connect(ingest.grpc_url()).await?;
    let query = queries
        .get_aggregates(with_key("busy", GetAggregatesRequest::default()))
        .await
        .unwrap_err();
    retry_after(&query);

    // Another key is unaffected, and a stream is charged per event: of 5
    // events, "quiet"'s burst of 3 are stored and the stream then ends.
    let events: Vec<SubmitEventsRequest> = (10..15)
        .map(|i| SubmitEventsRequest {
            event: Some(click(i)),
            ..Default::default()
        })
        .collect();
    let mut results = client
        .submit_events(with_key("quiet", tokio_stream::iter(events)))
        .await?
        .into_inner();
    let mut acked = Vec::new();
    let ending = loop {
        match results.message().await {
            Ok(Some(response)) => {
                let result = response.result.expect("a result");
                assert!(
                    matches!(result.outcome, Some(Outcome::Ack(_))),
                    "{result:?}"
                );
                acked.push(result.index);
            }
            Ok(None) => panic!("the stream ended without RESOURCE_EXHAUSTED"),
            Err(status) => break status,
        }
    };
    assert_eq!(acked, [0, 1, 2]);
    retry_after(&ending);
    assert!(ending.message().contains("index 3"), "{}", ending.message());
    assert_eq!(records_in(&stack.kafka(), AD_CLICK_TOPIC).await?, 1 + 3 + 3);

    // After Retry-After the key works again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    client.submit_event(submit("busy", 6)).await?;

    // A batch is all or nothing: "busy" has no token left for two events.
    let batch = client
        .submit_batch(with_key(
            "busy",
            SubmitBatchRequest {
                events: vec![click(7), click(8)],
            },
        ))
        .await
        .unwrap_err();
    retry_after(&batch);
    assert_eq!(
        records_in(&stack.kafka(), AD_CLICK_TOPIC).await?,
        1 + 3 + 3 + 1
    );
    Ok(())
}

#[tokio::test]
async fn without_api_keys_callers_are_limited_by_address() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    // The topic exists beforehand, so the first event is quick and no token
    // refills (one per 2 s) before the second.
    tributary_common::kafka::ensure_topics(&stack.kafka(), &[AD_CLICK_TOPIC.to_string()], 4)
        .await?;
    let ingest = RunningIngest::start(&stack, |c| {
        c.ingest.edge.rate_limit.per_second = Some(0.5);
        c.ingest.edge.rate_limit.burst = Some(1.0);
    })
    .await?;
    let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;
    client
        .submit_event(SubmitEventRequest {
            event: Some(click(0)),
        })
        .await?;
    // A new connection from the same address shares the bucket, whatever key
    // it presents (keys are not checked without configured keys).
    let mut other = IngestServiceClient::connect(ingest.grpc_url()).await?;
    let refused = other
        .submit_event(with_key(
            "made-up",
            SubmitEventRequest {
                event: Some(click(1)),
            },
        ))
        .await
        .unwrap_err();
    let wait = retry_after(&refused);
    assert_eq!(wait, 2);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    other
        .submit_event(SubmitEventRequest {
            event: Some(click(2)),
        })
        .await?;
    assert_eq!(records_in(&stack.kafka(), AD_CLICK_TOPIC).await?, 2);
    Ok(())
}
