//! The local stack: the broker (Tansu or Apache Kafka), the database, the registry and every service that
//! is built so far, started in dependency order, then the web console over
//! them, their endpoints printed, and everything stopped cleanly (the console
//! first) on Ctrl-C or SIGTERM. This is the one place services are wired into
//! the local stack.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use tokio::process::Command;
use tributary_common::{
    config::{KafkaArgs, RegistryArgs, TelemetryArgs},
    kafka, shutdown,
};
use tributary_edge::config::AuthArgs;
use tributary_testkit::{
    apache_kafka::ApacheKafka,
    bootstrap,
    broker::{Broker, BrokerKind},
    postgres,
    process::{ChildProcess, wait_for_http, wait_for_http_with},
    tansu,
};

/// Configuration of `tributary-stack`.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tributary-stack",
    version,
    about = "Runs the whole Tributary pipeline locally: a broker (Tansu or Apache Kafka), the registry and the services, against local Postgres"
)]
pub struct LauncherConfig {
    /// Partitions of every topic the stack creates.
    #[arg(long, env = "TRIBUTARY_PARTITIONS", default_value_t = 4)]
    pub partitions: i32,

    /// The broker: Tansu (starts in a second; records in `tansu.db` in the
    /// data directory) or Apache Kafka (KRaft, from `dev/setup`; records in
    /// `kafka/` in the data directory, its controller on the next port).
    #[arg(long, env = "TRIBUTARY_BROKER", value_enum, default_value_t = BrokerKind::Tansu)]
    pub broker: BrokerKind,

    /// Port of the broker on 127.0.0.1.
    #[arg(long, env = "TRIBUTARY_KAFKA_PORT", default_value_t = 9092)]
    pub kafka_port: u16,

    /// Address of the Schema Registry's REST API.
    #[arg(
        long,
        env = "TRIBUTARY_REGISTRY_ADDR",
        default_value = "127.0.0.1:8081"
    )]
    pub registry_addr: SocketAddr,

    /// Address of ingest's gRPC API (IngestService, health, reflection).
    #[arg(
        long,
        env = "TRIBUTARY_INGEST_GRPC_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub ingest_grpc_addr: SocketAddr,

    /// Address of ingest's JSON gateway (POST /submit, POST /v1/events).
    #[arg(
        long,
        env = "TRIBUTARY_INGEST_HTTP_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub ingest_http_addr: SocketAddr,

    /// Window size of the processor's aggregation, which the query API must
    /// know too.
    #[arg(long, env = "TRIBUTARY_WINDOW", default_value = "1m")]
    pub window: String,

    /// Serve each service's Prometheus metrics on 127.0.0.1 at this port
    /// plus 1 (registry), 2 (ingest and query), 3 (processor) and 4 (sink);
    /// the console shows them.
    #[arg(long, env = "TRIBUTARY_METRICS_PORT_BASE", default_value_t = 9100)]
    pub metrics_port_base: u16,

    /// Address of the web console (`tributary-console`: pipeline health,
    /// aggregates, price accuracy, dead letters, schemas).
    #[arg(long, env = "TRIBUTARY_CONSOLE_ADDR", default_value = "127.0.0.1:8088")]
    pub console_addr: SocketAddr,

    /// Do not start the web console.
    #[arg(long, env = "TRIBUTARY_NO_CONSOLE")]
    pub no_console: bool,

    /// The stack's Postgres database; created when missing.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/tributary"
    )]
    pub database_url: String,

    /// `USER:PASSWORD` the launcher and the services give the registry.
    /// Needed when the registry has users: it reads `--users-file` from
    /// `TRIBUTARY_REGISTRY_USERS_FILE` in the launcher's environment (off
    /// by default).
    #[arg(
        long,
        env = "TRIBUTARY_REGISTRY_BASIC_AUTH",
        hide_env_values = true,
        value_name = "USER:PASSWORD"
    )]
    pub registry_basic_auth: Option<String>,

    /// Where logs and the broker's data go.
    #[arg(long, env = "TRIBUTARY_DATA_DIR", default_value = ".stack")]
    pub data_dir: PathBuf,

    /// Directory of the service binaries; defaults to this binary's directory.
    #[arg(long, env = "TRIBUTARY_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Logging.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// Runs the stack until a shutdown signal, then stops every process.
pub async fn run(config: LauncherConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let data_dir = config.data_dir.canonicalize()?;
    let bin_dir = match &config.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary has no directory")?
            .to_path_buf(),
    };

    postgres::ensure_database(&config.database_url).await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&config.database_url)
        .await?;
    tributary_store::migrate(&pool)
        .await
        .context("cannot apply the sink's migrations")?;
    pool.close().await;
    tracing::info!(database = %config.database_url, "database ready");

    // The broker keeps its records in the data directory, so they survive a restart of the stack.
    let mut broker = match config.broker {
        BrokerKind::Tansu => {
            let storage = tansu::Storage::Sqlite(data_dir.join("tansu.db"));
            Broker::Tansu(
                tansu::Tansu::start_with(storage, config.kafka_port, &data_dir.join("tansu.log"))
                    .await?,
            )
        }
        BrokerKind::Kafka => {
            let controller = config
                .kafka_port
                .checked_add(1)
                .context("no port after --kafka-port for Kafka's controller")?;
            Broker::Kafka(
                ApacheKafka::start_in(&data_dir.join("kafka"), config.kafka_port, controller)
                    .await?,
            )
        }
    };
    let kafka = KafkaArgs::for_brokers(broker.brokers());
    tracing::info!(brokers = %kafka.brokers, "broker ready");

    let mut services = Vec::new();
    let result = start_services(&config, &bin_dir, &data_dir, &kafka, &mut services).await;
    if let Err(e) = result {
        stop_all(&mut services, &mut broker).await;
        return Err(e);
    }

    // Every topic on the broker, not only the built-in ones: a schema-driven
    // type's topic from an earlier run of this data directory too.
    let topics = kafka::topic_names(&kafka).await?;
    print_endpoints(&config, &kafka, &topics, &data_dir);

    tokio::select! {
        () = shutdown::signal() => {}
        exited = watch(&mut services) => tracing::error!(service = %exited, "service exited; stopping the stack"),
    }
    let clean = stop_all(&mut services, &mut broker).await;
    anyhow::ensure!(
        clean,
        "not every process stopped cleanly; see the logs in {}",
        data_dir.display()
    );
    Ok(())
}

fn print_endpoints(config: &LauncherConfig, kafka: &KafkaArgs, topics: &[String], data_dir: &Path) {
    let registry = format!("http://{}", config.registry_addr);
    let (grpc, http) = (config.ingest_grpc_addr, config.ingest_http_addr);
    println!();
    println!("Tributary local stack is up (Ctrl-C stops it):");
    let broker = match config.broker {
        BrokerKind::Tansu => "Kafka (Tansu)    ",
        BrokerKind::Kafka => "Kafka (Apache)   ",
    };
    println!(
        "  {broker}{}   topics: {}",
        kafka.brokers,
        topics.join(", ")
    );
    println!("  Schema Registry  {registry}   e.g. curl {registry}/subjects");
    println!("  Ingest gRPC      {grpc}   e.g. grpcurl -plaintext {grpc} list");
    println!(
        "  Ingest HTTP      http://{http}   e.g. curl -i -H 'content-type: application/json' -d '{{\"ip_address\":\"203.0.113.7\",\"user_agent\":\"curl\",\"referring_url\":\"https://example.com/\",\"advertiser_id\":\"adv-1\",\"metadata\":{{}}}}' http://{http}/submit"
    );
    println!(
        "  Postgres         {}   e.g. psql {} -c 'select * from aggregates'",
        config.database_url, config.database_url
    );
    let addr = |b: &str| {
        metrics_url(config, b)
            .map(|(_, url)| url)
            .unwrap_or_default()
    };
    println!(
        "  Metrics          registry {}  ingest {}  processor {}  sink {}",
        addr("tributary-registry"),
        addr("tributary-server"),
        addr("tributary-processor"),
        addr("tributary-sink")
    );
    println!(
        "  Processor        consumer group tributary-processor (member processor-0), aggregates to {}",
        kafka.aggregates_topic
    );
    println!(
        "  Sink             consumer group tributary-sink (member sink-0) → {}",
        config.database_url
    );
    if !config.no_console {
        println!(
            "  Console          http://{}/   open it in a browser",
            config.console_addr
        );
    }
    // Last: the launcher test reads up to this line.
    println!("  Logs             {}", data_dir.display());
    println!();
}

async fn start_services(
    config: &LauncherConfig,
    bin_dir: &Path,
    data_dir: &Path,
    kafka: &KafkaArgs,
    services: &mut Vec<ChildProcess>,
) -> anyhow::Result<()> {
    let mut registry = Command::new(bin_dir.join("tributary-registry"));
    with_metrics(&mut registry, config, "tributary-registry");
    registry
        .env("TRIBUTARY_HTTP_ADDR", config.registry_addr.to_string())
        .env("DATABASE_URL", &config.database_url)
        .env("TRIBUTARY_LOG_FORMAT", "json");
    services.push(ChildProcess::spawn(
        "registry",
        registry,
        &data_dir.join("registry.log"),
    )?);
    let registry_url = format!("http://{}", config.registry_addr);
    let registry_args = registry_args(config);
    wait_for_http_with(
        &registry_args.http_client(Duration::from_secs(2))?,
        &format!("{registry_url}/schemas/types"),
        services.last_mut().expect("just pushed"),
    )
    .await?;
    tracing::info!(url = %registry_url, "registry ready");

    let topics = bootstrap::create_topics(kafka, config.partitions).await?;
    tracing::info!(?topics, partitions = config.partitions, "topics ready");
    let registered = bootstrap::register_schemas(kafka, &registry_args).await?;
    for r in &registered {
        tracing::info!(subject = %r.subject, version = r.version, id = r.id, "schema registered");
    }

    // The processor and the sink are static members of their groups (one
    // replica each): restarted, they are back on their partitions at once.
    let mut sink = pipeline_service(bin_dir, "tributary-sink", config, kafka);
    sink.env("DATABASE_URL", &config.database_url)
        .env("TRIBUTARY_GROUP_INSTANCE_ID", "sink-0");
    services.push(ChildProcess::spawn(
        "sink",
        sink,
        &data_dir.join("sink.log"),
    )?);
    tracing::info!("sink started");

    let mut ingest = pipeline_service(bin_dir, "tributary-server", config, kafka);
    ingest
        .env("DATABASE_URL", &config.database_url)
        .env("TRIBUTARY_GRPC_ADDR", config.ingest_grpc_addr.to_string())
        .env("TRIBUTARY_HTTP_ADDR", config.ingest_http_addr.to_string());
    services.push(ChildProcess::spawn(
        "ingest",
        ingest,
        &data_dir.join("ingest.log"),
    )?);
    wait_for_http(
        &format!("http://{}/readyz", config.ingest_http_addr),
        services.last_mut().expect("just pushed"),
    )
    .await?;
    tracing::info!(grpc = %config.ingest_grpc_addr, http = %config.ingest_http_addr, "ingest ready");

    let mut processor = pipeline_service(bin_dir, "tributary-processor", config, kafka);
    processor.env("TRIBUTARY_GROUP_INSTANCE_ID", "processor-0");
    services.push(ChildProcess::spawn(
        "processor",
        processor,
        &data_dir.join("processor.log"),
    )?);
    tracing::info!("processor started");

    if !config.no_console {
        // Last, so every service it watches is there when it first looks.
        let console = console_command(config, bin_dir, kafka)?;
        services.push(ChildProcess::spawn(
            "console",
            console,
            &data_dir.join("console.log"),
        )?);
        wait_for_http(
            &format!("http://{}/healthz", config.console_addr),
            services.last_mut().expect("just pushed"),
        )
        .await?;
        tracing::info!(url = %format!("http://{}/", config.console_addr), "console ready");
    }
    Ok(())
}

/// `tributary-console` over the stack: the query API of `tributary-server`,
/// the registry, the broker (dead letters) and every service's metrics and
/// readiness (the processor and the sink have metrics only).
fn console_command(
    config: &LauncherConfig,
    bin_dir: &Path,
    kafka: &KafkaArgs,
) -> anyhow::Result<Command> {
    let mut command = Command::new(bin_dir.join("tributary-console"));
    // The console serves no metrics of its own here, and must not bind an
    // address inherited from the launcher's environment.
    command.env_remove("TRIBUTARY_METRICS_ADDR");
    command
        .arg("--http-addr")
        .arg(config.console_addr.to_string())
        .arg("--query-url")
        .arg(format!("http://{}", config.ingest_grpc_addr))
        .arg("--registry-url")
        .arg(format!("http://{}", config.registry_addr))
        .arg("--kafka-brokers")
        .arg(&kafka.brokers)
        .env("TRIBUTARY_LOG_FORMAT", "json");
    if let Some(credentials) = &config.registry_basic_auth {
        command.env("TRIBUTARY_REGISTRY_BASIC_AUTH", credentials);
    }
    // API keys in the launcher's environment (`TRIBUTARY_API_KEYS`,
    // `TRIBUTARY_API_KEYS_FILE`) reach `tributary-server` and the console
    // alike: the console then calls the query API with the first of them
    // (unless told another).
    if std::env::var_os("TRIBUTARY_CONSOLE_QUERY_API_KEY").is_none()
        && let Some(first) = first_api_key(
            std::env::var("TRIBUTARY_API_KEYS").ok().as_deref(),
            std::env::var_os("TRIBUTARY_API_KEYS_FILE")
                .as_deref()
                .map(Path::new),
        )?
    {
        command.env("TRIBUTARY_CONSOLE_QUERY_API_KEY", first);
    }
    for (name, binary, ready) in [
        (
            "registry",
            "tributary-registry",
            Some(format!("http://{}/schemas/types", config.registry_addr)),
        ),
        (
            "server",
            "tributary-server",
            Some(format!("http://{}/readyz", config.ingest_http_addr)),
        ),
        ("processor", "tributary-processor", None),
        ("sink", "tributary-sink", None),
    ] {
        let (_, metrics) = metrics_url(config, binary)
            .with_context(|| format!("no metrics port for {binary} after --metrics-port-base"))?;
        let urls = match ready {
            Some(ready) => format!("{metrics},{ready}"),
            None => metrics,
        };
        command.arg("--service").arg(format!("{name}={urls}"));
    }
    Ok(command)
}

/// The first API key the edge accepts given `TRIBUTARY_API_KEYS` (`keys`,
/// `,`-separated) and `TRIBUTARY_API_KEYS_FILE` (`file`): the edge's own
/// reading of them ([`AuthArgs::load`]), so both agree.
fn first_api_key(keys: Option<&str>, file: Option<&Path>) -> anyhow::Result<Option<String>> {
    let auth = AuthArgs {
        api_keys: keys
            .into_iter()
            .flat_map(|k| k.split(','))
            .map(String::from)
            .collect(),
        api_keys_file: file.map(Path::to_path_buf),
    };
    Ok(auth.load()?.into_iter().next())
}

/// The metrics address of `binary` and its `/metrics` URL.
fn metrics_url(config: &LauncherConfig, binary: &str) -> Option<(SocketAddr, String)> {
    let offset = match binary {
        "tributary-registry" => 1,
        "tributary-server" => 2,
        "tributary-processor" => 3,
        "tributary-sink" => 4,
        _ => return None,
    };
    let addr = SocketAddr::from((
        [127, 0, 0, 1],
        config.metrics_port_base.checked_add(offset)?,
    ));
    Some((addr, format!("http://{addr}/metrics")))
}

/// Every service gets its own metrics port: an address inherited from the
/// launcher's environment would make them all bind the same one.
fn with_metrics(command: &mut Command, config: &LauncherConfig, binary: &str) {
    command.env_remove("TRIBUTARY_METRICS_ADDR");
    if let Some((addr, _)) = metrics_url(config, binary) {
        command.env("TRIBUTARY_METRICS_ADDR", addr.to_string());
    }
}

/// How the launcher and the services reach the stack's registry.
fn registry_args(config: &LauncherConfig) -> RegistryArgs {
    let args = RegistryArgs::at(format!("http://{}", config.registry_addr));
    match &config.registry_basic_auth {
        Some(credentials) => args.with_basic_auth(credentials.clone()),
        None => args,
    }
}

/// A pipeline service's command with the settings they all share: broker,
/// registry (and its credentials), partitions, window and JSON logs.
fn pipeline_service(
    bin_dir: &Path,
    binary: &str,
    config: &LauncherConfig,
    kafka: &KafkaArgs,
) -> Command {
    let mut command = Command::new(bin_dir.join(binary));
    with_metrics(&mut command, config, binary);
    command
        .env("TRIBUTARY_KAFKA_BROKERS", &kafka.brokers)
        .env(
            "TRIBUTARY_REGISTRY_URL",
            format!("http://{}", config.registry_addr),
        )
        .env("TRIBUTARY_PARTITIONS", config.partitions.to_string())
        .env("TRIBUTARY_WINDOW", &config.window)
        .env("TRIBUTARY_LOG_FORMAT", "json");
    if let Some(credentials) = &config.registry_basic_auth {
        command.env("TRIBUTARY_REGISTRY_BASIC_AUTH", credentials);
    }
    command
}

/// Completes with the name of the first service that exits.
async fn watch(services: &mut [ChildProcess]) -> String {
    loop {
        for service in services.iter_mut() {
            if !matches!(service.try_wait(), Ok(None)) {
                return service.name().to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Stops services in reverse start order, then the broker. Returns whether
/// every service exited by itself with status 0.
async fn stop_all(services: &mut Vec<ChildProcess>, broker: &mut Broker) -> bool {
    let mut clean = true;
    while let Some(mut service) = services.pop() {
        match service.terminate(Duration::from_secs(30)).await {
            Ok(Some(status)) if status.success() => {
                tracing::info!(service = service.name(), "stopped")
            }
            Ok(Some(status)) => {
                clean = false;
                tracing::error!(service = service.name(), %status, "exited with an error");
            }
            Ok(None) => {
                clean = false;
                tracing::error!(service = service.name(), "did not stop within 30 s; killed");
            }
            Err(e) => {
                clean = false;
                tracing::error!(service = service.name(), error = %e, "cannot stop");
            }
        }
    }
    if let Err(e) = broker.stop(Duration::from_secs(10)).await {
        tracing::error!(error = %e, "cannot stop the broker");
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::first_api_key;

    #[test]
    fn the_console_gets_the_first_key_the_edge_accepts() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("tributary-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("keys");
        std::fs::write(
            &file,
            "\n  # the console's\n\n  #another\n  file-key-1  \nfile-key-2\n",
        )?;
        assert_eq!(first_api_key(None, None)?, None);
        assert_eq!(first_api_key(Some(" , a ,b"), None)?.as_deref(), Some("a"));
        assert_eq!(
            first_api_key(None, Some(&file))?.as_deref(),
            Some("file-key-1")
        );
        // The listed keys come first, as the edge loads them.
        assert_eq!(
            first_api_key(Some("listed"), Some(&file))?.as_deref(),
            Some("listed")
        );
        assert_eq!(
            first_api_key(Some(" , "), Some(&file))?.as_deref(),
            Some("file-key-1")
        );
        std::fs::write(&file, "# only comments\n\n")?;
        assert_eq!(first_api_key(None, Some(&file))?, None);
        assert!(first_api_key(None, Some(&dir.join("absent"))).is_err());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
