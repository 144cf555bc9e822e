//! The sender writes its `SubmitEvents` messages itself (each event encoded
//! once, straight into its message) instead of through the generated
//! client's prost codec. Ingest takes them exactly like the generated
//! client's: the same events, valid and invalid mixed, sent both ways, are
//! answered alike, event by event, in order.
use std::time::Duration;

use futures::StreamExt as _;
use tributary_client::{
    Client, Outcome, SenderOptions, event,
    proto::{self, SubmitEventsRequest, event_result},
};
use tributary_proto::stream_results;
use tributary_stack::{TestStack, ingest::RunningIngest};

const EVENTS: usize = 120;

/// Event `i` of a run named `run`: every seventh refused (an IP address
/// that is none), the rest ad clicks and price ticks.
fn event(run: &str, i: usize) -> proto::Event {
    let key = format!("wire-{run}-{i}");
    if i % 7 == 3 {
        event::ad_click("adv-wire", "not-an-ip", "sdk-test", "https://example.com/")
            .idempotency_key(key)
            .build()
    } else if i.is_multiple_of(2) {
        event::ad_click(
            "adv-wire",
            format!("10.8.0.{}", i % 200),
            "sdk-test",
            "https://example.com/",
        )
        .campaign_id("wire")
        .metadata(serde_json::json!({"i": i, "slot": "top"}))
        .idempotency_key(key)
        .build()
    } else {
        event::price_tick("ETH-USD", "wire", 3000.0 + i as f64)
            .volume(0.5)
            .idempotency_key(key)
            .build()
    }
}

/// What an answer says, without where the event was stored.
#[derive(Debug, PartialEq)]
enum Answer {
    Acked { topic: String, schema_id: i32 },
    Rejected(proto::EventError),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_answers_the_senders_messages_like_the_generated_clients() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let client = Client::new(ingest.grpc_url())?;

    // The generated client, prost's codec: the events in two messages.
    let events: Vec<proto::Event> = (0..EVENTS).map(|i| event("generated", i)).collect();
    let requests: Vec<SubmitEventsRequest> = events
        .chunks(EVENTS / 2)
        .map(|chunk| SubmitEventsRequest {
            event: None,
            events: chunk.to_vec(),
        })
        .collect();
    let mut responses = client
        .ingest()
        .submit_events(futures::stream::iter(requests))
        .await?
        .into_inner();
    let mut generated = Vec::new();
    while let Some(response) = tokio::time::timeout(Duration::from_secs(30), responses.next())
        .await?
        .transpose()?
    {
        for result in stream_results::results(response) {
            assert_eq!(result.index, generated.len() as u64);
            generated.push(match result.outcome {
                Some(event_result::Outcome::Ack(ack)) => Answer::Acked {
                    topic: ack.topic,
                    schema_id: ack.schema_id,
                },
                Some(event_result::Outcome::Error(error)) => Answer::Rejected(error),
                None => panic!("a result without an outcome"),
            });
        }
    }

    // The sender, with the same events (other idempotency keys).
    let sender = client.sender(SenderOptions {
        first_connect_timeout: Duration::from_secs(30),
        ..Default::default()
    });
    let mut pending = Vec::new();
    for i in 0..EVENTS {
        pending.push(sender.send(event("sender", i)).await?);
    }
    tokio::time::timeout(Duration::from_secs(30), sender.close()).await??;
    let mut sent = Vec::new();
    for outcome in pending {
        sent.push(match outcome.await? {
            Outcome::Acked(ack) => Answer::Acked {
                topic: ack.topic,
                schema_id: ack.schema_id,
            },
            Outcome::Rejected(error) => Answer::Rejected(error),
        });
    }

    assert_eq!(generated.len(), EVENTS);
    assert_eq!(sent, generated);
    let refused = sent
        .iter()
        .filter(|a| matches!(a, Answer::Rejected(e) if e.field == "ad_click.ip_address"))
        .count();
    assert_eq!(refused, (0..EVENTS).filter(|i| i % 7 == 3).count());
    for topic in ["tributary.events.ad_click", "tributary.events.price_tick"] {
        assert!(
            sent.iter()
                .any(|a| matches!(a, Answer::Acked { topic: t, .. } if t == topic)),
            "{topic}"
        );
    }
    ingest.shutdown().await?;
    Ok(())
}
