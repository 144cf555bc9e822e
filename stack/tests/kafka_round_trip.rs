//! The shared producer and consumer settings work against a real Tansu
//! broker and a real Apache Kafka broker: what is produced (key, value,
//! headers, compressed) is consumed back unchanged.
use rstest::rstest;
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};

/// Sends in flight at once: small batches, as a paced client produces.
const BATCH: usize = 20;
use rdkafka::{
    Message as _,
    consumer::{Consumer as _, StreamConsumer},
    message::{Header, Headers as _, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use tributary_common::kafka;
use tributary_stack::broker::{Broker, BrokerKind};

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test]
async fn records_produced_with_the_shared_producer_are_consumed_back_in_order(
    #[case] kind: BrokerKind,
) -> anyhow::Result<()> {
    let broker = Broker::start(kind).await?;
    let args = tributary_common::config::KafkaArgs::for_brokers(broker.brokers());
    let topic = "round-trip".to_string();
    kafka::ensure_topics(&args, std::slice::from_ref(&topic), 1).await?;

    let producer: FutureProducer = kafka::producer_config(&args).create()?;
    let mut offsets = Vec::new();
    for i in 0..100 {
        let payload = format!("value-{i}-{}", "x".repeat(150));
        let key = format!("key-{i}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "event_type",
            value: Some("round_trip"),
        });
        let record = FutureRecord::to(&topic)
            .key(&key)
            .payload(&payload)
            .headers(headers);
        let delivery = producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)?;
        offsets.push(delivery.offset);
    }
    assert_eq!(
        offsets,
        (0..100).collect::<Vec<i64>>(),
        "offsets are assigned in order from 0"
    );

    let consumer: StreamConsumer = kafka::consumer_config(&args, "round-trip-test").create()?;
    consumer.subscribe(&[&topic])?;
    let mut stream = consumer.stream();
    for i in 0..100 {
        let message = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await?
            .expect("the stream does not end")?;
        assert_eq!(message.offset(), i);
        assert_eq!(message.key(), Some(format!("key-{i}").as_bytes()));
        assert_eq!(
            message.payload(),
            Some(format!("value-{i}-{}", "x".repeat(150)).as_bytes())
        );
        let header = message.headers().expect("headers survive").get(0);
        assert_eq!(
            (header.key, header.value),
            ("event_type", Some(&b"round_trip"[..]))
        );
    }
    Ok(())
}

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test]
async fn topics_are_created_with_the_requested_partitions_and_creating_again_is_harmless(
    #[case] kind: BrokerKind,
) -> anyhow::Result<()> {
    let broker = Broker::start(kind).await?;
    let args = tributary_common::config::KafkaArgs::for_brokers(broker.brokers());
    let topics = vec!["a".to_string(), "b".to_string()];
    kafka::ensure_topics(&args, &topics, 3).await?;
    kafka::ensure_topics(&args, &topics, 3).await?;

    let consumer: rdkafka::consumer::BaseConsumer = kafka::client_config(&args).create()?;
    for topic in &topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        assert_eq!(metadata.topics()[0].partitions().len(), 3, "{topic}");
    }
    Ok(())
}

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test]
async fn many_small_batches_with_headers_over_two_topics_are_consumed_completely(
    #[case] kind: BrokerKind,
) -> anyhow::Result<()> {
    let broker = Broker::start(kind).await?;
    let args = tributary_common::config::KafkaArgs::for_brokers(broker.brokers());
    let topics = vec!["burst-a".to_string(), "burst-b".to_string()];
    kafka::ensure_topics(&args, &topics, 4).await?;

    let producer: FutureProducer = kafka::producer_config(&args).create()?;
    const TOTAL: usize = 10_000;
    let sends = (0..TOTAL).map(|i| {
        let producer = producer.clone();
        let topic = topics[i % 2].clone();
        async move {
            let key = format!("key-{}", i % 13);
            let payload = format!("{i:06}-{}", "y".repeat(180));
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
        }
    });
    let delivered: Vec<_> = futures::stream::iter(sends)
        .buffered(BATCH)
        .try_collect()
        .await?;
    assert_eq!(delivered.len(), TOTAL);

    let consumer: StreamConsumer = kafka::consumer_config(&args, "burst-test").create()?;
    consumer.subscribe(&["burst-a", "burst-b"])?;
    let mut stream = consumer.stream();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < TOTAL {
        let message = match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
            Ok(message) => message.expect("the stream does not end")?,
            Err(_) => anyhow::bail!(
                "consumed {} of {TOTAL} records, then nothing for 30 s",
                seen.len()
            ),
        };
        let payload = std::str::from_utf8(message.payload().unwrap())?;
        seen.insert(payload[..6].to_string());
    }
    assert_eq!(seen.len(), TOTAL);
    Ok(())
}

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test]
async fn records_survive_a_broker_sigkill_and_producing_resumes_after_the_restart(
    #[case] kind: BrokerKind,
) -> anyhow::Result<()> {
    let mut broker = Broker::start(kind).await?;
    let args = tributary_common::config::KafkaArgs::for_brokers(broker.brokers());
    let topic = "restart".to_string();
    kafka::ensure_topics(&args, std::slice::from_ref(&topic), 1).await?;
    let send = |producer: FutureProducer, i: usize| {
        let topic = topic.clone();
        async move {
            let payload = format!("r{i}");
            producer
                .send(
                    FutureRecord::to(&topic).key("k").payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .map(|d| d.offset)
                .map_err(|(e, _)| e)
        }
    };
    let producer: FutureProducer = kafka::producer_config(&args).create()?;
    for i in 0..10 {
        send(producer.clone(), i).await?;
    }
    broker.kill().await?;
    broker.restart().await?;
    let fresh: FutureProducer = kafka::producer_config(&args).create()?;
    let offset = send(fresh, 10).await;
    if offset.is_err() {
        eprintln!(
            "{}",
            std::fs::read_to_string(broker.log_path()).unwrap_or_default()
        );
    }
    assert_eq!(offset?, 10);
    Ok(())
}
