//! The streaming sender: one `SubmitEvents` stream carrying events as fast as
//! the server takes them, with every event's result delivered to its caller.
//!
//! At most [`SenderOptions::window`] events are unacknowledged at a time;
//! [`Sender::send`] waits for room, which is the sender's backpressure. Each
//! event carries an idempotency key (one is assigned when it has none). When
//! the stream fails — ingest restarted, the connection dropped, an event
//! answered UNAVAILABLE — the sender reconnects with exponential backoff and
//! sends every unacknowledged event again, in order, with its original
//! idempotency key: nothing acknowledged is lost and the processor counts a
//! resent event once. Results arrive in the order events were sent.
//!
//! Events go many to a message (`SubmitEventsRequest.events`), up to 64 KiB.
//! Whatever is queued when the connection is ready for the next message
//! goes in it, so a busy sender sends few, large messages (ingest answers
//! them compactly) and an idle one sends an event as soon as it comes. With
//! a [`SenderOptions::linger`] (none by default), events that keep coming
//! (each within the linger of the one before) are also held together for
//! about that long after the first of them, and go sooner when 64 KiB is
//! held or at least half the window is in use (near the window's bound,
//! holding would cost throughput, and messages are large anyway); a lone
//! event still goes at once.
//!
//! Each event is encoded once, in [`Sender::send`], as its entry of
//! `SubmitEventsRequest.events` (the event is dropped there, where it was
//! made, while its memory is still in cache). A message is made of such
//! entries, copied, which is byte for byte what `prost` writes for the
//! request, and the stream's codec (`StreamCodec`) writes messages as they
//! are: tonic does not encode them again. The entry is kept for a resend,
//! which goes out the same way.
use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use backon::{BackoffBuilder as _, ExponentialBuilder};
use futures::{Stream, StreamExt as _, channel::mpsc::UnboundedSender};
use prost::{
    Message as _,
    bytes::BufMut,
    encoding::{WireType, encode_key, encode_varint, encoded_len_varint},
};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};
use tonic::{
    Code, GrpcMethod, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming},
    codegen::{StdError, http::uri::PathAndQuery},
};
use tributary_proto::stream_results;

use crate::{
    connect::IngestGrpc,
    error::{Error, Result},
    proto::{self, EventErrorCode, SubmitEventsResponse, event_result},
};

/// How a [`Sender`] behaves.
///
/// ```
/// use std::time::Duration;
/// let options = tributary_client::SenderOptions {
///     window: 256,
///     retry_timeout: Duration::from_secs(30),
///     ..Default::default()
/// };
/// ```
#[derive(Clone, Debug)]
pub struct SenderOptions {
    /// The most events that may be sent and not yet answered.
    pub window: usize,
    /// How long the sender keeps reconnecting without any event being
    /// answered before it gives up and fails the unanswered events.
    pub retry_timeout: Duration,
    /// The first pause before reconnecting; doubled after each failure, with
    /// jitter (the services' policy, `backon`'s exponential backoff).
    pub initial_backoff: Duration,
    /// The longest pause before reconnecting.
    pub max_backoff: Duration,
    /// How long the sender tries to reach ingest when it has never reached
    /// it in this run: a stack that is not running is reported quickly
    /// ([`Error::Unreachable`]); once reached, `retry_timeout` applies.
    pub first_connect_timeout: Duration,
    /// How long events that keep coming (each within `linger` of the one
    /// before) are held together after the first of them, so that they go
    /// in one message, as Kafka's `linger.ms` holds records for a batch. An
    /// event that comes alone goes at once, and nothing is held once half
    /// the window is in use. Zero sends whatever is queued as soon as the
    /// connection takes it.
    pub linger: Duration,
}

impl Default for SenderOptions {
    fn default() -> Self {
        Self {
            window: 1024,
            retry_timeout: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            first_connect_timeout: Duration::from_secs(5),
            linger: DEFAULT_LINGER,
        }
    }
}

/// What became of one event.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The event is durable in Kafka.
    Acked(proto::EventAck),
    /// Ingest refused the event (invalid, unknown type, ...); it was not stored
    /// and sending it again would fail again.
    Rejected(proto::EventError),
}

/// The result of one sent event, resolved when ingest answers it.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let sender = tributary_client::Client::new("http://127.0.0.1:50051")?.sender(Default::default());
/// let pending = sender.send(tributary_client::event::price_tick("ETH-USD", "a", 1.0).build()).await?;
/// match pending.await? {
///     tributary_client::Outcome::Acked(ack) => println!("stored at {}/{}", ack.partition, ack.offset),
///     tributary_client::Outcome::Rejected(error) => println!("refused: {}", error.message),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Pending(oneshot::Receiver<Result<Outcome>>);

impl Future for Pending {
    type Output = Result<Outcome>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(Error::Closed)))
    }
}

/// Streams events to ingest; see the module documentation.
pub struct Sender {
    events: mpsc::UnboundedSender<InFlight>,
    window: Arc<Semaphore>,
    task: JoinHandle<Result<()>>,
}

/// An event sent and not yet answered, from [`Sender::send`] on.
struct InFlight {
    /// The event's entry in a message ([`entry`]), kept for a resend.
    entry: Vec<u8>,
    reply: oneshot::Sender<Result<Outcome>>,
    _room: OwnedSemaphorePermit,
}

impl Sender {
    pub(crate) fn start(grpc: IngestGrpc, url: String, options: SenderOptions) -> Self {
        let (events, queue) = mpsc::unbounded_channel();
        let window = Arc::new(Semaphore::new(options.window.max(1)));
        let task = tokio::spawn(run(grpc, url, queue, window.clone(), options));
        Self {
            events,
            window,
            task,
        }
    }

    /// Queues `event`, waiting while the window is full, and returns the
    /// future of its outcome. An event without an idempotency key gets a
    /// random one, so a resend is counted once.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> anyhow::Result<()> {
    /// use tributary_client::{Client, event};
    ///
    /// let sender = Client::new("http://127.0.0.1:50051")?.sender(Default::default());
    /// let mut outcomes = Vec::new();
    /// for price in [3010.0, 3011.5, 3009.25] {
    ///     outcomes.push(sender.send(event::price_tick("ETH-USD", "coinbase", price).build()).await?);
    /// }
    /// for outcome in outcomes {
    ///     println!("{:?}", outcome.await?);
    /// }
    /// sender.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn send(&self, mut event: proto::Event) -> Result<Pending> {
        if event.idempotency_key.is_empty() {
            event.idempotency_key = crate::event::idempotency_key();
        }
        let room = self
            .window
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let (reply, answer) = oneshot::channel();
        self.events
            .send(InFlight {
                entry: entry(&event),
                reply,
                _room: room,
            })
            .map_err(|_| Error::Closed)?;
        Ok(Pending(answer))
    }

    /// Stops taking events and waits until every sent event is answered.
    /// Fails when the sender gave up (see [`SenderOptions::retry_timeout`]) or
    /// met an error it does not retry, such as UNAUTHENTICATED.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> anyhow::Result<()> {
    /// let sender = tributary_client::Client::new("http://127.0.0.1:50051")?.sender(Default::default());
    /// sender.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn close(self) -> Result<()> {
        drop(self.events);
        self.task.await.map_err(|_| Error::Closed)?
    }
}

/// Why one stream ended.
enum StreamEnd {
    /// Every event is answered and no more will come.
    Done,
    /// Reconnect and resend.
    Retry(String),
    /// Not worth retrying.
    Fatal(tonic::Status),
}

async fn run(
    mut grpc: IngestGrpc,
    url: String,
    mut queue: mpsc::UnboundedReceiver<InFlight>,
    window: Arc<Semaphore>,
    options: SenderOptions,
) -> Result<()> {
    // From the first attempt, not from creation: a sender may wait long for
    // its first event.
    let mut first_attempt: Option<Instant> = None;
    let mut reached = false;
    let mut unanswered: VecDeque<InFlight> = VecDeque::new();
    let mut open = true;
    let mut attempts = 0;
    let policy = ExponentialBuilder::default()
        .with_min_delay(options.initial_backoff)
        .with_max_delay(options.max_backoff)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    let mut delays = policy.build();
    let mut failing_since: Option<Instant> = None;
    loop {
        if unanswered.is_empty() {
            // Nothing is owed: time spent idle does not count towards giving
            // up, and the next failure starts its backoff afresh.
            failing_since = None;
            delays = policy.build();
            // Open a stream only when there is something to send.
            match queue.recv().await {
                // The stream opened for it sends it first.
                Some(in_flight) => unanswered.push_back(in_flight),
                None => return Ok(()),
            }
        }
        attempts += 1;
        first_attempt.get_or_insert_with(Instant::now);
        let mut answered = false;
        let end = stream(
            &mut grpc,
            &mut queue,
            (&window, &options),
            &mut unanswered,
            &mut open,
            &mut answered,
            &mut reached,
        )
        .await;
        match end {
            StreamEnd::Done => return Ok(()),
            StreamEnd::Fatal(status) => {
                for event in unanswered.drain(..) {
                    let _ = event.reply.send(Err(Error::Status(status.clone())));
                }
                return Err(Error::Status(status));
            }
            StreamEnd::Retry(reason) => {
                if answered {
                    failing_since = None;
                    delays = policy.build();
                }
                let trying_for = first_attempt.map_or(Duration::ZERO, |t| t.elapsed());
                if !reached && trying_for >= options.first_connect_timeout {
                    let unreachable = || Error::Unreachable {
                        url: url.clone(),
                        last: reason.clone(),
                    };
                    for event in unanswered.drain(..) {
                        let _ = event.reply.send(Err(unreachable()));
                    }
                    return Err(unreachable());
                }
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= options.retry_timeout {
                    let gave_up = || Error::GaveUp {
                        attempts,
                        last: reason.clone(),
                    };
                    for event in unanswered.drain(..) {
                        let _ = event.reply.send(Err(gave_up()));
                    }
                    return Err(gave_up());
                }
                let backoff = delays.next().unwrap_or(options.max_backoff);
                tracing::debug!(%reason, ?backoff, unanswered = unanswered.len(), "reconnecting");
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// Runs one `SubmitEvents` stream: resends `unanswered` first, then forwards
/// new events (which take room in `window`, of `options.window`), and answers
/// events in order as results arrive.
async fn stream(
    grpc: &mut IngestGrpc,
    queue: &mut mpsc::UnboundedReceiver<InFlight>,
    (window, options): (&Semaphore, &SenderOptions),
    unanswered: &mut VecDeque<InFlight>,
    open: &mut bool,
    answered: &mut bool,
    reached: &mut bool,
) -> StreamEnd {
    let (requests, outgoing) = futures::channel::mpsc::unbounded();
    let mut requests: Option<UnboundedSender<Batch>> = Some(requests);
    // Batches still queued when the transport takes the next message go in
    // it together, under the limits.
    let outgoing = outgoing
        .ready_chunks(MAX_BATCHES_PER_MESSAGE)
        .flat_map(|batches| futures::stream::iter(messages(batches)));
    // Every unanswered event, at once, in order.
    for resent in batches(unanswered.iter().map(|in_flight| &in_flight.entry[..])) {
        forward(&requests, resent);
    }
    // What was just resent counts as come: the next event is not alone.
    let size = options.window.max(1);
    let mut batch = Coalescer::new(options.linger);
    batch.last = Some(Instant::now());
    if !*open {
        requests = None;
    }
    let mut results = match submit_events(grpc, outgoing).await {
        Ok(results) => {
            *reached = true;
            results
        }
        Err(status) => return classify(status),
    };
    // Fires when the held events must go; `armed` is the time it is set to.
    let hold = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(hold);
    let mut armed: Option<Instant> = None;
    let mut arrived = Vec::new();
    let mut index = 0;
    loop {
        if !*open && unanswered.is_empty() {
            return StreamEnd::Done;
        }
        tokio::select! {
            count = queue.recv_many(&mut arrived, MAX_EVENTS_AT_ONCE), if *open => {
                if count == 0 {
                    // Closed: send what is held, then half-close; ingest
                    // answers the rest and ends the stream.
                    forward(&requests, batch.take());
                    *open = false;
                    requests = None;
                    continue;
                }
                let now = Instant::now();
                for in_flight in arrived.drain(..) {
                    if let Some(full) = batch.push(now, &in_flight.entry) {
                        forward(&requests, full);
                    }
                    unanswered.push_back(in_flight);
                }
                // At least half the window in use: the sender is near its
                // bound, where holding would cost throughput, and its
                // messages are large anyway.
                let busy = window.available_permits() <= size / 2;
                if batch.due(now, busy) {
                    forward(&requests, batch.take());
                } else if let Some(until) = batch.holding().filter(|&until| armed != Some(until)) {
                    hold.as_mut().reset(until.checked_sub(TIMER_LATE).unwrap_or(until));
                    armed = Some(until);
                }
            },
            () = &mut hold, if batch.holding().is_some() => {
                forward(&requests, batch.take());
            },
            response = results.next() => {
                let response = match response {
                    Some(Ok(response)) => response,
                    Some(Err(status)) => return classify(status),
                    None => return StreamEnd::Retry("ingest ended the stream early".into()),
                };
                for result in stream_results::results(response) {
                    if result.index != index {
                        return StreamEnd::Retry(format!("ingest answered out of order at {index}"));
                    }
                    let outcome = match result.outcome {
                        Some(event_result::Outcome::Ack(ack)) => Outcome::Acked(ack),
                        Some(event_result::Outcome::Error(error))
                            if error.code == EventErrorCode::Unavailable as i32 =>
                        {
                            // Not stored: resend it and everything after it.
                            return StreamEnd::Retry(error.message);
                        }
                        Some(event_result::Outcome::Error(error)) => Outcome::Rejected(error),
                        None => return StreamEnd::Retry("a result without an outcome".into()),
                    };
                    let Some(in_flight) = unanswered.pop_front() else {
                        return StreamEnd::Retry(format!("ingest answered event {index}, which was not sent"));
                    };
                    index += 1;
                    *answered = true;
                    let _ = in_flight.reply.send(Ok(outcome));
                }
            }
        }
    }
}

fn forward(requests: &Option<UnboundedSender<Batch>>, batch: Batch) {
    if let (Some(requests), false) = (requests, batch.is_empty()) {
        // A closed request stream shows up as a failed response stream.
        let _ = requests.unbounded_send(batch);
    }
}

/// The `SubmitEvents` path.
const SUBMIT_EVENTS: &str = "/tributary.v1.IngestService/SubmitEvents";

/// Opens a `SubmitEvents` stream sending `requests`, as the generated
/// client's `submit_events` does, but with [`StreamCodec`].
async fn submit_events(
    grpc: &mut IngestGrpc,
    requests: impl Stream<Item = Request> + Send + 'static,
) -> Result<Streaming<SubmitEventsResponse>, Status> {
    grpc.ready().await.map_err(|e| {
        let e: StdError = e.into();
        Status::unknown(format!("Service was not ready: {e}"))
    })?;
    let mut request = tonic::Request::new(requests);
    request.extensions_mut().insert(GrpcMethod::new(
        "tributary.v1.IngestService",
        "SubmitEvents",
    ));
    let path = PathAndQuery::from_static(SUBMIT_EVENTS);
    Ok(grpc
        .streaming(request, path, StreamCodec)
        .await?
        .into_inner())
}

/// Most events taken from the queue at once.
const MAX_EVENTS_AT_ONCE: usize = 1024;
/// Most batches merged into the messages sent when the transport is ready.
const MAX_BATCHES_PER_MESSAGE: usize = 64;
/// The size a message of many events is kept under (one event larger than
/// that goes alone).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Most events ingest takes in one message (more end the stream with
/// INVALID_ARGUMENT); only events of a few bytes each come near it.
const MAX_EVENTS_PER_MESSAGE: usize = 4096;
/// [`SenderOptions::linger`] by default: none. Holding events for a
/// millisecond cost every acknowledgement up to that much (the bench's ack
/// p99 at 2,000 events/s was 1.34–1.44 × the raw producer's with it and
/// 1.09–1.10 × without), and saved no measurable CPU, since what is queued
/// while the connection is busy goes together anyway.
const DEFAULT_LINGER: Duration = Duration::ZERO;
/// How late Tokio's timer fires: on a millisecond tick, and through epoll
/// no sooner than a millisecond after it is armed (measured on Linux: armed
/// 250 µs ahead, it fired after 1.08 ms at the median, 2.2 ms at p99). The
/// timer is armed this much before the held events are due, so they go
/// about [`SenderOptions::linger`] after the first of them when no more come; when
/// more do, the first to come after it sends them all.
const TIMER_LATE: Duration = Duration::from_micros(750);

/// `event` encoded as an entry of `SubmitEventsRequest.events` (field 2,
/// length-delimited): the field's key, the length and the event's encoding,
/// what `prost` writes for it in a request.
fn entry(event: &proto::Event) -> Vec<u8> {
    let len = event.encoded_len();
    let mut entry = Vec::with_capacity(1 + encoded_len_varint(len as u64) + len);
    encode_key(2, WireType::LengthDelimited, &mut entry);
    encode_varint(len as u64, &mut entry);
    event.encode_raw(&mut entry);
    entry
}

/// Consecutive events' entries ([`entry`]): the encoding of a request of
/// just those events. Such encodings concatenated are the encoding of a
/// request of all their events, which is how a message is made of batches.
#[derive(Debug, Default)]
struct Batch {
    bytes: Vec<u8>,
    events: usize,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Whether an entry of `bytes` may join this batch: an empty batch takes
    /// any event.
    fn fits(&self, bytes: usize) -> bool {
        self.is_empty()
            || (self.bytes.len() + bytes <= MAX_MESSAGE_BYTES
                && self.events < MAX_EVENTS_PER_MESSAGE)
    }

    /// Appends an event's entry.
    fn push(&mut self, entry: &[u8]) {
        self.bytes.extend_from_slice(entry);
        self.events += 1;
    }
}

/// Events' `entries`, in order, as batches that each fit in a message.
fn batches<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut current = Batch::default();
    for entry in entries {
        if !current.fits(entry.len()) {
            batches.push(std::mem::take(&mut current));
        }
        current.push(entry);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// One `SubmitEventsRequest` as the batches it is made of, in order.
type Request = Vec<Batch>;

/// `batches`, in order, merged into as few messages as fit under
/// [`MAX_MESSAGE_BYTES`] and [`MAX_EVENTS_PER_MESSAGE`] (a batch is not
/// split: each fits on its own).
fn messages(batches: Vec<Batch>) -> Vec<Request> {
    let mut messages = Vec::new();
    let mut current: Request = Vec::new();
    let (mut bytes, mut events) = (0, 0);
    for batch in batches {
        if !current.is_empty()
            && (bytes + batch.bytes.len() > MAX_MESSAGE_BYTES
                || events + batch.events > MAX_EVENTS_PER_MESSAGE)
        {
            messages.push(std::mem::take(&mut current));
            (bytes, events) = (0, 0);
        }
        bytes += batch.bytes.len();
        events += batch.events;
        current.push(batch);
    }
    if !current.is_empty() {
        messages.push(current);
    }
    messages
}

/// Writes `request` as it goes on the wire: its batches' bytes, in order.
fn write_request(request: &[Batch], dst: &mut impl BufMut) {
    for batch in request {
        dst.put_slice(&batch.bytes);
    }
}

/// The codec of the sender's `SubmitEvents` streams: a request goes out as
/// the sender encoded it (the bytes of its batches, which are `prost`'s
/// encoding of the `SubmitEventsRequest`), and responses are decoded with
/// `prost`, as the generated client's codec does.
#[derive(Clone, Copy, Debug, Default)]
struct StreamCodec;

impl Codec for StreamCodec {
    type Encode = Request;
    type Decode = SubmitEventsResponse;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        *self
    }

    fn decoder(&mut self) -> Self {
        *self
    }
}

impl Encoder for StreamCodec {
    type Item = Request;
    type Error = Status;

    fn encode(&mut self, request: Request, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(request.iter().map(|batch| batch.bytes.len()).sum());
        write_request(&request, dst);
        Ok(())
    }
}

impl Decoder for StreamCodec {
    type Item = SubmitEventsResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<SubmitEventsResponse>, Status> {
        SubmitEventsResponse::decode(src)
            .map(Some)
            .map_err(|error| Status::internal(error.to_string()))
    }
}

/// The events held for the next message, encoded, and when they must go: at
/// once for an event that came alone, else `linger` after the first
/// of them, or sooner when they fill a message or the window is at least
/// half in use.
struct Coalescer {
    /// [`SenderOptions::linger`].
    linger: Duration,
    held: Batch,
    /// When the held events must go at the latest; `None` for at once.
    until: Option<Instant>,
    /// When the last event came.
    last: Option<Instant>,
}

impl Coalescer {
    /// Holds nothing yet; holds events that keep coming for `linger`.
    fn new(linger: Duration) -> Self {
        Self {
            linger,
            held: Batch::default(),
            until: None,
            last: None,
        }
    }

    /// Holds the event of `entry`, which came at `now`; returns the events
    /// held before it when it would take them past a message's limits: they
    /// go first.
    fn push(&mut self, now: Instant, entry: &[u8]) -> Option<Batch> {
        let full = (!self.held.fits(entry.len())).then(|| self.take());
        if self.held.is_empty() {
            // Events keep coming when the one before came within the delay.
            let coming = self
                .last
                .is_some_and(|last| now.saturating_duration_since(last) < self.linger);
            self.until = coming.then(|| now + self.linger);
        }
        self.last = Some(now);
        self.held.push(entry);
        full
    }

    /// Whether the held events go at `now`: they came alone, their time has
    /// come, the window is at least half in use (`window_busy`), or they fill
    /// a message.
    fn due(&self, now: Instant, window_busy: bool) -> bool {
        !self.held.is_empty()
            && (self.until.is_none_or(|until| now >= until)
                || window_busy
                || self.held.bytes.len() >= MAX_MESSAGE_BYTES
                || self.held.events >= MAX_EVENTS_PER_MESSAGE)
    }

    /// When held events must go, if any are held.
    fn holding(&self) -> Option<Instant> {
        self.until.filter(|_| !self.held.is_empty())
    }

    /// The held events, in order; holds none after.
    fn take(&mut self) -> Batch {
        self.until = None;
        std::mem::take(&mut self.held)
    }
}

/// Statuses that say the request itself is wrong end the sender; anything
/// else (unreachable, restarting, overloaded, reset) is retried.
fn classify(status: tonic::Status) -> StreamEnd {
    match status.code() {
        Code::InvalidArgument
        | Code::Unauthenticated
        | Code::PermissionDenied
        | Code::Unimplemented
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::NotFound
        | Code::AlreadyExists => StreamEnd::Fatal(status),
        _ => StreamEnd::Retry(format!("{}: {}", status.code(), status.message())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::SubmitEventsRequest;

    fn event(bytes: usize) -> proto::Event {
        proto::Event {
            key: "k".repeat(bytes),
            ..Default::default()
        }
    }

    /// `events` as batches, as a resend makes them.
    fn batches_of(events: &[proto::Event]) -> Vec<Batch> {
        let entries: Vec<Vec<u8>> = events.iter().map(entry).collect();
        batches(entries.iter().map(Vec::as_slice))
    }

    /// The bytes a message goes out as (what [`StreamCodec`] writes).
    fn wire(request: &[Batch]) -> Vec<u8> {
        let mut bytes = Vec::new();
        write_request(request, &mut bytes);
        bytes
    }

    /// A message as ingest decodes it.
    fn decode(request: &[Batch]) -> SubmitEventsRequest {
        let request = SubmitEventsRequest::decode(wire(request).as_slice()).expect("a message");
        assert!(request.event.is_none());
        request
    }

    fn keys(batch: Batch) -> Vec<usize> {
        let request = decode(&[batch]);
        request.events.iter().map(|e| e.key.len()).collect()
    }

    #[test]
    fn a_message_is_what_prost_writes_for_its_request() {
        let events = vec![
            crate::event::ad_click("adv-1", "203.0.113.7", "curl/8", "https://example.com/")
                .campaign_id("spring")
                .metadata(serde_json::json!({"slot": "top", "page": 3, "tags": ["a", "b"]}))
                .field("country", serde_json::json!("DE"))
                .build(),
            crate::event::price_tick("ETH-USD", "coinbase", 3012.5)
                .volume(1.25)
                .build(),
            crate::event::generic("signup", serde_json::json!({"plan": "pro", "seats": 3.0}))
                .unwrap()
                .key("user-7")
                .build(),
            proto::Event::default(),
            event(300),
        ];
        let expected = SubmitEventsRequest {
            event: None,
            events: events.clone(),
        }
        .encode_to_vec();
        let batched = batches_of(&events);
        assert_eq!(batched.len(), 1);
        assert_eq!(batched[0].events, events.len());
        assert_eq!(wire(&batched), expected);
        // So is a message merged from batches of one event each.
        let one_each: Vec<Batch> = events
            .iter()
            .flat_map(|e| batches_of(std::slice::from_ref(e)))
            .collect();
        let merged = messages(one_each);
        assert_eq!(merged.len(), 1);
        assert_eq!(wire(&merged[0]), expected);
        // And what the coalescer holds.
        let mut held = Coalescer::new(DEFAULT_LINGER);
        let now = Instant::now();
        for event in &events {
            assert!(held.push(now, &entry(event)).is_none());
        }
        assert_eq!(held.take().bytes, expected);
    }

    #[test]
    fn queued_events_go_many_to_a_message_under_the_size_limit() {
        let events: Vec<proto::Event> = (0..100).map(|_| event(1000)).collect();
        let sizes: Vec<usize> = batches_of(&events)
            .into_iter()
            .map(|batch| {
                let m = decode(std::slice::from_ref(&batch));
                assert_eq!(batch.bytes.len(), m.encoded_len());
                assert!(m.encoded_len() <= MAX_MESSAGE_BYTES, "{}", m.encoded_len());
                assert_eq!(batch.events, m.events.len());
                m.events.len()
            })
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 100, "every event, once");
        assert!(sizes.len() >= 2 && sizes[0] > 50, "{sizes:?}");
        // An event larger than the limit goes alone; order is kept.
        let big: Vec<Vec<usize>> = batches_of(&[event(10), event(MAX_MESSAGE_BYTES), event(20)])
            .into_iter()
            .map(keys)
            .collect();
        assert_eq!(big, [vec![10], vec![MAX_MESSAGE_BYTES], vec![20]]);
        assert!(batches_of(&[]).is_empty());
        // Tiny events: at most the number ingest takes in a message.
        let tiny: Vec<proto::Event> = (0..5000).map(|_| proto::Event::default()).collect();
        let counts: Vec<usize> = batches_of(&tiny).iter().map(|b| b.events).collect();
        assert_eq!(
            counts,
            [MAX_EVENTS_PER_MESSAGE, 5000 - MAX_EVENTS_PER_MESSAGE]
        );
    }

    #[test]
    fn batches_queued_together_are_merged_into_messages_under_the_limits() {
        // One event of 1000 bytes a batch: about 65 to a message.
        let queued: Vec<Batch> = (0..100)
            .flat_map(|i| batches_of(&[event(1000 + i)]))
            .collect();
        let merged = messages(queued);
        let keys: Vec<usize> = merged
            .iter()
            .flat_map(|request| {
                let m = decode(request);
                assert!(m.encoded_len() <= MAX_MESSAGE_BYTES, "{}", m.encoded_len());
                m.events.into_iter().map(|e| e.key.len())
            })
            .collect();
        assert_eq!(
            keys,
            (1000..1100).collect::<Vec<_>>(),
            "every event, once, in order"
        );
        assert!(
            merged.len() == 2 && merged[0].len() > 50,
            "{}",
            merged.len()
        );
        // A batch is never split; a big one goes alone.
        let queued: Vec<Batch> = [10, MAX_MESSAGE_BYTES, 20]
            .iter()
            .flat_map(|&n| batches_of(&[event(n)]))
            .collect();
        assert_eq!(
            messages(queued).iter().map(Vec::len).collect::<Vec<_>>(),
            [1, 1, 1]
        );
        // At most the number of events ingest takes in a message.
        let tiny = proto::Event::default();
        let queued: Vec<Batch> = (0..5)
            .flat_map(|_| batches_of(&vec![tiny.clone(); 1000]))
            .collect();
        let counts: Vec<usize> = messages(queued)
            .iter()
            .map(|request| decode(request).events.len())
            .collect();
        assert_eq!(counts, [4000, 1000]);
        assert!(messages(Vec::new()).is_empty());
    }

    #[test]
    fn events_that_keep_coming_are_held_together_for_a_millisecond() {
        let t0 = Instant::now();
        let at = |micros| t0 + Duration::from_micros(micros);
        let mut batch = Coalescer::new(Duration::from_millis(1));
        // A lone event goes at once.
        assert!(batch.push(t0, &entry(&event(1))).is_none());
        assert!(batch.due(t0, false));
        assert_eq!(batch.holding(), None);
        assert_eq!(keys(batch.take()), [1]);
        // The next, 200 µs later, is held until a millisecond after it came,
        // with those that come meanwhile.
        assert!(batch.push(at(200), &entry(&event(2))).is_none());
        assert!(!batch.due(at(200), false));
        assert_eq!(batch.holding(), Some(at(1200)));
        assert!(batch.push(at(700), &entry(&event(3))).is_none());
        assert!(!batch.due(at(700), false));
        assert_eq!(batch.holding(), Some(at(1200)), "from the first held event");
        // The first to come after that sends them all.
        assert!(batch.push(at(1250), &entry(&event(4))).is_none());
        assert!(batch.due(at(1250), false));
        assert_eq!(keys(batch.take()), [2, 3, 4]);
        assert_eq!(batch.holding(), None);
        // Held events go at once when the window is at least half in use.
        assert!(batch.push(at(1300), &entry(&event(5))).is_none());
        assert!(!batch.due(at(1300), false));
        assert!(batch.due(at(1300), true));
        batch.take();
        // After a pause longer than the delay, an event is alone again.
        assert!(batch.push(at(5000), &entry(&event(6))).is_none());
        assert!(batch.due(at(5000), false));
        batch.take();
        // Held events that would pass the size limit go before the next one.
        assert!(batch.push(at(5100), &entry(&event(30_000))).is_none());
        assert!(batch.push(at(5200), &entry(&event(30_000))).is_none());
        assert!(!batch.due(at(5200), false));
        let full = batch
            .push(at(5300), &entry(&event(30_000)))
            .expect("a full message");
        assert_eq!(keys(full), [30_000, 30_000]);
        assert_eq!(batch.holding(), Some(at(6300)), "the rest is held afresh");
        // ... and events that reach it go at once.
        let mut big = Coalescer::new(Duration::from_millis(1));
        big.push(at(0), &entry(&event(1)));
        big.take();
        big.push(at(10), &entry(&event(MAX_MESSAGE_BYTES)));
        assert!(big.due(at(10), false));
    }

    #[test]
    fn without_linger_nothing_is_held() {
        let t0 = Instant::now();
        let mut batch = Coalescer::new(Duration::ZERO);
        for (n, micros) in [0, 1, 2, 200].into_iter().enumerate() {
            let now = t0 + Duration::from_micros(micros);
            assert!(batch.push(now, &entry(&event(n + 1))).is_none());
            assert!(batch.due(now, false), "event {n} goes at once");
            assert_eq!(batch.holding(), None);
            assert_eq!(keys(batch.take()), [n + 1]);
        }
        // What comes together still goes together.
        batch.push(t0, &entry(&event(1)));
        batch.push(t0, &entry(&event(2)));
        assert!(batch.due(t0, false));
        assert_eq!(keys(batch.take()), [1, 2]);
    }
}
