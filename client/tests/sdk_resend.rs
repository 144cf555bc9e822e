//! The SDK's sender survives ingest being SIGKILLed mid-stream: it reconnects
//! to the restarted ingest, resends every unacknowledged event with its
//! original idempotency key, and the final aggregates count every event
//! exactly once.
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tributary_client::{Client, Outcome, SenderOptions, event, proto::GetAggregatesRequest};
use tributary_stack::{TestStack, ingest::server_process, processor, sink, tansu::free_port};

const MINUTE: i64 = 60_000;
const EVENTS: usize = 3000;

fn start_ingest(stack: &TestStack, grpc: u16, http: u16) -> anyhow::Result<tokio::process::Child> {
    Ok(server_process(stack, grpc, http)?
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?)
}

#[tokio::test]
async fn the_sender_resends_unacknowledged_events_after_ingest_is_killed_and_counts_are_exact()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let sink = sink::start(&stack, |_| {}).await?;
    let processor = processor::start(&stack, processor::quick_windows).await?;
    let (grpc, http) = (free_port()?, free_port()?);
    let mut ingest = start_ingest(&stack, grpc, http)?;

    let client = Client::new(format!("http://127.0.0.1:{grpc}"))?;
    let w = (chrono::Utc::now().timestamp_millis() / MINUTE - 5) * MINUTE;
    let sent = Arc::new(AtomicUsize::new(0));
    let sending = {
        let (client, sent) = (client.clone(), sent.clone());
        tokio::spawn(async move {
            let sender = client.sender(SenderOptions {
                window: 64,
                // The ingest process may still be starting when the first
                // event is sent.
                first_connect_timeout: Duration::from_secs(60),
                ..Default::default()
            });
            let mut outcomes = Vec::new();
            for i in 0..EVENTS {
                let click = event::ad_click(
                    "adv-resend",
                    format!("10.7.0.{}", i % 9),
                    "sdk-test",
                    "https://example.com/",
                )
                .event_time_millis(w + (i as i64 * 10) % MINUTE)
                .idempotency_key(format!("resend-{i}"))
                .build();
                outcomes.push(sender.send(click).await?);
                sent.fetch_add(1, Ordering::SeqCst);
            }
            sender.close().await?;
            let mut acked = 0;
            for outcome in outcomes {
                if matches!(outcome.await?, Outcome::Acked(_)) {
                    acked += 1;
                }
            }
            anyhow::Ok(acked)
        })
    };

    // Kill ingest while events are in flight, and start it again on the same ports.
    while sent.load(Ordering::SeqCst) < EVENTS / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ingest.kill().await?;
    let killed_at = sent.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut ingest = start_ingest(&stack, grpc, http)?;

    let acked = tokio::time::timeout(Duration::from_secs(120), sending).await???;
    assert!(
        killed_at < EVENTS,
        "ingest was killed after everything was sent"
    );
    assert_eq!(acked, EVENTS);

    let request = GetAggregatesRequest {
        event_type: "ad_click".into(),
        start_time: Some(event::timestamp(
            chrono::DateTime::from_timestamp_millis(w).unwrap(),
        )),
        end_time: Some(event::timestamp(
            chrono::DateTime::from_timestamp_millis(w + MINUTE).unwrap(),
        )),
        ..Default::default()
    };
    let mut got = Vec::new();
    for _ in 0..300 {
        got = match client.aggregates(request.clone()).collect().await {
            Ok(rows) => rows
                .iter()
                .map(|a| (a.key.clone(), a.count, a.distinct_count))
                .collect(),
            Err(_) => Vec::new(),
        };
        if got == [("adv-resend".to_string(), EVENTS as i64, Some(9))] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(got, [("adv-resend".to_string(), EVENTS as i64, Some(9))]);

    ingest.kill().await?;
    processor.shutdown().await?;
    sink.shutdown().await?;
    Ok(())
}
