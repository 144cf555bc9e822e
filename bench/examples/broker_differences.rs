//! Where Apache Kafka and Tansu behave differently for Tributary, measured
//! on both brokers as the test kit starts them (README, Kafka settings,
//! "Kafka and Tansu differ"):
//!
//! 1. Topic creation: how long after CreateTopics returns every partition
//!    has a leader; whether a record to a topic nobody created is accepted
//!    (auto-creation); whether a topic keeps the configuration it was
//!    created with (the changelog's `cleanup.policy=compact,delete`).
//! 2. Offset-commit metadata: an offset committed with metadata, by a
//!    member of the group and by a client outside it, read back.
//! 3. Group rebalances, with the services' consumer settings: how long the
//!    first member of a fresh group waits for its partitions; how long until
//!    a second member has its share; how long a static member restarted
//!    under its name waits for its partitions.
//!
//! `cargo run --release -p tributary-bench --example broker_differences`
//! (`-- tansu` or `-- kafka` for one broker). Needs `dev/setup`.
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::{
    Offset, TopicPartitionList,
    admin::{AdminClient, AdminOptions, ResourceSpecifier},
    client::DefaultClientContext,
    consumer::{BaseConsumer, CommitMode, Consumer as _},
    producer::{FutureProducer, FutureRecord},
};
use tributary_common::{
    config::{KafkaArgs, MembershipArgs},
    kafka,
};
use tributary_stack::broker::{Broker, BrokerKind};

const PARTITIONS: i32 = 4;
const LIMIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let kinds = match std::env::args().nth(1).as_deref() {
        None => vec![BrokerKind::Tansu, BrokerKind::Kafka],
        Some("tansu") => vec![BrokerKind::Tansu],
        Some("kafka") => vec![BrokerKind::Kafka],
        Some(other) => anyhow::bail!("unknown broker {other:?}: tansu or kafka"),
    };
    for kind in kinds {
        let broker = Broker::start(kind).await?;
        let args = KafkaArgs::for_brokers(broker.brokers());
        println!("## {kind} ({})", broker.brokers());
        topic_creation(&args).await?;
        offset_metadata(&args).await?;
        rebalances(&args).await?;
        println!();
    }
    Ok(())
}

async fn topic_creation(args: &KafkaArgs) -> anyhow::Result<()> {
    let topic = "probe.created";
    let started = Instant::now();
    kafka::ensure_topics_configured(
        args,
        &[topic.to_string()],
        PARTITIONS,
        &[
            ("cleanup.policy", "compact,delete"),
            ("retention.ms", "86400000"),
        ],
    )
    .await?;
    let created = started.elapsed();
    let leaders = blocking(args, move |consumer| {
        let started = Instant::now();
        let mut first = None;
        loop {
            let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
            let led = metadata.topics().first().map_or(0, |t| {
                t.partitions()
                    .iter()
                    .filter(|p| p.leader() >= 0 && p.error().is_none())
                    .count()
            });
            first.get_or_insert(led);
            if led == PARTITIONS as usize || started.elapsed() > LIMIT {
                return Ok((first.unwrap_or(0), led, started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
    .await?;
    println!(
        "topic creation: CreateTopics answered in {} ms; partitions with a leader at once: {} of {PARTITIONS}; all {} led {} ms later",
        created.as_millis(),
        leaders.0,
        leaders.1,
        leaders.2.as_millis()
    );

    let admin: AdminClient<DefaultClientContext> = kafka::client_config(args).create()?;
    let described = admin
        .describe_configs(
            &[ResourceSpecifier::Topic(topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await;
    let policy = match described {
        Ok(results) => match results.into_iter().next() {
            Some(Ok(resource)) => resource
                .entry_map()
                .get("cleanup.policy")
                .map_or("(not listed)".to_string(), |e| {
                    format!("{:?} (default: {})", e.value, e.is_default)
                }),
            Some(Err(code)) => format!("refused: {code}"),
            None => "no answer".into(),
        },
        Err(e) => format!("failed: {e}"),
    };
    println!(
        "topic configuration: created with cleanup.policy=compact,delete; DescribeConfigs says {policy}"
    );

    let never = "probe.never-created";
    let producer: FutureProducer = kafka::producer_config(args)
        .set("message.timeout.ms", "10000")
        .create()?;
    let delivered = producer
        .send(
            FutureRecord::<(), _>::to(never).payload("x"),
            Duration::from_secs(10),
        )
        .await;
    let partitions = blocking(args, move |consumer| {
        let metadata = consumer.fetch_metadata(Some(never), Duration::from_secs(5))?;
        Ok(metadata
            .topics()
            .first()
            .filter(|t| t.error().is_none())
            .map_or(0, |t| t.partitions().len()))
    })
    .await?;
    println!(
        "a record to a topic nobody created: {}; the topic now has {partitions} partition(s)",
        match delivered {
            Ok(delivery) => format!("acknowledged (partition {})", delivery.partition),
            Err((e, _)) => format!("refused: {e}"),
        }
    );
    Ok(())
}

async fn offset_metadata(args: &KafkaArgs) -> anyhow::Result<()> {
    let topic = "probe.offsets";
    kafka::ensure_topics(args, &[topic.to_string()], PARTITIONS).await?;
    let group = "probe-offsets";
    let member_args = args.clone();
    // A member of the group commits, as the processor and the sink do.
    let as_member = blocking(args, move |_| {
        let consumer: BaseConsumer = kafka::consumer_config(&member_args, group).create()?;
        consumer.subscribe(&[topic])?;
        wait_for_assignment(&[&consumer], |c| c[0] > 0)?;
        commit_and_read(
            &consumer,
            &member_args,
            group,
            topic,
            0,
            7,
            "member metadata",
        )
    })
    .await?;
    // A client outside the group (no member id, generation -1).
    let outside_args = args.clone();
    let outside = blocking(args, move |_| {
        let consumer: BaseConsumer =
            kafka::consumer_config(&outside_args, "probe-outside").create()?;
        commit_and_read(
            &consumer,
            &outside_args,
            "probe-outside",
            topic,
            1,
            11,
            "outside metadata",
        )
    })
    .await?;
    println!(
        "offset commit by a member, offset 7 with metadata \"member metadata\": read back {as_member}"
    );
    println!(
        "offset commit from outside the group, offset 11 with metadata \"outside metadata\": read back {outside}"
    );
    Ok(())
}

/// Commits `offset` with `metadata` for `topic`/`partition` and reads it
/// back with a fresh client of the group.
fn commit_and_read(
    consumer: &BaseConsumer,
    args: &KafkaArgs,
    group: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    metadata: &str,
) -> anyhow::Result<String> {
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    list.find_partition(topic, partition)
        .context("the partition just added")?
        .set_metadata(metadata);
    if let Err(e) = consumer.commit(&list, CommitMode::Sync) {
        return Ok(format!("commit refused: {e}"));
    }
    let reader: BaseConsumer = kafka::consumer_config(args, group).create()?;
    let mut query = TopicPartitionList::new();
    query.add_partition(topic, partition);
    let committed = reader.committed_offsets(query, Duration::from_secs(10))?;
    let element = committed
        .find_partition(topic, partition)
        .context("no committed offset in the answer")?;
    Ok(format!(
        "offset {:?}, metadata {:?}",
        element.offset(),
        element.metadata()
    ))
}

async fn rebalances(args: &KafkaArgs) -> anyhow::Result<()> {
    let topic = "probe.group";
    kafka::ensure_topics(args, &[topic.to_string()], PARTITIONS).await?;
    let dynamic_args = args.clone();
    let (first, second) = blocking(args, move |_| {
        let group = "probe-dynamic";
        let a: BaseConsumer = kafka::consumer_config(&dynamic_args, group).create()?;
        let started = Instant::now();
        a.subscribe(&[topic])?;
        wait_for_assignment(&[&a], |c| c[0] > 0)?;
        let first = started.elapsed();
        let b: BaseConsumer = kafka::consumer_config(&dynamic_args, group).create()?;
        let started = Instant::now();
        b.subscribe(&[topic])?;
        wait_for_assignment(&[&a, &b], |c| {
            c[1] > 0 && c[0] + c[1] == PARTITIONS as usize
        })?;
        Ok((first, started.elapsed()))
    })
    .await?;
    println!(
        "group join, session 6 s: the first member has its partitions after {} ms; a second member has its share after {} ms",
        first.as_millis(),
        second.as_millis()
    );

    let static_args = args.clone();
    let (joined, rejoined) = blocking(args, move |_| {
        let group = "probe-static";
        let membership = MembershipArgs {
            instance_id: Some("probe-0".into()),
        };
        let join = || -> anyhow::Result<(BaseConsumer, Duration)> {
            let consumer: BaseConsumer =
                kafka::member_config(&static_args, group, &membership).create()?;
            let started = Instant::now();
            consumer.subscribe(&[topic])?;
            wait_for_assignment(&[&consumer], |c| c[0] == PARTITIONS as usize)?;
            Ok((consumer, started.elapsed()))
        };
        let (consumer, joined) = join()?;
        // A static member does not leave its group when it closes: the
        // restarted one takes its place.
        drop(consumer);
        let (_consumer, rejoined) = join()?;
        Ok((joined, rejoined))
    })
    .await?;
    println!(
        "static member (group.instance.id, session 30 s): joins in {} ms; closed and started again under its name, has its partitions after {} ms",
        joined.as_millis(),
        rejoined.as_millis()
    );
    Ok(())
}

/// Polls `consumers` until `done` holds for their assigned partition counts.
fn wait_for_assignment(
    consumers: &[&BaseConsumer],
    done: impl Fn(&[usize]) -> bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        for consumer in consumers {
            if let Some(Err(e)) = consumer.poll(Duration::from_millis(20)) {
                tracing::debug!(error = %e, "poll");
            }
        }
        let counts: Vec<usize> = consumers
            .iter()
            .map(|c| c.assignment().map_or(0, |a| a.count()))
            .collect();
        if done(&counts) {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < LIMIT,
            "no assignment within {LIMIT:?}: {counts:?}"
        );
    }
}

/// Runs `probe` on a blocking thread with a metadata client of `args`.
async fn blocking<T: Send + 'static>(
    args: &KafkaArgs,
    probe: impl FnOnce(&BaseConsumer) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let client: BaseConsumer = kafka::client_config(args).create()?;
    tokio::task::spawn_blocking(move || probe(&client)).await?
}
