//! `trib dlq` on real dead letters of every reason the processor gives:
//! `list` counts them by reason and source, `show` decodes one, and
//! `replay` after the cause is fixed counts them once, however often it runs.
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use tributary_common::{kafka, schemas, wire};
use tributary_proto::v1::{GetAggregatesRequest, query_service_client::QueryServiceClient};
use tributary_stack::{
    TestStack, bootstrap,
    events::{ad_click, submit_acknowledged, timestamp},
    ingest::RunningIngest,
    processor, sink,
};

const MINUTE: i64 = 60_000;

async fn trib(stack: &TestStack, args: &[&str]) -> anyhow::Result<(String, i32)> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_trib"))
        .arg("dlq")
        .args(["--kafka-brokers", &stack.kafka().brokers])
        .args(["--registry-url", &stack.registry.url()])
        .args(args)
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "trib dlq {args:?}: {stderr}");
    Ok((
        String::from_utf8(output.stdout)?,
        output.status.code().unwrap_or(-1),
    ))
}

/// The count of `adv-dlq` in the window starting at `window`, once it is `want`.
async fn count_reaches(
    query: &mut QueryServiceClient<tonic::transport::Channel>,
    window: i64,
    want: i64,
) -> anyhow::Result<i64> {
    let request = GetAggregatesRequest {
        event_type: "ad_click".into(),
        keys: vec!["adv-dlq".into()],
        start_time: timestamp(window),
        end_time: timestamp(window + MINUTE),
        ..Default::default()
    };
    let mut count = 0;
    for _ in 0..150 {
        count = query
            .get_aggregates(request.clone())
            .await?
            .into_inner()
            .aggregates
            .first()
            .map_or(0, |a| a.count);
        if count == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(count)
}

#[tokio::test]
async fn trib_dlq_lists_shows_and_replays_once_after_the_fix() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    bootstrap::create_topics(&stack.kafka(), 2).await?;
    let registered = bootstrap::register_schemas(&stack.kafka(), &stack.registry_args()).await?;
    let sink = sink::start(&stack, |_| {}).await?;
    let first = processor::start(&stack, processor::quick_windows).await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;

    // Poison: not framed, an unknown schema id, a known id over garbage.
    let topic = stack.kafka().event_topic(schemas::AD_CLICK);
    let producer: FutureProducer = kafka::producer_config(&stack.kafka()).create()?;
    let ad_click_id = registered
        .iter()
        .filter(|r| r.subject == schemas::value_subject(&topic))
        .map(|r| r.id)
        .max()
        .unwrap();
    let mut unknown = Vec::new();
    wire::frame_into(9_999, b"\x02", &mut unknown);
    let mut garbage = Vec::new();
    wire::frame_into(ad_click_id, &[0xff; 3], &mut garbage);
    for payload in [b"plain text".to_vec(), unknown, garbage] {
        producer
            .send(
                FutureRecord::to(&topic).key("adv-dlq").payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
    }

    // Expired: an ingest configured to accept two days (unlike the
    // processor's one) acknowledges 3 clicks 25 hours old.
    let lenient = RunningIngest::start(&stack, |config| {
        config.ingest.limits.event_time.max_event_time_skew = Duration::from_secs(48 * 3600);
    })
    .await?;
    let now = chrono::Utc::now().timestamp_millis();
    let old_window = (now - 25 * 60 * MINUTE) / MINUTE * MINUTE;
    submit_acknowledged(
        &ingest.grpc_url(),
        vec![ad_click("adv-dlq", "10.1.0.1", now, "now-1")],
    )
    .await?;
    let old = (0..3)
        .map(|i| {
            ad_click(
                "adv-dlq",
                &format!("10.1.1.{i}"),
                old_window + i * 1000,
                &format!("old-{i}"),
            )
        })
        .collect();
    submit_acknowledged(&lenient.grpc_url(), old).await?;
    lenient.shutdown().await?;

    let mut listed = String::new();
    for _ in 0..100 {
        listed = trib(&stack, &["list"]).await?.0;
        if listed.starts_with("tributary.dead-letter: 6 dead letters") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        listed.starts_with("tributary.dead-letter: 6 dead letters"),
        "{listed}"
    );
    for (reason, count) in [
        ("expired", 3),
        ("not_framed", 1),
        ("unknown_schema", 1),
        ("undecodable", 1),
    ] {
        assert!(
            listed.lines().any(|l| l.contains(reason)
                && l.contains(&topic)
                && l.split_whitespace().any(|w| w == count.to_string())),
            "no `{reason}` row counting {count}:\n{listed}"
        );
    }

    // Show an expired one: readable, decoded through the registry.
    let expired_at = listed
        .lines()
        .find(|l| l.contains(" expired ") && l.contains("/"))
        .and_then(|l| {
            l.split_whitespace()
                .find(|w| w.contains('/') && !w.contains('.'))
        })
        .expect("an expired dead letter's PARTITION/OFFSET")
        .to_string();
    let (shown, code) = trib(&stack, &["show", &expired_at]).await?;
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("reason:  expired"), "{shown}");
    assert!(
        shown.contains("is before 20")
            && shown
                .contains("more than --max-event-time-skew (1day) before it was accepted at 20"),
        "times and durations are readable: {shown}"
    );
    assert!(shown.contains("\"advertiser_id\": \"adv-dlq\""), "{shown}");
    assert!(shown.contains("tributary.idempotency_key: old-"), "{shown}");
    let missing = tokio::process::Command::new(env!("CARGO_BIN_EXE_trib"))
        .args([
            "dlq",
            "--kafka-brokers",
            &stack.kafka().brokers,
            "show",
            "0/999",
        ])
        .output()
        .await?;
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("has no record at 0/999"),
        "{missing:?}"
    );

    // The fix: a processor that keeps windows for two days, like that ingest.
    first.shutdown().await?;
    let _second = processor::start(&stack, |config| {
        processor::quick_windows(config);
        config.event_time.max_event_time_skew = Duration::from_secs(48 * 3600);
    })
    .await?;
    let (dry, code) = trib(&stack, &["replay", "--reason", "expired", "--dry-run"]).await?;
    assert_eq!(
        (dry.lines().last(), code),
        (
            Some("would replay 3, skipped 0 already replayed, failed 0"),
            0
        ),
        "{dry}"
    );
    let (replayed, code) =
        trib(&stack, &["replay", "--reason", "expired", "--since", "1h"]).await?;
    assert_eq!(
        (replayed.trim_end(), code),
        ("replayed 3, skipped 0 already replayed, failed 0", 0)
    );
    let mut query = QueryServiceClient::connect(ingest.grpc_url()).await?;
    assert_eq!(count_reaches(&mut query, old_window, 3).await?, 3);

    // Replaying again counts nothing twice.
    let (again, _) = trib(&stack, &["replay", "--reason", "expired"]).await?;
    assert_eq!(
        again.trim_end(),
        "replayed 0, skipped 3 already replayed, failed 0"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count_reaches(&mut query, old_window, 3).await?, 3);

    ingest.shutdown().await?;
    sink.shutdown().await?;
    Ok(())
}
