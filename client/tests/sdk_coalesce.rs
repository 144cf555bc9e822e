//! A sender with a linger of a millisecond, whose events keep coming,
//! holds them together for about that long: on a real stack every event is still answered, acknowledged
//! once and in order, lone events included, and closing the sender answers
//! every event sent. (When the hold starts and ends is the unit test's
//! part, `Coalescer` in `src/sender.rs`: a held event would also reach
//! ingest through the resend after the stream ends, so this test cannot
//! tell a flush on close from a resend.)
use std::time::Duration;

use tributary_client::{Client, Outcome, SenderOptions, event, proto};
use tributary_stack::{TestStack, ingest::RunningIngest};

const EVENTS: usize = 600;

fn click(i: usize) -> proto::Event {
    event::ad_click(
        "adv-coalesce",
        format!("10.9.0.{}", i % 200),
        "sdk-test",
        "https://example.com/",
    )
    .idempotency_key(format!("coalesce-{i}"))
    .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_keep_coming_are_answered_once_and_in_order() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let client = Client::new(ingest.grpc_url())?;
    let sender = client.sender(SenderOptions {
        first_connect_timeout: Duration::from_secs(30),
        linger: Duration::from_millis(1),
        ..Default::default()
    });

    // A lone event (the first, then one after a pause) is answered.
    for i in 0..2 {
        let outcome = tokio::time::timeout(
            Duration::from_secs(30),
            sender.send(click(EVENTS + i)).await?,
        )
        .await??;
        assert!(matches!(outcome, Outcome::Acked(_)), "{outcome:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Events 200 µs apart (blocking this worker; the sender runs on the
    // other): held together, never waiting for the window (the default, far
    // larger than this).
    let mut outcomes = Vec::new();
    for i in 0..EVENTS {
        outcomes.push(sender.send(click(i)).await?);
        std::thread::sleep(Duration::from_micros(200));
    }
    // The last events are still held: closing sends them and waits for
    // their answers.
    tokio::time::timeout(Duration::from_secs(30), sender.close()).await??;

    // One key, so one partition: offsets rise in the order events were sent.
    let mut last: Option<(i32, i64)> = None;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let Outcome::Acked(ack) = outcome.await? else {
            panic!("event {i} was not acknowledged");
        };
        if let Some((partition, offset)) = last {
            assert_eq!(ack.partition, partition, "event {i}");
            assert!(
                ack.offset > offset,
                "event {i}: {} after {offset}",
                ack.offset
            );
        }
        last = Some((ack.partition, ack.offset));
    }
    ingest.shutdown().await?;
    Ok(())
}
