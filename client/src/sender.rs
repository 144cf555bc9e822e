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
//! Events go many to a message (`SubmitEventsRequest.events`): whatever is
//! queued when the transport is ready for the next message, up to 64 KiB, so
//! a sender that keeps up sends each event at once and a busy one sends far
//! fewer, larger messages; ingest answers them compactly.
use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use backon::{BackoffBuilder as _, ExponentialBuilder};
use futures::{StreamExt as _, channel::mpsc::UnboundedSender};
use prost::Message as _;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};
use tonic::Code;
use tributary_proto::stream_results;

use crate::{
    connect::IngestClient,
    error::{Error, Result},
    proto::{self, EventErrorCode, SubmitEventsRequest, event_result},
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
}

impl Default for SenderOptions {
    fn default() -> Self {
        Self {
            window: 1024,
            retry_timeout: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            first_connect_timeout: Duration::from_secs(5),
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

/// An event sent and not yet answered.
struct InFlight {
    event: proto::Event,
    reply: oneshot::Sender<Result<Outcome>>,
    _room: OwnedSemaphorePermit,
}

impl Sender {
    pub(crate) fn start(client: IngestClient, url: String, options: SenderOptions) -> Self {
        let (events, queue) = mpsc::unbounded_channel();
        let window = Arc::new(Semaphore::new(options.window.max(1)));
        let task = tokio::spawn(run(client, url, queue, options));
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
            event.idempotency_key = uuid::Uuid::new_v4().to_string();
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
                event,
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
    mut client: IngestClient,
    url: String,
    mut queue: mpsc::UnboundedReceiver<InFlight>,
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
                Some(event) => unanswered.push_back(event),
                None => return Ok(()),
            }
        }
        attempts += 1;
        first_attempt.get_or_insert_with(Instant::now);
        let mut answered = false;
        let end = stream(
            &mut client,
            &mut queue,
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
/// new events, and answers events in order as results arrive.
async fn stream(
    client: &mut IngestClient,
    queue: &mut mpsc::UnboundedReceiver<InFlight>,
    unanswered: &mut VecDeque<InFlight>,
    open: &mut bool,
    answered: &mut bool,
    reached: &mut bool,
) -> StreamEnd {
    let (requests, outgoing) = futures::channel::mpsc::unbounded();
    let mut requests: Option<UnboundedSender<proto::Event>> = Some(requests);
    // What is queued when the transport takes the next message goes in one
    // message: one event each while the stream keeps up, many under load.
    let outgoing = outgoing
        .ready_chunks(MAX_EVENTS_PER_MESSAGE)
        .flat_map(|events| futures::stream::iter(messages(events)));
    for in_flight in unanswered.iter() {
        forward(&requests, &in_flight.event);
    }
    if !*open {
        requests = None;
    }
    let mut results = match client.submit_events(outgoing).await {
        Ok(response) => {
            *reached = true;
            response.into_inner()
        }
        Err(status) => return classify(status),
    };
    let mut index = 0;
    loop {
        if !*open && unanswered.is_empty() {
            return StreamEnd::Done;
        }
        tokio::select! {
            next = queue.recv(), if *open => match next {
                Some(in_flight) => {
                    forward(&requests, &in_flight.event);
                    unanswered.push_back(in_flight);
                }
                None => {
                    *open = false;
                    requests = None; // half-close: ingest answers the rest and ends the stream
                }
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

fn forward(requests: &Option<UnboundedSender<proto::Event>>, event: &proto::Event) {
    if let Some(requests) = requests {
        // A closed request stream shows up as a failed response stream.
        let _ = requests.unbounded_send(event.clone());
    }
}

/// Most events the sender puts in one message.
const MAX_EVENTS_PER_MESSAGE: usize = 1024;
/// The size a message of many events is kept under (one event larger than
/// that goes alone).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// `events` as messages of many events, each under [`MAX_MESSAGE_BYTES`].
fn messages(events: Vec<proto::Event>) -> Vec<SubmitEventsRequest> {
    let mut messages = Vec::new();
    let mut current = SubmitEventsRequest::default();
    let mut bytes = 0;
    for event in events {
        let size = event.encoded_len() + 4; // the field's tag and length
        if !current.events.is_empty() && bytes + size > MAX_MESSAGE_BYTES {
            messages.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.events.push(event);
    }
    if !current.events.is_empty() {
        messages.push(current);
    }
    messages
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

    fn event(bytes: usize) -> proto::Event {
        proto::Event {
            key: "k".repeat(bytes),
            ..Default::default()
        }
    }

    #[test]
    fn queued_events_go_many_to_a_message_under_the_size_limit() {
        let sizes: Vec<usize> = messages((0..100).map(|_| event(1000)).collect())
            .iter()
            .map(|m| {
                assert!(m.event.is_none());
                assert!(m.encoded_len() <= MAX_MESSAGE_BYTES, "{}", m.encoded_len());
                m.events.len()
            })
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 100, "every event, once");
        assert!(sizes.len() >= 2 && sizes[0] > 50, "{sizes:?}");
        // An event larger than the limit goes alone; order is kept.
        let big = messages(vec![event(10), event(MAX_MESSAGE_BYTES), event(20)]);
        let keys: Vec<Vec<usize>> = big
            .iter()
            .map(|m| m.events.iter().map(|e| e.key.len()).collect())
            .collect();
        assert_eq!(keys, [vec![10], vec![MAX_MESSAGE_BYTES], vec![20]]);
        assert!(messages(Vec::new()).is_empty());
    }
}
