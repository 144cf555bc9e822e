//! Shared by the scale-out and shutdown tests: a deterministic workload of ad
//! clicks and price ticks, its aggregates computed here independently of the
//! pipeline, a paced sender that fails over between ingest instances, and
//! the aggregates table read back from Postgres.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tributary_proto::v1::{
    AdClick, Event, GetAggregatesRequest, PriceTick, SubmitBatchRequest, event::Payload,
    event_result::Outcome, ingest_service_client::IngestServiceClient,
    query_service_client::QueryServiceClient,
};

pub const MINUTE: i64 = 60_000;

/// Processor settings for these tests: one-minute windows, an allowed
/// lateness longer than the workload's whole span (so the order in which two
/// senders interleave never makes an event late), and windows that close 3 s
/// after their partition goes idle.
pub const PROCESSOR_ENV: &[(&str, &str)] = &[
    ("TRIBUTARY_WINDOW", "1m"),
    ("TRIBUTARY_ALLOWED_LATENESS", "10m"),
    ("TRIBUTARY_IDLE_ADVANCE", "3s"),
    ("TRIBUTARY_EMIT_INTERVAL", "200ms"),
];

/// Sink settings: small batches, so a run is many transactions.
pub const SINK_ENV: &[(&str, &str)] = &[
    ("TRIBUTARY_SINK_BATCH_SIZE", "50"),
    ("TRIBUTARY_SINK_BATCH_LINGER", "20ms"),
];

fn ts(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

pub use tributary_stack::aggregates::{Row, RowKey, rows};

/// A deterministic set of events: `clicks` ad clicks over 8 advertisers and
/// `ticks` price ticks over 3 pairs × 3 sources, spread evenly over four
/// one-minute windows half an hour ago, in event-time order, plus a copy of
/// every 40th event (a client retry with the same idempotency key).
pub struct Workload {
    pub events: Vec<Event>,
    /// The distinct events (without the retries).
    pub distinct: usize,
    /// Start of the first window.
    pub base: i64,
}

impl Workload {
    pub fn new(clicks: usize, ticks: usize) -> Self {
        let now = chrono::Utc::now().timestamp_millis();
        let base = (now - 30 * MINUTE).div_euclid(MINUTE) * MINUTE;
        let span = 4 * MINUTE;
        let mut timed: Vec<(i64, Event)> = Vec::new();
        for i in 0..clicks {
            let at = base + (i as i64 * span) / clicks as i64;
            let advertiser = i % 8;
            timed.push((
                at,
                Event {
                    event_time: ts(at),
                    idempotency_key: format!("click-{i}"),
                    payload: Some(Payload::AdClick(AdClick {
                        ip_address: format!("10.{advertiser}.{}.{}", i % 7, i % 3),
                        user_agent: "scale-out".into(),
                        referring_url: "https://example.com/".into(),
                        advertiser_id: format!("adv-{advertiser}"),
                        ..Default::default()
                    })),
                    ..Default::default()
                },
            ));
        }
        const PAIRS: [&str; 3] = ["ETH-USD", "BTC-USD", "LINK-USD"];
        const SOURCES: [&str; 3] = ["api-1", "api-2", "contract"];
        for i in 0..ticks {
            let at = base + (i as i64 * span) / ticks as i64 + 1;
            // Quarter-units: every sum of them is exact in f64, in any order.
            let price = 100.0 + ((i * 37) % 200) as f64 + 0.25 * (i % 4) as f64;
            timed.push((
                at,
                Event {
                    event_time: ts(at),
                    idempotency_key: format!("tick-{i}"),
                    payload: Some(Payload::PriceTick(PriceTick {
                        pair: PAIRS[i % 3].into(),
                        source: SOURCES[(i / 3) % 3].into(),
                        price,
                        volume: None,
                    })),
                    ..Default::default()
                },
            ));
        }
        timed.sort_by_key(|(at, _)| *at);
        let distinct = timed.len();
        let mut events: Vec<Event> = Vec::with_capacity(distinct + distinct / 40);
        for (n, (_, event)) in timed.into_iter().enumerate() {
            events.push(event);
            // The retry goes a few events later, as a client's would.
            if n % 40 == 39 {
                let retried = events[events.len() - 20].clone();
                events.push(retried);
            }
        }
        Self {
            events,
            distinct,
            base,
        }
    }

    /// The final aggregates, computed from the distinct events.
    pub fn expected(&self) -> BTreeMap<RowKey, Row> {
        tributary_stack::aggregates::expected(&self.events, MINUTE)
    }
}

/// Waits up to `limit` until the table holds exactly `expected`; fails with
/// the differences otherwise.
pub async fn wait_for_rows(
    pool: &sqlx::PgPool,
    expected: &BTreeMap<RowKey, Row>,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        let got = rows(pool).await?;
        if &got == expected {
            return Ok(());
        }
        if started.elapsed() > limit {
            let mut diff = Vec::new();
            for (key, want) in expected {
                match got.get(key) {
                    Some(have) if have == want => {}
                    have => diff.push(format!("{key:?}: want {want:?}, have {have:?}")),
                }
            }
            for key in got.keys().filter(|k| !expected.contains_key(*k)) {
                diff.push(format!("{key:?}: unexpected {:?}", got[key]));
            }
            anyhow::bail!(
                "after {limit:?} the aggregates differ in {} of {} rows:\n{}",
                diff.len(),
                expected.len(),
                diff.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Where the load is, shared by its senders and the test that drives it:
/// `acked` counts acknowledged events, and senders slow to a trickle once
/// `acked` has reached the `allowed` mark. Raising the mark and stopping a
/// service right after puts the stop mid-load however fast or slow the
/// machine is.
#[derive(Clone)]
pub struct Progress {
    pub acked: Arc<AtomicUsize>,
    allowed: tokio::sync::watch::Sender<usize>,
}

impl Progress {
    /// Senders may go until `allowed` events are acknowledged.
    pub fn new(allowed: usize) -> Self {
        Self {
            acked: Arc::new(AtomicUsize::new(0)),
            allowed: tokio::sync::watch::Sender::new(allowed),
        }
    }

    /// Acknowledged events so far.
    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::SeqCst)
    }

    /// Waits until the senders reached the mark (they slow down there).
    pub async fn wait_for_mark(&self, limit: Duration) -> anyhow::Result<usize> {
        let mark = *self.allowed.borrow();
        wait_until(limit, "the load reaches its mark", || async {
            Ok(self.acked() >= mark)
        })
        .await?;
        Ok(self.acked())
    }

    /// Lets the senders go on until `allowed` events are acknowledged.
    pub fn allow(&self, allowed: usize) {
        self.allowed.send_replace(allowed);
    }

    /// Waits while the mark is reached, but at most a second: held senders
    /// still trickle a batch a second each, because a partition idle for
    /// the processor's idle advance closes its windows, and the rest of
    /// their events would then be late.
    async fn may_send(&self) {
        let mut allowed = self.allowed.subscribe();
        let acked = self.acked.clone();
        // Only the mark changes what this waits for: `acked` only grows.
        let below_mark = allowed.wait_for(|mark| acked.load(Ordering::SeqCst) < *mark);
        let _ = tokio::time::timeout(Duration::from_secs(1), below_mark).await;
    }
}

/// Sends `batches` through `primary`, one SubmitBatch per batch with `pace`
/// between them and none past `progress`'s mark; when `primary` fails (it
/// was stopped), the batch and the rest go to `fallback` — as a client
/// behind a load balancer would see it. Every event must be acknowledged.
/// Returns how many batches failed over.
pub async fn send_batches(
    batches: Vec<Vec<Event>>,
    primary: String,
    fallback: String,
    pace: Duration,
    progress: Progress,
) -> anyhow::Result<usize> {
    let mut clients = [
        IngestServiceClient::connect(primary).await?,
        IngestServiceClient::connect(fallback).await?,
    ];
    let mut current = 0;
    let mut failovers = 0;
    for batch in batches {
        progress.may_send().await;
        let mut pending = batch;
        loop {
            let response = clients[current]
                .submit_batch(SubmitBatchRequest {
                    events: pending.clone(),
                })
                .await;
            let results = match response {
                Ok(r) => r.into_inner().results,
                Err(status) if current == 0 => {
                    eprintln!("ingest failed ({status:?}); failing over");
                    current = 1;
                    failovers += 1;
                    continue;
                }
                Err(status) => anyhow::bail!("the fallback ingest failed too: {status:?}"),
            };
            let mut refused = Vec::new();
            for result in &results {
                match &result.outcome {
                    Some(Outcome::Ack(_)) => {}
                    other => refused.push((result.index as usize, other.clone())),
                }
            }
            anyhow::ensure!(
                results.len() == pending.len(),
                "{} results for {} events",
                results.len(),
                pending.len()
            );
            progress
                .acked
                .fetch_add(pending.len() - refused.len(), Ordering::SeqCst);
            if refused.is_empty() {
                break;
            }
            // Refused while the instance was stopping: resend those elsewhere.
            anyhow::ensure!(current == 0, "the fallback ingest refused {refused:?}");
            current = 1;
            failovers += 1;
            pending = refused
                .into_iter()
                .map(|(index, _)| pending[index].clone())
                .collect();
        }
        tokio::time::sleep(pace).await;
    }
    Ok(failovers)
}

/// Waits up to `limit` for `condition` to hold, polling.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut condition: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let started = std::time::Instant::now();
    while !condition().await? {
        anyhow::ensure!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Python stubs of `proto/` generated by grpcio-tools into a temporary
/// directory (deleted when dropped).
pub struct PythonStubs {
    dir: std::path::PathBuf,
}

impl PythonStubs {
    /// The directory to put on `PYTHONPATH`.
    pub fn path(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for PythonStubs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Generates the Python stubs (dev/setup installs grpcio-tools).
pub fn python_stubs() -> anyhow::Result<PythonStubs> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("tributary-py-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let stubs = PythonStubs { dir };
    let protos: Vec<String> = ["event", "ingest", "query"]
        .iter()
        .map(|p| {
            root.join(format!("proto/tributary/v1/{p}.proto"))
                .display()
                .to_string()
        })
        .collect();
    let protoc = std::process::Command::new("python3")
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}", root.join("proto").display()))
        .arg(format!("--python_out={}", stubs.dir.display()))
        .arg(format!("--grpc_python_out={}", stubs.dir.display()))
        .args(&protos)
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot run python3 ({e}); dev/setup installs examples/python/requirements.txt"
            )
        })?;
    anyhow::ensure!(
        protoc.status.success(),
        "grpc_tools.protoc failed (dev/setup installs examples/python/requirements.txt): {}",
        String::from_utf8_lossy(&protoc.stderr)
    );
    Ok(stubs)
}

/// A gRPC client other than the Rust SDK, driven by a script in
/// `tests/clients`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForeignClient {
    /// Python's grpcio (`send.py`).
    Grpcio,
    /// Node's @grpc/grpc-js (`send.mjs`).
    GrpcJs,
}

/// Streams `events` (ad clicks) into ingest at `addr` through one
/// `SubmitEvents` call of `client`, and returns what the client was told for
/// each, in order: (partition, offset) when acknowledged, or the error. Fails
/// when the call itself ended with an error.
pub async fn submit_foreign(
    client: ForeignClient,
    addr: std::net::SocketAddr,
    events: &[Event],
) -> anyhow::Result<Vec<Result<(i32, i64), serde_json::Value>>> {
    let clients = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let input: String = events
        .iter()
        .map(|event| {
            let Some(Payload::AdClick(click)) = &event.payload else {
                panic!("the foreign senders send ad clicks only")
            };
            let at = event
                .event_time
                .as_ref()
                .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos / 1_000_000));
            let line = serde_json::json!({
                "event_time_ms": at,
                "idempotency_key": event.idempotency_key,
                "ad_click": {
                    "ip_address": click.ip_address,
                    "user_agent": click.user_agent,
                    "referring_url": click.referring_url,
                    "advertiser_id": click.advertiser_id,
                },
            });
            format!("{line}\n")
        })
        .collect();
    let mut stubs = None;
    let mut command = match client {
        ForeignClient::Grpcio => {
            let generated = python_stubs()?;
            let mut command = tokio::process::Command::new("python3");
            command
                .arg(clients.join("send.py"))
                .arg(addr.to_string())
                .env("PYTHONPATH", generated.path());
            stubs = Some(generated);
            command
        }
        ForeignClient::GrpcJs => {
            anyhow::ensure!(
                clients.join("node_modules/@grpc/grpc-js").exists(),
                "@grpc/grpc-js is not installed in {}: dev/setup installs it (npm ci)",
                clients.display()
            );
            let mut command = tokio::process::Command::new("node");
            command
                .arg(clients.join("send.mjs"))
                .arg(clients.join("../../../proto"))
                .arg(addr.to_string());
            command
        }
    };
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    use tokio::io::AsyncWriteExt as _;
    stdin.write_all(input.as_bytes()).await?;
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output()).await??;
    drop(stubs);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut answers = Vec::new();
    let mut status = None;
    for line in stdout.lines() {
        let answer: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{client:?} printed `{line}` ({e})\nstderr:\n{stderr}"))?;
        if let Some(s) = answer.get("status") {
            status = s.as_str().map(str::to_string);
        } else if let Some(ack) = answer.get("ack") {
            let partition = ack["partition"].as_i64().unwrap_or(0) as i32;
            answers.push(Ok((partition, ack["offset"].as_i64().unwrap_or(-1))));
        } else {
            answers.push(Err(answer["error"].clone()));
        }
    }
    anyhow::ensure!(
        status.as_deref() == Some("OK") && answers.len() == events.len(),
        "{client:?}: the call ended with {status:?} after {} of {} answers\nstderr:\n{stderr}",
        answers.len(),
        events.len()
    );
    Ok(answers)
}

/// What clients were told was stored, per one-minute ad-click window:
/// (advertiser, window start) → (idempotency keys, addresses).
#[derive(Default, Debug)]
pub struct ClickTruth(
    BTreeMap<
        (String, i64),
        (
            std::collections::BTreeSet<String>,
            std::collections::BTreeSet<String>,
        ),
    >,
);

impl ClickTruth {
    /// Adds an acknowledged click.
    pub fn add(&mut self, advertiser: &str, at_ms: i64, idempotency_key: &str, ip: &str) {
        let entry = self
            .0
            .entry((advertiser.to_string(), at_ms.div_euclid(MINUTE) * MINUTE))
            .or_default();
        entry.0.insert(idempotency_key.to_string());
        entry.1.insert(ip.to_string());
    }

    /// (advertiser, window start) → (count, distinct count).
    fn counts(&self) -> BTreeMap<(String, i64), (i64, i64)> {
        self.0
            .iter()
            .map(|(k, (ids, ips))| (k.clone(), (ids.len() as i64, ips.len() as i64)))
            .collect()
    }
}

/// The ad_click rows of `GetAggregates` for windows from `start` to `end`:
/// (advertiser, window start) → (count, distinct count).
pub async fn query_click_rows(
    query: &mut QueryServiceClient<tonic::transport::Channel>,
    start: i64,
    end: i64,
) -> anyhow::Result<BTreeMap<(String, i64), (i64, i64)>> {
    let mut rows = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = query
            .get_aggregates(GetAggregatesRequest {
                event_type: "ad_click".into(),
                start_time: ts(start),
                end_time: ts(end),
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        for a in page.aggregates {
            let window = a.window_start.map_or(0, |t| t.seconds * 1000);
            rows.insert((a.key, window), (a.count, a.distinct_count.unwrap_or(0)));
        }
        if page.next_page_token.is_empty() {
            return Ok(rows);
        }
        page_token = page.next_page_token;
    }
}

/// Polls `GetAggregates` until every window of `truth` has its exact count
/// and distinct count, and no other ad_click row exists in their range;
/// `false`, with both printed, if `within` passes first.
pub async fn clicks_exact_within(
    query: &mut QueryServiceClient<tonic::transport::Channel>,
    truth: &ClickTruth,
    within: Duration,
) -> anyhow::Result<bool> {
    let want = truth.counts();
    let start = want.keys().map(|k| k.1).min().unwrap_or(0);
    let end = want.keys().map(|k| k.1).max().unwrap_or(0) + MINUTE;
    let deadline = std::time::Instant::now() + within;
    let mut got = BTreeMap::new();
    while std::time::Instant::now() < deadline {
        got = query_click_rows(query, start, end).await?;
        if got == want {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("want {want:?}\n got {got:?}");
    Ok(false)
}
