//! The benchmark's environment: one broker (Tansu or Apache Kafka, through
//! the test kit's [`Broker`]), one fresh database and the registry, shared
//! by every stage, and the services as real processes (started by the test
//! harness's [`Cluster`], so their peak RSS is theirs alone).
use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::Context as _;
use tributary_common::config::{KafkaArgs, RegistryArgs};
use tributary_stack::{
    apache_kafka::{self, ApacheKafka},
    bootstrap,
    broker::{Broker, BrokerKind},
    cluster::{Cluster, ServiceProcess},
    postgres::TestDatabase,
    tansu::{Storage, Tansu},
};

use crate::config::BrokerStorage;

/// How long a service may take to exit after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// Broker, database and registry, and the services started on them.
pub struct Env {
    /// The broker.
    pub broker: Broker,
    /// The benchmark's own database, dropped at the end.
    pub database: TestDatabase,
    /// Starts the service processes.
    cluster: Cluster,
    /// The registry process, until [`Env::finish`].
    registry: Option<ServiceProcess>,
    /// Broker settings for the pipeline's topics.
    pub kafka: KafkaArgs,
    /// Registry settings.
    pub registry_args: RegistryArgs,
    /// Partitions of every topic.
    pub partitions: i32,
    /// Schema ids by subject and version.
    pub schema_ids: BTreeMap<(String, u32), u32>,
    /// Peak RSS (KiB) of every service process stopped so far, by service.
    peak_rss: BTreeMap<String, u64>,
}

impl Env {
    /// Starts the broker (Tansu with `tansu_storage`, or Apache Kafka when
    /// that is `None`), creates the database and starts the registry, then
    /// creates the topics and registers the built-in schemas.
    pub async fn start(
        tansu_storage: Option<BrokerStorage>,
        partitions: i32,
        bin_dir: &Path,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let (broker, database) =
            tokio::try_join!(start_broker(tansu_storage), TestDatabase::create())?;
        let kafka = KafkaArgs::for_brokers(broker.brokers());
        let pool = sqlx::PgPool::connect(database.url()).await?;
        tributary_store::migrate(&pool).await?;
        pool.close().await;

        let mut cluster = Cluster {
            bin_dir: bin_dir.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
            kafka: kafka.clone(),
            registry: RegistryArgs::at(String::new()),
            database_url: database.url().to_string(),
        };
        let registry = cluster.registry("registry").await?;
        cluster.registry = RegistryArgs::at(registry.http_url());
        let registry_args = cluster.registry.clone();
        bootstrap::create_topics(&kafka, partitions).await?;
        let schema_ids = bootstrap::register_schemas(&kafka, &registry_args)
            .await?
            .into_iter()
            .map(|r| ((r.subject, r.version), r.id))
            .collect();
        Ok(Self {
            broker,
            database,
            cluster,
            registry: Some(registry),
            kafka,
            registry_args,
            partitions,
            schema_ids,
            peak_rss: BTreeMap::new(),
        })
    }

    /// The id of the newest built-in version of `schema` under `topic`'s subject.
    pub fn latest_schema_id(&self, topic: &str, schema: &str) -> anyhow::Result<u32> {
        let version = tributary_common::schemas::latest(schema)
            .with_context(|| format!("no built-in schema {schema}"))?
            .version;
        let subject = tributary_common::schemas::value_subject(topic);
        self.schema_ids
            .get(&(subject.clone(), version))
            .copied()
            .with_context(|| format!("{subject} v{version} was not registered"))
    }

    /// Starts ingest, with `worker_threads` Tokio workers when given (else
    /// one per core), and waits until it is ready.
    pub async fn ingest(&self, worker_threads: Option<usize>) -> anyhow::Result<ServiceProcess> {
        let workers = worker_threads.map(|n| n.to_string());
        let env: Vec<(&str, &str)> = workers
            .iter()
            .map(|n| ("TOKIO_WORKER_THREADS", n.as_str()))
            .collect();
        self.cluster.ingest_with("ingest", &env).await
    }

    /// Starts a processor named `name` with extra environment `env` and
    /// waits until it serves metrics.
    pub async fn processor(
        &self,
        name: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<ServiceProcess> {
        let partitions = self.partitions.to_string();
        let env = [env, &[("TRIBUTARY_PARTITIONS", partitions.as_str())]].concat();
        let mut service = self.cluster.processor(name, &env)?;
        Cluster::wait_for_metrics(&mut service).await?;
        Ok(service)
    }

    /// Starts a sink named `name` with extra environment `env` and waits
    /// until it serves metrics.
    pub async fn sink(&self, name: &str, env: &[(&str, &str)]) -> anyhow::Result<ServiceProcess> {
        let mut service = self.cluster.sink(name, env)?;
        Cluster::wait_for_metrics(&mut service).await?;
        Ok(service)
    }

    /// Stops `service` with SIGTERM, recording its peak RSS first; fails if
    /// it does not exit 0 within 30 s.
    pub async fn stop(&mut self, mut service: ServiceProcess) -> anyhow::Result<()> {
        if let Some(kib) = service.process.peak_rss_kib() {
            let peak = self
                .peak_rss
                .entry(service_kind(service.name()))
                .or_default();
            *peak = (*peak).max(kib);
        }
        service.stop(STOP_LIMIT).await.map(drop)
    }

    /// Stops the registry and returns the peak RSS (KiB) of every service
    /// and of the broker.
    pub async fn finish(mut self) -> anyhow::Result<BTreeMap<String, u64>> {
        if let Some(registry) = self.registry.take() {
            self.stop(registry).await?;
        }
        if let Some(kib) = self.broker.peak_rss_kib() {
            self.peak_rss.insert(broker_name(self.broker.kind()), kib);
        }
        Ok(std::mem::take(&mut self.peak_rss))
    }
}

/// Tansu with `tansu_storage`, or Apache Kafka (with the JVM options of its
/// own start scripts, as users run it) when that is `None`.
async fn start_broker(tansu_storage: Option<BrokerStorage>) -> anyhow::Result<Broker> {
    Ok(match tansu_storage {
        Some(storage) => Broker::Tansu(
            Tansu::start_in_temp_dir(|dir| match storage {
                BrokerStorage::Memory => Storage::Memory,
                BrokerStorage::Sqlite => Storage::Sqlite(dir.join("tansu.db")),
            })
            .await?,
        ),
        None => Broker::Kafka(ApacheKafka::start_in_temp_dir(apache_kafka::STOCK_JVM).await?),
    })
}

/// The broker's name in the peak RSS table: `broker (tansu)`, `broker (kafka)`.
pub fn broker_name(kind: BrokerKind) -> String {
    format!("broker ({kind})")
}

/// The value of counter `name` of `service` (0 before it is first counted).
pub async fn counter(service: &ServiceProcess, name: &str) -> anyhow::Result<u64> {
    Ok(service.metric(name).await?.unwrap_or(0.0) as u64)
}

/// `ingest-2` → `ingest`: peak RSS is reported per service, the largest of
/// its processes.
fn service_kind(name: &str) -> String {
    name.split('-').next().unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_reported_by_kind() {
        assert_eq!(service_kind("sink-backlog"), "sink");
        assert_eq!(service_kind("ingest"), "ingest");
    }
}
