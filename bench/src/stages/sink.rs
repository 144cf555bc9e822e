//! Writing aggregates: the sink consuming a backlog of aggregate records
//! into Postgres, against a minimal loop running the sink's own upsert
//! transaction (`Store::write`) over the same rows in batches of the sink's
//! batch size, with no Kafka in between.
//!
//! Both are timed after a warm-up (the raw loop's first batch; the sink's
//! start-up, group join and first written batch), and CPU is read from
//! `/proc` at the start and the end of the timed interval, so neither is
//! charged its start-up. The backlog should give the sink at least
//! [`MEASURED_AT_LEAST`] of work after its warm-up; a shorter interval is
//! reported on stderr.
use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

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
    cpu::{self, Meter},
    drive::{self, RunResult},
    env::{Env, counter},
    stages::{produce, time_progress},
    stats::{Latency, rate},
};

/// The topic of the sink's backlog.
pub const BACKLOG_TOPIC: &str = "bench.sink-backlog";

/// How long the timed part of a (non-quick) run should last at least.
pub const MEASURED_AT_LEAST: Duration = Duration::from_secs(5);

/// How long the sink may make no progress before the stage fails.
const STALL: Duration = Duration::from_secs(60);

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
/// batch with its offset, as the sink commits them. The first batch is the
/// warm-up (when there are more); the rest are timed, and this process's CPU
/// over them is charged as `raw upsert loop`.
pub async fn raw_upsert(
    pool: &PgPool,
    rows: &[AggregateRow],
    batch: usize,
) -> anyhow::Result<RunResult> {
    if batch != tributary_sink::config::DEFAULT_BATCH_SIZE {
        eprintln!(
            "[bench] raw upsert loop: batches of {batch} rows, but the sink writes up to {}",
            tributary_sink::config::DEFAULT_BATCH_SIZE
        );
    }
    empty_tables(pool).await?;
    let store = Store::new(pool.clone(), "bench-raw-upsert");
    let batches: Vec<&[AggregateRow]> = rows.chunks(batch.max(1)).collect();
    let warm_up = usize::from(batches.len() > 1);
    for (n, chunk) in batches.iter().enumerate().take(warm_up) {
        write_batch(&store, n, batch, chunk).await?;
    }
    let timed: u64 = batches[warm_up..].iter().map(|c| c.len() as u64).sum();
    let reading = Meter::new().with_self("raw upsert loop").start();
    let started = Instant::now();
    let mut samples = Vec::new();
    for (n, chunk) in batches.iter().enumerate().skip(warm_up) {
        let at = Instant::now();
        write_batch(&store, n, batch, chunk).await?;
        samples.push(at.elapsed());
    }
    let elapsed = started.elapsed();
    report_interval("raw upsert loop", timed, elapsed, batch as f64);
    Ok(RunResult {
        ok: timed,
        errors: 0,
        per_second: rate(timed, elapsed),
        latency: Latency::of(samples),
        first_error: None,
        cpu_us_per_op: reading.per_operation(timed),
        waited_us_per_op: reading.waited_per_operation(timed),
    })
}

/// Batch `n` of the raw loop, with its offset.
async fn write_batch(
    store: &Store,
    n: usize,
    batch: usize,
    chunk: &[AggregateRow],
) -> anyhow::Result<()> {
    let position = Position {
        topic: BACKLOG_TOPIC.to_string(),
        partition: 0,
        next_offset: ((n + 1) * batch) as i64,
    };
    Ok(store.write(chunk, &[position]).await?)
}

/// The sink as a process of its own (a fresh group) on [`BACKLOG_TOPIC`],
/// until its rows counter reaches `target`; then stopped with SIGTERM. Timed
/// from the first poll after its first batch is written (its rows counter
/// moved) to the poll that sees `target`, and charged the CPU of that
/// interval only (the sink's and the broker's).
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
    let ready = Instant::now();
    let meter = Meter::new()
        .with("sink", service.process.id())
        .with("broker", env.broker.pid());
    let rows = || counter(&service, "tributary_sink_rows_total");
    let timed = async {
        // Warm-up: start-up, group join, the first batch.
        time_progress("sink warm-up", 1, STALL, rows).await?;
        let warmed = rows().await?;
        let reading = meter.start();
        let started = Instant::now();
        time_progress("sink", target, STALL, rows).await?;
        let elapsed = started.elapsed();
        // Read while the sink still runs (its /proc entry goes with it).
        let measured = target.saturating_sub(warmed);
        let cpu = (
            reading.per_operation(measured),
            reading.waited_per_operation(measured),
        );
        anyhow::Ok((warmed, cpu, elapsed))
    }
    .await;
    let life = service.process.id().and_then(cpu::cpu_seconds);
    let batches = async {
        let sum = service.metric("tributary_sink_batch_rows_sum").await?;
        let count = service.metric("tributary_sink_batch_rows_count").await?;
        anyhow::Ok(sum.zip(count).map_or(0.0, |(s, c)| s / c.max(1.0)))
    }
    .await;
    env.stop(service).await?;
    let (warmed, (cpu_us_per_op, waited_us_per_op), elapsed) = timed?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM aggregates")
        .fetch_one(pool)
        .await?;
    anyhow::ensure!(
        stored as u64 == target,
        "the sink reported {target} rows but the table holds {stored}"
    );
    let mean_batch = batches.unwrap_or(0.0);
    if warmed >= target {
        // The whole backlog went in the warm-up (a --quick run's few
        // batches): nothing was timed, so the sink is charged its whole life.
        let elapsed = ready.elapsed();
        eprintln!(
            "[bench] sink: the backlog of {target} rows was written during the warm-up; \
             timed from start-up, whole-life CPU"
        );
        return Ok(RunResult {
            ok: target,
            errors: 0,
            per_second: rate(target, elapsed),
            latency: Latency::default(),
            first_error: None,
            cpu_us_per_op: life
                .map(|s| ("sink".to_string(), s * 1e6 / target.max(1) as f64))
                .into_iter()
                .collect(),
            ..RunResult::default()
        });
    }
    let measured = target - warmed;
    report_interval("sink", measured, elapsed, mean_batch);
    Ok(RunResult {
        ok: measured,
        errors: 0,
        per_second: rate(measured, elapsed),
        latency: Latency::default(),
        first_error: None,
        cpu_us_per_op,
        waited_us_per_op,
    })
}

/// Says on stderr what was timed, and when it was shorter than
/// [`MEASURED_AT_LEAST`].
fn report_interval(what: &str, rows: u64, elapsed: Duration, mean_batch: f64) {
    let short = if elapsed < MEASURED_AT_LEAST {
        format!(" (shorter than {MEASURED_AT_LEAST:?}: a larger backlog measures better)")
    } else {
        String::new()
    };
    eprintln!(
        "[bench] {what}: {rows} rows timed over {elapsed:.2?}, {mean_batch:.0} rows per batch{short}"
    );
}
