//! The services as separate processes on loopback, for scale-out and
//! shutdown tests: any number of instances of each binary against one
//! broker, one registry and one database, each on its own free ports with its
//! own log file and metrics endpoint, stopped with real signals.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitStatus,
    time::Duration,
};

use anyhow::Context as _;
use nix::sys::signal::Signal;
use tokio::process::Command;
use tributary_common::config::{KafkaArgs, RegistryArgs};

use crate::{
    process::{ChildProcess, wait_for_http},
    tansu::free_port,
};

/// One service process and its endpoints.
pub struct ServiceProcess {
    /// The process.
    pub process: ChildProcess,
    /// Its Prometheus endpoint.
    pub metrics: SocketAddr,
    /// Its gRPC address (ingest).
    pub grpc: Option<SocketAddr>,
    /// Its HTTP address (registry, ingest's gateway).
    pub http: Option<SocketAddr>,
}

impl ServiceProcess {
    /// The instance's name, e.g. `processor-1`.
    pub fn name(&self) -> &str {
        self.process.name()
    }

    /// `http://` URL of the gRPC address.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc.expect("a gRPC service"))
    }

    /// `http://` URL of the HTTP address.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http.expect("an HTTP service"))
    }

    /// The Prometheus text of the instance's metrics endpoint.
    pub async fn metrics_text(&self) -> anyhow::Result<String> {
        let url = format!("http://{}/metrics", self.metrics);
        Ok(reqwest::get(&url).await?.error_for_status()?.text().await?)
    }

    /// The value of one series, e.g. `tributary_processor_records_total`
    /// (with its labels as rendered, if any); `None` when it is not there.
    pub async fn metric(&self, series: &str) -> anyhow::Result<Option<f64>> {
        Ok(series_value(&self.metrics_text().await?, series))
    }

    /// Sends SIGTERM, without waiting.
    pub fn sigterm(&self) -> anyhow::Result<()> {
        self.process.signal(Signal::SIGTERM)
    }

    /// Waits up to `limit` for the process to exit; SIGKILLs it and fails
    /// when it does not, or when it exits with a failure status.
    pub async fn expect_clean_exit(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        let status = self.process.wait_timeout(limit).await?;
        let Some(status) = status else {
            self.process.kill().await?;
            anyhow::bail!(
                "{} did not exit within {limit:?} of SIGTERM; log {}:\n{}",
                self.name(),
                self.process.log_path().display(),
                self.process.log_tail(30)
            );
        };
        anyhow::ensure!(
            status.success(),
            "{} exited with {status}; log {}:\n{}",
            self.name(),
            self.process.log_path().display(),
            self.process.log_tail(30)
        );
        Ok(status)
    }

    /// SIGTERM, then [`ServiceProcess::expect_clean_exit`].
    pub async fn stop(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        self.sigterm()?;
        self.expect_clean_exit(limit).await
    }
}

/// The value of `series` in Prometheus text format.
pub fn series_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        let value = rest.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// Starts service processes against one broker, registry and database.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Where the service binaries are ([`crate::binaries::build_service_binaries`]).
    pub bin_dir: PathBuf,
    /// Where each instance's `<name>.log` goes.
    pub log_dir: PathBuf,
    /// The broker.
    pub kafka: KafkaArgs,
    /// The registry every pipeline service uses.
    pub registry: RegistryArgs,
    /// The database of the registry, the sink and the query API.
    pub database_url: String,
}

impl Cluster {
    /// A command for `binary` with a clean environment: only `PATH`, JSON
    /// logs at `info`, and a metrics endpoint on `metrics`.
    fn command(&self, binary: &str, metrics: SocketAddr) -> Command {
        let mut command = Command::new(self.bin_dir.join(binary));
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command
            .env("RUST_LOG", "info")
            .env("TRIBUTARY_LOG_FORMAT", "json")
            .env("TRIBUTARY_METRICS_ADDR", metrics.to_string());
        command
    }

    /// A pipeline service's command: broker and registry too.
    fn pipeline_command(&self, binary: &str, metrics: SocketAddr) -> Command {
        let mut command = self.command(binary, metrics);
        command
            .env("TRIBUTARY_KAFKA_BROKERS", &self.kafka.brokers)
            .env("TRIBUTARY_REGISTRY_URL", &self.registry.url);
        if let Some(credentials) = &self.registry.basic_auth {
            command.env("TRIBUTARY_REGISTRY_BASIC_AUTH", credentials);
        }
        if let Some(ca) = &self.registry.ca {
            command.env("TRIBUTARY_REGISTRY_CA", ca);
        }
        command
    }

    fn log(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }

    fn spawn(
        &self,
        name: &str,
        command: Command,
        metrics: SocketAddr,
        grpc: Option<SocketAddr>,
        http: Option<SocketAddr>,
    ) -> anyhow::Result<ServiceProcess> {
        Ok(ServiceProcess {
            process: ChildProcess::spawn(name, command, &self.log(name))?,
            metrics,
            grpc,
            http,
        })
    }

    /// Starts a registry over the cluster's database, without waiting.
    pub fn spawn_registry(&self, name: &str) -> anyhow::Result<ServiceProcess> {
        let (metrics, http) = (loopback()?, loopback()?);
        let mut command = self.command("tributary-registry", metrics);
        command
            .env("TRIBUTARY_HTTP_ADDR", http.to_string())
            .env("DATABASE_URL", &self.database_url);
        self.spawn(name, command, metrics, None, Some(http))
    }

    /// Starts a registry over the cluster's database and waits until it
    /// answers. The cluster's `registry` setting is not changed.
    pub async fn registry(&self, name: &str) -> anyhow::Result<ServiceProcess> {
        let mut service = self.spawn_registry(name)?;
        let http = service.http.expect("the registry serves HTTP");
        wait_for_http(
            &format!("http://{http}/schemas/types"),
            &mut service.process,
        )
        .await?;
        Ok(service)
    }

    /// Starts an ingest instance (`tributary-server`: with the query API on
    /// the database) and waits until it is ready.
    pub async fn ingest(&self, name: &str) -> anyhow::Result<ServiceProcess> {
        let (metrics, grpc, http) = (loopback()?, loopback()?, loopback()?);
        let mut command = self.pipeline_command("tributary-server", metrics);
        command
            .env("TRIBUTARY_GRPC_ADDR", grpc.to_string())
            .env("TRIBUTARY_HTTP_ADDR", http.to_string())
            .env("DATABASE_URL", &self.database_url);
        let mut service = self.spawn(name, command, metrics, Some(grpc), Some(http))?;
        wait_for_http(&format!("http://{http}/readyz"), &mut service.process).await?;
        Ok(service)
    }

    /// Starts a processor with extra environment `env` (window settings).
    pub fn processor(&self, name: &str, env: &[(&str, &str)]) -> anyhow::Result<ServiceProcess> {
        let metrics = loopback()?;
        let mut command = self.pipeline_command("tributary-processor", metrics);
        command.envs(env.iter().copied());
        self.spawn(name, command, metrics, None, None)
    }

    /// Starts a sink writing to the cluster's database (already migrated)
    /// with extra environment `env` (batch settings).
    pub fn sink(&self, name: &str, env: &[(&str, &str)]) -> anyhow::Result<ServiceProcess> {
        let metrics = loopback()?;
        let mut command = self.pipeline_command("tributary-sink", metrics);
        command
            .env("DATABASE_URL", &self.database_url)
            .envs(env.iter().copied());
        self.spawn(name, command, metrics, None, None)
    }

    /// Waits until `service`'s metrics endpoint answers (the binaries serve
    /// it before they start their work).
    pub async fn wait_for_metrics(service: &mut ServiceProcess) -> anyhow::Result<()> {
        let url = format!("http://{}/metrics", service.metrics);
        wait_for_http(&url, &mut service.process).await
    }
}

fn loopback() -> anyhow::Result<SocketAddr> {
    Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
}

/// A fresh directory for a test's logs under the system temp directory.
pub fn log_dir(test: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "tributary-{test}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Every line of `log` that contains `needle`, for assertions on logs.
pub fn log_lines(log: &Path, needle: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_is_found_by_its_exact_name_and_labels() {
        let text = "# HELP x\nx_total 3\nx_total_other 9\ny{a=\"b\"} 2.5\n";
        assert_eq!(series_value(text, "x_total"), Some(3.0));
        assert_eq!(series_value(text, "y{a=\"b\"}"), Some(2.5));
        assert_eq!(series_value(text, "y"), None);
        assert_eq!(series_value(text, "z"), None);
    }
}
