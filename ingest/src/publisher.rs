//! Producing encoded events to their topic, keyed, with the headers the
//! processor and operators rely on; a record counts as stored only once the
//! broker has acknowledged it (acks=all, idempotent), and every wait for that
//! ends within the produce timeout.
//!
//! Records are produced in batches ([`Batch`]): those of one stream message
//! (or a single event) are enqueued in order and their delivery reports are
//! written into the batch's slots by the producer's polling thread, which
//! wakes the batch's task once, when the last one is in, rather than once
//! per record.
use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::task::AtomicWaker;
use rdkafka::{
    ClientConfig, ClientContext, Message as _,
    error::{KafkaError, RDKafkaErrorCode},
    message::{DeliveryResult, Header, OwnedHeaders},
    producer::{BaseRecord, Producer as _, ProducerContext, PurgeConfig, ThreadedProducer},
};
use tokio::time::Instant;
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

/// What the broker answered for one record: its partition and offset.
type Report = Result<(i32, i64), KafkaError>;

/// The delivery reports of one batch's records, by slot.
struct Reports {
    slots: Box<[OnceLock<Report>]>,
    /// Records enqueued whose report has not come in yet.
    waiting: AtomicUsize,
    /// The batch's task, woken when `waiting` drops to zero.
    waker: AtomicWaker,
    /// When the batch was started, for the produce-time histogram.
    started: std::time::Instant,
}

impl Reports {
    fn report(&self, slot: usize, report: Report) {
        crate::metrics::PRODUCE_SECONDS.observe(self.started.elapsed().as_secs_f64());
        // A slot is enqueued once, so reported once.
        let _ = self.slots[slot].set(report);
        if self.waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.waker.wake();
        }
    }
}

/// A record's place in its batch: the producer's delivery opaque.
struct Slot {
    reports: Arc<Reports>,
    index: usize,
}

/// The producer's context: writes each delivery report into its record's
/// batch slot.
struct SlotReports;

impl ClientContext for SlotReports {}

impl ProducerContext for SlotReports {
    type DeliveryOpaque = Box<Slot>;

    fn delivery(&self, result: &DeliveryResult<'_>, slot: Box<Slot>) {
        let report = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _)) => Err(error.clone()),
        };
        slot.reports.report(slot.index, report);
    }
}

type Producer = ThreadedProducer<SlotReports>;

/// The shared producer.
pub struct Publisher {
    /// The current producer and its generation; replaced when the broker
    /// has lost the producer's idempotence state.
    producer: RwLock<(u64, Arc<Producer>)>,
    config: ClientConfig,
    kafka: KafkaArgs,
    timeout: Duration,
}

/// Records produced together (a stream message's events, or one event):
/// enqueued in order with [`Batch::enqueue`], then waited for with
/// [`Batch::wait`], all within one produce timeout from [`Publisher::batch`].
pub struct Batch<'p> {
    publisher: &'p Publisher,
    generation: u64,
    producer: Arc<Producer>,
    reports: Arc<Reports>,
    /// Each enqueued slot's topic; empty for slots not enqueued.
    topics: Vec<String>,
    deadline: Instant,
}

impl Publisher {
    /// A producer with the shared settings, whose deliveries fail after `timeout`.
    pub fn new(kafka: &KafkaArgs, timeout: Duration) -> Result<Self, KafkaError> {
        let mut config = kafka::producer_config(kafka);
        config.set("message.timeout.ms", timeout.as_millis().to_string());
        Ok(Self {
            producer: RwLock::new((0, Arc::new(create(&config)?))),
            config,
            kafka: kafka.clone(),
            timeout,
        })
    }

    fn current(&self) -> (u64, Arc<Producer>) {
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
        match create(&self.config) {
            Ok(fresh) => {
                tracing::warn!(%error, generation, "delivery failed; retiring the producer and starting a new one");
                let retired = std::mem::replace(&mut *producer, (generation + 1, Arc::new(fresh)));
                retired.1.purge(PurgeConfig::default().queue().inflight());
            }
            Err(e) => tracing::error!(error = %e, "cannot create a new producer"),
        }
    }

    /// A batch of at most `records` records, on the current producer; its
    /// records are answered within the produce timeout from now.
    pub fn batch(&self, records: usize) -> Batch<'_> {
        let (generation, producer) = self.current();
        Batch {
            publisher: self,
            generation,
            producer,
            reports: Arc::new(Reports {
                slots: (0..records).map(|_| OnceLock::new()).collect(),
                waiting: AtomicUsize::new(0),
                waker: AtomicWaker::new(),
                started: std::time::Instant::now(),
            }),
            topics: vec![String::new(); records],
            deadline: Instant::now() + self.timeout,
        }
    }

    /// The rejection of a record that was not stored; unless the record
    /// itself was refused, the producer of `generation` is replaced.
    fn failed(&self, generation: u64, topic: &str, error: KafkaError) -> Rejection {
        if !refused_for_the_record_itself(&error) {
            self.replace_after(generation, &error);
        }
        self.rejection(topic, error)
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

impl Batch<'_> {
    /// Enqueues `out` as the record of `slot` (each slot once, in the order
    /// the records are to be stored). While librdkafka's queue is full, offers
    /// it again every 100 ms (as `FutureProducer::send` does) until the
    /// batch's deadline. Refused: the slot is not enqueued and the rejection
    /// answers its event.
    pub async fn enqueue(&mut self, slot: usize, out: Outgoing<'_>) -> Result<(), Rejection> {
        // `KafkaArgs::event_topic` without formatting.
        let topic = [self.publisher.kafka.topic_prefix.as_str(), out.event_type].concat();
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
        let mut record = BaseRecord::with_opaque_to(
            &topic,
            Box::new(Slot {
                reports: self.reports.clone(),
                index: slot,
            }),
        )
        .key(out.key)
        .payload(out.payload)
        .timestamp(out.event_time_ms)
        .headers(headers);
        // Counted before it is enqueued: its report may come in at once.
        self.reports.waiting.fetch_add(1, Ordering::AcqRel);
        let refused = loop {
            // librdkafka copies the record.
            match self.producer.send(record) {
                Ok(()) => break None,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() + QUEUE_FULL_RETRY <= self.deadline =>
                {
                    record = back;
                    Box::pin(tokio::time::sleep(QUEUE_FULL_RETRY)).await;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    break Some(KafkaError::MessageProduction(
                        RDKafkaErrorCode::MessageTimedOut,
                    ));
                }
                Err((e, _)) => break Some(e),
            }
        };
        match refused {
            None => {
                self.topics[slot] = topic;
                Ok(())
            }
            Some(e) => {
                self.reports.waiting.fetch_sub(1, Ordering::AcqRel);
                Err(self.publisher.failed(self.generation, &topic, e))
            }
        }
    }

    /// Waits until the broker has answered every enqueued record, or the
    /// batch's deadline has passed: where each enqueued slot's record was
    /// stored, or why not (`None` for slots not enqueued). A record still
    /// delivered after the deadline was never acknowledged, so a retry with
    /// the same idempotency key is counted once downstream; librdkafka's own
    /// timeouts can overrun the bound while it reconnects, the answer does
    /// not.
    pub async fn wait(self) -> Vec<Option<Result<Stored, Rejection>>> {
        let timed_out = tokio::time::timeout_at(self.deadline, AllReported(&self.reports))
            .await
            .is_err();
        let publisher = self.publisher;
        let generation = self.generation;
        let reports = &self.reports;
        self.topics
            .into_iter()
            .enumerate()
            .map(|(slot, topic)| {
                if topic.is_empty() {
                    return None;
                }
                let report = match reports.slots[slot].get() {
                    Some(report) => report.clone(),
                    None => {
                        debug_assert!(timed_out, "every enqueued record is reported");
                        crate::metrics::PRODUCE_SECONDS
                            .observe(reports.started.elapsed().as_secs_f64());
                        Err(KafkaError::MessageProduction(
                            RDKafkaErrorCode::MessageTimedOut,
                        ))
                    }
                };
                Some(match report {
                    Ok((partition, offset)) => Ok(Stored {
                        topic,
                        partition,
                        offset,
                    }),
                    Err(e) => Err(publisher.failed(generation, &topic, e)),
                })
            })
            .collect()
    }
}

/// Resolves once every enqueued record of a batch has its report.
struct AllReported<'a>(&'a Reports);

impl Future for AllReported<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.waiting.load(Ordering::Acquire) == 0 {
            return Poll::Ready(());
        }
        self.0.waker.register(cx.waker());
        if self.0.waiting.load(Ordering::Acquire) == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

fn create(config: &ClientConfig) -> Result<Producer, KafkaError> {
    config.create_with_context(SlotReports)
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
    use std::{
        future::Future as _,
        pin::pin,
        sync::{
            Arc, OnceLock,
            atomic::{AtomicUsize, Ordering},
        },
        task::{Context, Poll, Wake, Waker},
    };

    use futures::task::AtomicWaker;

    use super::{AllReported, Reports};

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn reports(slots: usize, enqueued: usize) -> Reports {
        Reports {
            slots: (0..slots).map(|_| OnceLock::new()).collect(),
            waiting: AtomicUsize::new(enqueued),
            waker: AtomicWaker::new(),
            started: std::time::Instant::now(),
        }
    }

    #[test]
    fn a_batch_is_woken_once_when_its_last_record_is_reported() {
        let reports = reports(3, 3);
        let woken = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let mut all = pin!(AllReported(&reports));
        assert_eq!(all.as_mut().poll(&mut cx), Poll::Pending);
        reports.report(2, Ok((1, 7)));
        reports.report(0, Ok((0, 3)));
        assert_eq!(woken.0.load(Ordering::SeqCst), 0);
        assert_eq!(all.as_mut().poll(&mut cx), Poll::Pending);
        reports.report(1, Err(rdkafka::error::KafkaError::Canceled));
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert_eq!(all.as_mut().poll(&mut cx), Poll::Ready(()));
        assert_eq!(reports.slots[0].get(), Some(&Ok((0, 3))));
        assert_eq!(reports.slots[2].get(), Some(&Ok((1, 7))));
        assert!(reports.slots[1].get().is_some_and(Result::is_err));
    }

    #[test]
    fn a_batch_whose_records_were_all_reported_before_it_waits_is_ready_at_once() {
        let reports = reports(2, 1);
        reports.report(1, Ok((2, 9)));
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(pin!(AllReported(&reports)).poll(&mut cx), Poll::Ready(()));
        assert!(reports.slots[0].get().is_none());
    }

    #[test]
    fn numbers_are_written_as_to_string_writes_them() {
        for n in [0, 7, -1, 1_800_000_000_123, i64::MAX, i64::MIN] {
            assert_eq!(super::decimal(n, &mut [0; 24]), n.to_string());
        }
    }
}
