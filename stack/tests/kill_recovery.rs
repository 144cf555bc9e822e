//! Crashes that land while a consumer group is still settling: a processor
//! and a sink SIGKILLed mid-load and restarted within their session timeout
//! (the dead member is still in the group when its replacement joins), and
//! each killed twice within 3 s (the second kill lands while the first
//! replacement is joining). Both must end with exact aggregates in Postgres
//! within 30 s of the last restart: nothing lost, nothing counted twice, no
//! group left without an owner for a partition. Each runs on Tansu and on
//! Apache Kafka. And a processor and a sink restarted while the registry is
//! down, on a port whose number contains "404": they must wait for it, not
//! dead-letter acknowledged events as "unknown schema".
mod support;

use rstest::rstest;
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use support::{
    PROCESSOR_ENV, Progress, SINK_ENV, Workload, send_batches, wait_for_rows, wait_until,
};
use tributary_common::config::KafkaArgs;
use tributary_stack::{
    binaries::build_service_binaries,
    broker::{Broker, BrokerKind},
    cluster::{self, Cluster, ServiceProcess, log_lines},
    postgres::TestDatabase,
};

const STOP_LIMIT: Duration = Duration::from_secs(30);
/// How long after the last restart the aggregates must be exact.
const CONVERGENCE: Duration = Duration::from_secs(30);

/// A running pipeline (registry, one ingest) with one processor and one
/// sink, each a static member of its group as a deployment would run it.
struct Pipeline {
    _broker: Broker,
    _database: TestDatabase,
    pool: sqlx::PgPool,
    cluster: Cluster,
    registry: ServiceProcess,
    ingest: ServiceProcess,
    processor: ServiceProcess,
    sink: ServiceProcess,
    /// Restarts so far, for the instances' log names.
    restarts: usize,
}

fn with_instance(
    env: &[(&'static str, &'static str)],
    id: &'static str,
) -> Vec<(&'static str, &'static str)> {
    let mut env = env.to_vec();
    env.push(("TRIBUTARY_GROUP_INSTANCE_ID", id));
    env
}

impl Pipeline {
    async fn start(name: &str, broker: BrokerKind) -> anyhow::Result<Self> {
        Self::start_with_registry_at(name, broker, cluster::loopback()?).await
    }

    /// Like [`Pipeline::start`], with the registry listening on `registry`.
    async fn start_with_registry_at(
        name: &str,
        broker: BrokerKind,
        registry: SocketAddr,
    ) -> anyhow::Result<Self> {
        let bin_dir = build_service_binaries()?;
        let (broker, database) = tokio::try_join!(Broker::start(broker), TestDatabase::create())?;
        let pool = sqlx::PgPool::connect(database.url()).await?;
        tributary_store::migrate(&pool).await?;
        let kafka = KafkaArgs::for_brokers(broker.brokers());
        let (cluster, registry) = Cluster::bootstrap_with_registry_at(
            bin_dir,
            cluster::log_dir(&format!("{name}-{}", broker.kind()))?,
            kafka,
            database.url().to_string(),
            4,
            registry,
        )
        .await?;
        let mut processor =
            cluster.processor("processor-0", &with_instance(PROCESSOR_ENV, "processor-0"))?;
        let mut sink = cluster.sink("sink-0", &with_instance(SINK_ENV, "sink-0"))?;
        Cluster::wait_for_metrics(&mut processor).await?;
        Cluster::wait_for_metrics(&mut sink).await?;
        let ingest = cluster.ingest("ingest").await?;
        Ok(Self {
            _broker: broker,
            _database: database,
            pool,
            cluster,
            registry,
            ingest,
            processor,
            sink,
            restarts: 0,
        })
    }

    /// SIGKILLs the processor and the sink, as a crash would.
    async fn kill(&mut self) -> anyhow::Result<()> {
        tokio::try_join!(self.processor.process.kill(), self.sink.process.kill())?;
        Ok(())
    }

    /// Starts a new processor and a new sink with the same instance ids
    /// (the same replicas, restarted), without waiting for them.
    fn restart(&mut self) -> anyhow::Result<()> {
        self.restarts += 1;
        let n = self.restarts;
        self.processor = self.cluster.processor(
            &format!("processor-0.restart-{n}"),
            &with_instance(PROCESSOR_ENV, "processor-0"),
        )?;
        self.sink = self.cluster.sink(
            &format!("sink-0.restart-{n}"),
            &with_instance(SINK_ENV, "sink-0"),
        )?;
        Ok(())
    }

    /// Drives `workload` through ingest, paced; every event is acknowledged.
    fn send(
        &self,
        workload: &Workload,
        progress: &Progress,
    ) -> tokio::task::JoinHandle<anyhow::Result<usize>> {
        let batches: Vec<_> = workload.events.chunks(25).map(<[_]>::to_vec).collect();
        tokio::spawn(send_batches(
            batches,
            self.ingest.grpc_url(),
            self.ingest.grpc_url(),
            Duration::from_millis(50),
            progress.clone(),
        ))
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        for service in [
            &mut self.ingest,
            &mut self.processor,
            &mut self.sink,
            &mut self.registry,
        ] {
            service.stop(STOP_LIMIT).await?;
        }
        self.pool.close().await;
        let _ = std::fs::remove_dir_all(&self.cluster.log_dir);
        Ok(())
    }
}

/// Waits for exact aggregates within [`CONVERGENCE`] of `since`; on failure
/// the error names the differences and the logs to read.
async fn expect_exact(
    pipeline: &Pipeline,
    workload: &Workload,
    since: Instant,
) -> anyhow::Result<()> {
    let left = CONVERGENCE.saturating_sub(since.elapsed());
    wait_for_rows(&pipeline.pool, &workload.expected(), left)
        .await
        .map_err(|e| {
            e.context(format!(
                "not exact within {CONVERGENCE:?} of the last restart; logs in {}",
                pipeline.cluster.log_dir.display()
            ))
        })?;
    eprintln!("exact {:?} after the last restart", since.elapsed());
    Ok(())
}

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test]
async fn a_processor_and_a_sink_sigkilled_and_restarted_within_their_session_timeout_recover_exactly(
    #[case] broker: BrokerKind,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut pipeline = Pipeline::start("kill-restart", broker).await?;
    eprintln!("pipeline up after {:?}", started.elapsed());
    let workload = Workload::new(2400, 600);
    let total = workload.events.len();
    let progress = Progress::new(total / 3);
    let sender = pipeline.send(&workload, &progress);

    progress.wait_for_mark(Duration::from_secs(60)).await?;
    progress.allow(usize::MAX);
    pipeline.kill().await?;
    // Back well within the 6 s session timeout: the dead members are still
    // in their groups when the replacements join.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pipeline.restart()?;
    let restarted = Instant::now();

    sender.await??;
    assert_eq!(progress.acked(), total, "every event is acknowledged");
    expect_exact(&pipeline, &workload, restarted).await?;
    pipeline.stop().await
}

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test]
async fn a_processor_and_a_sink_killed_again_while_their_replacements_join_recover_exactly(
    #[case] broker: BrokerKind,
) -> anyhow::Result<()> {
    let mut pipeline = Pipeline::start("kill-twice", broker).await?;
    let workload = Workload::new(2400, 600);
    let total = workload.events.len();
    let progress = Progress::new(total / 3);
    let sender = pipeline.send(&workload, &progress);

    progress.wait_for_mark(Duration::from_secs(60)).await?;
    progress.allow(usize::MAX);
    let first_kill = Instant::now();
    pipeline.kill().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    pipeline.restart()?;
    // The replacements are still starting and joining their groups.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    pipeline.kill().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    pipeline.restart()?;
    let restarted = Instant::now();
    assert!(
        restarted - first_kill < Duration::from_secs(3),
        "both kills and restarts within 3 s"
    );

    sender.await??;
    assert_eq!(progress.acked(), total, "every event is acknowledged");
    expect_exact(&pipeline, &workload, restarted).await?;
    pipeline.stop().await
}

/// Records the services sent to the dead-letter topic, by their metrics.
async fn dead_letters(service: &ServiceProcess) -> anyhow::Result<f64> {
    let text = service.metrics_text().await?;
    Ok(text
        .lines()
        .filter(|line| line.starts_with("tributary_dead_letters_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Waits until `service` logs that it retries (the registry does not
/// answer), and fails at once if it dead-letters anything instead.
async fn waits_for_the_registry(service: &ServiceProcess) -> anyhow::Result<()> {
    let log = service.process.log_path();
    wait_until(
        Duration::from_secs(60),
        &format!("{} waits for the registry", service.name()),
        || async {
            anyhow::ensure!(
                dead_letters(service).await? == 0.0,
                "{} dead-lettered records while the registry was down; log {}",
                service.name(),
                log.display()
            );
            // The retry's line names the registry in its message or error.
            Ok(log_lines(log, "retrying")
                .iter()
                .any(|line| line.contains("schema registry")))
        },
    )
    .await
}

#[tokio::test]
async fn a_processor_and_a_sink_restarted_while_the_registry_is_down_wait_for_it_and_count_exactly()
-> anyhow::Result<()> {
    // A port whose number contains "404": a client that read "not found"
    // into the text of a refused connection would dead-letter everything.
    let registry_addr = cluster::loopback_in(40400..40500)?;
    let mut pipeline =
        Pipeline::start_with_registry_at("registry-outage", BrokerKind::Tansu, registry_addr)
            .await?;
    let workload = Workload::new(2400, 600);
    let total = workload.events.len();
    let progress = Progress::new(total / 3);
    let sender = pipeline.send(&workload, &progress);
    progress.wait_for_mark(Duration::from_secs(60)).await?;
    // Both event types have gone all the way through: ingest, the processor
    // and the sink have each looked up the schemas they use.
    wait_until(
        Duration::from_secs(60),
        "aggregates of both event types in Postgres",
        || async {
            let rows = support::rows(&pipeline.pool).await?;
            let has = |kind: &str| rows.keys().any(|(event_type, _, _)| event_type == kind);
            Ok(has("ad_click") && has("price_tick"))
        },
    )
    .await?;

    // The registry goes down; ingest keeps acknowledging with the versions
    // it listed before, and the processor with the schemas it looked up.
    pipeline.registry.process.kill().await?;
    progress.allow(usize::MAX);
    // A sink restarted now has an empty cache: the processor's next
    // aggregates need a lookup nobody answers, which must be waited out.
    pipeline.cluster.respawn(&mut pipeline.sink).await?;
    Cluster::wait_for_metrics(&mut pipeline.sink).await?;
    waits_for_the_registry(&pipeline.sink).await?;
    // A processor restarted now waits for it at start-up.
    pipeline.cluster.respawn(&mut pipeline.processor).await?;
    Cluster::wait_for_metrics(&mut pipeline.processor).await?;
    waits_for_the_registry(&pipeline.processor).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    pipeline.cluster.respawn(&mut pipeline.registry).await?;
    let back = Instant::now();

    sender.await??;
    assert_eq!(progress.acked(), total, "every event is acknowledged");
    expect_exact(&pipeline, &workload, back).await?;
    for service in [&pipeline.processor, &pipeline.sink] {
        assert_eq!(
            dead_letters(service).await?,
            0.0,
            "{} dead-lettered records while the registry was down; log {}",
            service.name(),
            service.process.log_path().display()
        );
    }
    pipeline.stop().await
}
