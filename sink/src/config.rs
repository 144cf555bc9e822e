//! The sink's flags and environment variables.
use std::time::Duration;

use humantime::parse_duration;
use tributary_common::config::{KafkaArgs, MembershipArgs, RegistryArgs, TelemetryArgs, TopicUse};

/// Most records per transaction unless `--batch-size` says otherwise (the
/// benchmark's raw upsert loop writes batches of this size too).
pub const DEFAULT_BATCH_SIZE: usize = 2000;

/// Configuration of `tributary-sink`.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tributary-sink",
    version,
    about = "Tributary sink: upserts aggregates into Postgres with their offsets, effectively once"
)]
pub struct SinkConfig {
    /// Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Schema Registry (to read the aggregates' writer schemas).
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Postgres connection URL. TLS as libpq's URL parameters say: `sslmode`
    /// (disable, prefer, require, verify-ca, verify-full), `sslrootcert`,
    /// `sslcert`, `sslkey`.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/tributary"
    )]
    pub database_url: String,

    /// Apply the database migrations at start.
    #[arg(long, env = "TRIBUTARY_MIGRATE")]
    pub migrate: bool,

    /// Consumer group; sinks in one group share the partitions.
    #[arg(long, env = "TRIBUTARY_SINK_GROUP", default_value = "tributary-sink")]
    pub group: String,

    /// Static membership in the group.
    #[command(flatten)]
    pub membership: MembershipArgs,

    /// Most records written in one transaction.
    #[arg(long, env = "TRIBUTARY_SINK_BATCH_SIZE", default_value_t = DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,

    /// How long a batch waits for more records after its first.
    #[arg(long, env = "TRIBUTARY_SINK_BATCH_LINGER", value_parser = parse_duration, default_value = "50ms")]
    pub batch_linger: Duration,

    /// Logging.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

impl SinkConfig {
    /// How the sink uses the topics: it reads aggregates and dead-letters
    /// rows it can never write; it never touches event topics.
    pub const TOPICS: TopicUse = TopicUse {
        events: None,
        aggregates: Some("The topic the sink reads aggregates from"),
        dead_letters: Some(
            "The topic the sink sends records it can never write to, with the reason",
        ),
    };

    /// Parses the command line with the sink's own `--help`.
    pub fn from_command_line() -> Self {
        Self::TOPICS.parse()
    }

    /// Defaults for tests and embedding.
    pub fn local(
        kafka: KafkaArgs,
        registry: RegistryArgs,
        database_url: impl Into<String>,
    ) -> Self {
        Self {
            kafka,
            registry,
            database_url: database_url.into(),
            migrate: true,
            group: "tributary-sink".into(),
            membership: MembershipArgs::default(),
            batch_size: DEFAULT_BATCH_SIZE,
            batch_linger: Duration::from_millis(50),
            telemetry: TelemetryArgs::default(),
        }
    }
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory as _;

    use super::SinkConfig;

    #[test]
    fn the_sink_help_shows_only_its_own_topics_described_from_its_side() {
        let help = SinkConfig::TOPICS
            .apply(SinkConfig::command())
            .render_long_help()
            .to_string();
        assert!(!help.contains("--topic-prefix"), "{help}");
        assert!(
            help.contains("The topic the sink reads aggregates from"),
            "{help}"
        );
        assert!(
            help.contains("The topic the sink sends records it can never write to"),
            "{help}"
        );
        assert!(!help.contains("aggregates are written to"), "{help}");
    }
}
