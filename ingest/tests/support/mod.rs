//! What the gateway tests share: ingest started against a fresh real stack,
//! the HTTP client, and reading back what ingest produced to Kafka.
#![allow(dead_code)] // each test binary uses a different part

use std::{collections::HashMap, time::Duration};

use anyhow::Context as _;
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _, StreamConsumer},
    message::{BorrowedMessage, Headers as _},
};
use tributary_common::{config::KafkaArgs, kafka, wire};
use tributary_ingest::config::IngestConfig;
use tributary_stack::{TestStack, ingest::RunningIngest};

/// A fresh broker, database and registry, and ingest in front of them.
pub struct Gateway {
    /// Ingest; dropped first, so it stops before the stack goes away.
    pub ingest: RunningIngest,
    /// The stack ingest produces to.
    pub stack: TestStack,
    /// An HTTP client.
    pub http: reqwest::Client,
}

impl Gateway {
    /// Starts ingest with the default test configuration.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Starts ingest with its configuration changed by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut IngestConfig)) -> anyhow::Result<Self> {
        let stack = TestStack::start().await?;
        let ingest = RunningIngest::start(&stack, |c| configure(&mut c.ingest)).await?;
        Ok(Self {
            ingest,
            stack,
            http: reqwest::Client::new(),
        })
    }

    /// The URL of `path` on the gateway.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.ingest.http_url())
    }

    /// POSTs `body` as `content_type` to `path`.
    pub fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
    }

    /// POSTs `value` as JSON to `path`.
    pub fn post_json(&self, path: &str, value: &serde_json::Value) -> reqwest::RequestBuilder {
        self.post(path, "application/json", value.to_string())
    }

    /// Kafka settings of the stack.
    pub fn kafka(&self) -> KafkaArgs {
        self.stack.kafka()
    }
}

/// A response's status and JSON body.
pub async fn status_and_json(
    response: reqwest::Response,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let status = response.status().as_u16();
    let text = response.text().await?;
    let body = serde_json::from_str(&text)
        .with_context(|| format!("status {status}: body is not JSON: {text}"))?;
    Ok((status, body))
}

/// One record as ingest stored it.
#[derive(Debug, Clone)]
pub struct Record {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The key.
    pub key: String,
    /// The schema id of the Confluent frame.
    pub schema_id: u32,
    /// The Avro body after the frame.
    pub avro: Vec<u8>,
    /// The headers, as text.
    pub headers: HashMap<String, String>,
}

fn record(message: &BorrowedMessage<'_>) -> anyhow::Result<Record> {
    let (schema_id, avro) = wire::unframe(message.payload().context("record without a value")?)?;
    let headers = message
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Record {
        partition: message.partition(),
        offset: message.offset(),
        key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
        schema_id,
        avro: avro.to_vec(),
        headers,
    })
}

/// Reads `count` records of `topic` from the beginning of every partition
/// (assigned, not subscribed: no group join to wait for).
pub async fn read_topic(
    kafka: &KafkaArgs,
    topic: &str,
    count: usize,
) -> anyhow::Result<Vec<Record>> {
    let consumer: StreamConsumer =
        kafka::consumer_config(kafka, &format!("gateway-test-{}", uuid::Uuid::new_v4()))
            .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    anyhow::ensure!(partitions > 0, "topic {topic} has no partitions");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition as i32, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut records = Vec::with_capacity(count);
    while records.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .with_context(|| {
                format!(
                    "only {} of {count} records arrived on {topic}",
                    records.len()
                )
            })??;
        records.push(record(&message)?);
    }
    Ok(records)
}

/// How many records `topic` holds; a topic that does not exist holds none
/// (ingest creates topics on the first event of their type).
pub async fn records_in(kafka: &KafkaArgs, topic: &str) -> anyhow::Result<i64> {
    let consumer: BaseConsumer = kafka::consumer_config(kafka, "gateway-watermarks").create()?;
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        let Some(found) = metadata.topics().first().filter(|t| t.error().is_none()) else {
            return Ok(0);
        };
        let mut total = 0;
        for partition in found.partitions() {
            let (low, high) =
                consumer.fetch_watermarks(&topic, partition.id(), Duration::from_secs(10))?;
            total += high - low;
        }
        Ok(total)
    })
    .await?
}

/// A valid `/submit` body.
pub fn click_body(advertiser_id: &str) -> serde_json::Value {
    serde_json::json!({
        "ip_address": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "referring_url": "https://news.example.com/article?id=42",
        "advertiser_id": advertiser_id,
        "metadata": {"placement": "sidebar", "slot": 3}
    })
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}
