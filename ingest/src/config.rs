//! Ingest's flags and environment variables.
use std::time::Duration;

use humantime::parse_duration;
use tributary_common::config::{EventTimeArgs, KafkaArgs, RegistryArgs, TelemetryArgs, TopicUse};
use tributary_edge::config::EdgeArgs;

/// Configuration of `tributary-ingest`.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tributary-ingest",
    version,
    about = "Tributary ingest: validates events, encodes them as Avro and produces them to Kafka"
)]
pub struct IngestConfig {
    /// Listeners, TLS, API keys, rate limits, CORS.
    #[command(flatten)]
    pub edge: EdgeArgs,

    /// Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Partitions of a topic ingest creates for an event type it sees first.
    #[arg(long, env = "TRIBUTARY_PARTITIONS", default_value_t = 4)]
    pub partitions: i32,

    /// Schema Registry.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Which schema events are written with.
    #[command(flatten)]
    pub schemas: SchemaArgs,

    /// Limits and protection.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Logging, tracing and metrics.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// How the writer schema of each event type is chosen.
#[derive(clap::Args, Debug, Clone)]
pub struct SchemaArgs {
    /// `auto-register`: register the built-in schema of ad_click and
    /// price_tick once (development default); `latest`: register nothing.
    /// Either way an event is written with the newest listed version of its
    /// subject that has every field it sets.
    #[arg(long = "schema-policy", env = "TRIBUTARY_SCHEMA_POLICY", value_enum, default_value_t = SchemaPolicy::AutoRegister)]
    pub policy: SchemaPolicy,

    /// Pin an event type to a schema id, as TYPE=ID (repeatable; `,`-separated
    /// in the environment variable). Overrides the policy for that type.
    #[arg(long = "schema-id", env = "TRIBUTARY_SCHEMA_IDS", value_delimiter = ',', value_parser = parse_pin)]
    pub pinned: Vec<(String, u32)>,

    /// How long a listing of a subject's registered versions is trusted
    /// before it is refreshed; an event that fits none of them lists them
    /// again at once (at most once a second per subject).
    #[arg(long = "schema-refresh", env = "TRIBUTARY_SCHEMA_REFRESH", value_parser = parse_duration, default_value = "30s")]
    pub refresh: Duration,
}

/// See [`SchemaArgs::policy`].
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaPolicy {
    /// Register the built-in schema (idempotent), then write with the
    /// newest registered version that fits.
    AutoRegister,
    /// Write with the newest registered version that fits; register nothing.
    Latest,
}

/// Limits that protect the service and the pipeline.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Event times accepted (shared with the processor).
    #[command(flatten)]
    pub event_time: EventTimeArgs,

    /// How long the broker may take to acknowledge an event before the call
    /// fails with UNAVAILABLE (nothing unacknowledged is reported as stored).
    #[arg(long = "produce-timeout", env = "TRIBUTARY_PRODUCE_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub produce_timeout: Duration,

    /// Events of one stream being produced at once; a faster client is slowed
    /// down by flow control.
    #[arg(
        long = "max-in-flight-per-stream",
        env = "TRIBUTARY_MAX_IN_FLIGHT_PER_STREAM",
        default_value_t = 2048
    )]
    pub max_in_flight_per_stream: usize,

    /// Largest gRPC message or HTTP body, in bytes; at least 65536, since
    /// the SDKs put up to 64 KiB of events in one stream message.
    #[arg(long = "max-message-bytes", env = "TRIBUTARY_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024, value_parser = parse_message_bytes)]
    pub max_message_bytes: usize,
}

impl IngestConfig {
    /// How ingest uses the topics: it produces events, nothing else.
    pub const TOPICS: TopicUse = TopicUse {
        events: Some(
            "Prefix of the per-event-type topics ingest produces to: events of type T go to `{prefix}T` (created on the type's first event)",
        ),
        aggregates: None,
        dead_letters: None,
    };

    /// Parses the command line; `--help` shows only ingest's topic flag.
    pub fn from_command_line() -> Self {
        Self::TOPICS.parse()
    }

    /// Settings for tests and embedding: both listeners on free loopback
    /// ports, everything else at its default.
    pub fn local(kafka: KafkaArgs, registry: RegistryArgs) -> Self {
        Self {
            edge: EdgeArgs::local(),
            kafka,
            partitions: 4,
            registry,
            schemas: SchemaArgs {
                policy: SchemaPolicy::AutoRegister,
                pinned: Vec::new(),
                refresh: Duration::from_secs(30),
            },
            limits: LimitArgs {
                event_time: EventTimeArgs::default(),
                produce_timeout: Duration::from_secs(10),
                max_in_flight_per_stream: 2048,
                max_message_bytes: 4 * 1024 * 1024,
            },
            telemetry: TelemetryArgs::default(),
        }
    }
}

fn parse_pin(s: &str) -> Result<(String, u32), String> {
    let (event_type, id) = s
        .split_once('=')
        .ok_or_else(|| format!("expected TYPE=ID, got `{s}`"))?;
    let id = id
        .trim()
        .parse()
        .map_err(|_| format!("`{id}` is not a schema id"))?;
    Ok((event_type.trim().to_string(), id))
}

/// The smallest `--max-message-bytes`: what an SDK's stream message may hold.
pub const MIN_MESSAGE_BYTES: usize = 64 * 1024;

fn parse_message_bytes(text: &str) -> Result<usize, String> {
    let bytes: usize = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of bytes"))?;
    if bytes < MIN_MESSAGE_BYTES {
        return Err(format!(
            "{bytes} is below {MIN_MESSAGE_BYTES}: the SDKs put up to 64 KiB of events in one SubmitEvents message, and a smaller limit would end their streams"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_schema_ids_are_type_equals_id() {
        assert_eq!(parse_pin("ad_click=7"), Ok(("ad_click".to_string(), 7)));
        assert!(parse_pin("ad_click").is_err());
    }

    #[test]
    fn a_message_limit_below_what_an_sdk_message_holds_is_refused() {
        assert_eq!(parse_message_bytes("65536"), Ok(MIN_MESSAGE_BYTES));
        let error = parse_message_bytes("32768").unwrap_err();
        assert!(error.contains("below 65536"), "{error}");
        assert!(parse_message_bytes("lots").is_err());
    }
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory as _;

    use super::IngestConfig;

    #[test]
    fn the_ingest_help_shows_only_the_event_topic_prefix() {
        let help = IngestConfig::TOPICS
            .apply(IngestConfig::command())
            .render_long_help()
            .to_string();
        assert!(help.contains("--topic-prefix"), "{help}");
        assert!(help.contains("ingest produces to"), "{help}");
        assert!(!help.contains("--aggregates-topic"), "{help}");
        assert!(!help.contains("--dead-letter-topic"), "{help}");
    }
}
