//! The processing loop: read a record, decode it, add it to its partition's
//! windows (or dead-letter it), and on every emit tick produce the changed
//! and closed windows' totals, wait for the broker to acknowledge them, and
//! only then commit the source offsets they cover.
//!
//! Tracing: each record is handled in a `processor.event` span, a child of
//! the record's `traceparent` (only while spans are exported). Aggregation is
//! fan-in, so each emitted aggregate gets a new trace: a `processor.aggregate`
//! root span linked to the contexts of the events added since the group's
//! last emission (at most [`trace_context::MAX_LINKS`]), and a `processor.produce` child
//! whose context is the aggregate record's `traceparent` header.
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use futures::StreamExt as _;
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer as _, StreamConsumer},
    message::{BorrowedMessage, Headers as _, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, Span};

use tributary_common::{
    dead_letter::DeadLetters, headers, kafka, rebalance::RevocationLog, retry, telemetry,
    trace_context,
};

use crate::{
    aggregate_record::AggregateEncoder,
    changelog::Changelog,
    closed_store::ClosedStore,
    decode::{DecodeError, Decoded, Decoder, PoisonReason},
    window::{Closing, Contribution, Outcome, PartitionWindows, Update, WindowSpec},
};

/// Everything the loop works with.
pub struct Pipeline {
    /// The source consumer (all event topics, by pattern).
    pub consumer: StreamConsumer<RevocationLog>,
    /// Decodes records into typed events.
    pub decoder: Decoder,
    /// Produces aggregates.
    pub producer: FutureProducer,
    /// Encodes aggregates.
    pub encoder: AggregateEncoder,
    /// Dead-letter topic.
    pub dead_letters: Arc<DeadLetters>,
    /// Event topics are `{prefix}{event_type}`.
    pub topic_prefix: String,
    /// Where aggregates go.
    pub aggregates_topic: String,
    /// Window geometry.
    pub spec: WindowSpec,
    /// How often to emit.
    pub emit_interval: Duration,
    /// Closed windows' state on local disk.
    pub closed_store: ClosedStore,
    /// Closed windows' changelog topics.
    pub changelog: Changelog,
    /// Produces to the changelog (records up to [`crate::changelog::MAX_RECORD_BYTES`]).
    pub changelog_producer: FutureProducer,
}

/// Windows by source partition.
type Windows = HashMap<(String, i32), PartitionWindows>;

/// One aggregate record on its way to the broker.
struct Emit {
    key: String,
    value: Vec<u8>,
    traceparent: String,
    /// `processor.aggregate`, ended when the emission is done.
    _span: Span,
    /// `processor.produce`, the send's span.
    produce: Span,
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn header<'a>(message: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

impl Pipeline {
    /// Runs until `shutdown`, then emits and commits what it has.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut windows = Windows::new();
        let mut tick = tokio::time::interval(self.emit_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stream = self.consumer.stream();
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    self.forget_revoked(&mut windows);
                    self.emit_and_commit(&mut windows).await?;
                }
                message = stream.next() => {
                    self.forget_revoked(&mut windows);
                    match message {
                        Some(Ok(message)) => self.handle(&message, &mut windows, &shutdown).await?,
                        Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
                        None => break,
                    }
                }
            }
        }
        drop(stream);
        self.emit_and_commit(&mut windows).await?;
        Ok(())
    }

    fn forget_revoked(&self, windows: &mut Windows) {
        for partition in self.consumer.context().take() {
            windows.remove(&partition);
            // The next owner restores them from the changelog.
            if let Err(e) = self
                .closed_store
                .partition(&partition.0, partition.1)
                .clear()
            {
                tracing::warn!(error = %e, "cannot forget a revoked partition's closed windows");
            }
        }
    }

    async fn handle(
        &self,
        message: &BorrowedMessage<'_>,
        windows: &mut Windows,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let topic = message.topic();
        let Some(event_type) = topic.strip_prefix(&self.topic_prefix) else {
            return Ok(());
        };
        if !telemetry::exporting() {
            return self
                .handle_event(message, event_type, None, windows, shutdown)
                .await;
        }
        let trace = trace_context::span_context_of(message);
        let span = tracing::info_span!(
            "processor.event",
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.operation.type = "process",
            messaging.destination.name = topic,
            messaging.destination.partition.id = message.partition(),
            messaging.kafka.offset = message.offset(),
        );
        trace_context::set_parent(&span, trace_context::context_of(message));
        self.handle_event(message, event_type, trace, windows, shutdown)
            .instrument(span)
            .await
    }

    /// Decodes one event record and adds it to its window; `trace` is the
    /// record's trace context, kept for the emitting span's links.
    async fn handle_event(
        &self,
        message: &BorrowedMessage<'_>,
        event_type: &str,
        trace: Option<trace_context::SpanContext>,
        windows: &mut Windows,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let topic = message.topic();
        crate::metrics::RECORDS.inc();
        let timestamp = message.timestamp().to_millis();
        // The registry being down is not the record's fault: wait for it
        // rather than dead-lettering good records.
        let decoded = retry::until_stopped(
            "cannot decode the record",
            shutdown,
            |e| matches!(e, DecodeError::Unavailable(_)),
            || {
                self.decoder
                    .decode(event_type, message.payload(), timestamp)
            },
        )
        .await;
        let Some(decoded) = decoded else {
            return Ok(()); // stopping: the record is not handled, nor committed
        };
        let now = wall_ms();
        let partition = match windows.entry((topic.to_string(), message.partition())) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let store = self.closed_store.partition(topic, message.partition());
                let restored = self
                    .changelog
                    .restore(topic, event_type, message.partition(), &store, shutdown)
                    .await
                    .with_context(|| {
                        format!(
                            "cannot restore the closed windows of {topic}/{}",
                            message.partition()
                        )
                    })?;
                if restored.is_none() {
                    // Stopping: the record is not handled, nor committed.
                    return Ok(());
                }
                entry.insert(PartitionWindows::new(self.spec, Box::new(store)))
            }
        };
        let (group_key, event_time_ms, contribution) = match decoded {
            Ok(Decoded::AdClick(click)) => (
                click.advertiser_id,
                click.event_time_ms,
                Contribution::Click {
                    ip_address: click.ip_address,
                },
            ),
            Ok(Decoded::PriceTick(tick)) => (
                format!("{}/{}", tick.pair, tick.source),
                tick.event_time_ms,
                Contribution::Price { price: tick.price },
            ),
            Ok(Decoded::Generic(generic)) => {
                let key = message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .unwrap_or_default();
                (key, generic.event_time_ms, Contribution::Count)
            }
            Err(DecodeError::Poison(poison)) => {
                partition.record_seen(message.offset(), now);
                self.dead_letters
                    .send(message, poison.reason.as_str(), &poison.detail)
                    .await?;
                return Ok(());
            }
            Err(DecodeError::Unavailable(_)) => unreachable!("retried above"),
        };
        let idempotency_key = header(message, headers::IDEMPOTENCY_KEY).unwrap_or_default();
        // When ingest accepted it; another producer's record timestamp, or
        // now, for records without the header.
        let record_time_ms = header(message, headers::ACCEPTED_AT)
            .and_then(|t| t.parse().ok())
            .or(timestamp)
            .unwrap_or(now);
        let outcome = partition.add(
            message.offset(),
            &group_key,
            event_time_ms,
            record_time_ms,
            idempotency_key,
            &contribution,
            now,
        )?;
        match outcome {
            Outcome::Added | Outcome::Corrected => {
                if outcome == Outcome::Corrected {
                    crate::metrics::CORRECTIONS.inc();
                }
                if let Some(trace) = trace {
                    partition.link(&group_key, event_time_ms, trace);
                }
            }
            Outcome::Duplicate => {
                tracing::debug!(idempotency_key, "retried event counted once");
            }
            Outcome::Replayed => {
                tracing::debug!(
                    offset = message.offset(),
                    "record re-read after a restart is in its closed window already"
                );
            }
            Outcome::Expired { horizon_ms } => {
                let readable = |ms: i64| {
                    chrono::DateTime::from_timestamp_millis(ms)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                        .unwrap_or_else(|| format!("{ms} ms"))
                };
                let detail = format!(
                    "event time {} is before {}: more than --max-event-time-skew ({}) before it was accepted at {} (ingest refuses such events), or in a window whose state is no longer kept",
                    readable(event_time_ms),
                    readable(horizon_ms),
                    humantime::format_duration(Duration::from_millis(
                        self.spec.retention_ms.max(0) as u64
                    )),
                    readable(record_time_ms),
                );
                self.dead_letters
                    .send(message, PoisonReason::Expired.as_str(), &detail)
                    .await?;
            }
        }
        Ok(())
    }

    /// The `processor.aggregate` span of one update (a new trace, linked to
    /// the events it adds) and its `processor.produce` child.
    fn emit_spans(
        &self,
        event_type: &str,
        update: &Update,
        links: &[trace_context::SpanContext],
    ) -> (Span, Span) {
        let span = tracing::info_span!(
            parent: None,
            "processor.aggregate",
            event_type,
            group_key = %update.group_key,
            window_start_ms = update.window_start_ms,
            is_final = update.is_final,
            events = update.totals.count(),
            links = links.len(),
        );
        trace_context::add_links(&span, links);
        let produce = tracing::info_span!(
            parent: &span,
            "processor.produce",
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.operation.type = "send",
            messaging.destination.name = %self.aggregates_topic,
        );
        (span, produce)
    }

    /// Produces every pending update and the changelog records of every
    /// closed (or corrected) group and, once all are acknowledged, marks them
    /// emitted (closed groups move to the closed-window store) and commits
    /// the offsets they cover. On failure (an update that cannot be encoded,
    /// or a record the broker did not acknowledge) nothing is marked or
    /// committed, so no event is dropped; the next tick tries again. Fails
    /// only when the closed-window store does.
    async fn emit_and_commit(&self, windows: &mut Windows) -> anyhow::Result<()> {
        let now = wall_ms();
        for ((topic, partition_id), partition) in windows.iter_mut() {
            // Unknown (no fetch yet): as before, idleness alone decides.
            let caught_up =
                kafka::cached_high_watermark(self.consumer.client(), topic, *partition_id)
                    .is_none_or(|high| partition.next_offset() >= high);
            partition.advance_if_idle(now, caught_up);
        }
        let mut sends = Vec::new();
        let mut unencoded = 0;
        let mut closings: HashMap<(String, i32), Vec<Closing>> = HashMap::new();
        let mut changes = Vec::new();
        for ((topic, partition_id), partition) in windows.iter() {
            let event_type = topic.strip_prefix(&self.topic_prefix).unwrap_or(topic);
            for update in partition.pending() {
                let key = AggregateEncoder::key(event_type, &update);
                let (span, produce) =
                    self.emit_spans(event_type, &update, partition.links(&update));
                match span.in_scope(|| self.encoder.encode(event_type, &update, now)) {
                    Ok(value) => {
                        let traceparent =
                            trace_context::traceparent_of(&produce, &trace_context::Context::new());
                        sends.push(Emit {
                            key,
                            value,
                            traceparent,
                            _span: span,
                            produce,
                        });
                    }
                    Err(e) => {
                        unencoded += 1;
                        tracing::error!(error = %e, key, "cannot encode aggregate");
                    }
                }
            }
            let closing = partition.closing();
            let changelog = self.changelog.topic(event_type);
            for state in &closing {
                match Changelog::record(state) {
                    Ok((key, value)) => {
                        changes.push((changelog.clone(), *partition_id, key, value))
                    }
                    Err(e) => {
                        unencoded += 1;
                        tracing::error!(error = %e, "cannot encode a closed window's state");
                    }
                }
            }
            closings.insert((topic.clone(), *partition_id), closing);
        }
        if unencoded > 0 {
            // Committing now would move past the events those updates cover.
            tracing::error!(
                unencoded,
                "aggregates could not be encoded; offsets not committed, retrying next tick"
            );
            return Ok(());
        }
        let deliveries = futures::future::join_all(sends.iter().map(|emit| {
            self.producer
                .send(
                    FutureRecord::to(&self.aggregates_topic)
                        .key(emit.key.as_str())
                        .payload(emit.value.as_slice())
                        .headers(trace_context::with_header(
                            OwnedHeaders::new_with_capacity(1),
                            &emit.traceparent,
                        )),
                    Duration::from_secs(30),
                )
                .instrument(emit.produce.clone())
        }))
        .await;
        if let Some(Err((e, _))) = deliveries.iter().find(|d| d.is_err()) {
            tracing::error!(error = %e, "aggregates not acknowledged; offsets not committed, retrying next tick");
            return Ok(());
        }
        // Only once the aggregates are stored: a kept state makes a restarted
        // processor skip the records it covers, so it must never get ahead
        // of the aggregates those records are counted in.
        let kept =
            futures::future::join_all(changes.iter().map(|(topic, partition, key, value)| {
                self.changelog_producer.send(
                    FutureRecord::to(topic)
                        .partition(*partition)
                        .key(key.as_slice())
                        .payload(value.as_slice()),
                    Duration::from_secs(30),
                )
            }))
            .await;
        if let Some(Err((e, _))) = kept.iter().find(|d| d.is_err()) {
            tracing::error!(error = %e, "closed windows not acknowledged by the changelog; offsets not committed, retrying next tick");
            return Ok(());
        }
        let mut offsets = TopicPartitionList::new();
        let (mut open, mut bytes) = (0, 0);
        for ((topic, partition_id), partition) in windows.iter_mut() {
            let closing = closings
                .remove(&(topic.clone(), *partition_id))
                .unwrap_or_default();
            partition
                .emitted(&closing)
                .context("cannot keep closed windows in the local store")?;
            open += partition.open_windows();
            bytes += partition.approx_bytes();
            if let Err(e) = offsets.add_partition_offset(
                topic,
                *partition_id,
                Offset::Offset(partition.commit_offset()),
            ) {
                tracing::error!(error = %e, "cannot build the offset list");
                return Ok(());
            }
        }
        crate::metrics::EMITTED.inc_by(sends.len() as u64);
        crate::metrics::OPEN_WINDOWS.set(open as i64);
        crate::metrics::STATE_BYTES.set(bytes as i64);
        if offsets.count() > 0
            && let Err(e) = self.consumer.commit(&offsets, CommitMode::Async)
        {
            tracing::warn!(error = %e, "offset commit failed; it is retried next tick");
        }
        if !sends.is_empty() {
            tracing::debug!(
                aggregates = sends.len(),
                open_windows = open,
                state_bytes = bytes,
                dead_letters = self.dead_letters.count(),
                "emitted"
            );
        }
        Ok(())
    }
}
