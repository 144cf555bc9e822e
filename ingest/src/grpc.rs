//! `IngestService` over gRPC. The stream answers one result per event, in
//! order, and keeps at most `max_in_flight` events of a stream in the
//! producer: when that many wait for the broker, the stream stops reading, so
//! HTTP/2 flow control slows a fast client down instead of buffering it (a
//! message of many events is read whole, so a stream may hold one message's
//! events beyond that: at most [`MAX_EVENTS_PER_MESSAGE`]; a larger message
//! ends the stream with INVALID_ARGUMENT). A message of one event (`event`) is answered by a
//! response of its own; the results of messages of many (`events`) are
//! answered compactly, as many ready results per response as there are
//! (`tributary_proto::stream_results`).
//!
//! Rate limits (`--rate-limit`) are charged per event, so a stream cannot
//! bypass them: a unary call costs one token and a batch one per event (all
//! or nothing: RESOURCE_EXHAUSTED with RetryInfo and `retry-after`). On a
//! stream, the first event over the limit is not produced: the stream answers
//! every event before it and then ends with RESOURCE_EXHAUSTED, whose message
//! names the first index not accepted, as a stream ending on shutdown does;
//! the client resends from there after the delay.
use std::sync::Arc;

use futures::{FutureExt as _, StreamExt as _, stream::FuturesOrdered};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument as _, Span};
use tributary_common::trace_context;
use tributary_proto::{
    stream_results::CompactResults,
    v1::{
        self as proto, EventResult, SubmitBatchRequest, SubmitBatchResponse, SubmitEventRequest,
        SubmitEventResponse, SubmitEventsRequest, SubmitEventsResponse, event_result::Outcome,
        ingest_service_server::IngestService,
    },
};

use tributary_edge::{
    auth::rate_limited_status,
    rate_limit::{Caller, RateLimiter},
};

use crate::{ingestor::Ingestor, rejection::Rejection};

/// The gRPC service.
pub struct IngestGrpc {
    ingestor: Arc<Ingestor>,
    max_in_flight: usize,
    shutdown: CancellationToken,
    limiter: Option<RateLimiter>,
}

impl IngestGrpc {
    /// The service over `ingestor`; streams stop reading when `shutdown` fires.
    pub fn new(ingestor: Arc<Ingestor>, max_in_flight: usize, shutdown: CancellationToken) -> Self {
        Self {
            ingestor,
            max_in_flight: max_in_flight.max(1),
            shutdown,
            limiter: None,
        }
    }

    /// Charges every event to its caller's rate limit (see the module docs);
    /// the caller is the [`Caller`] the auth interceptor left in the request.
    pub fn with_rate_limit(mut self, limiter: Option<RateLimiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// Charges `events` to the caller of `request`.
    fn charge<T>(&self, request: &Request<T>, events: usize, what: &str) -> Result<(), Status> {
        let Some(limiter) = self.limiter.as_ref().filter(|_| events > 0) else {
            return Ok(());
        };
        limiter
            .acquire(&caller(request), events as u64)
            .map_err(|e| rate_limited_status(e, what))
    }
}

/// Who `request` is charged to: set by the auth interceptor; without it (the
/// service used alone), the peer address.
fn caller<T>(request: &Request<T>) -> Caller {
    request
        .extensions()
        .get::<Caller>()
        .copied()
        .unwrap_or_else(|| Caller::peer(request.remote_addr()))
}

fn traceparent<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get(trace_context::TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// The span of one call, a child of the caller's `traceparent` when it
/// sent one; the events' `ingest.produce` spans are its children.
fn call_span(name: &'static str, traceparent: Option<&str>) -> Span {
    let method = name.rsplit('/').next().unwrap_or(name);
    let span = tracing::info_span!(
        "ingest.grpc",
        otel.name = name,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = "tributary.v1.IngestService",
        rpc.method = method,
    );
    trace_context::set_parent(&span, trace_context::from_traceparent(traceparent));
    span
}

fn result(index: u64, outcome: Result<proto::EventAck, Rejection>) -> EventResult {
    let outcome = match outcome {
        Ok(ack) => Outcome::Ack(ack),
        Err(rejection) => Outcome::Error(rejection.to_proto()),
    };
    EventResult {
        index,
        outcome: Some(outcome),
    }
}

/// Most events one stream message may carry: a message is read whole, so this
/// bounds what one message adds beyond `max_in_flight`.
pub const MAX_EVENTS_PER_MESSAGE: usize = 4096;

/// Most events one compact response answers.
const MAX_RESULTS_PER_RESPONSE: usize = 4096;

/// Adds an event's result to what a stream answers next: to the compact
/// response being built when its message carried many events, else as a
/// response of its own (after the compact one, which answers earlier events).
fn answer(
    (result, many): (EventResult, bool),
    compact: &mut CompactResults,
    responses: &mut Vec<SubmitEventsResponse>,
) {
    if many {
        compact.push(result);
    } else {
        responses.extend(compact.take());
        responses.push(SubmitEventsResponse {
            result: Some(result),
            ..Default::default()
        });
    }
}

fn missing_event() -> Rejection {
    Rejection::invalid("event", "is required")
}

#[tonic::async_trait]
impl IngestService for IngestGrpc {
    type SubmitEventsStream = ReceiverStream<Result<SubmitEventsResponse, Status>>;

    async fn submit_events(
        &self,
        request: Request<Streaming<SubmitEventsRequest>>,
    ) -> Result<Response<Self::SubmitEventsStream>, Status> {
        let trace = traceparent(&request);
        let limit = self.limiter.clone().map(|l| (l, caller(&request)));
        let span = call_span("tributary.v1.IngestService/SubmitEvents", trace.as_deref());
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(self.max_in_flight);
        let ingestor = self.ingestor.clone();
        let max_in_flight = self.max_in_flight;
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            // Each message's results (one per event, in order), and whether
            // it carried many events (answered compactly) or one.
            let mut pending = FuturesOrdered::new();
            // Events of `pending` not answered yet.
            let mut in_flight = 0usize;
            let mut compact = CompactResults::default();
            let mut next_index = 0u64;
            let mut reading = true;
            let mut ending: Option<Status> = None;
            loop {
                tokio::select! {
                    biased;
                    Some(done) = pending.next(), if !pending.is_empty() => {
                        // Answer what is ready now in as few messages as
                        // possible; the rest is answered when it is done.
                        let mut responses = Vec::new();
                        let mut done: Option<(Vec<EventResult>, bool)> = Some(done);
                        while let Some((results, many)) = done.take() {
                            in_flight -= results.len();
                            for result in results {
                                answer((result, many), &mut compact, &mut responses);
                                if compact.len() == MAX_RESULTS_PER_RESPONSE {
                                    responses.extend(compact.take());
                                }
                            }
                            if compact.len() < MAX_RESULTS_PER_RESPONSE {
                                done = pending.next().now_or_never().flatten();
                            }
                        }
                        responses.extend(compact.take());
                        for response in responses {
                            if tx.send(Ok(response)).await.is_err() {
                                return; // the client went away
                            }
                        }
                    }
                    () = shutdown.cancelled(), if reading => {
                        reading = false;
                        ending = Some(Status::unavailable("ingest is shutting down; events after the last result were not read, resend them elsewhere"));
                    }
                    message = inbound.message(), if reading && in_flight < max_in_flight => {
                        match message {
                            Ok(Some(request)) => {
                                let many = !request.events.is_empty();
                                let carried = request.events.len() + usize::from(request.event.is_some());
                                if carried > MAX_EVENTS_PER_MESSAGE {
                                    reading = false;
                                    ending = Some(Status::invalid_argument(format!(
                                        "the message at index {next_index} carries {carried} events, more than {MAX_EVENTS_PER_MESSAGE}; split it (none of its events was read)"
                                    )));
                                    continue;
                                }
                                let count = carried.max(1); // a message of none answers `missing`
                                if let Some(Err(e)) = limit.as_ref().map(|(l, c)| l.acquire(c, count as u64)) {
                                    reading = false;
                                    let what = format!("the event at index {next_index} and every one after it");
                                    ending = Some(rate_limited_status(e, &what));
                                    continue;
                                }
                                let first = next_index;
                                next_index += count as u64;
                                in_flight += count;
                                let events: Vec<proto::Event> = request.event.into_iter().chain(request.events).collect();
                                let ingestor = ingestor.clone();
                                let trace = trace.clone();
                                // The messages' futures are polled in order, and
                                // each enqueues its events before its first
                                // wait for the broker, so records keep the
                                // order of the stream.
                                pending.push_back(async move {
                                    let outcomes = if events.is_empty() {
                                        vec![Err(missing_event())]
                                    } else {
                                        ingestor.submit_all(events, trace.as_deref()).await
                                    };
                                    let results = outcomes
                                        .into_iter()
                                        .zip(first..)
                                        .map(|(outcome, index)| result(index, outcome))
                                        .collect::<Vec<_>>();
                                    (results, many)
                                });
                            }
                            Ok(None) => reading = false,
                            Err(status) => {
                                reading = false;
                                ending = Some(status);
                            }
                        }
                    }
                    else => break,
                }
            }
            if let Some(status) = ending {
                let _ = tx.send(Err(status)).await;
            }
        }.instrument(span));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn submit_event(
        &self,
        request: Request<SubmitEventRequest>,
    ) -> Result<Response<SubmitEventResponse>, Status> {
        let trace = traceparent(&request);
        self.charge(&request, 1, "the event")?;
        let span = call_span("tributary.v1.IngestService/SubmitEvent", trace.as_deref());
        async move {
            let event = request
                .into_inner()
                .event
                .ok_or_else(|| missing_event().to_status())?;
            let ack = self
                .ingestor
                .submit(event, trace.as_deref())
                .await
                .map_err(|r| r.to_status())?;
            Ok(Response::new(SubmitEventResponse { ack: Some(ack) }))
        }
        .instrument(span)
        .await
    }

    async fn submit_batch(
        &self,
        request: Request<SubmitBatchRequest>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        let trace = traceparent(&request);
        let events = request.get_ref().events.len();
        self.charge(&request, events, "the batch (none of its events)")?;
        let span = call_span("tributary.v1.IngestService/SubmitBatch", trace.as_deref());
        let events = request.into_inner().events;
        // Enqueued in order and waited for together: one round of broker
        // latency.
        let results = self
            .ingestor
            .submit_all(events, trace.as_deref())
            .instrument(span)
            .await
            .into_iter()
            .zip(0..)
            .map(|(outcome, index)| result(index, outcome))
            .collect();
        Ok(Response::new(SubmitBatchResponse { results }))
    }
}
