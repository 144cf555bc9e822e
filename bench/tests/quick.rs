//! `tributary-bench --quick` as a smoke test, on Tansu and on Apache Kafka:
//! every stage runs against the real broker, registry, services and
//! Postgres and produces numbers. It asserts nothing about speed.
use std::process::Command;

use tributary_bench::report::names;

#[test]
fn quick_run_measures_every_stage_on_tansu() {
    quick_run_measures_every_stage("tansu");
}

#[test]
fn quick_run_measures_every_stage_on_kafka() {
    quick_run_measures_every_stage("kafka");
}

fn quick_run_measures_every_stage(broker: &str) {
    let bin_dir = tributary_stack::binaries::build_service_binaries().unwrap();
    let out = tempfile::tempdir().unwrap();
    // One of the two runs puts ingest on one Tokio worker.
    let workers: &[&str] = if broker == "kafka" {
        &["--ingest-worker-threads", "1"]
    } else {
        &[]
    };
    let status = Command::new(env!("CARGO_BIN_EXE_tributary-bench"))
        .arg("--quick")
        .args(["--broker", broker])
        .args(workers)
        .arg("--out")
        .arg(out.path())
        .arg("--bin-dir")
        .arg(&bin_dir)
        .status()
        .unwrap();
    assert!(status.success(), "tributary-bench --quick failed: {status}");

    let files: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let json = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON report");
    let markdown = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "md"))
        .expect("a Markdown report");
    assert!(
        json.to_string_lossy()
            .ends_with(&format!("-{broker}-quick.json")),
        "{}",
        json.display()
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let markdown = std::fs::read_to_string(markdown).unwrap();
    assert_eq!(report["broker"], broker);
    if broker == "kafka" {
        assert_eq!(report["sizes"]["ingest_worker_threads"], 1);
        assert!(markdown.contains("ingest's Tokio workers 1;"), "{markdown}");
    } else {
        assert!(report["sizes"]["ingest_worker_threads"].is_null());
        assert!(markdown.contains("ingest's Tokio workers one per core;"));
    }
    assert!(
        markdown.starts_with(&format!("# Tributary benchmark on {broker}, ")),
        "{markdown}"
    );

    let stages = report["stages"].as_array().unwrap();
    for name in [
        names::RAW_PRODUCER,
        names::STREAM,
        names::RAW_PRODUCER_OPEN,
        names::STREAM_OPEN,
        names::RAW_PRODUCER_OPEN_HALF,
        names::STREAM_OPEN_HALF,
        names::RAW_PRODUCER_PER_CALLER,
        names::UNARY,
        names::HTTP_SUBMIT,
        names::RAW_CONSUMER,
        names::PROCESSOR,
        names::RAW_UPSERT,
        names::SINK,
        names::FRESHNESS,
        names::FRESHNESS_BACKGROUND,
        names::RUST_SDK,
        names::PYTHON_SDK,
        names::TYPESCRIPT_SDK,
        names::GO_SDK,
    ] {
        let stage = stages
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no stage {name:?} in {report:#}"));
        assert!(
            stage["median_per_second"].as_f64().unwrap() > 0.0,
            "{name}: {stage:#}"
        );
        assert_eq!(stage["errors"], 0, "{name}: {stage:#}");
        assert!(markdown.contains(name), "{name} missing from the Markdown");
    }
    for name in [
        names::STREAM,
        names::STREAM_OPEN,
        names::STREAM_OPEN_HALF,
        names::UNARY,
        names::FRESHNESS,
    ] {
        let stage = stages.iter().find(|s| s["name"] == name).unwrap();
        assert!(
            stage["latency"]["p99_ms"].as_f64().unwrap() > 0.0,
            "{name} has no latency: {stage:#}"
        );
    }
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 7, "{targets:#?}");
    // CPU per operation of the process doing each stage's work; and where
    // latency goes when the cores are busy: the half-maximum open loops'
    // processes' waits for a CPU, and the machine's steal time.
    for (figure, name, process) in [
        ("cpu_us_per_op", names::RAW_PRODUCER, "raw producer"),
        ("cpu_us_per_op", names::STREAM, "ingest"),
        ("cpu_us_per_op", names::UNARY, "ingest"),
        ("cpu_us_per_op", names::HTTP_SUBMIT, "ingest"),
        ("cpu_us_per_op", names::RAW_CONSUMER, "raw consumer"),
        ("cpu_us_per_op", names::PROCESSOR, "processor"),
        ("cpu_us_per_op", names::RAW_UPSERT, "raw upsert loop"),
        ("cpu_us_per_op", names::SINK, "sink"),
        ("cpu_us_per_op", names::PYTHON_SDK, "Python SDK client"),
        (
            "cpu_us_per_op",
            names::TYPESCRIPT_SDK,
            "TypeScript SDK client",
        ),
        ("cpu_us_per_op", names::GO_SDK, "Go SDK client"),
        ("cpu_us_per_op", names::PYTHON_SDK, "ingest"),
        (
            "waited_us_per_op",
            names::RAW_PRODUCER_OPEN_HALF,
            "raw producer",
        ),
        ("waited_us_per_op", names::STREAM_OPEN_HALF, "ingest"),
        (
            "waited_us_per_op",
            names::STREAM_OPEN_HALF,
            "steal (machine)",
        ),
    ] {
        let stage = stages.iter().find(|s| s["name"] == name).unwrap();
        assert!(
            stage[figure][process].as_f64().is_some_and(|us| us >= 0.0),
            "{name}: no {figure} for {process}: {stage:#}"
        );
    }
    assert!(markdown.contains("## CPU per operation"));
    assert!(markdown.contains("## SDKs"));
    for t in targets {
        assert!(t["value"].as_f64().unwrap() > 0.0, "{t:#}");
    }
    let broker_rss = format!("broker ({broker})");
    for service in ["registry", "ingest", "processor", "sink", &broker_rss] {
        assert!(
            report["peak_rss_kib"][service].as_u64().unwrap_or(0) > 1024,
            "no peak RSS for {service}: {:#}",
            report["peak_rss_kib"]
        );
    }
}
