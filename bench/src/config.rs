//! The benchmark's command line and the sizes each mode runs.
use std::{path::PathBuf, time::Duration};

use tributary_stack::broker::BrokerKind;

/// Configuration of `tributary-bench`.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tributary-bench",
    version,
    about = "Measures every stage of Tributary against a raw baseline on the same broker and database, and writes the results as JSON and Markdown"
)]
pub struct BenchConfig {
    /// A run of under a minute with small sizes and one run per stage: a
    /// smoke test that every stage produces numbers, not a measurement.
    #[arg(long)]
    pub quick: bool,

    /// Runs of every throughput and latency stage; the report gives their
    /// medians. Defaults to 3 (1 with --quick).
    #[arg(long)]
    pub runs: Option<usize>,

    /// Where the JSON and Markdown results are written.
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,

    /// The broker every stage and its baseline run on: tansu (default) or
    /// kafka, Apache Kafka in KRaft mode as `dev/setup` fetched it, with the
    /// JVM options of Kafka's own start scripts (1 GiB heap, G1).
    #[arg(long, env = "TRIBUTARY_BROKER", value_enum, default_value_t = BrokerKind::Tansu)]
    pub broker: BrokerKind,

    /// Tansu's storage: memory (the default; the broker's disk is not
    /// measured) or sqlite. Tansu only: Apache Kafka always writes its log to
    /// disk (through the page cache; acknowledged records survive a SIGKILL
    /// of the broker), so with --broker kafka this option is refused.
    #[arg(long, value_enum)]
    pub broker_storage: Option<BrokerStorage>,

    /// Partitions of every topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,

    /// Events (records) in flight in the closed-loop runs, for the SDK
    /// sender and the raw producer alike; the SDK's default window when unset.
    #[arg(long)]
    pub window: Option<usize>,

    /// The SDK sender's linger (`SenderOptions::linger`, e.g. `0`, `500us`,
    /// `1ms`): how long events that keep coming are held for one message;
    /// the SDK's default when unset.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub sdk_linger: Option<Duration>,

    /// Tokio worker threads of the ingest process (`TOKIO_WORKER_THREADS`,
    /// which Tokio reads); one per core, Tokio's default, when unset.
    #[arg(long)]
    pub ingest_worker_threads: Option<usize>,

    /// Streams (SDK senders, each on a connection of its own) of the
    /// streaming runs: the closed loop shares the in-flight window among
    /// them, and the open loops and maximum-rate probes deal their events
    /// over them round robin.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,

    /// Run only these stages (repeatable); all by default. A `consume` run
    /// on its own first fills the event topics with raw records.
    #[arg(long = "stage", value_enum)]
    pub stages: Vec<StageGroup>,

    /// Directory of the service binaries; defaults to this binary's directory.
    #[arg(long, env = "TRIBUTARY_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
}

/// A group of stages, each with its baseline.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageGroup {
    /// Raw producer vs streaming ingest, closed and open loop.
    Produce,
    /// Unary gRPC and `POST /submit`.
    Requests,
    /// Raw consumer vs the processor on the event backlog.
    Consume,
    /// Raw upsert loop vs the sink.
    Sink,
    /// End-to-end freshness.
    Freshness,
    /// The Rust, Python and TypeScript SDKs' senders, one stream each.
    Sdks,
}

impl BenchConfig {
    /// Whether `group` runs.
    pub fn runs_stage(&self, group: StageGroup) -> bool {
        self.stages.is_empty() || self.stages.contains(&group)
    }

    /// Tansu's storage (memory unless chosen); `None` for Apache Kafka, which
    /// has one kind of storage, and an error when one was chosen for it.
    pub fn tansu_storage(&self) -> anyhow::Result<Option<BrokerStorage>> {
        match self.broker {
            BrokerKind::Tansu => Ok(Some(self.broker_storage.unwrap_or(BrokerStorage::Memory))),
            BrokerKind::Kafka => {
                anyhow::ensure!(
                    self.broker_storage.is_none(),
                    "--broker-storage chooses Tansu's storage engine; Apache Kafka always \
                     writes its log to disk (through the page cache), so leave it out with \
                     --broker kafka"
                );
                Ok(None)
            }
        }
    }

    /// The broker's storage as the report names it: `memory` or `sqlite`
    /// (Tansu), `disk` (Apache Kafka).
    pub fn storage_name(&self) -> anyhow::Result<&'static str> {
        Ok(match self.tansu_storage()? {
            Some(BrokerStorage::Memory) => "memory",
            Some(BrokerStorage::Sqlite) => "sqlite",
            None => "disk",
        })
    }
}

/// Tansu's storage engine.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerStorage {
    /// Tansu's memory engine: records are gone when the broker stops.
    Memory,
    /// Tansu's SQLite engine: durable.
    Sqlite,
}

/// How much work each stage does.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sizes {
    /// Runs per stage.
    pub runs: usize,
    /// Pre-encoded records the raw producer sends (over and over), and
    /// events per SDK sender run.
    pub events: usize,
    /// Warm-up of each closed-loop throughput run (raw producer, streaming
    /// ingest), not counted.
    pub closed_warm_up: Duration,
    /// Timed part of each closed-loop throughput run.
    pub closed_duration: Duration,
    /// Events (or records) in flight in a closed-loop run: the SDK sender's
    /// window, and the raw producer's.
    pub window: usize,
    /// The SDK sender's linger.
    pub linger: Duration,
    /// Tokio worker threads of ingest; `None`: one per core.
    pub ingest_worker_threads: Option<usize>,
    /// Streams of the closed-loop streaming run.
    pub streams: usize,
    /// Offered rate of the open-loop latency runs, events/s.
    pub latency_rate: u64,
    /// Length of each open-loop latency run.
    pub latency_duration: Duration,
    /// Length of each open-loop probe for streaming ingest's maximum
    /// sustained rate.
    pub sustain_probe: Duration,
    /// A probe kept up when nothing failed and neither its p99 latency nor
    /// its last event's exceeded this.
    pub sustain_bound: Duration,
    /// The maximum rate the second open-loop latency point is half of, and
    /// how it was found (set once the closed loop has run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rate: Option<MaxRate>,
    /// Concurrent callers of the unary gRPC and `POST /submit` runs.
    pub concurrency: usize,
    /// Length of each unary gRPC and `POST /submit` run.
    pub request_duration: Duration,
    /// Records in the event backlog the consumers read: enough for the
    /// faster of them (the raw consumer) to read for `consume::MIN_MEASURED`
    /// after its warm-up on this broker.
    pub consume_backlog: u64,
    /// Aggregate records in the sink's backlog.
    pub sink_rows: usize,
    /// Rows per batch of the raw upsert loop (the sink's default batch size).
    pub sink_batch: usize,
    /// Background offered rate of the freshness run, events/s.
    pub freshness_rate: u64,
    /// Probes (events of a key of their own) per second in the freshness run.
    pub probe_rate: u64,
    /// Length of the freshness run.
    pub freshness_duration: Duration,
}

/// How much latency an open-loop probe may show and still count as keeping
/// up: ten times the SDK's p99 at half the closed loop's rate on this
/// machine (about 10 ms), far above any latency of a stack that keeps up, and
/// what 4 s of a 2.5 % overload adds (a backlog of 0.1 s).
const SUSTAIN_BOUND: Duration = Duration::from_millis(100);

/// Streaming ingest's maximum rate, the second open-loop latency point's
/// reference: the highest offered rate an open loop keeps up with, at most
/// the closed loop's events/s.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MaxRate {
    /// The closed loop's median events/s (`window` in flight).
    pub closed_loop: f64,
    /// The maximum sustained rate, events/s: the highest offered rate probed
    /// that streaming ingest kept up with in an open loop (see
    /// `stages::produce::max_sustained_rate`); `None` when no probe kept up.
    pub sustained: Option<u64>,
    /// The offered rate of the second latency point: half of `sustained`, or
    /// of the lowest rate probed when no probe kept up.
    pub half: u64,
    /// Every probe, in order.
    pub probes: Vec<Probe>,
}

/// One open-loop probe of streaming ingest's maximum sustained rate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Probe {
    /// Offered rate, events/s.
    pub rate: u64,
    /// Whether it kept up.
    pub kept_up: bool,
    /// p99 ack latency, ms, from each event's due time.
    pub p99_ms: f64,
    /// How long after it was due the last event was answered, ms.
    pub last_ms: f64,
    /// Events that failed.
    pub errors: u64,
}

impl Sizes {
    /// The sizes of a default or `--quick` run.
    pub fn for_config(config: &BenchConfig) -> Self {
        if config.quick {
            Self {
                runs: config.runs.unwrap_or(1),
                events: 2_000,
                closed_warm_up: Duration::from_millis(500),
                closed_duration: Duration::from_secs(2),
                window: config
                    .window
                    .unwrap_or(tributary_client::SenderOptions::default().window),
                linger: config
                    .sdk_linger
                    .unwrap_or(tributary_client::SenderOptions::default().linger),
                ingest_worker_threads: config.ingest_worker_threads,
                streams: config.streams.max(1),
                latency_rate: 500,
                latency_duration: Duration::from_secs(2),
                sustain_probe: Duration::from_secs(1),
                sustain_bound: SUSTAIN_BOUND,
                max_rate: None,
                concurrency: 16,
                request_duration: Duration::from_secs(2),
                consume_backlog: 4_000,
                sink_rows: 8_000,
                sink_batch: tributary_sink::config::DEFAULT_BATCH_SIZE,
                freshness_rate: 200,
                probe_rate: 5,
                freshness_duration: Duration::from_secs(4),
            }
        } else {
            Self {
                runs: config.runs.unwrap_or(3),
                events: 50_000,
                closed_warm_up: Duration::from_secs(2),
                closed_duration: Duration::from_secs(8),
                window: config
                    .window
                    .unwrap_or(tributary_client::SenderOptions::default().window),
                linger: config
                    .sdk_linger
                    .unwrap_or(tributary_client::SenderOptions::default().linger),
                ingest_worker_threads: config.ingest_worker_threads,
                streams: config.streams.max(1),
                latency_rate: 2_000,
                latency_duration: Duration::from_secs(8),
                sustain_probe: Duration::from_secs(4),
                sustain_bound: SUSTAIN_BOUND,
                max_rate: None,
                concurrency: 64,
                request_duration: Duration::from_secs(8),
                // Apache Kafka serves a backlog to a plain consumer at up to
                // ~950k records/s here (2026-11-27), Tansu at ~140k (the
                // processor too, since its typed decode).
                consume_backlog: match config.broker {
                    BrokerKind::Kafka => 6_000_000,
                    BrokerKind::Tansu => 1_500_000,
                },
                // At least 5 s of timed work for each: on 2026-11-27 the raw
                // upsert loop wrote 76-126k rows/s here, the sink 53-71k
                // (300,000 rows left the loop 2.4-3.9 s).
                sink_rows: 800_000,
                sink_batch: tributary_sink::config::DEFAULT_BATCH_SIZE,
                freshness_rate: 1_000,
                probe_rate: 10,
                freshness_duration: Duration::from_secs(15),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn parse(args: &[&str]) -> BenchConfig {
        BenchConfig::try_parse_from([&["tributary-bench"], args].concat()).unwrap()
    }

    #[test]
    fn tansu_in_memory_is_the_default() {
        let config = parse(&[]);
        assert_eq!(config.broker, BrokerKind::Tansu);
        assert_eq!(config.tansu_storage().unwrap(), Some(BrokerStorage::Memory));
        assert_eq!(config.storage_name().unwrap(), "memory");
        let config = parse(&["--broker-storage", "sqlite"]);
        assert_eq!(config.storage_name().unwrap(), "sqlite");
    }

    #[test]
    fn kafka_has_disk_storage_and_refuses_a_storage_choice() {
        let config = parse(&["--broker", "kafka"]);
        assert_eq!(config.tansu_storage().unwrap(), None);
        assert_eq!(config.storage_name().unwrap(), "disk");
        let error = parse(&["--broker", "kafka", "--broker-storage", "memory"])
            .tansu_storage()
            .unwrap_err()
            .to_string();
        assert!(error.contains("--broker-storage"), "{error}");
    }
}
