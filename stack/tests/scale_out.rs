//! Local scale-out: two ingest instances, two processors and two sinks, each
//! a separate process on loopback, against one broker, one registry and one
//! database. A deterministic workload is split across both ingest instances;
//! mid-run one processor, one sink and one ingest instance get SIGTERM and
//! their twins take over. The aggregates in Postgres must be exactly the ones
//! computed here from the events: nothing lost, nothing counted twice.
mod support;

use rstest::rstest;
use std::time::Duration;

use support::{
    PROCESSOR_ENV, Progress, SINK_ENV, Workload, send_batches, wait_for_rows, wait_until,
};
use tributary_common::config::KafkaArgs;
use tributary_stack::{
    binaries::build_service_binaries,
    broker::{Broker, BrokerKind},
    cluster::{self, Cluster, ServiceProcess},
    postgres::TestDatabase,
};

const STOP_LIMIT: Duration = Duration::from_secs(30);

async fn positive(service: &ServiceProcess, series: &str) -> anyhow::Result<bool> {
    Ok(service.metric(series).await?.unwrap_or(0.0) > 0.0)
}

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test]
async fn two_of_each_service_share_the_work_and_survive_sigterm_of_one_of_each_mid_run(
    #[case] broker: BrokerKind,
) -> anyhow::Result<()> {
    let bin_dir = build_service_binaries()?;
    let (broker, database) = tokio::try_join!(Broker::start(broker), TestDatabase::create())?;
    let pool = sqlx::PgPool::connect(database.url()).await?;
    tributary_store::migrate(&pool).await?;
    let kafka = KafkaArgs::for_brokers(broker.brokers());
    let (cluster, mut registry) = Cluster::bootstrap(
        bin_dir,
        cluster::log_dir(&format!("scale-out-{}", broker.kind()))?,
        kafka,
        database.url().to_string(),
        4,
    )
    .await?;

    let mut sinks = [
        cluster.sink("sink-1", SINK_ENV)?,
        cluster.sink("sink-2", SINK_ENV)?,
    ];
    let mut processors = [
        cluster.processor("processor-1", PROCESSOR_ENV)?,
        cluster.processor("processor-2", PROCESSOR_ENV)?,
    ];
    for service in sinks.iter_mut().chain(processors.iter_mut()) {
        Cluster::wait_for_metrics(service).await?;
    }
    let (ingest_1, ingest_2) =
        tokio::try_join!(cluster.ingest("ingest-1"), cluster.ingest("ingest-2"))?;
    let mut ingests = [ingest_1, ingest_2];

    // 3000 events and 75 retries, in batches of 25 alternating between the
    // two ingest instances, paced so the run lasts several seconds.
    let workload = Workload::new(2400, 600);
    let expected = workload.expected();
    let total = workload.events.len();
    let (mut even, mut odd) = (Vec::new(), Vec::new());
    for (n, batch) in workload.events.chunks(25).enumerate() {
        if n % 2 == 0 {
            even.push(batch.to_vec())
        } else {
            odd.push(batch.to_vec())
        }
    }
    let progress = Progress::new(total / 3);
    let pace = Duration::from_millis(100);
    let senders = [
        tokio::spawn(send_batches(
            even,
            ingests[0].grpc_url(),
            ingests[1].grpc_url(),
            pace,
            progress.clone(),
        )),
        tokio::spawn(send_batches(
            odd,
            ingests[1].grpc_url(),
            ingests[0].grpc_url(),
            pace,
            progress.clone(),
        )),
    ];

    // Both processors and both sinks get a share of the partitions: each has
    // handled records before any of them is stopped.
    wait_until(
        Duration::from_secs(45),
        "both processors handle records",
        || async {
            Ok(
                positive(&processors[0], "tributary_processor_records_total").await?
                    && positive(&processors[1], "tributary_processor_records_total").await?,
            )
        },
    )
    .await?;
    wait_until(Duration::from_secs(45), "both sinks write rows", || async {
        Ok(positive(&sinks[0], "tributary_sink_rows_total").await?
            && positive(&sinks[1], "tributary_sink_rows_total").await?)
    })
    .await?;

    // SIGTERM one processor and one sink mid-run: both exit 0 while the
    // load goes on, and their twins take their partitions over.
    progress.wait_for_mark(Duration::from_secs(60)).await?;
    progress.allow(total * 2 / 3);
    processors[0].sigterm()?;
    sinks[0].sigterm()?;
    let at = progress.acked();
    anyhow::ensure!(at < total * 2 / 3, "{at} of {total} events in: not mid-run");
    processors[0].expect_clean_exit(STOP_LIMIT).await?;
    sinks[0].expect_clean_exit(STOP_LIMIT).await?;

    // Then one ingest instance: its sender fails over to the other one.
    progress.wait_for_mark(Duration::from_secs(60)).await?;
    progress.allow(usize::MAX);
    ingests[0].stop(STOP_LIMIT).await?;
    let mut failovers = 0;
    for sender in senders {
        failovers += sender.await??;
    }
    assert!(
        failovers >= 1,
        "the stopped ingest's sender never failed over"
    );
    assert_eq!(progress.acked(), total, "every event is acknowledged");

    // Exact aggregates: every window of every key, final, nothing lost and
    // nothing counted twice (the retries and the replays after takeover).
    wait_for_rows(&pool, &expected, Duration::from_secs(60)).await?;
    // Everyone left stops cleanly too.
    for service in [
        &mut ingests[1],
        &mut processors[1],
        &mut sinks[1],
        &mut registry,
    ] {
        service.stop(STOP_LIMIT).await?;
    }
    pool.close().await;
    let _ = std::fs::remove_dir_all(&cluster.log_dir);
    Ok(())
}
