//! The sink against Tansu, the registry and Postgres: rows only move
//! forward, poison goes to the dead-letter topic, and a crash at any point
//! followed by a restart leaves exactly the expected rows and offsets.
use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use tributary_common::{kafka, registry_client, schemas};
use tributary_processor::{
    aggregate_record::AggregateEncoder,
    window::{Totals, Update},
};
use tributary_sink::{config::SinkConfig, startup};
use tributary_testkit::{TestStack, task::RunningTask};

const TOPIC: &str = "tributary.aggregates";

/// The sink in-process against `stack`, configured by `configure`.
async fn start_sink(
    stack: &TestStack,
    configure: impl FnOnce(&mut SinkConfig),
) -> anyhow::Result<RunningTask> {
    let mut config = SinkConfig::local(stack.kafka(), stack.registry_args(), stack.database.url());
    configure(&mut config);
    let pipeline = startup::build(&config).await?;
    Ok(RunningTask::spawn(|stop| pipeline.run(stop)))
}

struct Aggregates {
    producer: FutureProducer,
    encoder: AggregateEncoder,
}

impl Aggregates {
    async fn new(stack: &TestStack) -> anyhow::Result<Self> {
        let kafka_args = stack.kafka();
        kafka::ensure_topics(
            &kafka_args,
            &[TOPIC.to_string(), kafka_args.dead_letter_topic.clone()],
            2,
        )
        .await?;
        let settings = registry_client::settings(&stack.registry_args())?;
        let id = registry_client::register_avro(
            &settings,
            "tributary.aggregates-value",
            schemas::latest(schemas::AGGREGATE).unwrap().json,
        )
        .await?;
        Ok(Self {
            producer: kafka::producer_config(&kafka_args).create()?,
            encoder: AggregateEncoder::new(id)?,
        })
    }

    /// Produces a count update of `key` in the window starting at `start`.
    async fn send(
        &self,
        key: &str,
        start: i64,
        count: i64,
        is_final: bool,
        emitted_at: i64,
    ) -> anyhow::Result<()> {
        self.send_revision(key, start, count, is_final, emitted_at, 0)
            .await
    }

    /// Produces a count update that is the `revision`th correction.
    async fn send_revision(
        &self,
        key: &str,
        start: i64,
        count: i64,
        is_final: bool,
        emitted_at: i64,
        revision: u32,
    ) -> anyhow::Result<()> {
        let update = Update {
            group_key: key.into(),
            window_start_ms: start,
            window_end_ms: start + 60_000,
            totals: Totals::Count { count },
            is_final,
            revision,
        };
        let value = self.encoder.encode("page_view", &update, emitted_at)?;
        let record_key = AggregateEncoder::key("page_view", &update);
        self.producer
            .send(
                FutureRecord::to(TOPIC).key(&record_key).payload(&value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
        Ok(())
    }
}

async fn rows(pool: &PgPool) -> anyhow::Result<HashMap<(String, i64), (i64, bool)>> {
    let rows: Vec<(String, DateTime<Utc>, i64, bool)> =
        sqlx::query_as("SELECT group_key, window_start, count, is_final FROM aggregates")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(k, w, c, f)| ((k, w.timestamp_millis()), (c, f)))
        .collect())
}

/// Waits until the stored offsets cover `records` records over the topic.
async fn wait_for_offsets(pool: &PgPool, records: i64) -> anyhow::Result<()> {
    let mut stored = None;
    for _ in 0..300 {
        stored =
            sqlx::query_scalar("SELECT sum(next_offset)::int8 FROM sink_offsets WHERE topic = $1")
                .bind(TOPIC)
                .fetch_one(pool)
                .await?;
        if stored == Some(records) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!(
        "the sink never stored offsets covering {records} records (they cover {stored:?})"
    )
}

/// Waits until the stored offsets cover at least `records` records; returns
/// how many they cover.
async fn wait_for_offsets_at_least(pool: &PgPool, records: i64) -> anyhow::Result<i64> {
    let mut stored = None;
    for _ in 0..3000 {
        stored =
            sqlx::query_scalar("SELECT sum(next_offset)::int8 FROM sink_offsets WHERE topic = $1")
                .bind(TOPIC)
                .fetch_one(pool)
                .await?;
        if let Some(stored) = stored.filter(|&s| s >= records) {
            return Ok(stored);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!(
        "the sink never stored offsets covering {records} records (they cover {stored:?})"
    )
}

#[tokio::test]
async fn replayed_and_out_of_order_updates_never_regress_a_row() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let aggregates = Aggregates::new(&stack).await?;
    let sink = start_sink(&stack, |_| {}).await?;
    let pool = PgPool::connect(stack.database.url()).await?;

    aggregates.send("k", 0, 5, false, 2_000).await?;
    aggregates.send("k", 0, 3, false, 1_000).await?; // older, arrives later
    aggregates.send("k", 0, 7, true, 3_000).await?; // final
    aggregates.send("k", 0, 7, false, 2_500).await?; // replayed open update with the same count
    aggregates.send("k", 0, 4, true, 9_000).await?; // a partial recomputation after a processor restart
    aggregates.send("other", 60_000, 1, false, 1_000).await?;
    wait_for_offsets(&pool, 6).await?;

    let rows = rows(&pool).await?;
    assert_eq!(rows[&("k".to_string(), 0)], (7, true));
    assert_eq!(rows[&("other".to_string(), 60_000)], (1, false));
    assert_eq!(rows.len(), 2);
    sink.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn corrected_finals_replace_the_row_and_count_its_revisions() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let aggregates = Aggregates::new(&stack).await?;
    let sink = start_sink(&stack, |_| {}).await?;
    let pool = PgPool::connect(stack.database.url()).await?;

    aggregates.send("k", 0, 5, false, 1_000).await?;
    aggregates.send("k", 0, 7, true, 2_000).await?; // the first final
    wait_for_offsets(&pool, 2).await?;
    aggregates.send_revision("k", 0, 9, true, 3_000, 1).await?; // late events corrected it
    aggregates.send_revision("k", 0, 9, true, 3_000, 1).await?; // the same correction, re-emitted
    aggregates.send_revision("k", 0, 12, true, 5_000, 2).await?; // corrected again
    aggregates.send("k", 0, 7, true, 2_500).await?; // the first final, replayed
    wait_for_offsets(&pool, 6).await?;

    let (count, is_final, revision): (i64, bool, i32) =
        sqlx::query_as("SELECT count, is_final, revision FROM aggregates WHERE group_key = 'k'")
            .fetch_one(&pool)
            .await?;
    assert_eq!((count, is_final, revision), (12, true, 2));
    sink.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_record_that_can_never_be_written_is_dead_lettered_and_the_partition_goes_on()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let aggregates = Aggregates::new(&stack).await?;
    let sink = start_sink(&stack, |_| {}).await?;
    let pool = PgPool::connect(stack.database.url()).await?;

    aggregates
        .producer
        .send(
            FutureRecord::to(TOPIC)
                .key("x")
                .payload("not avro")
                .partition(0),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    aggregates.send("after", 0, 2, false, 1).await?;
    wait_for_offsets(&pool, 2).await?;
    assert_eq!(rows(&pool).await?[&("after".to_string(), 0)], (2, false));

    let consumer: rdkafka::consumer::StreamConsumer =
        kafka::consumer_config(&stack.kafka(), "dlq-check").create()?;
    rdkafka::consumer::Consumer::subscribe(&consumer, &["tributary.dead-letter"])?;
    let letter = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
    let reason = rdkafka::Message::headers(&letter)
        .and_then(|h| rdkafka::message::Headers::iter(h).find(|h| h.key == "tributary.dlq.reason"))
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned());
    assert_eq!(reason.as_deref(), Some("not_framed"));
    sink.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn crashes_in_the_middle_of_batches_and_restarts_leave_exactly_the_expected_rows()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let aggregates = Aggregates::new(&stack).await?;
    let pool = PgPool::connect(stack.database.url()).await?;
    tributary_store::migrate(&pool).await?;

    // 300 keys, each updated 1..=5 times with growing counts; the last is final.
    let mut expected = HashMap::new();
    let mut sent = 0;
    for round in 1..=5 {
        for k in 0..300 {
            if k % 5 < round - 1 {
                continue;
            }
            let key = format!("key-{k}");
            // A key's last update is its final one.
            let is_final = k % 5 == round - 1;
            aggregates
                .send(&key, 0, round as i64 * 10, is_final, round as i64)
                .await?;
            expected.insert((key, 0i64), (round as i64 * 10, is_final));
            sent += 1;
        }
    }
    // Small, slow batches, and a crash each time the sink is part-way through.
    let small = |c: &mut tributary_sink::config::SinkConfig| {
        c.batch_size = 37;
        c.batch_linger = Duration::from_millis(40);
    };
    let mut crashed_at = Vec::new();
    for threshold in [100, 400, 700] {
        let sink = start_sink(&stack, small).await?;
        crashed_at.push(wait_for_offsets_at_least(&pool, threshold).await?);
        sink.crash().await;
    }
    assert!(
        crashed_at.iter().all(|&at| at < sent),
        "crashed at {crashed_at:?} of {sent}: not mid-stream"
    );
    let sink = start_sink(&stack, small).await?;
    wait_for_offsets(&pool, sent).await?;
    assert_eq!(rows(&pool).await?, expected);
    sink.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn postgres_crashing_under_load_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let aggregates = Aggregates::new(&stack).await?;
    let postgres = tributary_testkit::private_postgres::PrivatePostgres::start()?;
    sqlx::query("CREATE DATABASE sink")
        .execute(&PgPool::connect(&postgres.url()).await?)
        .await?;
    let url = format!("{}/sink", postgres.server_url());
    let sink = start_sink(&stack, |c| {
        c.database_url = url.clone();
        c.batch_size = 25;
    })
    .await?;

    // 400 keys, two updates each, sent while Postgres goes down and comes back.
    let mut expected = HashMap::new();
    let mut sent = 0;
    for round in 1..=2i64 {
        for k in 0..400 {
            if round == 2 && k == 100 {
                postgres.crash()?;
            }
            if round == 2 && k == 300 {
                postgres.start_server()?;
            }
            let key = format!("key-{k}");
            aggregates
                .send(&key, 0, round * 3, round == 2, round)
                .await?;
            expected.insert((key, 0i64), (round * 3, round == 2));
            sent += 1;
        }
    }
    let pool = PgPool::connect(&url).await?;
    wait_for_offsets(&pool, sent).await?;
    assert_eq!(rows(&pool).await?, expected);
    sink.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn the_sink_binary_killed_with_sigkill_mid_stream_resumes_exactly() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let aggregates = Aggregates::new(&stack).await?;
    let pool = PgPool::connect(stack.database.url()).await?;
    tributary_store::migrate(&pool).await?;
    let mut expected = HashMap::new();
    for k in 0..600 {
        let key = format!("key-{k}");
        aggregates.send(&key, 0, k + 1, true, 1).await?;
        expected.insert((key, 0i64), (k + 1, true));
    }
    let spawn = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary-sink"))
            .env("TRIBUTARY_KAFKA_BROKERS", stack.broker.brokers())
            .env("TRIBUTARY_REGISTRY_URL", stack.registry.url())
            .env("DATABASE_URL", stack.database.url())
            .env("TRIBUTARY_MIGRATE", "true")
            .env("TRIBUTARY_SINK_BATCH_SIZE", "20")
            .env("TRIBUTARY_SINK_BATCH_LINGER", "30ms")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
    };
    let mut sink = spawn()?;
    let at = wait_for_offsets_at_least(&pool, 200).await?;
    sink.kill().await?; // SIGKILL
    assert!(at < 600, "killed at {at} of 600: not mid-stream");

    let mut sink = spawn()?;
    wait_for_offsets(&pool, 600).await?;
    assert_eq!(rows(&pool).await?, expected);
    // SIGTERM: a clean exit.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sink.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let status = tokio::time::timeout(Duration::from_secs(30), sink.wait()).await??;
    assert!(status.success(), "{status}");
    Ok(())
}
