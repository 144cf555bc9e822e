//! One event per request: unary gRPC `SubmitEvent` and `POST /submit`, each
//! with a fixed number of concurrent callers, next to the raw producer with
//! as many callers each producing one record and waiting for its delivery.
//!
//! `POST /submit` is driven by wrk, a process of its own (`dev/setup`
//! installs Debian's `wrk`), so the load generator's cost is its own and not
//! the bench's: an HTTP client in the bench process (reqwest) spent half as
//! much CPU per request as ingest itself on the same two cores.
use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use rdkafka::producer::FutureProducer;
use serde::Deserialize;
use tributary_client::{Client, proto::SubmitEventRequest};

use crate::{
    drive::{self, RunResult},
    stages::produce,
    stats::{Latency, rate},
    workload::{self, RawRecord},
};

/// The wrk script of the `POST /submit` runs: one ad click per request,
/// each with its own index and `Idempotency-Key`; prints a JSON summary.
pub const SUBMIT_SCRIPT: &str = include_str!("submit.lua");

/// The CPU figure of wrk in a run's `cpu_us_per_op`.
pub const WRK_PROCESS: &str = "client (wrk)";

/// Unary `SubmitEvent` calls from `workers` callers for `duration`.
pub async fn unary_grpc(client: &Client, workers: usize, duration: Duration) -> RunResult {
    let client = client.clone();
    drive::concurrent(workers, duration, move |i| {
        let mut ingest = client.ingest();
        async move {
            ingest
                .submit_event(SubmitEventRequest {
                    event: Some(workload::ad_click(i)),
                })
                .await?;
            Ok(())
        }
    })
    .await
}

/// The baseline of both: `workers` callers for `duration`, each producing
/// one pre-encoded record (the same size, key and headers as ingest's) with
/// the raw producer and waiting for its delivery before the next.
pub async fn raw_one_per_caller(
    producer: &FutureProducer,
    topic: &str,
    records: Arc<Vec<RawRecord>>,
    workers: usize,
    duration: Duration,
) -> RunResult {
    let (producer, topic) = (producer.clone(), Arc::<str>::from(topic));
    drive::concurrent(workers, duration, move |i| {
        let (producer, topic, records) = (producer.clone(), topic.clone(), records.clone());
        async move { produce::send_raw(&producer, &topic, &records[i % records.len()]).await }
    })
    .await
}

/// `POST /submit` over `connections` keep-alive connections for `duration`,
/// driven by wrk with [`SUBMIT_SCRIPT`]; `run` makes the idempotency keys
/// unique across runs. The result carries wrk's CPU per request under
/// [`WRK_PROCESS`]; a request is counted as failed when wrk saw an error or
/// an answer other than 2xx (ingest answers 204).
pub async fn http_submit(
    http_addr: &str,
    connections: usize,
    duration: Duration,
    run: usize,
) -> anyhow::Result<RunResult> {
    let tag = format!("bench-{}-{run}", std::process::id());
    let script = ScriptFile::write(&tag)?;
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(connections.max(1));
    let started = Instant::now();
    let output = tokio::process::Command::new("wrk")
        .arg(format!("--threads={threads}"))
        .arg(format!("--connections={connections}"))
        .arg(format!("--duration={}s", duration.as_secs().max(1)))
        // A slow answer is a slow answer, not an error.
        .arg("--timeout=30s")
        .arg("--script")
        .arg(&script.0)
        .arg(format!("http://{http_addr}/submit"))
        .arg("--")
        .arg(&tag)
        .arg(threads.to_string())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!(
                "wrk is not installed: the POST /submit runs need it (run dev/setup, which installs Debian's wrk, or apt-get install wrk)"
            ),
            _ => anyhow::Error::new(e).context("cannot run wrk"),
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}) after {:?}: {}{}",
            output.status,
            started.elapsed(),
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let summary = WrkSummary::parse(&stdout)?;
    Ok(summary.run_result(clock_ticks_per_second()))
}

/// [`SUBMIT_SCRIPT`] in a file of its own, removed when dropped.
struct ScriptFile(PathBuf);

impl ScriptFile {
    fn write(tag: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("tributary-{tag}.lua"));
        std::fs::write(&path, SUBMIT_SCRIPT)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What the script's `done()` prints.
#[derive(Debug, Deserialize, PartialEq)]
struct WrkSummary {
    requests: u64,
    duration_us: u64,
    connect_errors: u64,
    read_errors: u64,
    write_errors: u64,
    status_errors: u64,
    timeouts: u64,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
    cpu_ticks: i64,
}

impl WrkSummary {
    /// The summary line of wrk's output.
    fn parse(stdout: &str) -> anyhow::Result<Self> {
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("tributary-bench:"))
            .with_context(|| format!("no summary line in wrk's output: {stdout}"))?;
        serde_json::from_str(line).with_context(|| format!("wrk's summary: {line}"))
    }

    fn run_result(&self, ticks_per_second: f64) -> RunResult {
        // wrk counts answered requests, whatever their status; connection
        // errors and timeouts are not among them.
        let ok = self.requests.saturating_sub(self.status_errors);
        let failed_connections =
            self.connect_errors + self.read_errors + self.write_errors + self.timeouts;
        let errors = self.status_errors + failed_connections;
        let ms = |us: u64| us as f64 / 1e3;
        let mut cpu_us_per_op = std::collections::BTreeMap::new();
        if self.cpu_ticks >= 0 && ok > 0 {
            cpu_us_per_op.insert(
                WRK_PROCESS.to_string(),
                self.cpu_ticks as f64 / ticks_per_second * 1e6 / ok as f64,
            );
        }
        RunResult {
            ok,
            errors,
            per_second: rate(ok, Duration::from_micros(self.duration_us)),
            latency: Latency {
                samples: self.requests as usize,
                p50_ms: ms(self.p50_us),
                p99_ms: ms(self.p99_us),
                p999_ms: ms(self.p999_us),
                max_ms: ms(self.max_us),
            },
            first_error: (errors > 0).then(|| {
                format!(
                    "wrk: {} answers other than 2xx, {} connect, {} read, {} write errors, {} timeouts",
                    self.status_errors,
                    self.connect_errors,
                    self.read_errors,
                    self.write_errors,
                    self.timeouts
                )
            }),
            cpu_us_per_op,
            ..RunResult::default()
        }
    }
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat`'s CPU times.
fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        ticks if ticks > 0 => ticks as f64,
        _ => 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "Running 8s test @ http://127.0.0.1:1/submit\n  2 threads and 64 connections\n\
        Requests/sec:   9371.43\n\
        tributary-bench:{\"requests\":75304,\"duration_us\":8035489,\"connect_errors\":0,\"read_errors\":0,\"write_errors\":0,\"status_errors\":4,\"timeouts\":1,\"p50_us\":5941,\"p99_us\":19907,\"p999_us\":27817,\"max_us\":36310,\"cpu_ticks\":207}\n";

    #[test]
    fn the_summary_line_becomes_a_run_result() {
        let result = WrkSummary::parse(OUTPUT).unwrap().run_result(100.0);
        assert_eq!((result.ok, result.errors), (75_300, 5));
        assert!((result.per_second - 75_300.0 / 8.035489).abs() < 1e-6);
        assert_eq!(result.latency.p50_ms, 5.941);
        assert_eq!(result.latency.p99_ms, 19.907);
        assert_eq!(result.latency.max_ms, 36.31);
        let wrk_us = result.cpu_us_per_op[WRK_PROCESS];
        assert!((wrk_us - 2.07e6 / 75_300.0).abs() < 1e-9, "{wrk_us}");
        assert_eq!(
            result.first_error.as_deref(),
            Some("wrk: 4 answers other than 2xx, 0 connect, 0 read, 0 write errors, 1 timeouts")
        );
    }

    /// An HTTP/1.1 server answering every request 204, handing each
    /// request's `Idempotency-Key` and body to `seen`.
    async fn stub_server(
        seen: tokio::sync::mpsc::UnboundedSender<(String, serde_json::Value)>,
    ) -> std::net::SocketAddr {
        use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut read = tokio::io::BufReader::new(read);
                    loop {
                        let (mut length, mut key) = (0, String::new());
                        loop {
                            let mut line = String::new();
                            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let line = line.trim_end();
                            if line.is_empty() {
                                break;
                            }
                            if let Some((name, value)) = line.split_once(':') {
                                match name.to_ascii_lowercase().as_str() {
                                    "content-length" => length = value.trim().parse().unwrap(),
                                    "idempotency-key" => key = value.trim().to_string(),
                                    _ => {}
                                }
                            }
                        }
                        let mut body = vec![0; length];
                        if read.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let _ = seen.send((key, serde_json::from_slice(&body).unwrap()));
                        if write
                            .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn the_script_sends_the_workloads_clicks_each_with_its_own_key() {
        let (seen, mut received) = tokio::sync::mpsc::unbounded_channel();
        let addr = stub_server(seen).await;
        let result = http_submit(&addr.to_string(), 4, Duration::from_secs(1), 7)
            .await
            .unwrap();
        assert!(result.ok > 0, "{result:?}");
        assert_eq!(result.errors, 0, "{result:?}");
        assert!(result.cpu_us_per_op.contains_key(WRK_PROCESS), "{result:?}");
        let mut keys = std::collections::HashSet::new();
        let mut count = 0;
        while let Ok((key, body)) = received.try_recv() {
            // The key is the run's tag and the click's index.
            let (tag, index) = key.rsplit_once('-').unwrap();
            assert_eq!(tag, format!("bench-{}-7", std::process::id()));
            let index: usize = index.parse().unwrap();
            let expected: serde_json::Value =
                serde_json::from_slice(&workload::ad_click_json(index)).unwrap();
            assert_eq!(body, expected, "click {index}");
            assert!(keys.insert(key), "a key was sent twice");
            count += 1;
        }
        // wrk may stop with requests sent but not answered yet.
        assert!(count as u64 >= result.ok, "{count} seen, {result:?}");
        assert!(keys.len() > 100, "{} clicks", keys.len());
    }

    #[test]
    fn output_without_a_summary_is_an_error() {
        let error = WrkSummary::parse("Running 8s test\n").unwrap_err();
        assert!(error.to_string().contains("no summary line"), "{error}");
    }
}
