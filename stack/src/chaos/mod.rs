//! `tributary-chaos`: the whole pipeline as real processes on a durable
//! broker (Tansu or Apache Kafka), driven through the Rust SDK's resending sender while a seeded
//! schedule of faults crashes its parts, then compared with the ground truth
//! recomputed from the events ingest acknowledged. The run passes only when
//! Postgres holds exactly those events' aggregates: every window, nothing
//! lost, nothing counted twice.
//!
//! A supervisor restarts any service that exits by itself (as Kubernetes or
//! Compose would) and reports it: a restart the schedule did not ask for is
//! a finding, not a failure of the run.
pub mod schedule;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use chrono::Utc;
use schedule::{Fault, Target};
use tokio::sync::Mutex;
use tributary_client::{Client, Outcome, SenderOptions, event};
use tributary_common::config::KafkaArgs;
use tributary_proto::v1::Event;
use tributary_testkit::{
    aggregates::{self, Comparison},
    broker::{Broker, BrokerKind},
    cluster::{self, Cluster, ServiceProcess},
    postgres,
    private_postgres::PrivatePostgres,
};

/// The processor's window in a chaos run: short, so the last windows close
/// soon after the load ends.
const WINDOW: Duration = Duration::from_secs(10);

/// The processor's settings. Events are stamped when they are sent, so a
/// resent event is as old as the outage it waited out; the allowed lateness
/// covers the longest outage the schedule makes (the lateness policy itself
/// is not what this run checks).
const PROCESSOR_ENV: &[(&str, &str)] = &[
    ("TRIBUTARY_WINDOW", "10s"),
    ("TRIBUTARY_ALLOWED_LATENESS", "30s"),
    ("TRIBUTARY_IDLE_ADVANCE", "5s"),
    ("TRIBUTARY_EMIT_INTERVAL", "500ms"),
    ("TRIBUTARY_GROUP_INSTANCE_ID", "processor-0"),
];

const SINK_ENV: &[(&str, &str)] = &[("TRIBUTARY_GROUP_INSTANCE_ID", "sink-0")];

/// `tributary-chaos`'s flags.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tributary-chaos",
    about = "Runs the pipeline as real processes on a durable broker, crashes its parts on a seeded schedule while the SDK streams events, and checks Postgres against the acknowledged events"
)]
pub struct ChaosArgs {
    /// Events to send.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,

    /// A short run: 100,000 events.
    #[arg(long)]
    pub quick: bool,

    /// The schedule's seed (printed; a random one when not given).
    #[arg(long)]
    pub seed: Option<u64>,

    /// How many faults (every kind once at the default).
    #[arg(long)]
    pub faults: Option<usize>,

    /// Leave the broker out of the schedule.
    #[arg(long)]
    pub no_broker_faults: bool,

    /// The broker: Tansu (SQLite storage) or Apache Kafka (KRaft).
    #[arg(long, value_enum, default_value_t = BrokerKind::Tansu)]
    pub broker: BrokerKind,

    /// Partitions of every topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,

    /// How long after the last fault and the last acknowledgement the
    /// aggregates may take to become exact and final.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "120s")]
    pub deadline: Duration,

    /// Where the service binaries are (default: next to this one).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
}

impl ChaosArgs {
    fn event_count(&self) -> usize {
        if self.quick { 100_000 } else { self.events }
    }
}

/// Everything a fault can hit.
struct Parts {
    registry: ServiceProcess,
    ingest: ServiceProcess,
    processor: ServiceProcess,
    sink: ServiceProcess,
    broker: Broker,
    postgres: PrivatePostgres,
}

/// What happened to one fault of the schedule.
struct Injected {
    fault: Fault,
    /// Seconds since the start of the load.
    started: f64,
    acked: usize,
}

/// Runs the chaos run and prints its report; `Ok(true)` when exact.
pub async fn run(args: ChaosArgs) -> anyhow::Result<bool> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let total = args.event_count();
    let faults = schedule::generate(seed, args.faults.unwrap_or_else(schedule::kinds), |t| {
        !(args.no_broker_faults && t == Target::Broker)
    });
    println!(
        "tributary-chaos: {total} events on {}, seed {seed} (replay with --seed {seed})",
        args.broker
    );
    println!("schedule:");
    for fault in &faults {
        println!("  {fault}");
    }

    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this binary has no directory")?
            .to_path_buf(),
    };
    let log_dir = cluster::log_dir(&format!("chaos-{seed}"))?;
    println!("logs: {}", log_dir.display());

    let postgres = tokio::task::spawn_blocking(PrivatePostgres::start).await??;
    let database_url = format!("{}/tributary", postgres.server_url());
    postgres::ensure_database(&database_url).await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&database_url)
        .await?;
    tributary_store::migrate(&pool).await?;
    let broker = Broker::start(args.broker).await?;
    let kafka = KafkaArgs::for_brokers(broker.brokers());
    // The registry listens on a port whose number contains "404", so a
    // client that mistook the text of a refused connection for "not found"
    // would dead-letter acknowledged events whenever the registry restarts.
    let (cluster, registry) = Cluster::bootstrap_with_registry_at(
        bin_dir,
        log_dir.clone(),
        kafka,
        database_url,
        args.partitions,
        cluster::loopback_in(40400..40500)?,
    )
    .await?;
    let mut sink = cluster.sink("sink", SINK_ENV)?;
    let mut processor = cluster.processor("processor", PROCESSOR_ENV)?;
    Cluster::wait_for_metrics(&mut sink).await?;
    Cluster::wait_for_metrics(&mut processor).await?;
    let ingest = cluster.ingest("ingest").await?;
    let ingest_url = ingest.grpc_url();
    let parts = Arc::new(Mutex::new(Parts {
        registry,
        ingest,
        processor,
        sink,
        broker,
        postgres,
    }));

    let started = Instant::now();
    let acked = Arc::new(AtomicUsize::new(0));
    // The load runs ahead of the next fault's mark by a few windows of
    // events, never further, so every fault lands mid-load.
    let ahead = 4096;
    let allowed = tokio::sync::watch::Sender::new(
        faults
            .first()
            .map_or(total, |f| (f.at * total as f64) as usize + ahead),
    );
    let driver = tokio::spawn(drive(ingest_url, total, acked.clone(), allowed.subscribe()));
    let unplanned = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let supervisor = tokio::spawn(supervise(
        cluster.clone(),
        parts.clone(),
        started,
        unplanned.clone(),
    ));

    let mut injected = Vec::new();
    let mut last_fault = started;
    let marks: Vec<usize> = faults
        .iter()
        .map(|f| (f.at * total as f64) as usize)
        .collect();
    for (n, fault) in faults.into_iter().enumerate() {
        while acked.load(Ordering::SeqCst) < marks[n] && !driver.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if driver.is_finished() {
            let ended = match driver.await? {
                Ok(driven) => format!("{} acknowledged", driven.acked.len()),
                Err(error) => format!("{error:#}"),
            };
            anyhow::bail!("the load ended before the fault {fault}: {ended}");
        }
        let at = started.elapsed().as_secs_f64();
        let now_acked = acked.load(Ordering::SeqCst);
        inject(&cluster, &parts, &fault).await?;
        last_fault = Instant::now();
        println!("  {:>7.2}s  {fault}  ({now_acked} acknowledged)", at);
        allowed.send_replace(marks.get(n + 1).map_or(total, |mark| mark + ahead));
        injected.push(Injected {
            fault,
            started: at,
            acked: now_acked,
        });
    }
    let driven = driver.await??;
    let load_end = Instant::now();

    // Converge: the values first, then every window final.
    let want = aggregates::expected(&driven.acked, WINDOW.as_millis() as i64);
    let from = last_fault.max(driven.last_ack);
    let mut values_at = None;
    let mut comparison = Comparison::default();
    while from.elapsed() < args.deadline {
        match aggregates::rows(&pool).await {
            Ok(got) => {
                comparison = aggregates::compare(&want, &got);
                if values_at.is_none() && comparison.values_match() {
                    values_at = Some(Instant::now());
                }
                if comparison.is_exact() {
                    break;
                }
            }
            Err(error) => eprintln!("cannot read the aggregates: {error:#}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let final_at = comparison.is_exact().then(Instant::now);
    supervisor.abort();
    let _ = supervisor.await;

    let exact = comparison.is_exact() && driven.rejected.is_empty() && driven.unanswered == 0;
    println!();
    println!("result: {}", if exact { "EXACT" } else { "NOT EXACT" });
    println!(
        "  events       {} sent, {} acknowledged, {} rejected, {} never answered; load took {:.1}s",
        total,
        driven.acked.len(),
        driven.rejected.len(),
        driven.unanswered,
        (load_end - started).as_secs_f64()
    );
    println!(
        "  windows      {} expected, {} exact and final, {} with the right values still open",
        comparison.windows, comparison.exact, comparison.open
    );
    println!(
        "  lost {}, double {}, windows with other wrong values {}",
        comparison.lost, comparison.double, comparison.wrong_values
    );
    let since = |t: Option<Instant>, from: Instant| {
        t.map(|t| format!("{:.1}s", t.saturating_duration_since(from).as_secs_f64()))
            .unwrap_or_else(|| "never".into())
    };
    println!(
        "  converged    values {} after the last fault ({} after the last acknowledgement); final {} after the last fault",
        since(values_at, last_fault),
        since(values_at, driven.last_ack),
        since(final_at, last_fault)
    );
    println!("  faults       {} injected", injected.len());
    for i in &injected {
        println!(
            "    {:>7.2}s  {}  ({} acknowledged)",
            i.started, i.fault, i.acked
        );
    }
    let unplanned = unplanned.lock().expect("unplanned lock").clone();
    println!("  unplanned restarts: {}", unplanned.len());
    for line in &unplanned {
        println!("    {line}");
    }
    for rejected in driven.rejected.iter().take(5) {
        println!("  rejected: {rejected}");
    }
    for example in &comparison.examples {
        println!("  differs: {example}");
    }
    println!(
        "  replay: dev/chaos --broker {} --events {total} --seed {seed}",
        args.broker
    );

    let mut parts = Arc::try_unwrap(parts)
        .map_err(|_| anyhow::anyhow!("the supervisor still holds the parts"))?
        .into_inner();
    for service in [
        &mut parts.ingest,
        &mut parts.processor,
        &mut parts.sink,
        &mut parts.registry,
    ] {
        let _ = service.process.terminate(Duration::from_secs(20)).await;
    }
    pool.close().await;
    if exact {
        let _ = std::fs::remove_dir_all(&log_dir);
    }
    Ok(exact)
}

/// Crashes `fault.target` and starts it again (twice for a kill during the
/// rejoin).
async fn inject(cluster: &Cluster, parts: &Mutex<Parts>, fault: &Fault) -> anyhow::Result<()> {
    let mut parts = parts.lock().await;
    let rounds = if fault.again_after.is_some() { 2 } else { 1 };
    for round in 0..rounds {
        if round == 1 {
            tokio::time::sleep(fault.again_after.expect("two rounds")).await;
        }
        match fault.target {
            Target::Broker => {
                parts.broker.kill().await?;
                tokio::time::sleep(fault.down).await;
                parts.broker.restart().await?;
            }
            Target::Postgres => {
                let postgres = &parts.postgres;
                tokio::task::block_in_place(|| postgres.crash())?;
                tokio::time::sleep(fault.down).await;
                tokio::task::block_in_place(|| postgres.start_server())?;
            }
            target => {
                let service = match target {
                    Target::Ingest => &mut parts.ingest,
                    Target::Processor => &mut parts.processor,
                    Target::Sink => &mut parts.sink,
                    Target::Registry => &mut parts.registry,
                    Target::Broker | Target::Postgres => unreachable!("handled above"),
                };
                service.process.kill().await?;
                tokio::time::sleep(fault.down).await;
                cluster.respawn(service).await?;
            }
        }
    }
    Ok(())
}

/// Restarts any service that exits when no fault is being injected.
async fn supervise(
    cluster: Cluster,
    parts: Arc<Mutex<Parts>>,
    started: Instant,
    unplanned: Arc<std::sync::Mutex<Vec<String>>>,
) -> anyhow::Result<()> {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut guard = parts.lock().await;
        let parts = &mut *guard;
        for service in [
            &mut parts.registry,
            &mut parts.ingest,
            &mut parts.processor,
            &mut parts.sink,
        ] {
            if let Some(status) = service.process.try_wait()? {
                let line = format!(
                    "{:.2}s {} exited by itself ({status}); restarted. Its log: {}",
                    started.elapsed().as_secs_f64(),
                    service.name(),
                    service.process.log_path().display()
                );
                eprintln!("{line}");
                unplanned.lock().expect("unplanned lock").push(line);
                tokio::time::sleep(Duration::from_secs(1)).await;
                cluster.respawn(service).await?;
            }
        }
    }
}

/// What the load came to.
struct Driven {
    /// The events ingest acknowledged (the ground truth).
    acked: Vec<Event>,
    /// Events ingest refused, with its reason.
    rejected: Vec<String>,
    /// Events the sender gave up on.
    unanswered: usize,
    last_ack: Instant,
}

/// Streams `total` ad clicks and price ticks, stamped as they are sent,
/// through the SDK's resending sender, never past the `allowed` mark, and
/// collects what ingest answered.
async fn drive(
    url: String,
    total: usize,
    acked: Arc<AtomicUsize>,
    mut allowed: tokio::sync::watch::Receiver<usize>,
) -> anyhow::Result<Driven> {
    let client = Client::new(url)?;
    let sender = client.sender(SenderOptions {
        window: 1024,
        retry_timeout: Duration::from_secs(300),
        max_backoff: Duration::from_secs(1),
        first_connect_timeout: Duration::from_secs(30),
        ..Default::default()
    });
    let (queue, mut answers) = tokio::sync::mpsc::channel(4096);
    let collector = tokio::spawn(async move {
        let mut driven = Driven {
            acked: Vec::with_capacity(total),
            rejected: Vec::new(),
            unanswered: 0,
            last_ack: Instant::now(),
        };
        while let Some((event, pending)) = answers.recv().await {
            let pending: tributary_client::Pending = pending;
            match pending.await {
                Ok(Outcome::Acked(_)) => {
                    driven.acked.push(event);
                    driven.last_ack = Instant::now();
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Outcome::Rejected(error)) => driven
                    .rejected
                    .push(format!("{}: {}", event.idempotency_key, error.message)),
                Err(_) => driven.unanswered += 1,
            }
        }
        driven
    });
    let mut workload = Workload::default();
    for i in 0..total {
        allowed.wait_for(|allowed| i < *allowed).await?;
        let event = workload.event(i);
        let pending = sender.send(event.clone()).await?;
        if queue.send((event, pending)).await.is_err() {
            break;
        }
    }
    drop(queue);
    let closed = sender.close().await;
    let driven = collector.await?;
    if let Err(error) = closed {
        eprintln!("the sender failed: {error}");
    }
    Ok(driven)
}

/// The load: four ad clicks over 8 advertisers for every price tick over
/// 3 pairs × 3 sources (prices in quarter units, so every sum is exact in
/// f64 in any order), stamped as they are made. A pair's ticks get strictly
/// increasing times, so its "last" price is never a tie.
#[derive(Default)]
struct Workload {
    last_tick_ms: [i64; 9],
}

impl Workload {
    fn event(&mut self, i: usize) -> Event {
        const PAIRS: [&str; 3] = ["ETH-USD", "BTC-USD", "LINK-USD"];
        const SOURCES: [&str; 3] = ["api-1", "api-2", "contract"];
        let now = Utc::now();
        if i % 5 == 4 {
            let (pair, source) = (i % 3, (i / 3) % 3);
            let last = &mut self.last_tick_ms[pair * 3 + source];
            *last = now.timestamp_millis().max(*last + 1);
            let price = 100.0 + ((i * 37) % 200) as f64 + 0.25 * (i % 4) as f64;
            event::price_tick(PAIRS[pair], SOURCES[source], price)
                .event_time_millis(*last)
                .idempotency_key(format!("chaos-{i}"))
                .build()
        } else {
            let advertiser = i % 8;
            event::ad_click(
                format!("adv-{advertiser}"),
                format!("10.{advertiser}.{}.{}", i % 7, i % 3),
                "chaos",
                "https://example.com/",
            )
            .event_time(now)
            .idempotency_key(format!("chaos-{i}"))
            .build()
        }
    }
}
