//! The sink loop: gather a batch of aggregate records and decode them,
//! write rows and offsets in one transaction (retrying with backoff while
//! Postgres is unreachable); the next batch is gathered and decoded while one
//! is written, and batches are written one at a time, in order. Offsets live
//! in Postgres; records below a partition's stored offset are skipped, so a
//! restart or a rebalance neither loses nor duplicates.
//!
//! Tracing: each batch's transaction runs in a `sink.write` span. A batch
//! holds many aggregate records, each the end of its own trace, so the span
//! is the child of the first record's `traceparent` (a one-record batch sits
//! exactly at the end of its aggregate's trace) and links to the others'.
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use futures::StreamExt as _;
use opentelemetry::trace::SpanContext;
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer as _, StreamConsumer},
    message::{BorrowedMessage, OwnedMessage},
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tributary_common::{
    avro_reader::{ReadError, ReaderCache},
    dead_letter::DeadLetters,
    rebalance::RevocationLog,
    retry, telemetry, trace_context, wire,
};

use crate::{
    aggregate::{AggregateRow, READER},
    plan::AggregatePlan,
    store::{Position, Store},
};

/// Everything the loop works with.
pub struct Pipeline {
    /// The aggregates consumer.
    pub consumer: StreamConsumer<RevocationLog>,
    /// Reads aggregate records by writer schema id.
    pub readers: ReaderCache,
    /// By writer schema id: its typed plan, or `None` when the writer has
    /// none; absent until the general path has read a record of it.
    pub plans: RwLock<HashMap<u32, Option<AggregatePlan>>>,
    /// The tables.
    pub store: Store,
    /// Where records that can never be written go.
    pub dead_letters: Arc<DeadLetters>,
    /// Most records per transaction.
    pub batch_size: usize,
    /// How long a batch waits after its first record.
    pub batch_linger: Duration,
}

/// A source partition: its topic (shared by the records of a batch) and
/// number.
type Partition = (Arc<str>, i32);

/// A record read and decoded.
struct Record {
    partition: Partition,
    offset: i64,
    decoded: Decoded,
}

/// What a record decoded to.
enum Decoded {
    /// A row, with the record's trace when spans are exported.
    Row(AggregateRow, Option<SpanContext>),
    /// A record that can never be written: it goes to the dead-letter topic
    /// (unless its partition's stored offset is past it), with why.
    Refused(OwnedMessage, &'static str, String),
}

/// What a typed plan made of a record.
enum Planned {
    /// The row, or why it is invalid.
    Read(Result<AggregateRow, String>),
    /// The general path reads it (no plan, or not one the plan reads whole).
    General,
    /// The writer has not been planned yet: the general path reads it, then
    /// the plan is made.
    Unplanned(u32),
}

/// A batch of decoded records for the writer, with the partitions revoked
/// since the previous batch (their stored offsets must be read again).
struct Gathered {
    records: Vec<Record>,
    revoked: Vec<(String, i32)>,
}

impl Pipeline {
    /// Runs until `shutdown`; the batches in hand are written first. One
    /// batch is written while the next is gathered and decoded (a writer
    /// task, one batch queued), so Postgres and the sink's own work happen
    /// at once (tributary-bench: 53-55k → 59-61k rows/s when only gathering
    /// overlapped).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let this = Arc::new(self);
        let (batches, mut to_write) = tokio::sync::mpsc::channel::<Gathered>(1);
        let writer = {
            let this = this.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                // Next offset per partition, as stored in Postgres; loaded on
                // a partition's first record and forgotten when it is revoked.
                let mut next: HashMap<Partition, i64> = HashMap::new();
                while let Some(Gathered { records, revoked }) = to_write.recv().await {
                    for (topic, partition) in revoked {
                        next.remove(&(Arc::from(topic), partition));
                    }
                    if !this.write_batch(records, &mut next, &shutdown).await? {
                        break;
                    }
                }
                anyhow::Ok(())
            })
        };
        this.gather(&shutdown, &batches).await;
        drop(batches);
        writer.await?
    }

    /// Reads batches of up to `batch_size` records (waiting at most
    /// `batch_linger` after the first), decodes them and hands them to the
    /// writer, until shutdown, the end of the stream, or the writer stopping.
    async fn gather(&self, shutdown: &CancellationToken, batches: &mpsc::Sender<Gathered>) {
        let mut stream = self.consumer.stream();
        let mut topic: Arc<str> = Arc::from("");
        'batches: while !shutdown.is_cancelled() {
            let mut batch: Vec<Record> = Vec::with_capacity(self.batch_size);
            let mut traces = 0;
            let first = tokio::select! {
                () = shutdown.cancelled() => break,
                message = stream.next() => message,
            };
            let first = match first {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error");
                    continue;
                }
                None => break,
            };
            let linger = tokio::time::sleep(self.batch_linger);
            tokio::pin!(linger);
            let mut message = Some(first);
            loop {
                if let Some(m) = message.take() {
                    let Some(record) = self.record(&m, &mut topic, &mut traces, shutdown).await
                    else {
                        break 'batches; // shutdown while the registry was away
                    };
                    batch.push(record);
                }
                if batch.len() >= self.batch_size {
                    break;
                }
                tokio::select! {
                    () = &mut linger => break,
                    next = stream.next() => match next {
                        Some(Ok(m)) => message = Some(m),
                        Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
                        None => break,
                    },
                }
            }
            let gathered = Gathered {
                records: batch,
                revoked: self.consumer.context().take(),
            };
            if batches.send(gathered).await.is_err() {
                break; // the writer stopped
            }
        }
    }

    /// Decodes `message` into a [`Record`]; `None` when shutdown came while
    /// waiting for the registry. `topic` is the previous record's topic, kept
    /// so that records share one copy of its name; `traces` counts the batch's
    /// records that carry their trace.
    async fn record(
        &self,
        message: &BorrowedMessage<'_>,
        topic: &mut Arc<str>,
        traces: &mut usize,
        shutdown: &CancellationToken,
    ) -> Option<Record> {
        if **topic != *message.topic() {
            *topic = Arc::from(message.topic());
        }
        let decoded = match self.decode(message, shutdown).await? {
            Ok(row) => {
                let trace = if *traces <= trace_context::MAX_LINKS && telemetry::exporting() {
                    trace_context::span_context_of(message)
                } else {
                    None
                };
                *traces += usize::from(trace.is_some());
                Decoded::Row(row, trace)
            }
            Err((reason, detail)) => Decoded::Refused(message.detach(), reason, detail),
        };
        Some(Record {
            partition: (topic.clone(), message.partition()),
            offset: message.offset(),
            decoded,
        })
    }

    /// Writes one batch; `false` when shutdown interrupted the retries (the
    /// batch was not written and will be read again).
    async fn write_batch(
        &self,
        batch: Vec<Record>,
        next: &mut HashMap<Partition, i64>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<bool> {
        let mut rows = Vec::with_capacity(batch.len());
        let mut traces = Vec::new();
        // The batch's partitions and the offset after each one's last record
        // (a batch holds a handful of partitions).
        let mut positions: Vec<(Partition, i64)> = Vec::new();
        for record in batch {
            let stored = match next.get(&record.partition) {
                Some(offset) => *offset,
                None => {
                    let (topic, partition) = &record.partition;
                    let offset = self
                        .with_retry(shutdown, || self.store.next_offset(topic, *partition))
                        .await;
                    let Some(offset) = offset else {
                        return Ok(false);
                    };
                    let offset = offset.unwrap_or(0);
                    next.insert(record.partition.clone(), offset);
                    offset
                }
            };
            let position = match positions.iter_mut().find(|(p, _)| *p == record.partition) {
                Some((_, position)) => position,
                None => {
                    positions.push((record.partition, 0));
                    &mut positions.last_mut().expect("just pushed").1
                }
            };
            if record.offset < stored || record.offset < *position {
                continue; // already in the table
            }
            *position = record.offset + 1;
            match record.decoded {
                Decoded::Row(row, trace) => {
                    rows.push(row);
                    if let Some(trace) = trace
                        && traces.len() <= trace_context::MAX_LINKS
                    {
                        traces.push(trace);
                    }
                }
                Decoded::Refused(message, reason, detail) => {
                    self.dead_letters.send(&message, reason, &detail).await?
                }
            }
        }
        let positions: Vec<Position> = positions
            .into_iter()
            .filter(|(_, next_offset)| *next_offset > 0)
            .map(|((topic, partition), next_offset)| Position {
                topic: topic.to_string(),
                partition,
                next_offset,
            })
            .collect();
        if positions.is_empty() {
            return Ok(true);
        }
        let span = tracing::info_span!(
            "sink.write",
            otel.kind = "client",
            db.system.name = "postgresql",
            db.operation.name = "upsert",
            db.collection.name = "aggregates",
            rows = rows.len(),
            partitions = positions.len(),
        );
        trace_context::continue_first(&span, &traces);
        let timer = crate::metrics::BATCH_SECONDS.start_timer();
        if self
            .with_retry(shutdown, || self.store.write(&rows, &positions))
            .instrument(span)
            .await
            .is_none()
        {
            return Ok(false);
        }
        timer.observe_duration();
        crate::metrics::BATCH_ROWS.observe(rows.len() as f64);
        crate::metrics::ROWS.inc_by(rows.len() as u64);
        crate::metrics::committed_rows(&rows);
        let mut hint = TopicPartitionList::new();
        for p in &positions {
            next.insert((Arc::from(p.topic.as_str()), p.partition), p.next_offset);
            hint.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.next_offset))?;
        }
        // Kafka's committed offsets are only a hint for where to start
        // fetching; Postgres decides what is skipped.
        if let Err(e) = self.consumer.commit(&hint, CommitMode::Async) {
            tracing::debug!(error = %e, "offset hint not committed");
        }
        tracing::debug!(
            rows = rows.len(),
            partitions = positions.len(),
            "batch written"
        );
        Ok(true)
    }

    /// Decodes one record: a row, or why it can never be written (it goes to
    /// the dead-letter topic). Read by its writer's typed plan where there is
    /// one and it reads the record whole; otherwise by the general path,
    /// which waits while the registry is unreachable; `None` when shutdown
    /// interrupted that wait.
    async fn decode<M: Message>(
        &self,
        message: &M,
        shutdown: &CancellationToken,
    ) -> Option<Result<AggregateRow, (&'static str, String)>> {
        let Some(payload) = message.payload() else {
            return Some(Err(("not_framed", "the record has no value".into())));
        };
        let unplanned = match self.read_planned(payload) {
            Planned::Read(read) => return Some(read.map_err(|detail| ("invalid", detail))),
            Planned::General => None,
            Planned::Unplanned(id) => Some(id),
        };
        let read = retry::until_stopped(
            "schema registry unavailable: cannot read the aggregate record",
            shutdown,
            |e| matches!(e, ReadError::Unavailable(_)),
            || self.readers.read(payload, Some(*READER)),
        )
        .await?;
        let value = match read {
            Ok(value) => value,
            Err(e @ ReadError::Unavailable(_)) => unreachable!("retried until stopped: {e}"),
            Err(e @ ReadError::NotFramed(_)) => return Some(Err(("not_framed", e.to_string()))),
            Err(e @ ReadError::UnknownSchema(_)) => {
                return Some(Err(("unknown_schema", e.to_string())));
            }
            Err(e @ ReadError::Undecodable(_)) => return Some(Err(("undecodable", e.to_string()))),
        };
        if let Some(id) = unplanned {
            self.plan(id).await;
        }
        Some(AggregateRow::from_value(value).map_err(|detail| ("invalid", detail)))
    }

    /// Reads `payload` with its writer's typed plan, if it has one.
    fn read_planned(&self, payload: &[u8]) -> Planned {
        let Ok((id, body)) = wire::unframe(payload) else {
            return Planned::General;
        };
        match self.plans.read().expect("plan cache lock").get(&id) {
            Some(Some(plan)) => plan.read(body).map_or(Planned::General, Planned::Read),
            Some(None) => Planned::General,
            None => Planned::Unplanned(id),
        }
    }

    /// Makes the typed plan of writer `id`, whose schema the reader cache
    /// has (the general path has just read a record of it).
    async fn plan(&self, id: u32) {
        let plan = match self.readers.writer(id).await {
            Ok(writer) => AggregatePlan::new(writer, *READER),
            Err(e) => {
                tracing::info!(id, error = %e, "no typed reading for this writer schema");
                None
            }
        };
        tracing::debug!(id, typed = plan.is_some(), "writer schema planned");
        self.plans
            .write()
            .expect("plan cache lock")
            .insert(id, plan);
    }

    /// Runs `attempt` until it succeeds, backing off while Postgres fails;
    /// `None` when shutdown came first. Every failure is retried: the batch
    /// is valid, so whatever refuses it (Postgres down, a lock timeout, a
    /// full disk) is the database's condition, not the record's.
    async fn with_retry<T, Fut>(
        &self,
        shutdown: &CancellationToken,
        attempt: impl FnMut() -> Fut,
    ) -> Option<T>
    where
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        retry::until_stopped(
            "Postgres write failed; offsets not advanced",
            shutdown,
            |_| true,
            attempt,
        )
        .await
        .map(|done| done.unwrap_or_else(|e| unreachable!("every failure is retried: {e}")))
    }
}
