//! Writing aggregates: the sink consuming a backlog of aggregate records
//! into Postgres, against a minimal loop running the sink's own upsert
//! transaction (`Store::write`) over the same rows in batches of the sink's
//! batch size, with no Kafka in between.
use std::{collections::HashSet, time::Duration};

use anyhow::Context as _;
use apache_avro::reader::datum::GenericDatumReader;
use sqlx::PgPool;
use tributary_common::{kafka, registry_client, schemas, wire};
use tributary_processor::{
    aggregate_record::AggregateEncoder,
    window::{Totals, Update},
};
use tributary_sink::{
    aggregate::AggregateRow,
    store::{Position, Store},
};

use crate::{
    drive::{self, RunResult},
    env::{Env, counter},
    stages::{produce, time_progress},
    stats::{Latency, rate},
};

/// The topic of the sink's backlog.
pub const BACKLOG_TOPIC: &str = "bench.sink-backlog";

/// Fills [`BACKLOG_TOPIC`] with `count` aggregate records of distinct keys
/// and returns the rows they decode to.
pub async fn fill_backlog(env: &Env, count: usize) -> anyhow::Result<Vec<AggregateRow>> {
    kafka::ensure_topics(&env.kafka, &[BACKLOG_TOPIC.to_string()], env.partitions).await?;
    let settings = registry_client::settings(&env.registry_args)?;
    let schema = schemas::latest(schemas::AGGREGATE).expect("built-in aggregate schema");
    let schema_id = registry_client::register_avro(
        &settings,
        &schemas::value_subject(BACKLOG_TOPIC),
        schema.json,
    )
    .await
    .context("cannot register the aggregate schema for the sink's backlog")?;
    let encoder = AggregateEncoder::new(schema_id)?;
    let parsed = schema.parse();
    let reader = GenericDatumReader::builder(&parsed).build()?;
    let now = chrono::Utc::now().timestamp_millis();
    let window = 60_000;
    let start = now - now % window - 24 * 3_600_000;
    let mut records = Vec::with_capacity(count);
    let mut rows = Vec::with_capacity(count);
    for i in 0..count {
        let update = Update {
            group_key: format!("adv-{:03}", i % 100),
            window_start_ms: start + (i / 100) as i64 * window,
            window_end_ms: start + (i / 100 + 1) as i64 * window,
            totals: Totals::Clicks {
                count: (i % 50 + 1) as i64,
                ips: HashSet::from([format!("198.51.100.{}", i % 250 + 1)]),
            },
            is_final: true,
            revision: 0,
        };
        let key = AggregateEncoder::key(schemas::AD_CLICK, &update);
        let payload = encoder.encode(schemas::AD_CLICK, &update, now)?;
        let (_, body) = wire::unframe(&payload)?;
        let value = reader.read_value(&mut &body[..])?;
        rows.push(AggregateRow::from_value(value).map_err(anyhow::Error::msg)?);
        records.push((key, payload));
    }
    let producer = produce::raw_producer(&env.kafka)?;
    let produced = drive::closed_loop(records.len(), 1024, |i| {
        let (key, payload) = &records[i];
        let producer = &producer;
        async move {
            producer
                .send(
                    rdkafka::producer::FutureRecord::to(BACKLOG_TOPIC)
                        .key(key)
                        .payload(payload),
                    Duration::from_secs(10),
                )
                .await
                .map(drop)
                .map_err(|(e, _)| anyhow::anyhow!("{e}"))
        }
    })
    .await;
    anyhow::ensure!(
        produced.errors == 0,
        "cannot fill the sink's backlog: {:?}",
        produced.first_error
    );
    Ok(rows)
}

async fn empty_tables(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("TRUNCATE aggregates, sink_offsets")
        .execute(pool)
        .await?;
    Ok(())
}

/// The baseline: `Store::write` over `rows` in batches of `batch`, each
/// batch with its offset, as the sink commits them.
pub async fn raw_upsert(
    pool: &PgPool,
    rows: &[AggregateRow],
    batch: usize,
) -> anyhow::Result<RunResult> {
    empty_tables(pool).await?;
    let store = Store::new(pool.clone(), "bench-raw-upsert");
    let started = std::time::Instant::now();
    let mut samples = Vec::new();
    for (n, chunk) in rows.chunks(batch).enumerate() {
        let at = std::time::Instant::now();
        let position = Position {
            topic: BACKLOG_TOPIC.to_string(),
            partition: 0,
            next_offset: ((n + 1) * batch) as i64,
        };
        store.write(chunk, &[position]).await?;
        samples.push(at.elapsed());
    }
    let elapsed = started.elapsed();
    Ok(RunResult {
        ok: rows.len() as u64,
        errors: 0,
        per_second: rate(rows.len() as u64, elapsed),
        latency: Latency::of(samples),
        first_error: None,
        cpu_us_per_op: Default::default(),
    })
}

/// The sink as a process of its own (a fresh group) on [`BACKLOG_TOPIC`],
/// until its rows counter reaches `target`; then stopped with SIGTERM.
pub async fn sink(
    env: &mut Env,
    pool: &PgPool,
    target: u64,
    run: usize,
) -> anyhow::Result<RunResult> {
    empty_tables(pool).await?;
    let group = format!("bench-sink-{run}-{}", uuid::Uuid::new_v4().simple());
    let service = env
        .sink(
            &format!("sink-backlog-{run}"),
            &[
                ("TRIBUTARY_AGGREGATES_TOPIC", BACKLOG_TOPIC),
                ("TRIBUTARY_SINK_GROUP", &group),
            ],
        )
        .await?;
    let elapsed = time_progress("sink", target, Duration::from_secs(60), || {
        counter(&service, "tributary_sink_rows_total")
    })
    .await;
    // Its whole life (start-up included) is charged to the backlog.
    let cpu_seconds = service.process.id().and_then(crate::cpu::cpu_seconds);
    env.stop(service).await?;
    let elapsed = elapsed?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM aggregates")
        .fetch_one(pool)
        .await?;
    anyhow::ensure!(
        stored as u64 == target,
        "the sink reported {target} rows but the table holds {stored}"
    );
    Ok(RunResult {
        ok: target,
        errors: 0,
        per_second: rate(target, elapsed),
        latency: Latency::default(),
        first_error: None,
        cpu_us_per_op: cpu_seconds
            .map(|s| ("sink".to_string(), s * 1e6 / target.max(1) as f64))
            .into_iter()
            .collect(),
    })
}
