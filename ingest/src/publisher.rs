//! Producing encoded events to their topic, keyed, with the headers the
//! processor and operators rely on; a call returns only once the broker has
//! acknowledged the record (acks=all, idempotent) or the bound has passed.
use std::{sync::RwLock, time::Duration};

use rdkafka::{
    ClientConfig,
    error::{KafkaError, RDKafkaErrorCode},
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord, Producer as _, PurgeConfig},
};
use tributary_common::{config::KafkaArgs, headers, kafka};

use crate::rejection::Rejection;

/// Where the broker stored a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

/// What to produce.
pub struct Outgoing<'a> {
    /// The event type (selects the topic).
    pub event_type: &'a str,
    /// The record key.
    pub key: &'a str,
    /// The Confluent-framed Avro value.
    pub payload: &'a [u8],
    /// The writer schema id.
    pub schema_id: u32,
    /// The idempotency key.
    pub idempotency_key: &'a str,
    /// The traceparent header.
    pub traceparent: &'a str,
    /// Event time, as the record timestamp.
    pub event_time_ms: i64,
    /// When the event was accepted (the instant its event time was checked
    /// against), as the `tributary.accepted_at` header.
    pub accepted_at_ms: i64,
}

/// How long to wait before offering a record again while librdkafka's
/// queue is full.
const QUEUE_FULL_RETRY: Duration = Duration::from_millis(100);

/// The shared producer.
pub struct Publisher {
    /// The current producer and its generation; replaced when the broker
    /// has lost the producer's idempotence state.
    producer: RwLock<(u64, FutureProducer)>,
    config: ClientConfig,
    kafka: KafkaArgs,
    timeout: Duration,
}

impl Publisher {
    /// A producer with the shared settings, whose deliveries fail after `timeout`.
    pub fn new(kafka: &KafkaArgs, timeout: Duration) -> Result<Self, KafkaError> {
        let mut config = kafka::producer_config(kafka);
        config.set("message.timeout.ms", timeout.as_millis().to_string());
        Ok(Self {
            producer: RwLock::new((0, config.create()?)),
            config,
            kafka: kafka.clone(),
            timeout,
        })
    }

    fn current(&self) -> (u64, FutureProducer) {
        self.producer.read().expect("producer lock").clone()
    }

    /// Retires the producer of `generation` after a failed delivery and
    /// starts a new one (new producer id, sequences from zero). An idempotent
    /// producer whose record failed has a gap in its sequence; Kafka answers
    /// its next records with out-of-order-sequence errors until it recovers,
    /// and Tansu 0.6 even crashes its storage engine on them. The old
    /// producer's queued and in-flight records are purged so it never sends
    /// again; their callers get UNAVAILABLE, and none of them was reported
    /// as stored.
    fn replace_after(&self, generation: u64, error: &KafkaError) {
        let mut producer = self.producer.write().expect("producer lock");
        if producer.0 != generation {
            return; // another call replaced it already
        }
        match self.config.create::<FutureProducer>() {
            Ok(fresh) => {
                tracing::warn!(%error, generation, "delivery failed; retiring the producer and starting a new one");
                let retired = std::mem::replace(&mut *producer, (generation + 1, fresh));
                retired.1.purge(PurgeConfig::default().queue().inflight());
            }
            Err(e) => tracing::error!(error = %e, "cannot create a new producer"),
        }
    }

    /// Produces one record and waits for the broker's acknowledgement.
    pub async fn publish(&self, out: Outgoing<'_>) -> Result<Stored, Rejection> {
        let topic = self.kafka.event_topic(out.event_type);
        let (mut schema_id, mut accepted_at) = ([0; 24], [0; 24]);
        let schema_id = decimal(i64::from(out.schema_id), &mut schema_id);
        let accepted_at = decimal(out.accepted_at_ms, &mut accepted_at);
        let headers = OwnedHeaders::new_with_capacity(5)
            .insert(Header {
                key: headers::EVENT_TYPE,
                value: Some(out.event_type),
            })
            .insert(Header {
                key: headers::SCHEMA_ID,
                value: Some(schema_id),
            })
            .insert(Header {
                key: headers::IDEMPOTENCY_KEY,
                value: Some(out.idempotency_key),
            })
            .insert(Header {
                key: headers::ACCEPTED_AT,
                value: Some(accepted_at),
            })
            .insert(Header {
                key: headers::TRACEPARENT,
                value: Some(out.traceparent),
            });
        let record = FutureRecord::to(&topic)
            .key(out.key)
            .payload(out.payload)
            .timestamp(out.event_time_ms)
            .headers(headers);
        // librdkafka's own timeouts can overrun the bound while it reconnects;
        // the call answers within it regardless. A record that is still
        // delivered later was never acknowledged, so a retry with the same
        // idempotency key is counted once downstream.
        let (generation, producer) = self.current();
        let _timer = crate::metrics::PRODUCE_SECONDS.start_timer();
        // Enqueued at once (librdkafka copies the record) and waited for
        // within the bound; while librdkafka's queue is full, retried every
        // 100 ms (as `FutureProducer::send` does) within the same bound.
        let send = async {
            let mut record = record;
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        break match delivery.await {
                            Ok(Ok(delivery)) => Ok(delivery),
                            Ok(Err((e, _))) => Err(e),
                            // The producer went away without reporting.
                            Err(_) => Err(KafkaError::Canceled),
                        };
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        Box::pin(tokio::time::sleep(QUEUE_FULL_RETRY)).await;
                    }
                    Err((e, _)) => break Err(e),
                }
            }
        };
        match tokio::time::timeout(self.timeout, send).await {
            Ok(Ok(delivery)) => Ok(Stored {
                topic,
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Ok(Err(e)) => {
                if !refused_for_the_record_itself(&e) {
                    self.replace_after(generation, &e);
                }
                Err(self.rejection(&topic, e))
            }
            Err(_) => {
                let e = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
                self.replace_after(generation, &e);
                Err(self.rejection(&topic, e))
            }
        }
    }

    fn rejection(&self, topic: &str, error: KafkaError) -> Rejection {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::MessageSizeTooLarge) => Rejection {
                code: tributary_proto::v1::EventErrorCode::TooLarge,
                field: "payload".into(),
                message: format!("the encoded event is larger than the broker accepts: {error}"),
            },
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                Rejection::unavailable(format!("topic `{topic}` does not exist: {error}"))
            }
            _ => Rejection::unavailable(format!(
                "the broker did not acknowledge the event within {}s; it was not stored and may be retried: {error}",
                self.timeout.as_secs()
            )),
        }
    }

    /// Whether the broker answers a metadata request within `timeout`.
    pub async fn broker_reachable(&self, timeout: Duration) -> bool {
        let (_, producer) = self.current();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout).is_ok())
            .await
            .unwrap_or(false)
    }

    /// Waits until every produced record is acknowledged, up to `timeout`.
    pub async fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        let (_, producer) = self.current();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .map_err(|_| KafkaError::Canceled)?
    }
}

/// Errors about the record itself, after which the producer's sequence is
/// still intact (the record was refused before it got one).
fn refused_for_the_record_itself(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
        )
    )
}

/// `n` in decimal, written into `buf` (a header value without a `String`).
fn decimal(n: i64, buf: &mut [u8; 24]) -> &str {
    use std::io::Write as _;
    let mut rest = &mut buf[..];
    write!(rest, "{n}").expect("an i64 fits 24 bytes");
    let len = 24 - rest.len();
    std::str::from_utf8(&buf[..len]).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_written_as_to_string_writes_them() {
        for n in [0, 7, -1, 1_800_000_000_123, i64::MAX, i64::MIN] {
            assert_eq!(super::decimal(n, &mut [0; 24]), n.to_string());
        }
    }
}
