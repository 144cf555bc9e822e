//! The processor's flags and environment variables.
use std::time::Duration;

use humantime::parse_duration;
use std::path::PathBuf;

use tributary_common::config::{
    EventTimeArgs, KafkaArgs, MembershipArgs, RegistryArgs, TelemetryArgs, TopicUse,
};

use crate::window::WindowSpec;

/// Configuration of `tributary-processor`.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "tributary-processor",
    version,
    about = "Tributary processor: decodes events with reader schemas and aggregates them in event-time windows"
)]
pub struct ProcessorConfig {
    /// Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Partitions of the aggregates and dead-letter topics when the
    /// processor has to create them.
    #[arg(long, env = "TRIBUTARY_PARTITIONS", default_value_t = 4)]
    pub partitions: i32,

    /// Schema Registry.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Consumer group; processors in one group share the partitions.
    #[arg(
        long,
        env = "TRIBUTARY_PROCESSOR_GROUP",
        default_value = "tributary-processor"
    )]
    pub group: String,

    /// Static membership in the group.
    #[command(flatten)]
    pub membership: MembershipArgs,

    /// Tumbling window size.
    #[arg(long, env = "TRIBUTARY_WINDOW", value_parser = parse_duration, default_value = "1m")]
    pub window: Duration,

    /// How long (behind the partition's watermark) a window waits for late
    /// events before its final aggregate is emitted; a later event still
    /// counts, as a correction of the final aggregate.
    #[arg(long, env = "TRIBUTARY_ALLOWED_LATENESS", value_parser = parse_duration, default_value = "10s")]
    pub allowed_lateness: Duration,

    /// How old an event may be and still count (ingest's limit): closed
    /// windows are kept, on local disk and in the changelog topic, this long.
    #[command(flatten)]
    pub event_time: EventTimeArgs,

    /// Where the closed windows' local store (a SQLite file, rebuilt from the
    /// changelog topic on each start) is created: a fresh directory inside it,
    /// removed on exit. Default: the system's temporary directory.
    #[arg(long, env = "TRIBUTARY_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// After this long without records on a partition its watermark follows
    /// the wall clock, so windows close when traffic stops.
    #[arg(long, env = "TRIBUTARY_IDLE_ADVANCE", value_parser = parse_duration, default_value = "10s")]
    pub idle_advance: Duration,

    /// How often open windows emit their updated totals.
    #[arg(long, env = "TRIBUTARY_EMIT_INTERVAL", value_parser = parse_duration, default_value = "1s")]
    pub emit_interval: Duration,

    /// Logging.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

impl ProcessorConfig {
    /// How the processor uses the topics.
    pub const TOPICS: TopicUse = TopicUse {
        events: Some(
            "Prefix of the event topics the processor consumes: every topic `{prefix}*`, new ones picked up within seconds",
        ),
        aggregates: Some("The topic the processor writes aggregates to"),
        dead_letters: Some(
            "The topic the processor sends events it cannot process to, with the reason",
        ),
    };

    /// Parses the command line with the processor's own `--help`.
    pub fn from_command_line() -> Self {
        Self::TOPICS.parse()
    }

    /// Defaults for tests and embedding.
    pub fn local(kafka: KafkaArgs, registry: RegistryArgs) -> Self {
        Self {
            kafka,
            registry,
            partitions: 4,
            group: "tributary-processor".into(),
            membership: MembershipArgs::default(),
            window: Duration::from_secs(60),
            allowed_lateness: Duration::from_secs(10),
            event_time: EventTimeArgs::default(),
            state_dir: None,
            idle_advance: Duration::from_secs(10),
            emit_interval: Duration::from_secs(1),
            telemetry: TelemetryArgs::default(),
        }
    }

    /// The window geometry.
    pub fn window_spec(&self) -> WindowSpec {
        WindowSpec::new(
            self.window,
            self.allowed_lateness,
            self.idle_advance,
            self.event_time.max_event_time_skew,
        )
    }
}
