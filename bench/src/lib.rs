//! Tributary's benchmarks (`tributary-bench`, run by `dev/bench`): every
//! stage of the pipeline measured in one run on one broker (Tansu, or Apache
//! Kafka with `--broker kafka`) and database,
//! each next to a raw baseline doing the same work with nothing of
//! Tributary in between, and reported as ratios against the targets.
//!
//! - [`stages::produce`]: plain rdkafka producer vs streaming ingest (SDK):
//!   closed loop (throughput), then open loop (latency) at 2,000 events/s
//!   and at half streaming ingest's maximum sustained rate (the highest
//!   offered rate an open loop keeps up with, at most the closed loop's).
//! - [`stages::requests`]: unary gRPC and `POST /submit`.
//! - [`stages::consume`]: plain consumer vs the processor, on a backlog.
//! - [`stages::sink`]: the sink's upsert transaction in a loop vs the sink.
//! - [`stages::freshness`]: submit → visible in `GetAggregates`, open loop.
//! - Peak RSS of every service process and of the broker.
pub mod config;
pub mod cpu;
pub mod drive;
pub mod env;
pub mod report;
pub mod stages;
pub mod stats;
pub mod workload;

use std::time::Instant;

use anyhow::Context as _;
use tributary_client::Client;
use tributary_common::{kafka, schemas};

use crate::{
    config::{BenchConfig, MaxRate, Probe, Sizes, StageGroup},
    env::{Env, counter},
    report::{Machine, Report, Stage, names},
    stages::{consume, freshness, produce, requests, sink},
};
use crate::{cpu::Meter, drive::RunResult};

/// Topic of the raw producer (outside the processor's event topics).
const RAW_TOPIC: &str = "bench.raw-producer";

/// Runs every stage and returns the report (not yet written).
pub async fn run(config: &BenchConfig) -> anyhow::Result<Report> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let tansu_storage = config.tansu_storage()?;
    let machine = Machine::read(config.broker);
    let mut sizes = Sizes::for_config(config);
    let bin_dir = match &config.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark binary has no directory")?
            .to_path_buf(),
    };
    let log_dir = std::env::temp_dir().join(format!("tributary-bench-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir)?;
    eprintln!("[bench] service logs in {}", log_dir.display());

    eprintln!(
        "[bench] broker: {} ({} storage)",
        machine.broker,
        config.storage_name()?
    );
    let mut env = Env::start(tansu_storage, config.partitions, &bin_dir, &log_dir).await?;
    let mut stages = Vec::new();
    let result = run_stages(&mut env, config, &mut sizes, &mut stages).await;
    let peak_rss_kib = env.finish().await?;
    result?;
    Ok(Report {
        started_at,
        duration_s: started.elapsed().as_secs_f64(),
        git_commit: git_commit(),
        machine,
        quick: config.quick,
        broker: config.broker.to_string(),
        broker_storage: config.storage_name()?.to_string(),
        partitions: config.partitions,
        targets: report::targets(&stages),
        sizes,
        stages,
        peak_rss_kib,
    })
}

fn progress(stage: &str) {
    eprintln!("[bench] {stage}");
}

async fn run_stages(
    env: &mut Env,
    config: &BenchConfig,
    sizes: &mut Sizes,
    stages: &mut Vec<Stage>,
) -> anyhow::Result<()> {
    let ad_click_topic = env.kafka.event_topic(schemas::AD_CLICK);
    let schema_id = env.latest_schema_id(&ad_click_topic, schemas::AD_CLICK)?;
    kafka::ensure_topics(&env.kafka, &[RAW_TOPIC.to_string()], env.partitions).await?;
    let producer = produce::raw_producer(&env.kafka)?;
    let records = produce::raw_records(sizes.events, schema_id)?;

    let ingest = env.ingest(sizes.ingest_worker_threads).await?;
    let client = Client::new(ingest.grpc_url())?;
    let pids = Pids {
        broker: env.broker.pid(),
        ingest: ingest.process.id(),
    };
    let sender = produce::sender(&client, sizes);

    // Warm-up: connections, the producer's metadata, schema caches.
    let warm = sizes.window.min(records.len());
    produce::raw_closed(&producer, RAW_TOPIC, &records[..warm], sizes.window).await;
    produce::stream_closed(
        std::slice::from_ref(&sender),
        (0..warm).map(workload::ad_click).collect(),
        sizes.window,
    )
    .await;

    let event_topics = vec![
        ad_click_topic.clone(),
        env.kafka.event_topic(schemas::PRICE_TICK),
    ];
    // Freshness first: Tansu's memory storage slows down as it fills, and
    // the throughput stages leave it holding millions of records (the same
    // order on Apache Kafka, so the two brokers' runs compare).
    if config.runs_stage(StageGroup::Freshness) {
        freshness_stages(env, sizes, stages, &client, &sender, &event_topics).await?;
    }
    if config.runs_stage(StageGroup::Produce) {
        let mut senders = vec![sender.clone()];
        for _ in 1..sizes.streams {
            let client = Client::new(ingest.grpc_url())?;
            senders.push(produce::sender(&client, sizes));
        }
        sizes.max_rate =
            Some(produce_stages(sizes, pids, stages, &producer, &records, &senders).await);
    }
    if config.runs_stage(StageGroup::Requests) {
        let http_addr = ingest.http.expect("ingest serves HTTP").to_string();
        let raw = (&producer, records.clone());
        request_stages(sizes, pids, stages, &client, &http_addr, raw).await?;
    }
    if config.runs_stage(StageGroup::Consume) {
        // Enough records for every consumer to read for a while after its
        // warm-up (see `consume::MIN_MEASURED`).
        consume::fill_backlog(
            &env.kafka,
            &producer,
            &ad_click_topic,
            &event_topics,
            schema_id,
            sizes.consume_backlog,
            sizes.window,
        )
        .await?;
        consume_stages(env, sizes, stages, &event_topics).await?;
    }
    if config.runs_stage(StageGroup::Sink) {
        sink_stages(env, sizes, stages).await?;
    }
    if config.runs_stage(StageGroup::Sdks) {
        sdk_stages(sizes, pids, stages, &client, &ingest.grpc_url()).await?;
    }
    drop(sender);
    env.stop(ingest).await?;
    Ok(())
}

/// Runs `run` and charges the CPU time of `meter`'s processes to its
/// operations.
async fn metered(meter: &Meter, run: impl std::future::Future<Output = RunResult>) -> RunResult {
    let reading = meter.start();
    let mut result = run.await;
    result.cpu_us_per_op = reading.per_operation(result.ok);
    result
}

/// Process ids the stages' CPU is read from.
#[derive(Clone, Copy)]
struct Pids {
    broker: Option<u32>,
    ingest: Option<u32>,
}

async fn produce_stages(
    sizes: &Sizes,
    pids: Pids,
    stages: &mut Vec<Stage>,
    producer: &rdkafka::producer::FutureProducer,
    records: &std::sync::Arc<Vec<workload::RawRecord>>,
    senders: &[std::sync::Arc<tributary_client::Sender>],
) -> MaxRate {
    let runs = sizes.runs;
    let raw_meter = Meter::new()
        .with_self("raw producer")
        .with("broker", pids.broker);
    let our_meter = Meter::new()
        .with("ingest", pids.ingest)
        .with_self("SDK client")
        .with("broker", pids.broker);
    progress("producing, closed loop: raw producer and streaming ingest");
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    let timed = (sizes.closed_warm_up, sizes.closed_duration);
    for _ in 0..runs {
        raw.push(
            produce::raw_closed_for(
                producer,
                RAW_TOPIC,
                records,
                sizes.window,
                timed,
                &raw_meter,
            )
            .await,
        );
        ours.push(produce::stream_closed_for(senders, sizes.window, timed, &our_meter).await);
    }
    stages.push(Stage::new(names::RAW_PRODUCER, true, "records", raw));
    let closed = Stage::new(names::STREAM, false, "events", ours);
    // The second latency point: half the maximum rate, where the
    // maximum is what streaming ingest sustains in an open loop (the offered
    // rate it keeps up with, no backlog building), at most what it did in
    // the closed loop (`window` in flight, however deep the queues).
    let closed_rate = closed.median_per_second;
    stages.push(closed);
    progress(&format!(
        "producing, open loop: streaming ingest's maximum sustained rate, from the closed loop's {closed_rate:.0} events/s down"
    ));
    let (sustained, probes) = produce::max_sustained_rate(
        senders,
        closed_rate as u64,
        sizes.sustain_probe,
        sizes.sustain_bound,
        &our_meter,
    )
    .await;
    // When no probe kept up, the lowest rate tried stands in, and the
    // report says so.
    let lowest_tried = probes.last().map_or(1, |(run, _)| run.rate);
    let half_rate = (sustained.unwrap_or(lowest_tried) / 2).max(1);
    let max_rate = MaxRate {
        closed_loop: closed_rate,
        sustained,
        half: half_rate,
        probes: probes
            .iter()
            .map(|(run, kept_up)| Probe {
                rate: run.rate,
                kept_up: *kept_up,
                p99_ms: run.result.latency.p99_ms,
                last_ms: run.drain.as_secs_f64() * 1e3,
                errors: run.result.errors,
            })
            .collect(),
    };

    let half_note = match sustained {
        Some(sustained) => format!(", half the maximum sustained rate ({sustained}/s)"),
        None => format!(
            ", half the lowest rate probed ({lowest_tried}/s): no probe kept up, so this is not half a sustained rate"
        ),
    };
    for (rate, note, raw_name, stream_name) in [
        (
            sizes.latency_rate,
            "",
            names::RAW_PRODUCER_OPEN,
            names::STREAM_OPEN,
        ),
        (
            half_rate,
            half_note.as_str(),
            names::RAW_PRODUCER_OPEN_HALF,
            names::STREAM_OPEN_HALF,
        ),
    ] {
        progress(&format!(
            "producing, open loop at {rate} events/s{note}: raw producer and streaming ingest"
        ));
        let (mut raw, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            raw.push(
                metered_open(
                    "raw producer",
                    &raw_meter,
                    produce::raw_open(
                        producer,
                        RAW_TOPIC,
                        records.clone(),
                        rate,
                        sizes.latency_duration,
                    ),
                )
                .await,
            );
            ours.push(
                metered_open(
                    "streaming ingest",
                    &our_meter,
                    produce::stream_open(senders, rate, sizes.latency_duration),
                )
                .await,
            );
        }
        stages.push(Stage::new(raw_name, true, "records", raw));
        stages.push(Stage::new(stream_name, false, "events", ours));
    }
    max_rate
}

/// Runs the open loop `run` and charges the CPU time of `meter`'s processes
/// to its operations; logs how it went.
async fn metered_open(
    what: &str,
    meter: &Meter,
    run: impl std::future::Future<Output = drive::OpenLoop>,
) -> RunResult {
    let reading = meter.start();
    let mut run = run.await;
    run.result.cpu_us_per_op = reading.per_operation(run.result.ok);
    run.result.waited_us_per_op = reading.waited_per_operation(run.result.ok);
    eprintln!(
        "[bench]   {what}: {}; CPU {}",
        run.summary(),
        produce::cores(&run)
    );
    run.result
}

async fn request_stages(
    sizes: &Sizes,
    pids: Pids,
    stages: &mut Vec<Stage>,
    client: &Client,
    http_addr: &str,
    (producer, records): (
        &rdkafka::producer::FutureProducer,
        std::sync::Arc<Vec<workload::RawRecord>>,
    ),
) -> anyhow::Result<()> {
    let runs = sizes.runs;
    let raw_meter = Meter::new()
        .with_self("raw producer")
        .with("broker", pids.broker);
    let meter = Meter::new()
        .with("ingest", pids.ingest)
        .with_self("client")
        .with("broker", pids.broker);
    // wrk reports its own CPU; the bench process only waits for it.
    let wrk_meter = Meter::new()
        .with("ingest", pids.ingest)
        .with("broker", pids.broker);
    progress(
        "one event per request: raw producer (one record per caller), unary gRPC and POST /submit (wrk)",
    );
    let (mut raw, mut unary, mut submit) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        raw.push(
            metered(
                &raw_meter,
                requests::raw_one_per_caller(
                    producer,
                    RAW_TOPIC,
                    records.clone(),
                    sizes.concurrency,
                    sizes.request_duration,
                ),
            )
            .await,
        );
        unary.push(
            metered(
                &meter,
                requests::unary_grpc(client, sizes.concurrency, sizes.request_duration),
            )
            .await,
        );
        let reading = wrk_meter.start();
        let mut result =
            requests::http_submit(http_addr, sizes.concurrency, sizes.request_duration, run)
                .await?;
        let mut cpu = reading.per_operation(result.ok);
        cpu.append(&mut result.cpu_us_per_op);
        result.cpu_us_per_op = cpu;
        submit.push(result);
    }
    stages.push(Stage::new(
        names::RAW_PRODUCER_PER_CALLER,
        true,
        "records",
        raw,
    ));
    stages.push(Stage::new(names::UNARY, false, "requests", unary));
    stages.push(Stage::new(names::HTTP_SUBMIT, false, "requests", submit));
    Ok(())
}

async fn sdk_stages(
    sizes: &Sizes,
    pids: Pids,
    stages: &mut Vec<Stage>,
    client: &Client,
    url: &str,
) -> anyhow::Result<()> {
    use stages::sdks::{self, ForeignSdk};
    progress("SDK senders, one stream each: Rust, Python, TypeScript, Go");
    sdks::build_typescript().await?;
    sdks::build_go().await?;
    let sender = produce::sender(client, sizes);
    let rust_meter = Meter::new()
        .with("ingest", pids.ingest)
        .with_self("Rust SDK client")
        .with("broker", pids.broker);
    let ingest_meter = Meter::new()
        .with("ingest", pids.ingest)
        .with("broker", pids.broker);
    let (mut rust, mut python, mut typescript, mut go) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..sizes.runs {
        let events = (0..sizes.events).map(workload::ad_click).collect();
        rust.push(
            metered(
                &rust_meter,
                produce::stream_closed(std::slice::from_ref(&sender), events, sizes.window),
            )
            .await,
        );
        for (sdk, runs) in [
            (ForeignSdk::Python, &mut python),
            (ForeignSdk::TypeScript, &mut typescript),
            (ForeignSdk::Go, &mut go),
        ] {
            let reading = ingest_meter.start();
            let mut result = sdks::foreign(sdk, url, sizes.events, sizes.window).await?;
            let mut cpu = reading.per_operation(result.ok);
            cpu.append(&mut result.cpu_us_per_op);
            result.cpu_us_per_op = cpu;
            runs.push(result);
        }
    }
    stages.push(Stage::new(names::RUST_SDK, false, "events", rust));
    stages.push(Stage::new(names::PYTHON_SDK, false, "events", python));
    stages.push(Stage::new(
        names::TYPESCRIPT_SDK,
        false,
        "events",
        typescript,
    ));
    stages.push(Stage::new(names::GO_SDK, false, "events", go));
    Ok(())
}

async fn consume_stages(
    env: &mut Env,
    sizes: &Sizes,
    stages: &mut Vec<Stage>,
    event_topics: &[String],
) -> anyhow::Result<()> {
    let runs = sizes.runs;
    progress("consuming the event backlog: raw consumer and processor");
    let backlog = consume::backlog(&env.kafka, event_topics).await?;
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    let raw_meter = Meter::new()
        .with_self("raw consumer")
        .with("broker", env.broker.pid());
    for run in 0..runs {
        raw.push(
            consume::raw_consumer(&env.kafka, event_topics, backlog, run, raw_meter.clone())
                .await?,
        );
        ours.push(consume::processor(env, backlog, run).await?);
    }
    stages.push(Stage::new(names::RAW_CONSUMER, true, "records", raw));
    stages.push(Stage::new(names::PROCESSOR, false, "events", ours));
    Ok(())
}

async fn sink_stages(env: &mut Env, sizes: &Sizes, stages: &mut Vec<Stage>) -> anyhow::Result<()> {
    let runs = sizes.runs;
    progress("writing aggregates: raw upsert loop and sink");
    let rows = sink::fill_backlog(env, sizes.sink_rows).await?;
    let pool = sqlx::PgPool::connect(env.database.url()).await?;
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    for run in 0..runs {
        // Both meter their timed part themselves, after a one-batch warm-up.
        raw.push(sink::raw_upsert(&pool, &rows, sizes.sink_batch).await?);
        ours.push(sink::sink(env, &pool, rows.len() as u64, run).await?);
    }
    stages.push(Stage::new(names::RAW_UPSERT, true, "rows", raw));
    stages.push(Stage::new(names::SINK, false, "rows", ours));
    pool.close().await;
    Ok(())
}

async fn freshness_stages(
    env: &mut Env,
    sizes: &Sizes,
    stages: &mut Vec<Stage>,
    client: &Client,
    sender: &std::sync::Arc<tributary_client::Sender>,
    event_topics: &[String],
) -> anyhow::Result<()> {
    let runs = sizes.runs;
    progress("end-to-end freshness: the whole pipeline, open loop");
    let processor = env.processor("processor", &[]).await?;
    let sink_service = env.sink("sink", &[]).await?;
    catch_up(&processor, &env.kafka, event_topics).await?;
    let (mut probes, mut background) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let (p, b) = freshness::run(
            client,
            sender.clone(),
            sizes.freshness_rate,
            sizes.probe_rate,
            sizes.freshness_duration,
            run,
        )
        .await?;
        probes.push(p);
        background.push(b);
    }
    stages.push(Stage::new(names::FRESHNESS, false, "probes", probes));
    stages.push(Stage::new(
        names::FRESHNESS_BACKGROUND,
        false,
        "events",
        background,
    ));

    env.stop(sink_service).await?;
    env.stop(processor).await?;
    Ok(())
}

/// Waits until `processor` has read every record now in `topics`.
async fn catch_up(
    processor: &tributary_stack::cluster::ServiceProcess,
    kafka_args: &tributary_common::config::KafkaArgs,
    topics: &[String],
) -> anyhow::Result<()> {
    let target = consume::backlog(kafka_args, topics).await?;
    stages::time_progress(
        "processor catching up",
        target,
        std::time::Duration::from_secs(60),
        || counter(processor, "tributary_processor_records_total"),
    )
    .await
    .map(drop)
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
