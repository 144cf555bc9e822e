//! The services as separate processes on loopback, for scale-out and
//! shutdown tests: any number of instances of each binary against one
//! broker, one registry and one database, each on its own free ports with its
//! own log file and metrics endpoint, stopped with real signals.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitStatus,
    sync::LazyLock,
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

/// The client that reads metrics endpoints. Building a client sets up TLS
/// and loads the system's trust roots, milliseconds of CPU: a fresh one per
/// read made the bench's 20 ms progress polls cost more than half a core,
/// taken from the service it was timing. It keeps no idle connection, so a
/// connection never outlives the test runtime that opened it.
static METRICS_HTTP: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client with default settings builds")
});

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
    /// How it was started, to start it again the same way.
    launch: Launch,
    /// Restarts so far ([`Cluster::respawn`]), for the log names.
    restarts: usize,
}

/// A service's binary, environment and readiness check.
#[derive(Debug, Clone)]
struct Launch {
    name: String,
    binary: &'static str,
    env: Vec<(String, String)>,
    /// The URL that answers once the service is ready, if it has one.
    ready: Option<String>,
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
        let response = METRICS_HTTP.get(&url).send().await?;
        Ok(response.error_for_status()?.text().await?)
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
    /// The command of `launch`, with a clean environment: only `PATH`, JSON
    /// logs at `info`, and a metrics endpoint on `metrics`, then the
    /// launch's own variables.
    fn command(&self, launch: &Launch, metrics: SocketAddr) -> Command {
        let mut command = Command::new(self.bin_dir.join(launch.binary));
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command
            .env("RUST_LOG", "info")
            .env("TRIBUTARY_LOG_FORMAT", "json")
            .env("TRIBUTARY_METRICS_ADDR", metrics.to_string())
            .envs(launch.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// A pipeline service's environment: broker and registry.
    fn pipeline_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "TRIBUTARY_KAFKA_BROKERS".to_string(),
                self.kafka.brokers.clone(),
            ),
            (
                "TRIBUTARY_REGISTRY_URL".to_string(),
                self.registry.url.clone(),
            ),
        ];
        if let Some(credentials) = &self.registry.basic_auth {
            env.push(("TRIBUTARY_REGISTRY_BASIC_AUTH".into(), credentials.clone()));
        }
        if let Some(ca) = &self.registry.ca {
            env.push(("TRIBUTARY_REGISTRY_CA".into(), ca.display().to_string()));
        }
        env
    }

    fn log(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }

    fn spawn(
        &self,
        launch: Launch,
        metrics: SocketAddr,
        grpc: Option<SocketAddr>,
        http: Option<SocketAddr>,
    ) -> anyhow::Result<ServiceProcess> {
        Ok(ServiceProcess {
            process: ChildProcess::spawn(
                &launch.name,
                self.command(&launch, metrics),
                &self.log(&launch.name),
            )?,
            metrics,
            grpc,
            http,
            launch,
            restarts: 0,
        })
    }

    /// Starts `service` again the way it was started, on the same ports,
    /// after SIGKILLing it if it still runs (a crash and a supervisor's
    /// restart); its log goes to `<name>.restart-<n>.log`. Waits until it is
    /// ready when it has a readiness check (registry, ingest).
    pub async fn respawn(&self, service: &mut ServiceProcess) -> anyhow::Result<()> {
        if service.process.try_wait()?.is_none() {
            service.process.kill().await?;
        }
        service.restarts += 1;
        let name = format!("{}.restart-{}", service.launch.name, service.restarts);
        service.process = ChildProcess::spawn(
            &name,
            self.command(&service.launch, service.metrics),
            &self.log(&name),
        )?;
        if let Some(ready) = &service.launch.ready {
            wait_for_http(ready, &mut service.process).await?;
        }
        Ok(())
    }

    /// A cluster of the binaries in `bin_dir` on `kafka` and `database_url`,
    /// logging to `log_dir`, with its registry started (the `registry`
    /// process, returned) over that database, the pipeline's topics created
    /// with `partitions` partitions and the built-in schemas registered.
    pub async fn bootstrap(
        bin_dir: PathBuf,
        log_dir: PathBuf,
        kafka: KafkaArgs,
        database_url: String,
        partitions: i32,
    ) -> anyhow::Result<(Self, ServiceProcess)> {
        Self::bootstrap_with_registry_at(
            bin_dir,
            log_dir,
            kafka,
            database_url,
            partitions,
            loopback()?,
        )
        .await
    }

    /// Like [`Cluster::bootstrap`], with the registry listening on
    /// `registry_http` (e.g. a port whose number a careless client could
    /// mistake for a status code).
    pub async fn bootstrap_with_registry_at(
        bin_dir: PathBuf,
        log_dir: PathBuf,
        kafka: KafkaArgs,
        database_url: String,
        partitions: i32,
        registry_http: SocketAddr,
    ) -> anyhow::Result<(Self, ServiceProcess)> {
        let mut cluster = Cluster {
            bin_dir,
            log_dir,
            kafka,
            registry: RegistryArgs::at(String::new()),
            database_url,
        };
        let registry = cluster.registry_at("registry", registry_http).await?;
        cluster.registry = RegistryArgs::at(registry.http_url());
        crate::bootstrap::create_topics(&cluster.kafka, partitions).await?;
        crate::bootstrap::register_schemas(&cluster.kafka, &cluster.registry).await?;
        Ok((cluster, registry))
    }

    /// Starts `service` again on the same ports with its environment changed
    /// by `env` (a variable set again replaces its old value), after
    /// SIGKILLing it if it still runs: a redeploy with a new setting. Waits
    /// until it is ready when it has a readiness check.
    pub async fn respawn_with(
        &self,
        service: &mut ServiceProcess,
        env: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        for (name, value) in env {
            service.launch.env.retain(|(k, _)| k != name);
            service
                .launch
                .env
                .push((name.to_string(), value.to_string()));
        }
        self.respawn(service).await
    }

    /// Starts a registry over the cluster's database, without waiting.
    pub fn spawn_registry(&self, name: &str) -> anyhow::Result<ServiceProcess> {
        self.spawn_registry_at(name, loopback()?)
    }

    /// Starts a registry over the cluster's database listening on `http`,
    /// without waiting.
    fn spawn_registry_at(&self, name: &str, http: SocketAddr) -> anyhow::Result<ServiceProcess> {
        let metrics = loopback()?;
        let launch = Launch {
            name: name.into(),
            binary: "tributary-registry",
            env: vec![
                ("TRIBUTARY_HTTP_ADDR".into(), http.to_string()),
                ("DATABASE_URL".into(), self.database_url.clone()),
            ],
            ready: Some(format!("http://{http}/schemas/types")),
        };
        self.spawn(launch, metrics, None, Some(http))
    }

    /// Starts a registry over the cluster's database and waits until it
    /// answers. The cluster's `registry` setting is not changed.
    pub async fn registry(&self, name: &str) -> anyhow::Result<ServiceProcess> {
        self.registry_at(name, loopback()?).await
    }

    async fn registry_at(&self, name: &str, http: SocketAddr) -> anyhow::Result<ServiceProcess> {
        let mut service = self.spawn_registry_at(name, http)?;
        let ready = service
            .launch
            .ready
            .clone()
            .expect("the registry has a readiness check");
        wait_for_http(&ready, &mut service.process).await?;
        Ok(service)
    }

    /// Starts an ingest instance (`tributary-server`: with the query API on
    /// the database) and waits until it is ready.
    pub async fn ingest(&self, name: &str) -> anyhow::Result<ServiceProcess> {
        self.ingest_with(name, &[]).await
    }

    /// Like [`Cluster::ingest`], with extra environment `env` (API keys, a
    /// longer `TRIBUTARY_MAX_EVENT_TIME_SKEW`).
    pub async fn ingest_with(
        &self,
        name: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<ServiceProcess> {
        let (metrics, grpc, http) = (loopback()?, loopback()?, loopback()?);
        let mut env = self.pipeline_env();
        env.extend([
            ("TRIBUTARY_GRPC_ADDR".to_string(), grpc.to_string()),
            ("TRIBUTARY_HTTP_ADDR".to_string(), http.to_string()),
            ("DATABASE_URL".to_string(), self.database_url.clone()),
        ]);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let launch = Launch {
            name: name.into(),
            binary: "tributary-server",
            env,
            ready: Some(format!("http://{http}/readyz")),
        };
        let ready = launch.ready.clone().expect("just set");
        let mut service = self.spawn(launch, metrics, Some(grpc), Some(http))?;
        wait_for_http(&ready, &mut service.process).await?;
        Ok(service)
    }

    /// Starts a processor with extra environment `env` (window settings).
    pub fn processor(&self, name: &str, env: &[(&str, &str)]) -> anyhow::Result<ServiceProcess> {
        let mut all = self.pipeline_env();
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let launch = Launch {
            name: name.into(),
            binary: "tributary-processor",
            env: all,
            ready: None,
        };
        self.spawn(launch, loopback()?, None, None)
    }

    /// Starts a sink writing to the cluster's database (already migrated)
    /// with extra environment `env` (batch settings).
    pub fn sink(&self, name: &str, env: &[(&str, &str)]) -> anyhow::Result<ServiceProcess> {
        let mut all = self.pipeline_env();
        all.push(("DATABASE_URL".into(), self.database_url.clone()));
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let launch = Launch {
            name: name.into(),
            binary: "tributary-sink",
            env: all,
            ready: None,
        };
        self.spawn(launch, loopback()?, None, None)
    }

    /// Waits until `service`'s metrics endpoint answers (the binaries serve
    /// it before they start their work).
    pub async fn wait_for_metrics(service: &mut ServiceProcess) -> anyhow::Result<()> {
        let url = format!("http://{}/metrics", service.metrics);
        wait_for_http(&url, &mut service.process).await
    }
}

/// A loopback address on a free port the system picks.
pub fn loopback() -> anyhow::Result<SocketAddr> {
    Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
}

/// A loopback address on a free port among `ports`.
pub fn loopback_in(ports: std::ops::Range<u16>) -> anyhow::Result<SocketAddr> {
    ports
        .clone()
        .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        .find(|addr| std::net::TcpListener::bind(addr).is_ok())
        .with_context(|| format!("no free loopback port in {ports:?}"))
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
