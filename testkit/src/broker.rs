//! The broker a test runs against: Tansu (it starts in a second) or Apache
//! Kafka (the broker production runs), behind one interface, so one test
//! body runs on both.
use std::{path::Path, time::Duration};

use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer as _},
};

use crate::{
    apache_kafka::ApacheKafka,
    process::{ChildProcess, wait_until_ready},
    tansu::Tansu,
};

/// Which broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BrokerKind {
    /// Tansu 0.6 with SQLite storage (or memory, where a tool offers it).
    Tansu,
    /// Apache Kafka in KRaft mode (`dev/setup` fetches it).
    Kafka,
}

impl std::fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tansu => "tansu",
            Self::Kafka => "kafka",
        })
    }
}

/// A running broker with durable storage in a temporary directory, killed
/// and its storage removed when dropped.
pub enum Broker {
    /// Tansu.
    Tansu(Tansu),
    /// Apache Kafka.
    Kafka(ApacheKafka),
}

impl Broker {
    /// Starts a broker of `kind` on free loopback ports and waits until it
    /// answers Kafka metadata requests.
    pub async fn start(kind: BrokerKind) -> anyhow::Result<Self> {
        Ok(match kind {
            BrokerKind::Tansu => Self::Tansu(Tansu::start().await?),
            BrokerKind::Kafka => Self::Kafka(ApacheKafka::start().await?),
        })
    }

    /// Which broker this is.
    pub fn kind(&self) -> BrokerKind {
        match self {
            Self::Tansu(_) => BrokerKind::Tansu,
            Self::Kafka(_) => BrokerKind::Kafka,
        }
    }

    /// The bootstrap servers, e.g. `127.0.0.1:40123`.
    pub fn brokers(&self) -> String {
        match self {
            Self::Tansu(b) => b.brokers(),
            Self::Kafka(b) => b.brokers(),
        }
    }

    /// The broker process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Self::Tansu(b) => b.pid(),
            Self::Kafka(b) => b.pid(),
        }
    }

    /// The broker process's peak resident set size so far, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        match self {
            Self::Tansu(b) => b.peak_rss_kib(),
            Self::Kafka(b) => b.peak_rss_kib(),
        }
    }

    /// Where the broker's output goes.
    pub fn log_path(&self) -> &Path {
        match self {
            Self::Tansu(b) => b.log_path(),
            Self::Kafka(b) => b.log_path(),
        }
    }

    /// Kills the broker with SIGKILL, as a crash would.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Tansu(b) => b.kill().await,
            Self::Kafka(b) => b.kill().await,
        }
    }

    /// Starts the broker again on the same ports and storage.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Tansu(b) => b.restart().await,
            Self::Kafka(b) => b.restart().await,
        }
    }

    /// Stops the broker: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) -> anyhow::Result<()> {
        match self {
            Self::Tansu(b) => b.stop(grace).await,
            Self::Kafka(b) => b.stop(grace).await,
        }
    }
}

/// Waits until the broker at `brokers` answers a metadata request; fails
/// when `process` exits first or after `limit`.
pub(crate) async fn wait_for_metadata(
    brokers: &str,
    process: &mut ChildProcess,
    limit: Duration,
) -> anyhow::Result<()> {
    let what = format!("Kafka metadata requests on {brokers}");
    wait_until_ready(process, &what, limit, || {
        let bootstrap = brokers.to_string();
        async move {
            tokio::task::spawn_blocking(move || {
                let consumer: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", &bootstrap)
                    .set("log_level", "0")
                    .create()
                    .ok()?;
                consumer
                    .fetch_metadata(None, Duration::from_millis(500))
                    .ok()
            })
            .await
            .ok()
            .flatten()
            .is_some()
        }
    })
    .await
}
