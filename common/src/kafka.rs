//! Kafka client settings, written once for every service: the durable
//! producer (idempotent, acks=all, batched, compressed), the consumer that
//! commits only what it has finished, topic creation and listing.
use std::time::Duration;

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer as _},
    error::RDKafkaErrorCode,
};
use thiserror::Error;

use crate::config::{KafkaArgs, MembershipArgs};

/// A Kafka administrative operation that failed.
#[derive(Debug, Error)]
pub enum KafkaSetupError {
    /// The admin client could not be created or the request failed as a whole.
    #[error("kafka admin request failed: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// The broker refused to create a topic.
    #[error("cannot create topic `{topic}`: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
}

/// Durable, batched, compressed producing: an acknowledged record is stored
/// on all in-sync replicas and written once per send. Every ingest call
/// waits for its record's acknowledgement, so the linger is short: 1 ms
/// instead of librdkafka's 5 ms doubled `POST /submit` and unary gRPC
/// throughput at 64 concurrent callers and halved their latency
/// (tributary-bench); under load, batches fill while earlier ones are in
/// flight anyway.
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "1"),
    ("batch.num.messages", "10000"),
    ("compression.type", "lz4"),
    ("message.timeout.ms", "30000"),
];

/// Consumers never commit or store offsets by themselves: services do it only
/// after the work covering them is durable.
///
/// The 6 s session (librdkafka's default is 45 s) began as a Tansu
/// workaround: Tansu 0.6's group join took over 20 s with the default
/// session and takes about 3 s with this one. It is applied on
/// every broker, on purpose: the services cannot tell which broker they talk
/// to, and on Apache Kafka it is harmless and wanted. 6 s is the shortest
/// session Kafka accepts (`group.min.session.timeout.ms`); Kafka's joins do
/// not wait on it, and it makes Kafka hand a crashed dynamic member's
/// partitions to the others after 6 s instead of 45 s (docker-compose's
/// scaled processors and sinks are dynamic members).
const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    ("session.timeout.ms", "6000"),
    ("heartbeat.interval.ms", "1000"),
    // Feeds the consumer-lag metric.
    ("statistics.interval.ms", "5000"),
];

/// A static member's session: how long a replica may be gone (restarting)
/// and still come back to its own partitions without a rebalance. Kafka's
/// own default is 45 s; a replica stopped for good holds its partitions this
/// long.
///
/// Its lower bound is a Tansu workaround: the session must outlast a rejoin,
/// which takes Tansu 0.6 about 6 s (it pauses 3 s in both JoinGroup and
/// SyncGroup and refreshes a member's session only on its heartbeats), or a
/// restarted member expires before its first heartbeat and the group
/// rebalances forever. Applied on every broker: on Apache Kafka a static
/// member's rejoin does not pause, and 30 s is simply how long a replica may
/// restart, shorter than Kafka's default.
const STATIC_SESSION_TIMEOUT_MS: &str = "30000";

/// Bootstrap servers, then `defaults`, then the pass-through properties, so
/// an operator's `--kafka-property` always wins.
fn config_with(args: &KafkaArgs, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &args.brokers);
    for (key, value) in defaults {
        config.set(*key, *value);
    }
    for (key, value) in &args.properties {
        config.set(key, value);
    }
    config
}

/// Bootstrap servers plus the pass-through properties (SASL, TLS, ...): for
/// admin and metadata clients.
pub fn client_config(args: &KafkaArgs) -> ClientConfig {
    config_with(args, &[])
}

/// The producer every service uses (see [`PRODUCER_DEFAULTS`]).
pub fn producer_config(args: &KafkaArgs) -> ClientConfig {
    config_with(args, PRODUCER_DEFAULTS)
}

/// A consumer in `group` that starts from the earliest offset when the group
/// has none (see [`CONSUMER_DEFAULTS`]), a dynamic member.
pub fn consumer_config(args: &KafkaArgs, group: &str) -> ClientConfig {
    member_config(args, group, &MembershipArgs::default())
}

/// A service's consumer: in `group`, as the static member
/// `membership.instance_id` when one is set (see [`MembershipArgs`]), with
/// the static member's longer session; an operator's property still wins.
pub fn member_config(args: &KafkaArgs, group: &str, membership: &MembershipArgs) -> ClientConfig {
    let mut defaults = CONSUMER_DEFAULTS.to_vec();
    if let Some(instance) = &membership.instance_id {
        defaults.push(("group.instance.id", instance));
        defaults.push(("session.timeout.ms", STATIC_SESSION_TIMEOUT_MS));
    }
    let mut config = config_with(args, &defaults);
    config.set("group.id", group);
    config
}

/// Creates each topic with `partitions` partitions unless it already exists.
pub async fn ensure_topics(
    args: &KafkaArgs,
    topics: &[String],
    partitions: i32,
) -> Result<(), KafkaSetupError> {
    ensure_topics_configured(args, topics, partitions, &[]).await
}

/// Creates each topic with `partitions` partitions and the topic
/// configuration `config` (e.g. `cleanup.policy`) unless it already exists.
pub async fn ensure_topics_configured(
    args: &KafkaArgs,
    topics: &[String],
    partitions: i32,
    config: &[(&str, &str)],
) -> Result<(), KafkaSetupError> {
    let admin: AdminClient<DefaultClientContext> = client_config(args).create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            config.iter().fold(
                NewTopic::new(t, partitions, TopicReplication::Fixed(1)),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaSetupError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}

/// Every topic on the broker but its internal ones (`__...`), sorted.
pub async fn topic_names(args: &KafkaArgs) -> Result<Vec<String>, KafkaSetupError> {
    let consumer: BaseConsumer = client_config(args).create()?;
    let metadata =
        tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, Duration::from_secs(10)))
            .await
            .expect("metadata fetch does not panic")?;
    let mut names: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .filter(|name| !name.starts_with("__"))
        .collect();
    names.sort();
    Ok(names)
}

/// The high watermark of `topic`/`partition` as of the consumer's last fetch
/// response, without asking the broker (librdkafka's cached value); `None`
/// when it is not known yet.
pub fn cached_high_watermark<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1_i64, -1_i64);
    // SAFETY: the handle is valid while `client` lives, `topic` is a
    // NUL-terminated string that outlives the call, and `low`/`high` are
    // valid places for librdkafka to write the offsets to.
    let error = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            client.native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (error == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_is_idempotent_with_acks_all_unless_overridden() {
        let mut args = KafkaArgs::for_brokers("b:9092");
        let config = producer_config(&args);
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("bootstrap.servers"), Some("b:9092"));

        args.properties.push(("linger.ms".into(), "50".into()));
        assert_eq!(producer_config(&args).get("linger.ms"), Some("50"));
    }

    fn secured(properties: &[(&str, &str)]) -> KafkaArgs {
        let mut args = KafkaArgs::for_brokers("b:9093");
        args.properties = properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        args
    }

    const SASL_SSL: &[(&str, &str)] = &[
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", "tributary"),
        ("sasl.password", "s3cret"),
        ("ssl.ca.location", "probe"),
        ("ssl.endpoint.identification.algorithm", "https"),
    ];

    #[test]
    fn security_properties_reach_every_client() {
        let args = secured(SASL_SSL);
        for config in [
            client_config(&args),
            producer_config(&args),
            consumer_config(&args, "g"),
        ] {
            for (key, value) in SASL_SSL {
                assert_eq!(config.get(key), Some(*value), "{key}");
            }
        }
    }

    #[test]
    fn librdkafka_accepts_sasl_ssl_settings() {
        // Built with SSL, so SASL_SSL with SCRAM is a client librdkafka creates.
        use rdkafka::producer::BaseProducer;
        let created = producer_config(&secured(SASL_SSL)).create::<BaseProducer>();
        assert!(created.is_ok(), "{:?}", created.err());
        let created = client_config(&secured(&[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", "probe"),
        ]))
        .create::<BaseProducer>();
        assert!(created.is_ok(), "{:?}", created.err());
    }

    #[test]
    fn a_property_librdkafka_refuses_is_an_error_naming_it() {
        use rdkafka::{consumer::BaseConsumer, producer::BaseProducer};
        let args = secured(&[("security.protocol", "bogus")]);
        let error = producer_config(&args)
            .create::<BaseProducer>()
            .err()
            .expect("librdkafka accepted security.protocol=bogus")
            .to_string();
        assert!(error.contains("security.protocol"), "{error}");
        let error = consumer_config(&secured(&[("sasl.mechanism.bogus", "x")]), "g")
            .create::<BaseConsumer>()
            .err()
            .expect("librdkafka accepted an unknown property")
            .to_string();
        assert!(error.contains("sasl.mechanism.bogus"), "{error}");
    }

    #[test]
    fn consumer_never_commits_by_itself() {
        let config = consumer_config(&KafkaArgs::for_brokers("b:9092"), "g");
        assert_eq!(config.get("group.id"), Some("g"));
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
        assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
    }

    #[test]
    fn a_static_member_has_its_instance_id_and_a_session_that_outlasts_a_restart() {
        let dynamic = member_config(
            &KafkaArgs::for_brokers("b:9092"),
            "g",
            &MembershipArgs::default(),
        );
        assert_eq!(dynamic.get("group.instance.id"), None);
        assert_eq!(dynamic.get("session.timeout.ms"), Some("6000"));

        let membership = MembershipArgs {
            instance_id: Some("processor-0".into()),
        };
        let config = member_config(&KafkaArgs::for_brokers("b:9092"), "g", &membership);
        assert_eq!(config.get("group.id"), Some("g"));
        assert_eq!(config.get("group.instance.id"), Some("processor-0"));
        assert_eq!(config.get("session.timeout.ms"), Some("30000"));
        // The operator's session timeout wins.
        let config = member_config(
            &secured(&[("session.timeout.ms", "45000")]),
            "g",
            &membership,
        );
        assert_eq!(config.get("session.timeout.ms"), Some("45000"));
    }

    /// CPU time of each of this process's threads whose name starts with
    /// `prefix`, by thread id, from `/proc/self/task/*/schedstat` (its first
    /// field: nanoseconds on a CPU).
    fn thread_cpu(prefix: &str) -> std::collections::HashMap<String, Duration> {
        let mut cpu = std::collections::HashMap::new();
        for task in std::fs::read_dir("/proc/self/task").expect("procfs") {
            let task = task.expect("task entry");
            let (Ok(name), Ok(schedstat)) = (
                std::fs::read_to_string(task.path().join("comm")),
                std::fs::read_to_string(task.path().join("schedstat")),
            ) else {
                continue; // the thread ended
            };
            if !name.starts_with(prefix) {
                continue;
            }
            let nanos: u64 = schedstat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .expect("schedstat starts with the time on a CPU");
            cpu.insert(
                task.file_name().to_string_lossy().into_owned(),
                Duration::from_nanos(nanos),
            );
        }
        cpu
    }

    /// The most CPU any thread named `prefix`* used since `before`.
    fn busiest_since(
        prefix: &str,
        before: &std::collections::HashMap<String, Duration>,
    ) -> Duration {
        let after = thread_cpu(prefix);
        assert!(!after.is_empty(), "no thread named {prefix}* found");
        after
            .iter()
            .map(|(tid, cpu)| cpu.saturating_sub(before.get(tid).copied().unwrap_or_default()))
            .max()
            .unwrap_or_default()
    }

    /// The patched librdkafka (vendor/README.md): an idempotent producer's
    /// partition may have only one request in flight in practice, and while
    /// it is unanswered the broker thread must sleep, not poll without a
    /// timeout once the next batch's linger has passed. librdkafka's mock
    /// broker answers every request 50 ms late while records come every
    /// 2 ms, so a batch always waits behind a request in flight; unpatched,
    /// the broker thread spun for nearly all of the 2 s (1.83 s of CPU in
    /// 2.10 s; patched, too little for one clock tick).
    #[test]
    fn an_idempotent_producer_waiting_for_a_slow_broker_sleeps() {
        use rdkafka::{
            mocking::MockCluster,
            producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer},
        };

        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("slow", 1, 1).expect("topic");
        let producer: ThreadedProducer<DefaultProducerContext> =
            producer_config(&KafkaArgs::for_brokers(cluster.bootstrap_servers()))
                .create()
                .expect("producer");
        // Metadata and the producer id first, at full speed.
        producer
            .send(
                BaseRecord::<str, str>::to("slow")
                    .key("k")
                    .payload("warm-up"),
            )
            .map_err(|(e, _)| e)
            .expect("enqueued");
        producer
            .flush(Duration::from_secs(10))
            .expect("warm-up delivered");
        cluster
            .broker_round_trip_time(1, Duration::from_millis(50))
            .expect("round-trip time");

        let before = thread_cpu("rdk:");
        let started = std::time::Instant::now();
        let mut sent = 0;
        while started.elapsed() < Duration::from_secs(2) {
            producer
                .send(
                    BaseRecord::<str, str>::to("slow")
                        .key("k")
                        .payload("record"),
                )
                .map_err(|(e, _)| e)
                .expect("enqueued");
            sent += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        producer
            .flush(Duration::from_secs(30))
            .expect("all delivered");
        let elapsed = started.elapsed();
        let busiest = busiest_since("rdk:", &before);
        assert!(sent > 500, "only {sent} records were sent");
        assert!(
            busiest < elapsed / 5,
            "a librdkafka thread spent {busiest:?} of CPU in {elapsed:?} while {sent} records waited for a broker answering 50 ms late"
        );
    }

    /// The patched rdkafka crate (vendor/README.md): the polling thread of an
    /// idle `FutureProducer` (rdkafka's `ThreadedProducer`) polls for 100 ms
    /// at a time and must sleep through all of it. Unpatched, the last
    /// partial millisecond of each poll became a 0 ms timeout and the thread
    /// spun until the deadline: about 1 % of a core.
    #[test]
    fn an_idle_producers_polling_thread_sleeps() {
        use rdkafka::{mocking::MockCluster, producer::FutureProducer};

        let cluster = MockCluster::new(1).expect("mock cluster");
        let _producer: FutureProducer =
            producer_config(&KafkaArgs::for_brokers(cluster.bootstrap_servers()))
                .create()
                .expect("producer");
        std::thread::sleep(Duration::from_millis(300));
        // The thread is "producer polling thread", cut to 15 bytes.
        let before = thread_cpu("producer pollin");
        let idle = Duration::from_secs(3);
        std::thread::sleep(idle);
        let busiest = busiest_since("producer pollin", &before);
        assert!(
            busiest < Duration::from_millis(5),
            "the polling thread of an idle producer spent {busiest:?} of CPU in {idle:?}"
        );
    }
}
