//! Apache Kafka's broker (KRaft, one node as broker and controller) as a
//! child process on free loopback ports, with its log directory in a fresh
//! temporary directory: SIGKILL-able and restartable with its data, like
//! [`crate::tansu::Tansu`]. `dev/setup` fetches the broker's jars from Maven
//! Central (`dev/kafka/pom.xml`) and formats a storage template that every
//! broker starts from, so starting one needs no network and no format step.
use std::{
    path::{Path, PathBuf},
    sync::LazyLock,
    time::Duration,
};

use anyhow::Context as _;
use tokio::process::Command;

use crate::{broker::wait_for_metadata, process::ChildProcess, tansu::free_port};

/// The POM `dev/setup` resolves the broker with.
const POM: &str = include_str!("../../dev/kafka/pom.xml");

/// The Apache Kafka version the tests run: `kafka.version` of
/// `dev/kafka/pom.xml`, the one docker-compose runs.
pub fn version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        POM.split_once("<kafka.version>")
            .and_then(|(_, rest)| rest.split_once("</kafka.version>"))
            .map(|(version, _)| version.trim().to_string())
            .expect("dev/kafka/pom.xml sets kafka.version")
    });
    &VERSION
}

/// Where `dev/setup` put the broker: `TRIBUTARY_KAFKA_HOME`, or
/// `~/.cache/tributary/kafka-VERSION`.
pub fn home() -> anyhow::Result<PathBuf> {
    if let Some(home) = std::env::var_os("TRIBUTARY_KAFKA_HOME") {
        return Ok(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home)
        .join(".cache/tributary")
        .join(format!("kafka-{}", version())))
}

/// The JVM options of a test broker: a heap enough for tests, small enough
/// for two cores and a shared 24 GiB machine running many; the serial
/// collector and the C1 compiler only, which start fastest.
pub const TEST_JVM: &[&str] = &[
    "-Xmx512m",
    "-Xms128m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
];

/// The JVM options Kafka's own start scripts use when none are given
/// (`KAFKA_HEAP_OPTS` of `kafka-server-start.sh`, `KAFKA_JVM_PERFORMANCE_OPTS`
/// of `kafka-run-class.sh`), which the `apache/kafka` image runs with: for
/// the benchmarks, so they measure the broker users run.
pub const STOCK_JVM: &[&str] = &[
    "-Xmx1G",
    "-Xms1G",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
];

/// A running Apache Kafka broker, killed when dropped (and its data removed
/// when it was started in a temporary directory).
pub struct ApacheKafka {
    process: ChildProcess,
    port: u16,
    dir: PathBuf,
    /// The JVM's options ([`TEST_JVM`] unless started with others).
    jvm: &'static [&'static str],
    /// `dir` is removed when the broker is dropped.
    temporary: bool,
}

impl ApacheKafka {
    /// Starts a broker on free loopback ports with a copy of the formatted
    /// storage template in a fresh temporary directory (removed when the
    /// broker is dropped), and waits until it answers metadata requests.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_in_temp_dir(TEST_JVM).await
    }

    /// [`ApacheKafka::start`] with the JVM options `jvm` (e.g. [`STOCK_JVM`]).
    pub async fn start_in_temp_dir(jvm: &'static [&'static str]) -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!(
            "tributary-kafka-{port}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let mut kafka = Self::start_with(&dir, port, free_port()?, jvm).await?;
        kafka.temporary = true;
        Ok(kafka)
    }

    /// Starts a broker with its data and log in `dir` (made from the storage
    /// template the first time, kept afterwards, so records survive a
    /// restart), serving clients on `port` and its controller on
    /// `controller`, and waits until it answers metadata requests.
    pub async fn start_in(dir: &Path, port: u16, controller: u16) -> anyhow::Result<Self> {
        Self::start_with(dir, port, controller, TEST_JVM).await
    }

    /// [`ApacheKafka::start_in`] with the JVM options `jvm`.
    pub async fn start_with(
        dir: &Path,
        port: u16,
        controller: u16,
        jvm: &'static [&'static str],
    ) -> anyhow::Result<Self> {
        let home = home()?;
        let template = home.join("storage-template");
        anyhow::ensure!(
            home.join(".complete").is_file(),
            "Apache Kafka {} is not in {}: run dev/setup",
            version(),
            home.display()
        );
        let data = dir.join("data");
        if !data.join("meta.properties").is_file() {
            std::fs::create_dir_all(&data)
                .with_context(|| format!("cannot create {}", data.display()))?;
            for entry in std::fs::read_dir(&template)
                .with_context(|| format!("cannot read {}", template.display()))?
            {
                let entry = entry?;
                std::fs::copy(entry.path(), data.join(entry.file_name()))?;
            }
        }
        std::fs::write(
            dir.join("server.properties"),
            server_properties(port, controller, &data),
        )?;
        std::fs::write(dir.join("log4j.properties"), LOG4J)?;
        let process = spawn(&home, dir, jvm)?;
        let mut kafka = Self {
            process,
            port,
            dir: dir.to_path_buf(),
            jvm,
            temporary: false,
        };
        if let Err(error) = kafka.wait_until_ready().await {
            let _ = kafka.process.kill().await;
            return Err(error);
        }
        Ok(kafka)
    }

    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let brokers = self.brokers();
        // The JVM, then KRaft's election on a busy two-core machine.
        wait_for_metadata(&brokers, &mut self.process, Duration::from_secs(90)).await
    }

    /// The bootstrap servers, e.g. `127.0.0.1:40123`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the broker's output goes.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The broker process's (the JVM's) id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// The broker process's peak resident set size so far, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.process.peak_rss_kib()
    }

    /// Kills the broker with SIGKILL, as a crash would.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.process.kill().await
    }

    /// Starts the broker again on the same ports and data, e.g. after
    /// [`ApacheKafka::kill`].
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.terminate(Duration::from_secs(10)).await?;
        self.process = spawn(&home()?, &self.dir, self.jvm)?;
        self.wait_until_ready().await
    }

    /// Stops the broker: SIGTERM (a controlled shutdown), then SIGKILL
    /// after `grace`.
    pub async fn stop(&mut self, grace: Duration) -> anyhow::Result<()> {
        self.process.terminate(grace).await.map(drop)
    }
}

impl Drop for ApacheKafka {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn spawn(home: &Path, dir: &Path, jvm: &[&str]) -> anyhow::Result<ChildProcess> {
    let mut command = Command::new("java");
    command
        .args(jvm)
        .arg(format!(
            "-Dlog4j.configuration=file:{}",
            dir.join("log4j.properties").display()
        ))
        .arg("-cp")
        .arg(home.join("libs").join("*"))
        .arg("kafka.Kafka")
        .arg(dir.join("server.properties"));
    ChildProcess::spawn("kafka", command, &dir.join("kafka.log"))
}

/// One node that is both broker and controller; single-replica internal
/// topics with few partitions (the defaults want three replicas and fifty
/// offsets partitions); groups form without the initial 3 s delay, as in
/// docker-compose.
fn server_properties(port: u16, controller: u16, data: &Path) -> String {
    format!(
        "process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
",
        data.display()
    )
}

const LOG4J: &str = "log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.coordinator.group=INFO
";
