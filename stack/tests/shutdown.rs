//! Graceful shutdown of every service binary under load: SIGTERM mid-load,
//! exit status 0 within a bound, and nothing lost — the registry answers the
//! request in flight and keeps every schema it acknowledged, ingest has every
//! acknowledged event in Kafka, and a processor and a sink stopped mid-run
//! and restarted end with exactly the expected aggregates and offsets.
//! (Takeover by a twin instance is in `scale_out.rs`.)
mod support;

use rstest::rstest;
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
    message::Headers as _,
};
use support::{
    PROCESSOR_ENV, Progress, SINK_ENV, Workload, send_batches, wait_for_rows, wait_until,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tributary_common::{
    config::{KafkaArgs, RegistryArgs},
    kafka,
};
use tributary_proto::v1::{
    AdClick, Event, SubmitEventsRequest, event::Payload, event_result::Outcome,
    ingest_service_client::IngestServiceClient,
};
use tributary_stack::{
    TestStack,
    binaries::build_service_binaries,
    bootstrap,
    broker::BrokerKind,
    cluster::{self, Cluster},
    ingest::RunningIngest,
    postgres::TestDatabase,
};

const STOP_LIMIT: Duration = Duration::from_secs(30);

fn cluster_for(stack: &TestStack, name: &str) -> anyhow::Result<Cluster> {
    Ok(Cluster {
        bin_dir: build_service_binaries()?,
        log_dir: cluster::log_dir(name)?,
        kafka: stack.kafka(),
        registry: stack.registry_args(),
        database_url: stack.database.url().to_string(),
    })
}

fn avro_record(name: &str) -> String {
    serde_json::json!({
        "type": "record", "name": name,
        "fields": [{"name": "id", "type": "string"}]
    })
    .to_string()
}

#[tokio::test]
async fn the_registry_answers_the_request_in_flight_keeps_what_it_acknowledged_and_exits_0_on_sigterm()
-> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let cluster = Cluster {
        bin_dir: build_service_binaries()?,
        log_dir: cluster::log_dir("registry-shutdown")?,
        kafka: KafkaArgs::for_brokers("127.0.0.1:9"),
        registry: RegistryArgs::at(String::new()),
        database_url: database.url().to_string(),
    };
    let mut registry = cluster.registry("registry").await?;
    let url = registry.http_url();

    // Load: four clients registering new schemas and reading them back.
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (url, stop) = (url.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            // (subject, id) of every registration the registry acknowledged.
            let mut acknowledged = Vec::new();
            let mut failures = 0;
            for n in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let subject = format!("load-{c}-{n}");
                let sent = http
                    .post(format!("{url}/subjects/{subject}/versions"))
                    .header("content-type", "application/vnd.schemaregistry.v1+json")
                    .json(&serde_json::json!({"schema": avro_record(&format!("R{c}x{n}"))}))
                    .send()
                    .await;
                let response = match sent {
                    Ok(response) => response,
                    // Refused once the registry stopped accepting connections.
                    Err(_) => {
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                // A response that started must complete, successfully.
                let status = response.status();
                let body: serde_json::Value = response.json().await?;
                anyhow::ensure!(status.is_success(), "{subject}: {status} {body}");
                let id = body["id"].as_i64().expect("an id");
                acknowledged.push((subject, id));
            }
            anyhow::Ok((acknowledged, failures))
        }));
    }

    // The request in flight: headers and half the body are in when SIGTERM
    // arrives; the rest follows, and the answer must still come.
    let body = serde_json::json!({"schema": avro_record("InFlight")}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let mut socket = tokio::net::TcpStream::connect(registry.http.expect("http")).await?;
    socket
        .write_all(
            format!(
                "POST /subjects/in-flight/versions HTTP/1.1\r\nhost: registry\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{head}",
                body.len()
            )
            .as_bytes(),
        )
        .await?;
    wait_until(
        Duration::from_secs(30),
        "registrations under load",
        || async {
            let subjects: Vec<String> = reqwest::get(format!("{url}/subjects"))
                .await?
                .json()
                .await?;
            Ok(subjects.len() >= 40)
        },
    )
    .await?;
    registry.sigterm()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        registry.process.try_wait()?.is_none(),
        "the registry exited with a request in flight"
    );
    socket.write_all(tail.as_bytes()).await?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_string(&mut answer)).await??;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let in_flight_id: i64 = serde_json::from_str::<serde_json::Value>(
        answer.split("\r\n\r\n").nth(1).unwrap_or_default(),
    )?["id"]
        .as_i64()
        .expect("an id");
    registry.expect_clean_exit(Duration::from_secs(15)).await?;
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = vec![("in-flight".to_string(), in_flight_id)];
    for client in clients {
        let (acked, _refused) = client.await??;
        acknowledged.extend(acked);
    }
    assert!(
        acknowledged.len() > 40,
        "{} registrations",
        acknowledged.len()
    );

    // Nothing acknowledged is lost: a new registry on the same database
    // serves every acknowledged schema under its id.
    let mut again = cluster.registry("registry-again").await?;
    let http = reqwest::Client::new();
    for (subject, id) in &acknowledged {
        let latest: serde_json::Value = http
            .get(format!(
                "{}/subjects/{subject}/versions/latest",
                again.http_url()
            ))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        assert_eq!(latest["id"].as_i64(), Some(*id), "{subject}: {latest}");
    }
    again.stop(STOP_LIMIT).await?;
    let _ = std::fs::remove_dir_all(&cluster.log_dir);
    Ok(())
}

/// Every record of `topic`: (partition, offset) → idempotency key header.
async fn records(kafka: &KafkaArgs, topic: &str) -> anyhow::Result<HashMap<(i32, i64), String>> {
    let (kafka, topic) = (kafka.clone(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = kafka::consumer_config(&kafka, "shutdown-check").create()?;
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let mut assignment = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for partition in metadata.topics()[0].partitions() {
            let (_, high) =
                consumer.fetch_watermarks(&topic, partition.id(), Duration::from_secs(10))?;
            ends.insert(partition.id(), high);
            assignment.add_partition_offset(&topic, partition.id(), Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let mut found = HashMap::new();
        let started = std::time::Instant::now();
        let done = |found: &HashMap<(i32, i64), String>| {
            ends.iter()
                .all(|(p, high)| (0..*high).all(|o| found.contains_key(&(*p, o))))
        };
        while !done(&found) {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "cannot read {topic} to its end"
            );
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let message = message?;
                let key = message
                    .headers()
                    .and_then(|h| {
                        h.iter()
                            .find(|h| h.key == "tributary.idempotency_key")
                            .and_then(|h| h.value)
                    })
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                found.insert((message.partition(), message.offset()), key);
            }
        }
        Ok(found)
    })
    .await?
}

fn click(i: usize, at: i64) -> Event {
    Event {
        event_time: Some(prost_types::Timestamp {
            seconds: at / 1000,
            nanos: 0,
        }),
        idempotency_key: format!("stream-{i}"),
        payload: Some(Payload::AdClick(AdClick {
            ip_address: format!("10.1.{}.{}", i % 200, i % 7),
            user_agent: "shutdown".into(),
            referring_url: "https://example.com/".into(),
            advertiser_id: format!("adv-{}", i % 16),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test]
async fn ingest_stopped_with_sigterm_mid_stream_exits_0_with_every_acknowledged_event_in_kafka(
    #[case] broker: BrokerKind,
) -> anyhow::Result<()> {
    let stack = TestStack::start_on(broker).await?;
    bootstrap::create_topics(&stack.kafka(), 4).await?;
    bootstrap::register_schemas(&stack.kafka(), &stack.registry_args()).await?;
    let cluster = cluster_for(&stack, "ingest-shutdown")?;
    let mut ingest = cluster.ingest("ingest").await?;

    // Two streams, each sending without end until ingest closes it.
    let now = chrono::Utc::now().timestamp_millis();
    let answered = Arc::new(AtomicUsize::new(0));
    let mut streams = Vec::new();
    for s in 0..2usize {
        let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;
        let answered = answered.clone();
        streams.push(tokio::spawn(async move {
            let (tx, rx) = tokio::sync::mpsc::channel::<SubmitEventsRequest>(64);
            let requests =
                futures::stream::unfold(
                    rx,
                    |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
                );
            let ended = Arc::new(AtomicBool::new(false));
            let producer = {
                let ended = ended.clone();
                tokio::spawn(async move {
                    let mut keys = Vec::new();
                    for n in 0.. {
                        let i = n * 2 + s;
                        if ended.load(Ordering::SeqCst) {
                            break;
                        }
                        let event = click(i, now);
                        let key = event.idempotency_key.clone();
                        if tx
                            .send(SubmitEventsRequest {
                                event: Some(event),
                                ..Default::default()
                            })
                            .await
                            .is_err()
                        {
                            break;
                        }
                        keys.push(key);
                        if n % 20 == 19 {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    keys
                })
            };
            let mut responses = client.submit_events(requests).await?.into_inner();
            // (index, partition, offset) of every acknowledged event.
            let mut acks = Vec::new();
            let ending = loop {
                match responses.message().await {
                    Ok(Some(response)) => {
                        let result = response.result.expect("a result");
                        match result.outcome {
                            Some(Outcome::Ack(ack)) => {
                                acks.push((result.index as usize, ack.partition, ack.offset));
                                answered.fetch_add(1, Ordering::SeqCst);
                            }
                            other => anyhow::bail!("event {} refused: {other:?}", result.index),
                        }
                    }
                    Ok(None) => break None,
                    Err(status) => break Some(status),
                }
            };
            ended.store(true, Ordering::SeqCst);
            drop(responses);
            let keys = producer.await?;
            anyhow::Ok((keys, acks, ending))
        }));
    }

    wait_until(
        Duration::from_secs(30),
        "500 acknowledged events",
        || async { Ok(answered.load(Ordering::SeqCst) >= 500) },
    )
    .await?;
    ingest.stop(STOP_LIMIT).await?;

    let mut acked = Vec::new();
    for stream in streams {
        let (keys, acks, ending) = stream.await??;
        if let Some(status) = &ending {
            assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        }
        assert!(
            keys.len() > acks.len() || ending.is_some(),
            "the stream was not mid-load: {} sent, {} acknowledged",
            keys.len(),
            acks.len()
        );
        for (index, partition, offset) in acks {
            acked.push((keys[index].clone(), partition, offset));
        }
    }
    let stored = records(&stack.kafka(), "tributary.events.ad_click").await?;
    for (key, partition, offset) in &acked {
        assert_eq!(
            stored.get(&(*partition, *offset)),
            Some(key),
            "acknowledged event {key} at {partition}/{offset} is not in Kafka"
        );
    }
    assert!(acked.len() >= 500);
    let _ = std::fs::remove_dir_all(&cluster.log_dir);
    Ok(())
}

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test]
async fn a_processor_and_a_sink_stopped_with_sigterm_mid_run_and_restarted_end_exact(
    #[case] broker: BrokerKind,
) -> anyhow::Result<()> {
    let stack = TestStack::start_on(broker).await?;
    let pool = sqlx::PgPool::connect(stack.database.url()).await?;
    tributary_store::migrate(&pool).await?;
    let kafka = stack.kafka();
    bootstrap::create_topics(&kafka, 4).await?;
    bootstrap::register_schemas(&kafka, &stack.registry_args()).await?;
    let cluster = cluster_for(&stack, "pipeline-shutdown")?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;

    let mut processor = cluster.processor("processor-1", PROCESSOR_ENV)?;
    let mut sink = cluster.sink("sink-1", SINK_ENV)?;
    Cluster::wait_for_metrics(&mut processor).await?;
    Cluster::wait_for_metrics(&mut sink).await?;

    let workload = Workload::new(1200, 300);
    let expected = workload.expected();
    let total = workload.events.len();
    let batches = workload.events.chunks(25).map(<[_]>::to_vec).collect();
    let progress = Progress::new(total / 3);
    let sender = tokio::spawn(send_batches(
        batches,
        ingest.grpc_url(),
        ingest.grpc_url(),
        Duration::from_millis(100),
        progress.clone(),
    ));

    wait_until(Duration::from_secs(45), "the sink writes rows", || async {
        Ok(sink
            .metric("tributary_sink_rows_total")
            .await?
            .unwrap_or(0.0)
            > 0.0)
    })
    .await?;
    progress.wait_for_mark(Duration::from_secs(60)).await?;
    progress.allow(total * 2 / 3);
    processor.sigterm()?;
    sink.sigterm()?;
    processor.expect_clean_exit(STOP_LIMIT).await?;
    sink.expect_clean_exit(STOP_LIMIT).await?;
    let at = progress.acked();
    anyhow::ensure!(
        at < total,
        "{at} of {total} events in: the load ended before the stop"
    );

    // Restarted in the same groups, they resume where the stopped ones
    // committed: the processor from its committed offsets, the sink from the
    // offsets stored with its rows.
    let mut processor = cluster.processor("processor-2", PROCESSOR_ENV)?;
    let mut sink = cluster.sink("sink-2", SINK_ENV)?;
    progress.allow(usize::MAX);
    assert_eq!(sender.await??, 0, "ingest never failed");
    wait_for_rows(&pool, &expected, Duration::from_secs(60)).await?;

    // The sink's stored offsets reach the end of every aggregates partition:
    // every aggregate record was written, none is pending to be written again.
    wait_until(
        Duration::from_secs(30),
        "sink offsets at the end of the topic",
        || {
            let (kafka, pool) = (kafka.clone(), pool.clone());
            async move {
                let ends = tokio::task::spawn_blocking(move || {
                    let consumer: BaseConsumer = kafka::client_config(&kafka).create()?;
                    (0..4)
                        .map(|p| -> anyhow::Result<(i32, i64)> {
                            let (_, high) = consumer.fetch_watermarks(
                                "tributary.aggregates",
                                p,
                                Duration::from_secs(10),
                            )?;
                            Ok((p, high))
                        })
                        .collect::<anyhow::Result<HashMap<i32, i64>>>()
                })
                .await??;
                let stored: Vec<(i32, i64)> = sqlx::query_as(
                    "SELECT partition, next_offset FROM sink_offsets
                 WHERE consumer_group = 'tributary-sink' AND topic = 'tributary.aggregates'",
                )
                .fetch_all(&pool)
                .await?;
                let stored: HashMap<i32, i64> = stored.into_iter().collect();
                Ok(ends
                    .iter()
                    .all(|(p, high)| *high == 0 || stored.get(p) == Some(high)))
            }
        },
    )
    .await?;

    processor.stop(STOP_LIMIT).await?;
    sink.stop(STOP_LIMIT).await?;
    pool.close().await;
    ingest.shutdown().await?;
    let _ = std::fs::remove_dir_all(&cluster.log_dir);
    Ok(())
}

#[tokio::test]
async fn a_registry_a_processor_and_a_sink_stopped_with_sigterm_while_starting_exit_0()
-> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let registry = tributary_stack::registry::RunningRegistry::start(database.url()).await?;
    // Nothing listens on these: the processor waits for the broker while it
    // creates its topics, the sink and the registry for Postgres while they
    // migrate.
    let dead = |port: u16| format!("127.0.0.1:{port}");
    let cluster = Cluster {
        bin_dir: build_service_binaries()?,
        log_dir: cluster::log_dir("startup-shutdown")?,
        kafka: KafkaArgs::for_brokers(dead(tributary_stack::tansu::free_port()?)),
        registry: RegistryArgs::at(registry.url()),
        database_url: format!(
            "postgres://postgres@{}/nowhere",
            dead(tributary_stack::tansu::free_port()?)
        ),
    };
    let mut processor = cluster.processor("processor", PROCESSOR_ENV)?;
    let mut sink = cluster.sink("sink", &[("TRIBUTARY_MIGRATE", "true")])?;
    let mut stuck_registry = cluster.spawn_registry("registry")?;
    for service in [&mut processor, &mut sink, &mut stuck_registry] {
        Cluster::wait_for_metrics(service).await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for service in [&processor, &sink, &stuck_registry] {
        assert!(
            ["processor running", "sink running", "registry listening"]
                .iter()
                .all(|started| cluster::log_lines(service.process.log_path(), started).is_empty()),
            "{} started although its dependency is down",
            service.name()
        );
    }
    for service in [&mut processor, &mut sink, &mut stuck_registry] {
        service.stop(Duration::from_secs(10)).await?;
    }
    let _ = std::fs::remove_dir_all(&cluster.log_dir);
    Ok(())
}
