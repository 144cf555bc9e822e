//! "Acknowledged ⇒ counted", whatever the event time: with current traffic
//! on some partitions, backfills 10 minutes, 3 hours and 23 hours old (on
//! keys whose partitions have traffic and keys whose partitions have none)
//! come out of `GetAggregates` exact, counts and distinct counts, within
//! seconds of their acknowledgement, including corrections of windows whose
//! final was already stored and retries that arrive after their window
//! closed; an event older than the retention is refused by ingest, naming
//! `event_time` and the accepted range. The ground truth is computed from
//! what the clients were told: the Rust SDK's, grpcio's (Python) and
//! grpc-js's (Node) acknowledgements.
use rstest::rstest;
use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use rdkafka::producer::{FutureProducer, FutureRecord};
use tributary_common::kafka;
use tributary_proto::v1::{
    Event, GetAggregatesRequest, SubmitBatchRequest, event::Payload, event_result::Outcome,
    ingest_service_client::IngestServiceClient, query_service_client::QueryServiceClient,
};
use tributary_stack::{
    TestStack,
    broker::BrokerKind,
    events::{ad_click, submit_acknowledged, timestamp},
    ingest::RunningIngest,
    processor, sink,
};

mod support;

use support::{ClickTruth, ForeignClient, clicks_exact_within, submit_foreign};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const PARTITIONS: i32 = 4;

/// The partition each of `keys` lands in under the services' producer
/// settings (librdkafka's key hash), found by producing them to a scratch
/// topic with as many partitions as the event topics.
async fn partitions_of(stack: &TestStack, keys: &[String]) -> anyhow::Result<HashMap<String, i32>> {
    let scratch = "scratch.partitions".to_string();
    kafka::ensure_topics(&stack.kafka(), std::slice::from_ref(&scratch), PARTITIONS).await?;
    let producer: FutureProducer = kafka::producer_config(&stack.kafka()).create()?;
    let mut found = HashMap::new();
    for key in keys {
        let delivery = producer
            .send(
                FutureRecord::to(&scratch).key(key).payload("probe"),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
        found.insert(key.clone(), delivery.partition);
    }
    Ok(found)
}

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test]
async fn backfills_of_any_accepted_age_are_counted_exactly(
    #[case] broker: BrokerKind,
) -> anyhow::Result<()> {
    let stack = TestStack::start_on(broker).await?;
    tributary_stack::bootstrap::create_topics(&stack.kafka(), PARTITIONS).await?;
    let sink = sink::start(&stack, |_| {}).await?;
    let processor = processor::start(&stack, processor::quick_windows).await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;

    // Two partitions get current traffic ("hot"), the other two none ("cold").
    let candidates: Vec<String> = (0..64).map(|i| format!("adv-{i}")).collect();
    let partition_of = partitions_of(&stack, &candidates).await?;
    let hot_partitions: BTreeSet<i32> = [0, 1].into();
    let pick = |hot: bool| -> Vec<String> {
        let mut picked = Vec::new();
        for p in 0..PARTITIONS {
            if hot_partitions.contains(&p) == hot {
                picked.extend(
                    candidates
                        .iter()
                        .filter(|k| partition_of[*k] == p)
                        .take(2)
                        .cloned(),
                );
            }
        }
        picked
    };
    let (hot, cold) = (pick(true), pick(false));
    assert_eq!((hot.len(), cold.len()), (4, 4), "{partition_of:?}");

    let mut truth = ClickTruth::default();
    let url = ingest.grpc_url();
    let mut query = QueryServiceClient::connect(url.clone()).await?;
    let rust = Via::Rust(&url);
    let grpcio = Via::Foreign(ForeignClient::Grpcio, ingest.grpc_addr());
    let grpc_js = Via::Foreign(ForeignClient::GrpcJs, ingest.grpc_addr());
    let now = chrono::Utc::now().timestamp_millis();
    let clicks = |keys: &[String], at: i64, tag: &str| -> Vec<Event> {
        keys.iter()
            .flat_map(|key| {
                (0..3).map(move |i| {
                    ad_click(
                        key,
                        &format!("10.{}.0.{}", tag.len(), i % 2),
                        at + i * 1000,
                        &format!("{key}-{tag}-{i}"),
                    )
                })
            })
            .collect()
    };

    // Current traffic moves the hot partitions' watermarks to now.
    submit(rust, &partition_of, &mut truth, clicks(&hot, now, "now")).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Backfills, oldest last: each is far behind every watermark it meets,
    // and each comes from another client.
    for (age, tag, via) in [
        (10 * MINUTE, "10m", rust),
        (3 * HOUR, "3h", grpcio),
        (23 * HOUR, "23h", grpc_js),
    ] {
        let at = (now - age).div_euclid(MINUTE) * MINUTE + 5_000;
        let mut events = clicks(&hot, at, tag);
        events.extend(clicks(&cold, at, tag));
        submit(via, &partition_of, &mut truth, events).await?;
    }
    // Once every backfilled window's final is stored: more events for them
    // (corrections), and retries of events counted before the close.
    assert!(
        clicks_exact_within(&mut query, &truth, Duration::from_secs(30)).await?,
        "the first backfills were not counted within 30 s"
    );
    let pool = sqlx::PgPool::connect(stack.database.url()).await?;
    let mut open = i64::MAX;
    for _ in 0..150 {
        open = sqlx::query_scalar(
            "SELECT count(*) FROM aggregates WHERE NOT is_final
             AND window_start < to_timestamp($1::float8 / 1000)",
        )
        .bind((now - 5 * MINUTE) as f64)
        .fetch_one(&pool)
        .await?;
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(open, 0, "every backfilled window has its final");
    let at = (now - 10 * MINUTE).div_euclid(MINUTE) * MINUTE + 5_000;
    // Retries (same idempotency keys) from another client: counted once.
    submit(grpcio, &partition_of, &mut truth, clicks(&hot, at, "10m")).await?;
    let mut events = clicks(&hot, at + 20_000, "10m-late");
    events.extend(clicks(&cold, at + 20_000, "10m-late"));
    let last_ack = submit(grpc_js, &partition_of, &mut truth, events).await?;
    assert!(
        clicks_exact_within(&mut query, &truth, Duration::from_secs(10)).await?,
        "GetAggregates was not exact within 10 s of the last acknowledgement"
    );
    let elapsed = last_ack.elapsed();
    println!("exact {elapsed:?} after the last acknowledgement");

    // The corrected windows say so.
    let window_10m = (now - 10 * MINUTE).div_euclid(MINUTE) * MINUTE;
    let revisions: Vec<(String, i32)> = sqlx::query_as(
        "SELECT group_key, revision FROM aggregates WHERE event_type = 'ad_click'
         AND window_start = to_timestamp($1::float8 / 1000) ORDER BY group_key",
    )
    .bind(window_10m as f64)
    .fetch_all(&pool)
    .await?;
    assert_eq!(revisions.len(), 8, "{revisions:?}");
    assert!(
        revisions.iter().all(|(_, r)| *r >= 1),
        "every 10-minute-old window was corrected after its final: {revisions:?}"
    );
    // GetAggregates says the same.
    let served: Vec<(String, i64)> = query
        .get_aggregates(GetAggregatesRequest {
            event_type: "ad_click".into(),
            start_time: timestamp(window_10m),
            end_time: timestamp(window_10m + MINUTE),
            ..Default::default()
        })
        .await?
        .into_inner()
        .aggregates
        .into_iter()
        .map(|a| (a.key, a.revisions))
        .collect();
    let stored: Vec<(String, i64)> = revisions
        .into_iter()
        .map(|(key, r)| (key, i64::from(r)))
        .collect();
    assert_eq!(served, stored);

    // Older than the retention: refused, naming the field and the range.
    let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;
    let results = client
        .submit_batch(SubmitBatchRequest {
            events: vec![ad_click(&hot[0], "10.0.0.1", now - 25 * HOUR, "too-old")],
        })
        .await?
        .into_inner()
        .results;
    let Some(Outcome::Error(error)) = &results[0].outcome else {
        panic!("a 25-hour-old event was not refused: {results:?}")
    };
    assert_eq!(error.field, "event_time", "{error:?}");
    assert!(
        error.message.contains("outside the accepted range")
            && error.message.contains("--max-event-time-skew"),
        "{error:?}"
    );

    ingest.shutdown().await?;
    processor.shutdown().await?;
    sink.shutdown().await?;
    Ok(())
}

/// The client events are sent with.
#[derive(Clone, Copy, Debug)]
enum Via<'a> {
    /// The Rust client, to ingest's gRPC URL.
    Rust(&'a str),
    /// grpcio or grpc-js, to ingest's gRPC address.
    Foreign(ForeignClient, std::net::SocketAddr),
}

/// Submits `events` through ingest `via` a client, requires every one to be
/// acknowledged in the partition the probe found for its key, and adds them
/// to `truth`; returns when the last acknowledgement came.
async fn submit(
    via: Via<'_>,
    partition_of: &HashMap<String, i32>,
    truth: &mut ClickTruth,
    events: Vec<Event>,
) -> anyhow::Result<Instant> {
    let partitions: Vec<i32> = match via {
        Via::Rust(url) => submit_acknowledged(url, events.clone())
            .await?
            .iter()
            .map(|ack| ack.partition)
            .collect(),
        Via::Foreign(client, addr) => {
            let answers = submit_foreign(client, addr, &events).await?;
            let mut partitions = Vec::new();
            for (event, answer) in events.iter().zip(answers) {
                match answer {
                    Ok((partition, _)) => partitions.push(partition),
                    Err(error) => {
                        anyhow::bail!("{client:?}: {} was refused: {error}", event.idempotency_key)
                    }
                }
            }
            partitions
        }
    };
    for (event, partition) in events.iter().zip(partitions) {
        let Some(Payload::AdClick(click)) = &event.payload else {
            unreachable!("only clicks are sent")
        };
        assert_eq!(
            partition, partition_of[&click.advertiser_id],
            "ingest and the probe hash keys alike"
        );
        let at = event.event_time.as_ref().map_or(0, |t| t.seconds * 1000);
        truth.add(
            &click.advertiser_id,
            at,
            &event.idempotency_key,
            &click.ip_address,
        );
    }
    Ok(Instant::now())
}
