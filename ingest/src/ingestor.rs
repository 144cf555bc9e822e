//! The path every event takes, whatever the edge it came in by: validate,
//! pick the writer schema, encode, produce, and answer with where it was
//! stored or why it was refused.
use std::{
    collections::HashSet,
    sync::{Arc, LazyLock, RwLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tracing::Instrument as _;
use tributary_common::{config::KafkaArgs, kafka, schemas, telemetry, trace_context};
use tributary_proto::v1 as proto;

use crate::{
    config::IngestConfig,
    encode::{Envelope, EventRecord},
    event::{ExactJson, ValidEvent, Validation},
    metrics,
    publisher::{Outgoing, Publisher},
    rejection::Rejection,
    writer_schema::{WriterCandidates, WriterSchema, WriterSchemas},
};

/// Validates, encodes and produces events.
pub struct Ingestor {
    schemas: WriterSchemas,
    publisher: Publisher,
    kafka: KafkaArgs,
    partitions: i32,
    max_skew: Duration,
    topics_ready: RwLock<HashSet<String>>,
    creating_topic: tokio::sync::Mutex<()>,
}

impl Ingestor {
    /// Builds the producer and the schema cache; connects lazily.
    pub fn new(config: &IngestConfig) -> anyhow::Result<Self> {
        Ok(Self {
            schemas: WriterSchemas::new(
                &config.registry,
                config.kafka.clone(),
                config.schemas.clone(),
            )?,
            publisher: Publisher::new(&config.kafka, config.limits.produce_timeout)?,
            kafka: config.kafka.clone(),
            partitions: config.partitions,
            max_skew: config.limits.event_time.max_event_time_skew,
            topics_ready: RwLock::default(),
            creating_topic: tokio::sync::Mutex::new(()),
        })
    }

    /// Submits one event under the current span (the edge's call span).
    /// `traceparent` is the caller's trace context, if any: the record's
    /// `traceparent` header is the `ingest.produce` span's context when spans
    /// are exported, and otherwise a new span id in the caller's trace.
    pub async fn submit(
        &self,
        event: proto::Event,
        traceparent: Option<&str>,
    ) -> Result<proto::EventAck, Rejection> {
        self.submit_exact(event, ExactJson::default(), traceparent)
            .await
    }

    /// [`Self::submit`] for an event read from JSON: `exact` holds its
    /// `generic` payload and extra fields as the client wrote them, used
    /// instead of their `Struct`s (whose numbers are doubles), so an integer
    /// of a `long` field beyond 2^53 arrives exact.
    pub async fn submit_exact(
        &self,
        event: proto::Event,
        exact: ExactJson,
        traceparent: Option<&str>,
    ) -> Result<proto::EventAck, Rejection> {
        self.submit_each(std::iter::once((event, exact)), traceparent)
            .await
            .pop()
            .expect("one result per event")
    }

    /// Submits `events` (a stream message's) under the current span, in
    /// order: each is validated and encoded, and enqueued before the next
    /// (so events of one key are stored in order), then all are waited for
    /// at once, within one produce timeout. Their results, in order.
    pub async fn submit_all(
        &self,
        events: Vec<proto::Event>,
        traceparent: Option<&str>,
    ) -> Vec<Result<proto::EventAck, Rejection>> {
        self.submit_each(
            events.into_iter().map(|e| (e, ExactJson::default())),
            traceparent,
        )
        .await
    }

    async fn submit_each(
        &self,
        events: impl ExactSizeIterator<Item = (proto::Event, ExactJson)>,
        traceparent: Option<&str>,
    ) -> Vec<Result<proto::EventAck, Rejection>> {
        let count = events.len();
        metrics::RECEIVED.inc_by(count as u64);
        // Each event's schema id once enqueued, or why it was refused.
        let mut enqueued: Vec<Result<u32, Rejection>> = Vec::with_capacity(count);
        // The events' `ingest.produce` spans (only while spans are
        // exported), open until their records are answered.
        let mut spans = Vec::new();
        // Started with the first record, so that a registry lookup before it
        // does not eat into the produce timeout.
        let mut batch = None;
        // The caller's context, read once for all the events.
        let parent = trace_context::from_traceparent(traceparent);
        for (slot, (event, exact)) in events.enumerate() {
            let outcome = match self.prepare(event, exact, &parent).await {
                Ok(prepared) => {
                    let batch = batch.get_or_insert_with(|| self.publisher.batch(count));
                    let schema_id = prepared.schema_id;
                    let span = prepared.span.clone();
                    let done = batch
                        .enqueue(slot, prepared.outgoing())
                        .instrument(span)
                        .await
                        .map(|()| schema_id);
                    if !prepared.span.is_none() {
                        spans.push(prepared.span);
                    }
                    done
                }
                Err(rejection) => Err(rejection),
            };
            enqueued.push(outcome);
        }
        let mut stored = match batch {
            Some(batch) => batch.wait().await,
            None => Vec::new(),
        };
        drop(spans);
        stored.resize_with(count, || None);
        enqueued
            .into_iter()
            .zip(stored)
            .map(|(enqueued, stored)| {
                let result = enqueued.and_then(|schema_id| {
                    let stored = stored.expect("an enqueued record is answered")?;
                    Ok(proto::EventAck {
                        topic: stored.topic,
                        partition: stored.partition,
                        offset: stored.offset,
                        schema_id: i32::try_from(schema_id).unwrap_or(i32::MAX),
                    })
                });
                self.count(&result);
                result
            })
            .collect()
    }

    fn count(&self, result: &Result<proto::EventAck, Rejection>) {
        match result {
            Ok(ack) => {
                let event_type = ack
                    .topic
                    .strip_prefix(&self.kafka.topic_prefix)
                    .unwrap_or(&ack.topic);
                count_acked(event_type);
            }
            Err(rejection) => metrics::REJECTED
                .with_label_values(&[rejection.code.as_str_name()])
                .inc(),
        }
    }

    /// Validates `event`, picks its writer schema and encodes it.
    async fn prepare(
        &self,
        event: proto::Event,
        exact: ExactJson,
        parent: &trace_context::Context,
    ) -> Result<Prepared, Rejection> {
        let accepted_at_ms = now_ms();
        let valid = ValidEvent::parse_exact(
            event,
            exact,
            Validation {
                max_skew: self.max_skew,
                now_ms: accepted_at_ms,
            },
        )?;
        let (
            Envelope {
                event_type,
                key,
                idempotency_key,
                event_time_ms,
            },
            record,
        ) = EventRecord::split(valid);
        let asked = std::time::Instant::now();
        let mut encoded = Vec::with_capacity(256);
        // The registry and topic creation are asked only the first time (and
        // after --schema-refresh) and on a mismatch; their futures are boxed
        // so that the common path's future stays small.
        let schema = {
            let mut record = record;
            let candidates = match self.schemas.fresh(&event_type) {
                Some(candidates) => candidates,
                None => Box::pin(self.schemas.get(&event_type)).await?,
            };
            if !self.topic_ready(&event_type) {
                Box::pin(self.ensure_topic(&event_type)).await?;
            }
            match record.encode(&candidates, &mut encoded) {
                Ok(schema) => schema,
                Err(rejection) if rejection.code == proto::EventErrorCode::SchemaMismatch => {
                    Box::pin(self.encode_after_recheck(
                        &event_type,
                        &mut record,
                        candidates,
                        rejection,
                        asked,
                        &mut encoded,
                    ))
                    .await?
                }
                Err(rejection) => return Err(rejection),
            }
        };
        // A span per event costs the log layer a formatted copy of its
        // fields (a tenth of the stream's CPU in a profile); without export
        // nothing would read it.
        let span = if telemetry::exporting() {
            tracing::info_span!(
                "ingest.produce",
                otel.kind = "producer",
                messaging.system = "kafka",
                messaging.operation.type = "send",
                messaging.destination.name = %self.kafka.event_topic(&event_type),
                event_type = %event_type,
            )
        } else {
            tracing::Span::none()
        };
        let traceparent = trace_context::traceparent_of(&span, parent);
        Ok(Prepared {
            event_type,
            key,
            idempotency_key,
            event_time_ms,
            accepted_at_ms,
            encoded,
            schema_id: schema.id,
            traceparent,
            span,
        })
    }

    /// A version registered since the last listing may fit an event that
    /// fit none of `candidates`: asks the registry before refusing it.
    async fn encode_after_recheck(
        &self,
        event_type: &str,
        record: &mut EventRecord,
        candidates: Arc<WriterCandidates>,
        rejection: Rejection,
        asked: std::time::Instant,
        encoded: &mut Vec<u8>,
    ) -> Result<Arc<WriterSchema>, Rejection> {
        let (candidates, retried) =
            match self.schemas.recheck(event_type, &candidates, asked).await? {
                Some(newer) => {
                    let retried = record.encode(&newer, encoded);
                    (newer, retried)
                }
                None => (candidates, Err(rejection)),
            };
        retried.map_err(|mut rejection| {
            if rejection.code == proto::EventErrorCode::SchemaMismatch {
                rejection.message = format!(
                    "{} {}",
                    rejection.message,
                    self.schemas.provenance(&candidates)
                );
            }
            rejection
        })
    }

    /// Creates the topic of a type the first time it is seen (schema-driven
    /// types get their topic without a redeploy).
    async fn ensure_topic(&self, event_type: &str) -> Result<(), Rejection> {
        let ready = |this: &Self| this.topic_ready(event_type);
        if ready(self) {
            return Ok(());
        }
        // One creation at a time, in arrival order: concurrent first events of
        // a type wait for it instead of racing (and reordering) each other.
        let _creating = self.creating_topic.lock().await;
        if ready(self) {
            return Ok(());
        }
        let topic = self.kafka.event_topic(event_type);
        kafka::ensure_topics(&self.kafka, std::slice::from_ref(&topic), self.partitions)
            .await
            .map_err(|e| Rejection::unavailable(format!("cannot create topic `{topic}`: {e}")))?;
        self.topics_ready
            .write()
            .expect("topics lock")
            .insert(event_type.to_string());
        Ok(())
    }

    /// Whether the topic of `event_type` is known to exist.
    fn topic_ready(&self, event_type: &str) -> bool {
        self.topics_ready
            .read()
            .expect("topics lock")
            .contains(event_type)
    }

    /// The producer, for health checks and the final flush.
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }
}

/// A valid event, encoded, ready to produce.
struct Prepared {
    event_type: std::borrow::Cow<'static, str>,
    key: String,
    idempotency_key: String,
    event_time_ms: i64,
    accepted_at_ms: i64,
    encoded: Vec<u8>,
    schema_id: u32,
    traceparent: String,
    /// The event's `ingest.produce` span (none unless spans are exported).
    span: tracing::Span,
}

impl Prepared {
    fn outgoing(&self) -> Outgoing<'_> {
        Outgoing {
            event_type: &self.event_type,
            key: &self.key,
            payload: &self.encoded,
            schema_id: self.schema_id,
            idempotency_key: &self.idempotency_key,
            traceparent: &self.traceparent,
            event_time_ms: self.event_time_ms,
            accepted_at_ms: self.accepted_at_ms,
        }
    }
}

/// Counts an acknowledged event of `event_type`; the built-in types'
/// counters are looked up once (a labelled lookup hashes the label).
fn count_acked(event_type: &str) {
    static AD_CLICK: LazyLock<prometheus::IntCounter> =
        LazyLock::new(|| metrics::ACKED.with_label_values(&[schemas::AD_CLICK]));
    static PRICE_TICK: LazyLock<prometheus::IntCounter> =
        LazyLock::new(|| metrics::ACKED.with_label_values(&[schemas::PRICE_TICK]));
    match event_type {
        schemas::AD_CLICK => AD_CLICK.inc(),
        schemas::PRICE_TICK => PRICE_TICK.inc(),
        other => metrics::ACKED.with_label_values(&[other]).inc(),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
