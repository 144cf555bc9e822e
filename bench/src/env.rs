//! The benchmark's environment: one broker, one fresh database and the
//! registry, shared by every stage, and the services as real processes (so
//! their peak RSS is theirs alone).
use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tokio::process::Command;
use tributary_common::config::{KafkaArgs, RegistryArgs};
use tributary_stack::{
    bootstrap,
    postgres::TestDatabase,
    process::ChildProcess,
    tansu::{self, Storage, Tansu},
};

use crate::config::BrokerStorage;

/// Broker, database and registry, and where the service binaries are.
pub struct Env {
    /// The broker.
    pub broker: Tansu,
    /// The benchmark's own database, dropped at the end.
    pub database: TestDatabase,
    /// The registry process, until [`Env::finish`].
    registry: Option<Service>,
    /// Broker settings for the pipeline's topics.
    pub kafka: KafkaArgs,
    /// Registry settings.
    pub registry_args: RegistryArgs,
    /// Partitions of every topic.
    pub partitions: i32,
    /// Schema ids by subject and version.
    pub schema_ids: BTreeMap<(String, u32), u32>,
    bin_dir: PathBuf,
    log_dir: PathBuf,
    /// Peak RSS (KiB) of every service process stopped so far, by service.
    peak_rss: BTreeMap<String, u64>,
}

/// A service process with its metrics endpoint.
pub struct Service {
    process: ChildProcess,
    /// Where it serves Prometheus metrics.
    pub metrics: SocketAddr,
}

impl Env {
    /// Starts the broker, creates the database and starts the registry, then
    /// creates the topics and registers the built-in schemas.
    pub async fn start(
        storage: BrokerStorage,
        partitions: i32,
        bin_dir: &Path,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let (broker, database) = tokio::try_join!(
            Tansu::start_in_temp_dir(|dir| match storage {
                BrokerStorage::Memory => Storage::Memory,
                BrokerStorage::Sqlite => Storage::Sqlite(dir.join("tansu.db")),
            }),
            TestDatabase::create()
        )?;
        let kafka = KafkaArgs::for_brokers(broker.brokers());
        let pool = sqlx::PgPool::connect(database.url()).await?;
        tributary_sink::schema::migrate(&pool).await?;
        pool.close().await;

        let registry_addr = free_addr()?;
        let mut command = Command::new(bin_dir.join("tributary-registry"));
        command
            .env("TRIBUTARY_HTTP_ADDR", registry_addr.to_string())
            .env("DATABASE_URL", database.url());
        let registry = Service::spawn("registry", command, log_dir).await?;
        let registry_args = RegistryArgs {
            url: format!("http://{registry_addr}"),
        };
        wait_for_http(&format!("{}/schemas/types", registry_args.url)).await?;
        bootstrap::create_topics(&kafka, partitions).await?;
        let schema_ids = bootstrap::register_schemas(&kafka, &registry_args)
            .await?
            .into_iter()
            .map(|r| ((r.subject, r.version), r.id))
            .collect();
        Ok(Self {
            broker,
            database,
            registry: Some(registry),
            kafka,
            registry_args,
            partitions,
            schema_ids,
            bin_dir: bin_dir.to_path_buf(),
            log_dir: log_dir.to_path_buf(),
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

    /// A pipeline service's command: broker, registry, partitions, JSON logs.
    pub fn service_command(&self, binary: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(binary));
        command
            .env("TRIBUTARY_KAFKA_BROKERS", &self.kafka.brokers)
            .env("TRIBUTARY_REGISTRY_URL", &self.registry_args.url)
            .env("TRIBUTARY_PARTITIONS", self.partitions.to_string())
            .env("DATABASE_URL", self.database.url());
        command
    }

    /// Starts `command` as service `name`, with metrics on a free port.
    pub async fn spawn(&self, name: &str, command: Command) -> anyhow::Result<Service> {
        Service::spawn(name, command, &self.log_dir).await
    }

    /// Stops `service` with SIGTERM, recording its peak RSS first; fails if
    /// it does not exit 0 within 30 s.
    pub async fn stop(&mut self, mut service: Service) -> anyhow::Result<()> {
        let name = service.process.name().to_string();
        if let Some(kib) = service.process.peak_rss_kib() {
            let peak = self.peak_rss.entry(service_kind(&name)).or_default();
            *peak = (*peak).max(kib);
        }
        match service.process.terminate(Duration::from_secs(30)).await? {
            Some(status) if status.success() => Ok(()),
            Some(status) => bail!(
                "{name} exited with {status}; log {}",
                service.process.log_path().display()
            ),
            None => bail!("{name} did not stop within 30 s of SIGTERM"),
        }
    }

    /// Stops the registry and returns the peak RSS (KiB) of every service
    /// and of the broker.
    pub async fn finish(mut self) -> anyhow::Result<BTreeMap<String, u64>> {
        if let Some(registry) = self.registry.take() {
            self.stop(registry).await?;
        }
        if let Some(kib) = self.broker.peak_rss_kib() {
            self.peak_rss.insert("broker (tansu)".into(), kib);
        }
        Ok(std::mem::take(&mut self.peak_rss))
    }
}

/// `ingest-2` → `ingest`: peak RSS is reported per service, the largest of
/// its processes.
fn service_kind(name: &str) -> String {
    name.split('-').next().unwrap_or(name).to_string()
}

impl Service {
    async fn spawn(name: &str, mut command: Command, log_dir: &Path) -> anyhow::Result<Self> {
        let metrics = free_addr()?;
        command
            .env("TRIBUTARY_METRICS_ADDR", metrics.to_string())
            .env("TRIBUTARY_LOG_FORMAT", "json")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        let process = ChildProcess::spawn(name, command, &log_dir.join(format!("{name}.log")))?;
        let mut service = Self { process, metrics };
        service.wait_for_metrics().await?;
        Ok(service)
    }

    async fn wait_for_metrics(&mut self) -> anyhow::Result<()> {
        let url = format!("http://{}/metrics", self.metrics);
        let started = Instant::now();
        loop {
            if let Some(status) = self.process.try_wait()? {
                bail!(
                    "{} exited with {status}; log {}:\n{}",
                    self.process.name(),
                    self.process.log_path().display(),
                    self.process.log_tail(20)
                );
            }
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "{} serves no metrics at {url} after 60 s",
                    self.process.name()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of counter or gauge `name` (summed over its labels).
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let text = reqwest::get(format!("http://{}/metrics", self.metrics))
            .await?
            .text()
            .await?;
        Ok(sum_metric(&text, name))
    }
}

/// Sums every sample of metric `name` in a Prometheus text exposition.
fn sum_metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = match rest.chars().next()? {
                '{' => rest.split_once('}')?.1,
                ' ' => rest,
                _ => return None,
            };
            value.trim().split(' ').next()?.parse::<f64>().ok()
        })
        .sum()
}

/// A loopback address that is free right now.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(SocketAddr::from(([127, 0, 0, 1], tansu::free_port()?)))
}

/// Waits until `url` answers 2xx.
pub async fn wait_for_http(url: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while !reqwest::get(url)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{url} did not answer within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_summed_over_labels() {
        let text = "# HELP x\n# TYPE x counter\nx_total{a=\"1\"} 3\nx_total{a=\"2\"} 4.5\nx_total_other 9\nx_total 1\n";
        assert_eq!(sum_metric(text, "x_total"), 8.5);
        assert_eq!(sum_metric(text, "missing"), 0.0);
    }

    #[test]
    fn services_are_reported_by_kind() {
        assert_eq!(service_kind("sink-backlog"), "sink");
        assert_eq!(service_kind("ingest"), "ingest");
    }
}
