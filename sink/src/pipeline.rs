//! The sink loop: gather a batch of aggregate records and decode them,
//! write rows and offsets in one transaction (retrying with backoff while
//! Postgres is unreachable); the next batch is gathered, decoded and encoded
//! for the upsert while one is written, and batches are written one at a
//! time, in order. Offsets live in Postgres; records below a partition's
//! stored offset are skipped, so a restart or a rebalance neither loses nor
//! duplicates.
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

use futures::{FutureExt as _, StreamExt as _};
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
    store::{EncodedRows, Position, Store},
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

/// A record that can never be written: it goes to the dead-letter topic
/// (unless its partition's stored offset is past it), with why.
type Refused = (OwnedMessage, &'static str, String);

/// A record of a batch, in the order read.
struct Entry {
    /// Its partition: an index into [`Gathered::partitions`].
    partition: usize,
    offset: i64,
    /// It decoded to a row (the next of [`Gathered::rows`]), or it was
    /// refused (the next of [`Gathered::refused`]).
    row: bool,
}

/// One partition's records in a batch.
struct Run {
    partition: Partition,
    /// The offset of its first record.
    first: i64,
    /// The offset after its highest record.
    next: i64,
    /// Each record's offset is above the one before (the usual case; not
    /// when a rebalance handed the partition back and it was read again).
    increasing: bool,
}

/// What a batch writes: its rows (with the traces the write's span
/// continues and links to), the dead letters it sends first, and the offset
/// after each partition's last record written (0: none was).
struct Selected {
    rows: Vec<AggregateRow>,
    /// `rows` encoded, when they are the rows as gathered and the gathering
    /// encoded them.
    encoded: Option<EncodedRows>,
    traces: Vec<SpanContext>,
    dead: Vec<Refused>,
    positions: Vec<(Partition, i64)>,
}

impl Gathered {
    /// The records of this batch that are not in the table yet, given the
    /// stored next offset of each of its partitions (in the order of
    /// `partitions`): those below it, and those at or below one already
    /// taken from their partition in this batch (a partition read again
    /// after a rebalance), are skipped.
    fn select(self, stored: &[i64]) -> Selected {
        let whole = self
            .partitions
            .iter()
            .zip(stored)
            .all(|(run, stored)| run.increasing && run.first >= *stored);
        if whole {
            // Nothing to skip (the usual case): every record is written,
            // and the rows are taken as gathered.
            return Selected {
                rows: self.rows,
                encoded: self.encoded,
                traces: self.traces.into_iter().map(|(_, trace)| trace).collect(),
                dead: self.refused,
                positions: self
                    .partitions
                    .into_iter()
                    .map(|run| (run.partition, run.next))
                    .collect(),
            };
        }
        let mut gathered = self.rows.into_iter().enumerate();
        let mut refused = self.refused.into_iter();
        let mut gathered_traces = self.traces.into_iter().peekable();
        let mut selected = Selected {
            rows: Vec::with_capacity(self.entries.len()),
            encoded: None,
            traces: Vec::new(),
            dead: Vec::new(),
            positions: self
                .partitions
                .into_iter()
                .map(|run| (run.partition, 0))
                .collect(),
        };
        for entry in self.entries {
            let decoded = if entry.row {
                Ok(gathered.next().expect("a row per row entry"))
            } else {
                Err(refused.next().expect("a refused record per refused entry"))
            };
            let position = &mut selected.positions[entry.partition].1;
            if entry.offset < stored[entry.partition] || entry.offset < *position {
                continue; // already in the table
            }
            *position = entry.offset + 1;
            match decoded {
                Ok((index, row)) => {
                    selected.rows.push(row);
                    // Skipped rows' traces are dropped on the way.
                    while let Some((at, trace)) = gathered_traces.next_if(|(at, _)| *at <= index) {
                        if at == index && selected.traces.len() <= trace_context::MAX_LINKS {
                            selected.traces.push(trace);
                        }
                    }
                }
                Err(refused) => selected.dead.push(refused),
            }
        }
        selected
    }
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
///
/// The rows are gathered in the vector the transaction writes, so that when
/// no record is below its partition's stored offset or read twice (the
/// usual case) the writer, whose work is on the critical path, takes them
/// as they are instead of going through the records one by one.
struct Gathered {
    /// Every record, in the order read.
    entries: Vec<Entry>,
    /// The rows, in the order read.
    rows: Vec<AggregateRow>,
    /// The refused records, in the order read.
    refused: Vec<Refused>,
    /// The traces of the first rows that carry one (when spans are
    /// exported), with their indices in `rows`; at most
    /// `trace_context::MAX_LINKS + 1`.
    traces: Vec<(usize, SpanContext)>,
    /// The batch's partitions, in the order of their first records.
    partitions: Vec<Run>,
    /// `rows` encoded for the upsert, made by the gathering (off the
    /// critical path) for when they are written as they are.
    encoded: Option<EncodedRows>,
    revoked: Vec<(String, i32)>,
}

impl Gathered {
    fn new(capacity: usize) -> Self {
        Self {
            entries: Vec::with_capacity(capacity),
            rows: Vec::with_capacity(capacity),
            refused: Vec::new(),
            traces: Vec::new(),
            partitions: Vec::new(),
            encoded: None,
            revoked: Vec::new(),
        }
    }

    /// Adds a record of `topic`/`partition` at `offset`: a row (with its
    /// trace) or a refused record.
    fn push(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        offset: i64,
        decoded: Result<(AggregateRow, Option<SpanContext>), Refused>,
    ) {
        let same = |run: &Run| {
            let (t, p) = &run.partition;
            *p == partition && (Arc::ptr_eq(t, topic) || **t == **topic)
        };
        // A batch holds a handful of partitions, mostly in long runs.
        let found = match self.entries.last() {
            Some(last) if same(&self.partitions[last.partition]) => Some(last.partition),
            _ => self.partitions.iter().position(same),
        };
        let index = match found {
            Some(index) => {
                let run = &mut self.partitions[index];
                if offset < run.next {
                    run.increasing = false;
                }
                run.next = run.next.max(offset + 1);
                index
            }
            None => {
                self.partitions.push(Run {
                    partition: (topic.clone(), partition),
                    first: offset,
                    next: offset + 1,
                    increasing: true,
                });
                self.partitions.len() - 1
            }
        };
        let row = decoded.is_ok();
        match decoded {
            Ok((row, trace)) => {
                if let Some(trace) = trace {
                    self.traces.push((self.rows.len(), trace));
                }
                self.rows.push(row);
            }
            Err(refused) => self.refused.push(refused),
        }
        self.entries.push(Entry {
            partition: index,
            offset,
            row,
        });
    }
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
                while let Some(mut batch) = to_write.recv().await {
                    for (topic, partition) in std::mem::take(&mut batch.revoked) {
                        next.remove(&(Arc::from(topic), partition));
                    }
                    if !this.write_batch(batch, &mut next, &shutdown).await? {
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
            let mut batch = Gathered::new(self.batch_size);
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
                if let Some(m) = message.take()
                    && self
                        .record(&m, &mut topic, &mut batch, shutdown)
                        .await
                        .is_none()
                {
                    break 'batches; // shutdown while the registry was away
                }
                if batch.entries.len() >= self.batch_size {
                    break;
                }
                // A record that is there already is taken without the linger
                // timer: polling both for every record cost more than
                // decoding some of them.
                match stream.next().now_or_never() {
                    Some(Some(Ok(m))) => {
                        message = Some(m);
                        continue;
                    }
                    Some(Some(Err(e))) => {
                        tracing::warn!(error = %e, "consumer error");
                        continue;
                    }
                    Some(None) => break,
                    None => {}
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
            // Encoding the rows here, while the previous batch is written,
            // takes it off the writer's path; an encoding error surfaces
            // where the writer encodes them again.
            batch.encoded = EncodedRows::new(&batch.rows).ok();
            batch.revoked = self.consumer.context().take();
            if batches.send(batch).await.is_err() {
                break; // the writer stopped
            }
        }
    }

    /// Decodes `message` into `batch`; `None` when shutdown came while
    /// waiting for the registry. `topic` is the previous record's topic, kept
    /// so that records share one copy of its name.
    async fn record(
        &self,
        message: &BorrowedMessage<'_>,
        topic: &mut Arc<str>,
        batch: &mut Gathered,
        shutdown: &CancellationToken,
    ) -> Option<()> {
        if **topic != *message.topic() {
            *topic = Arc::from(message.topic());
        }
        let decoded = match self.decode(message, shutdown).await? {
            Ok(row) => {
                let trace =
                    if batch.traces.len() <= trace_context::MAX_LINKS && telemetry::exporting() {
                        trace_context::span_context_of(message)
                    } else {
                        None
                    };
                Ok((row, trace))
            }
            Err((reason, detail)) => Err((message.detach(), reason, detail)),
        };
        batch.push(topic, message.partition(), message.offset(), decoded);
        Some(())
    }

    /// Writes one batch; `false` when shutdown interrupted the retries (the
    /// batch was not written and will be read again).
    async fn write_batch(
        &self,
        batch: Gathered,
        next: &mut HashMap<Partition, i64>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<bool> {
        // The stored next offset of each of the batch's partitions (a batch
        // holds a handful).
        let mut stored = Vec::with_capacity(batch.partitions.len());
        for run in &batch.partitions {
            let offset = match next.get(&run.partition) {
                Some(offset) => *offset,
                None => {
                    let (topic, partition) = &run.partition;
                    let offset = self
                        .with_retry(shutdown, || self.store.next_offset(topic, *partition))
                        .await;
                    let Some(offset) = offset else {
                        return Ok(false);
                    };
                    let offset = offset.unwrap_or(0);
                    next.insert(run.partition.clone(), offset);
                    offset
                }
            };
            stored.push(offset);
        }
        let Selected {
            rows,
            encoded,
            traces,
            dead,
            positions,
        } = batch.select(&stored);
        for (message, reason, detail) in &dead {
            self.dead_letters.send(message, reason, detail).await?;
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
        // Encoded by the gathering when the rows are written as gathered;
        // encoded again for a retry (the write takes them).
        let mut encoded = encoded;
        if self
            .with_retry(shutdown, || {
                let encoded = encoded.take().map_or_else(|| EncodedRows::new(&rows), Ok);
                let positions = &positions;
                async move { self.store.write_encoded(encoded?, positions).await }
            })
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

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
