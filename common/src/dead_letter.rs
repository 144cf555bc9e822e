//! The dead-letter topic: records that cannot be processed are produced there
//! unchanged (key, value, headers) with the reason and their origin in extra
//! headers, counted, and never stop the partition.
//!
//! - [`DeadLetters`]: producing them (the processor and the sink).
//! - [`read`]: reading them back: filtered lists, newest first, one by
//!   `PARTITION/OFFSET` with its payload decoded through the registry.
//! - [`replay`]: re-producing them to their source topics, each at most once.
//!
//! `trib dlq` and the console use `read` and `replay` alike: one
//! implementation, formatted for a terminal or served as JSON.
pub mod read;
pub mod replay;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use rdkafka::{
    Message,
    message::{Header, Headers as _, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};

/// Header names added to dead letters.
pub mod headers {
    /// Why: `not_framed`, `unknown_schema`, `undecodable`, `invalid`, `expired`.
    pub const REASON: &str = "tributary.dlq.reason";
    /// The details of the reason.
    pub const DETAIL: &str = "tributary.dlq.detail";
    /// Where the record came from: `topic/partition/offset`.
    pub const SOURCE: &str = "tributary.dlq.source";
    /// On a record `trib dlq replay` re-produced: the dead letter it came
    /// from, `dead-letter-topic/partition/offset` (kept if it is
    /// dead-lettered again).
    pub const REPLAYED_FROM: &str = "tributary.replayed_from";
}

static DEAD_LETTERS: std::sync::LazyLock<prometheus::IntCounterVec> =
    std::sync::LazyLock::new(|| {
        prometheus::register_int_counter_vec!(
            "tributary_dead_letters_total",
            "Records sent to the dead-letter topic, by reason.",
            &["reason"]
        )
        .expect("metric registers once")
    });

/// Produces dead letters and counts them.
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    count: AtomicU64,
}

impl DeadLetters {
    /// Dead letters go to `topic` through `producer`.
    pub fn new(producer: FutureProducer, topic: String) -> Self {
        Self {
            producer,
            topic,
            count: AtomicU64::new(0),
        }
    }

    /// Produces `message` to the dead-letter topic and waits for the broker.
    pub async fn send<M: Message>(
        &self,
        message: &M,
        reason: &str,
        detail: &str,
    ) -> Result<(), rdkafka::error::KafkaError> {
        let source = format!(
            "{}/{}/{}",
            message.topic(),
            message.partition(),
            message.offset()
        );
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for h in original.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let headers = headers
            .insert(Header {
                key: headers::REASON,
                value: Some(reason),
            })
            .insert(Header {
                key: headers::DETAIL,
                value: Some(detail),
            })
            .insert(Header {
                key: headers::SOURCE,
                value: Some(&source),
            });
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)?;
        self.count.fetch_add(1, Ordering::Relaxed);
        DEAD_LETTERS.with_label_values(&[reason]).inc();
        tracing::warn!(%source, reason, detail, "record dead-lettered");
        Ok(())
    }

    /// Dead letters sent since start.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}
