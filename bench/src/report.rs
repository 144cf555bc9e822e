//! The results: every stage's runs and medians, the ratios to the
//! baselines against the targets, peak RSS and the machine, as JSON and as
//! Markdown.
use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use serde::Serialize;
use tributary_stack::{apache_kafka, broker::BrokerKind};

use crate::{
    config::Sizes,
    drive::RunResult,
    stats::{Latency, median, ratio},
};

/// One measured stage: its runs and their medians.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// Short name, e.g. `raw producer (closed loop)`.
    pub name: String,
    /// Whether this is a raw baseline.
    pub baseline: bool,
    /// What is counted per second.
    pub unit: String,
    /// Every run.
    pub runs: Vec<RunResult>,
    /// Median over the runs of the per-second rate.
    pub median_per_second: f64,
    /// The latency of the run with the median p99.
    pub latency: Latency,
    /// Failed operations over all runs.
    pub errors: u64,
    /// Median over the runs of each process's CPU microseconds per operation.
    pub cpu_us_per_op: BTreeMap<String, f64>,
    /// Median over the runs of the microseconds per operation each process
    /// waited for a CPU, and of the machine's steal time.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub waited_us_per_op: BTreeMap<String, f64>,
}

impl Stage {
    /// A stage from its runs.
    pub fn new(name: &str, baseline: bool, unit: &str, runs: Vec<RunResult>) -> Self {
        let rates: Vec<f64> = runs.iter().map(|r| r.per_second).collect();
        let latencies: Vec<Latency> = runs.iter().map(|r| r.latency).collect();
        Self {
            name: name.into(),
            baseline,
            unit: unit.into(),
            median_per_second: median(&rates),
            latency: Latency::median_run(&latencies),
            errors: runs.iter().map(|r| r.errors).sum(),
            cpu_us_per_op: medians_by_process(&runs, |r| &r.cpu_us_per_op),
            waited_us_per_op: medians_by_process(&runs, |r| &r.waited_us_per_op),
            runs,
        }
    }
}

/// The median over `runs` of each process's figure in the map `of` picks.
fn medians_by_process(
    runs: &[RunResult],
    of: impl Fn(&RunResult) -> &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    runs.iter()
        .flat_map(|r| of(r).keys())
        .map(|process| {
            let each: Vec<f64> = runs
                .iter()
                .filter_map(|r| of(r).get(process).copied())
                .collect();
            (process.clone(), median(&each))
        })
        .collect()
}

/// A comparison against a target.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is compared.
    pub name: String,
    /// The measured value (a ratio, or an absolute rate).
    pub value: f64,
    /// The target, in words.
    pub target: String,
    /// Whether the measured value meets it.
    pub met: bool,
}

impl Target {
    /// `value ≥ at_least`.
    pub fn at_least(name: &str, value: f64, at_least: f64, unit: &str) -> Self {
        Self {
            name: name.into(),
            value,
            target: format!("≥ {at_least}{unit}"),
            met: value >= at_least,
        }
    }

    /// `value ≤ at_most`.
    pub fn at_most(name: &str, value: f64, at_most: f64, unit: &str) -> Self {
        Self {
            name: name.into(),
            value,
            target: format!("≤ {at_most}{unit}"),
            met: value <= at_most,
        }
    }
}

/// Facts about the machine the run was on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// CPU model.
    pub cpu_model: String,
    /// Memory, GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// 1-minute load average when the run started (other work on the machine).
    pub load_average_at_start: f64,
    /// The broker's version: `tansu --version`, or `Apache Kafka 3.9.0`.
    pub broker: String,
}

impl Machine {
    /// Reads the facts from `/proc`, and the version of the `broker`.
    pub fn read(broker: BrokerKind) -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let meminfo = read("/proc/meminfo");
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let broker = match broker {
            BrokerKind::Tansu => tributary_stack::tansu::find_binary()
                .ok()
                .and_then(|bin| {
                    std::process::Command::new(bin)
                        .arg("--version")
                        .output()
                        .ok()
                })
                .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
                .unwrap_or_default(),
            BrokerKind::Kafka => format!("Apache Kafka {}", apache_kafka::version()),
        };
        Self {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
                .unwrap_or_default(),
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            load_average_at_start: read("/proc/loadavg")
                .split(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0),
            broker,
        }
    }
}

/// A whole benchmark run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When it started (UTC, RFC 3339).
    pub started_at: String,
    /// How long it took, seconds.
    pub duration_s: f64,
    /// The commit measured (`git rev-parse HEAD`), if known.
    pub git_commit: Option<String>,
    /// The machine.
    pub machine: Machine,
    /// A `--quick` smoke run.
    pub quick: bool,
    /// The broker every stage ran on: `tansu` or `kafka`.
    pub broker: String,
    /// The broker's storage: `memory` or `sqlite` (Tansu), `disk` (Apache
    /// Kafka).
    pub broker_storage: String,
    /// Partitions of every topic.
    pub partitions: i32,
    /// The sizes of every stage.
    pub sizes: Sizes,
    /// Every stage, baselines next to what they are the baseline of.
    pub stages: Vec<Stage>,
    /// The ratios and rates against their targets.
    pub targets: Vec<Target>,
    /// Peak RSS of each service (the largest of its processes), KiB.
    pub peak_rss_kib: BTreeMap<String, u64>,
}

impl Report {
    /// The stage named `name`.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let kind = if self.quick {
            " (--quick: a smoke run, not a measurement)"
        } else {
            ""
        };
        let _ = writeln!(
            md,
            "# Tributary benchmark on {}, {}{kind}\n",
            self.broker, self.started_at
        );
        let m = &self.machine;
        let _ = writeln!(
            md,
            "{} CPUs ({}), {} GiB, Linux {}, load average {} at start; broker {} with {} storage, {} partitions per topic; commit {}; {} run(s) per stage, medians shown; took {:.0} s.\n",
            m.cpus,
            m.cpu_model,
            m.memory_gib,
            m.kernel,
            m.load_average_at_start,
            m.broker,
            self.broker_storage,
            self.partitions,
            self.git_commit.as_deref().unwrap_or("unknown"),
            self.sizes.runs,
            self.duration_s,
        );
        let _ = writeln!(
            md,
            "## Targets\n\n| | measured | target | met |\n|---|---|---|---|"
        );
        for t in &self.targets {
            let _ = writeln!(
                md,
                "| {} | {:.2} | {} | {} |",
                t.name,
                t.value,
                t.target,
                if t.met { "yes" } else { "**no**" }
            );
        }
        let _ = writeln!(
            md,
            "\n## Stages\n\n| stage | median | each run | p50 ms | p99 ms | p99.9 ms | errors |\n|---|---|---|---|---|---|---|"
        );
        for s in &self.stages {
            let runs: Vec<String> = s
                .runs
                .iter()
                .map(|r| format!("{:.0}", r.per_second))
                .collect();
            let latency = |v: f64| {
                if s.latency.samples == 0 {
                    "".to_string()
                } else {
                    format!("{v:.2}")
                }
            };
            let _ = writeln!(
                md,
                "| {}{} | {:.0} {}/s | {} | {} | {} | {} | {} |",
                s.name,
                if s.baseline { " (baseline)" } else { "" },
                s.median_per_second,
                s.unit,
                runs.join(", "),
                latency(s.latency.p50_ms),
                latency(s.latency.p99_ms),
                latency(s.latency.p999_ms),
                s.errors
            );
        }
        if let Some(rust) = self.stages.iter().find(|s| s.name == names::RUST_SDK) {
            let _ = writeln!(
                md,
                "\n## SDKs\n\nEach SDK's sender through one stream, closed loop, on ad clicks of the same shape; the Rust SDK's is measured against the raw producer by the produce stage.\n\n| SDK sender | events/s | / Rust SDK | client CPU µs per event | ingest CPU µs per event |\n|---|---|---|---|---|"
            );
            for s in self.stages.iter().filter(|s| {
                [
                    names::RUST_SDK,
                    names::PYTHON_SDK,
                    names::TYPESCRIPT_SDK,
                    names::GO_SDK,
                ]
                .contains(&s.name.as_str())
            }) {
                let client = s
                    .cpu_us_per_op
                    .iter()
                    .find(|(process, _)| process.contains("client"))
                    .map_or(String::new(), |(_, us)| format!("{us:.1}"));
                let ingest = s
                    .cpu_us_per_op
                    .get("ingest")
                    .map_or(String::new(), |us| format!("{us:.1}"));
                let _ = writeln!(
                    md,
                    "| {} | {:.0} | {:.2} | {client} | {ingest} |",
                    s.name,
                    s.median_per_second,
                    ratio(s.median_per_second, rust.median_per_second),
                );
            }
        }
        if let Some(raw) = self.stage(names::RAW_PRODUCER_PER_CALLER) {
            let _ = writeln!(
                md,
                "\n## One event per request\n\nEach request (or raw record) waits for its delivery before its caller sends the next, {} callers; against the raw producer doing the same with pre-encoded records. CPU in µs per request (per record for the raw producer).\n\n| stage | requests/s | / raw producer | ingest CPU | / raw producer CPU | broker CPU | client CPU |\n|---|---|---|---|---|---|---|",
                self.sizes.concurrency
            );
            let raw_cpu = raw.cpu_us_per_op.get("raw producer").copied();
            let cell = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.1}"));
            for s in self.stages.iter().filter(|s| {
                [
                    names::RAW_PRODUCER_PER_CALLER,
                    names::UNARY,
                    names::HTTP_SUBMIT,
                ]
                .contains(&s.name.as_str())
            }) {
                let own = if s.baseline {
                    raw_cpu
                } else {
                    s.cpu_us_per_op.get("ingest").copied()
                };
                let client = s
                    .cpu_us_per_op
                    .iter()
                    .find(|(process, _)| process.starts_with("client"))
                    .map(|(_, us)| *us);
                let _ = writeln!(
                    md,
                    "| {} | {:.0} | {:.2} | {} | {} | {} | {} |",
                    s.name,
                    s.median_per_second,
                    ratio(s.median_per_second, raw.median_per_second),
                    cell(own),
                    cell(own.zip(raw_cpu).map(|(own, raw)| ratio(own, raw))),
                    cell(s.cpu_us_per_op.get("broker").copied()),
                    cell(client),
                );
            }
        }
        let _ = writeln!(
            md,
            "\n## CPU per operation\n\nUser + system CPU of each process over a run (`/proc/<pid>/stat`), in microseconds per operation the run completed; medians of the runs. Beside it, how long the process's threads were ready to run but waited for a CPU (`/proc/<pid>/task/*/schedstat`), and the machine's steal time (`/proc/stat`), per operation. The consumers (raw consumer, processor), the sink and the raw upsert loop are measured after a warm-up (the first second of records, the first batch), over the timed part only.\n\n| stage | process | CPU µs per operation | waited for a CPU, µs per operation |\n|---|---|---|---|"
        );
        for s in &self.stages {
            let processes: std::collections::BTreeSet<&String> = s
                .cpu_us_per_op
                .keys()
                .chain(s.waited_us_per_op.keys())
                .collect();
            for process in processes {
                let cell = |of: &BTreeMap<String, f64>| {
                    of.get(process)
                        .map_or(String::new(), |us| format!("{us:.1}"))
                };
                let _ = writeln!(
                    md,
                    "| {} | {process} | {} | {} |",
                    s.name,
                    cell(&s.cpu_us_per_op),
                    cell(&s.waited_us_per_op)
                );
            }
        }
        let _ = writeln!(md, "\n## Peak RSS\n\n| process | MiB |\n|---|---|");
        for (name, kib) in &self.peak_rss_kib {
            let _ = writeln!(md, "| {name} | {:.1} |", *kib as f64 / 1024.0);
        }
        let s = &self.sizes;
        let _ = writeln!(
            md,
            "\n## Sizes\n\nclosed loop: {:?} after {:?} of warm-up, {} in flight, {} stream(s) (the open loops and the maximum-rate probes deal their events over the same streams), SDK linger {:?}, ingest's Tokio workers {}; SDK senders: {} events each; open loop: {} events/s for {:?}; unary and POST /submit: {} callers for {:?}; sink backlog: {} rows, baseline batches of {}; freshness: {} events/s background, {} probes/s, for {:?}.",
            s.closed_duration,
            s.closed_warm_up,
            s.window,
            s.streams,
            s.linger,
            s.ingest_worker_threads
                .map_or("one per core".to_string(), |n| n.to_string()),
            s.events,
            s.latency_rate,
            s.latency_duration,
            s.concurrency,
            s.request_duration,
            s.sink_rows,
            s.sink_batch,
            s.freshness_rate,
            s.probe_rate,
            s.freshness_duration
        );
        if let Some(max) = &s.max_rate {
            let probes: Vec<String> = max
                .probes
                .iter()
                .map(|p| {
                    format!(
                        "{}/s {} (p99 {:.1} ms, last answer {:.0} ms after due{})",
                        p.rate,
                        if p.kept_up { "kept up" } else { "fell behind" },
                        p.p99_ms,
                        p.last_ms,
                        if p.errors > 0 {
                            format!(", {} errors", p.errors)
                        } else {
                            String::new()
                        }
                    )
                })
                .collect();
            let maximum = match max.sustained {
                Some(rate) => format!("{rate}/s sustained in an open loop"),
                None => "no probe kept up, so there is no sustained rate; the lowest rate probed stands in".to_string(),
            };
            let _ = writeln!(
                md,
                "\nMaximum rate of streaming ingest: {maximum} (probes of {:?}; a probe keeps up when nothing fails, nothing starts more than {:?} late, and its p99 and its last answer stay within {:?}), against {:.0}/s in the closed loop; the second latency point is half of it, {}/s. Probes: {}.",
                s.sustain_probe,
                s.sustain_bound,
                s.sustain_bound,
                max.closed_loop,
                max.half,
                probes.join("; ")
            );
        }
        md
    }

    /// Writes `<stamp>-<broker>.json` and `<stamp>-<broker>.md` into `dir`
    /// (`-quick` after a `--quick` run); returns their paths.
    pub fn write(&self, dir: &Path) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let stamp = format!(
            "{}-{}{}",
            self.started_at.replace([':', '-'], "").replace('T', "-"),
            self.broker,
            if self.quick { "-quick" } else { "" }
        );
        let json = dir.join(format!("{stamp}.json"));
        let md = dir.join(format!("{stamp}.md"));
        std::fs::write(&json, serde_json::to_string_pretty(self)?)?;
        std::fs::write(&md, self.markdown())?;
        Ok((json, md))
    }
}

/// `POST /submit` requests/s at 64 connections, with the broker, the
/// database and every service on the same two cores (issue 17; the old Go
/// service it replaces did 17,315 under vegeta).
pub const SUBMIT_TARGET: f64 = 35_000.0;

/// The ratios the README's targets are about, from the stages by name.
pub fn targets(stages: &[Stage]) -> Vec<Target> {
    let find = |name: &str| stages.iter().find(|s| s.name == name);
    let mut targets = Vec::new();
    if let (Some(raw), Some(ours)) = (find(names::RAW_PRODUCER), find(names::STREAM)) {
        targets.push(Target::at_least(
            "streaming ingest / raw producer, events/s",
            ratio(ours.median_per_second, raw.median_per_second),
            0.8,
            "",
        ));
    }
    if let (Some(raw), Some(ours)) = (find(names::RAW_PRODUCER), find(names::STREAM))
        && let (Some(raw_cpu), Some(ingest_cpu)) = (
            raw.cpu_us_per_op.get("raw producer"),
            ours.cpu_us_per_op.get("ingest"),
        )
    {
        targets.push(Target::at_most(
            "ingest CPU per event / raw producer CPU per record, closed loop",
            ratio(*ingest_cpu, *raw_cpu),
            2.0,
            "",
        ));
    }
    for (raw, ours, what) in [
        (
            names::RAW_PRODUCER_OPEN,
            names::STREAM_OPEN,
            "streaming ack p99 / raw delivery p99, open loop at the latency rate",
        ),
        (
            names::RAW_PRODUCER_OPEN_HALF,
            names::STREAM_OPEN_HALF,
            "streaming ack p99 / raw delivery p99, open loop at half streaming ingest's maximum sustained rate",
        ),
    ] {
        if let (Some(raw), Some(ours)) = (find(raw), find(ours)) {
            targets.push(Target::at_most(
                what,
                ratio(ours.latency.p99_ms, raw.latency.p99_ms),
                1.5,
                "",
            ));
        }
    }
    if let (Some(raw), Some(ours)) = (find(names::RAW_CONSUMER), find(names::PROCESSOR)) {
        targets.push(Target::at_least(
            "processor / raw consumer, events/s",
            ratio(ours.median_per_second, raw.median_per_second),
            0.7,
            "",
        ));
    }
    if let (Some(raw), Some(ours)) = (find(names::RAW_UPSERT), find(names::SINK)) {
        targets.push(Target::at_least(
            "sink / raw upsert loop, rows/s",
            ratio(ours.median_per_second, raw.median_per_second),
            0.9,
            "",
        ));
    }
    if let Some(submit) = find(names::HTTP_SUBMIT) {
        targets.push(Target::at_least(
            "POST /submit, requests/s (wrk, one connection per caller)",
            submit.median_per_second,
            SUBMIT_TARGET,
            " req/s",
        ));
    }
    targets
}

/// Stage names, shared by the run and the targets.
pub mod names {
    /// Baseline of streaming ingest's throughput.
    pub const RAW_PRODUCER: &str = "raw producer, closed loop";
    /// Streaming ingest's throughput.
    pub const STREAM: &str = "streaming ingest (SDK), closed loop";
    /// Baseline of streaming ingest's latency.
    pub const RAW_PRODUCER_OPEN: &str = "raw producer, open loop";
    /// Streaming ingest's latency.
    pub const STREAM_OPEN: &str = "streaming ingest (SDK), open loop";
    /// Baseline of streaming ingest's latency at half its maximum sustained
    /// rate.
    pub const RAW_PRODUCER_OPEN_HALF: &str = "raw producer, open loop at half the maximum";
    /// Streaming ingest's latency at half its maximum sustained rate (the
    /// highest offered rate an open loop keeps up with, at most the closed
    /// loop's events/s).
    pub const STREAM_OPEN_HALF: &str = "streaming ingest (SDK), open loop at half the maximum";
    /// Baseline of unary gRPC and `POST /submit`: the raw producer with as
    /// many callers, each producing one record and waiting for its delivery.
    pub const RAW_PRODUCER_PER_CALLER: &str = "raw producer, one record per caller";
    /// Unary gRPC.
    pub const UNARY: &str = "unary gRPC SubmitEvent";
    /// `POST /submit`.
    pub const HTTP_SUBMIT: &str = "POST /submit";
    /// Baseline of the processor.
    pub const RAW_CONSUMER: &str = "raw consumer, backlog";
    /// The processor.
    pub const PROCESSOR: &str = "processor, backlog";
    /// Baseline of the sink.
    pub const RAW_UPSERT: &str = "raw upsert loop (Store::write)";
    /// The sink.
    pub const SINK: &str = "sink, backlog";
    /// End-to-end freshness probes.
    pub const FRESHNESS: &str = "freshness probes (submit → GetAggregates)";
    /// The freshness run's background load.
    pub const FRESHNESS_BACKGROUND: &str = "freshness background load";
    /// The Rust SDK's sender, one stream: what the other SDKs are compared with.
    pub const RUST_SDK: &str = "Rust SDK sender, one stream";
    /// The Python SDK's sender, one stream.
    pub const PYTHON_SDK: &str = "Python SDK sender, one stream";
    /// The TypeScript SDK's sender, one stream.
    pub const TYPESCRIPT_SDK: &str = "TypeScript SDK sender, one stream";
    /// The Go SDK's sender, one stream (`client/go/bench/send`).
    pub const GO_SDK: &str = "Go SDK sender, one stream";
}
