package tributary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	tributaryv1 "github.com/tributary-io/tributary/client/go/gen/tributary/v1"
)

// SenderOptions tune a [Sender]; zero values mean the defaults.
type SenderOptions struct {
	// Window is the most events that may be sent and not yet answered
	// (default 1024); Send blocks while it is full.
	Window int
	// GiveUpAfter is how long the sender keeps reconnecting without any
	// event being answered before it fails the unanswered events with a
	// KindGaveUp error (default 60 s).
	GiveUpAfter time.Duration
	// FirstConnectTimeout is how long a sender that has never reached
	// ingest tries: a stack that is not running is reported quickly, with a
	// KindUnavailable error naming the address (default 5 s). Once ingest
	// was reached, GiveUpAfter applies.
	FirstConnectTimeout time.Duration
	// ConnectTimeout is how long one attempt may wait for ingest to accept
	// the stream (default 5 s).
	ConnectTimeout time.Duration
	// InitialBackoff is the first pause before reconnecting, doubled after
	// each failure up to MaxBackoff, with jitter (default 100 ms).
	InitialBackoff time.Duration
	// MaxBackoff is the longest pause before reconnecting (default 5 s).
	MaxBackoff time.Duration
	// OnReconnect, when set, is called (on the sender's goroutine) before
	// each reconnection, e.g. to log it.
	OnReconnect func(ReconnectInfo)
}

// ReconnectInfo is what OnReconnect is told.
type ReconnectInfo struct {
	// Reason is why the last stream ended.
	Reason string
	// Delay is how long the sender waits before the next attempt.
	Delay time.Duration
	// Unanswered is how many events will be sent again.
	Unanswered int
	// Attempts is how many streams were opened so far.
	Attempts int
}

// SenderStats are the counts of a sender so far.
type SenderStats struct {
	// Sent counts events handed to Send and queued.
	Sent int
	// Acked counts events acknowledged.
	Acked int
	// Rejected counts events refused by ingest.
	Rejected int
	// Resent counts events written again on a new stream after the
	// previous one failed (an event resent twice counts twice).
	Resent int
	// Attempts counts streams opened.
	Attempts int
	// Reconnects counts streams that failed and were reopened.
	Reconnects int
	// Unanswered is the number of events sent and not yet answered.
	Unanswered int
}

// Pending is the answer to one sent event, delivered once: its [Ack], or
// the [*Error] saying why it was not stored (KindRejected: ingest refused
// it, naming the field; KindGaveUp, KindUnavailable, KindStatus: the sender
// failed; KindClosed: it was aborted).
type Pending struct {
	// IdempotencyKey is the event's idempotency key (assigned by the sender
	// when it had none).
	IdempotencyKey string
	done           chan struct{}
	ack            *Ack
	err            error
}

// Done is closed once the answer is there.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Wait waits for the answer, or until ctx ends (then it returns ctx's error
// and the event stays in flight).
func (p *Pending) Wait(ctx context.Context) (*Ack, error) {
	select {
	case <-p.done:
		return p.ack, p.err
	default:
	}
	select {
	case <-p.done:
		return p.ack, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *Pending) resolve(ack *Ack, err error) {
	p.ack, p.err = ack, err
	close(p.done)
}

type inFlight struct {
	data    []byte // the event as a field of SubmitEventsRequest.events (encodeEvent)
	pending *Pending
	writes  int
}

func inFlightSize(item *inFlight) int { return len(item.data) }

// Sender streams events to ingest over one SubmitEvents call at a time, as
// fast as ingest takes them, with every event's answer delivered to its
// [Pending] in the order the events were sent.
//
// At most Window events are sent and not yet answered; Send blocks for
// room, which is the sender's backpressure. Each event carries an
// idempotency key. When the stream fails (ingest restarted, the connection
// dropped, an event answered UNAVAILABLE) the sender reconnects with
// exponential backoff and sends every unanswered event again, in order,
// with its original idempotency key: nothing acknowledged is lost and the
// processor counts a resent event once. Statuses no retry can fix
// (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT, UNIMPLEMENTED, ...)
// fail the pending events at once.
//
// A Sender is safe for concurrent use. Close it to wait for every answer.
type Sender struct {
	client *Client
	opts   SenderOptions

	room     chan struct{} // one token per unanswered event: the window
	wake     chan struct{} // new events or closing, for the sender's goroutine
	closed   chan struct{} // closed by Close and Abort
	failed   chan struct{} // closed when the sender fails
	finished chan struct{} // closed when the sender's goroutine returns
	ctx      context.Context
	abort    context.CancelFunc

	mu        sync.Mutex
	queue     []*inFlight // unanswered events in send order, from head
	head      int
	written   int // of the unanswered events, how many the current stream carried
	closing   bool
	failure   *Error
	started   bool
	stats     SenderStats
	closeOnce sync.Once
}

// Sender starts a [Sender] on the client's connection. It opens a stream
// only when there is an event to send.
//
//	sender := client.Sender(tributary.SenderOptions{Window: 512})
//	pending, err := sender.Send(ctx, event)
//	...
//	err = sender.Close(ctx) // waits for every answer
func (c *Client) Sender(opts SenderOptions) *Sender {
	if opts.Window <= 0 {
		opts.Window = 1024
	}
	if opts.GiveUpAfter <= 0 {
		opts.GiveUpAfter = 60 * time.Second
	}
	if opts.FirstConnectTimeout <= 0 {
		opts.FirstConnectTimeout = 5 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.InitialBackoff)
	ctx, abort := context.WithCancel(context.Background())
	return &Sender{
		client:   c,
		opts:     opts,
		room:     make(chan struct{}, opts.Window),
		wake:     make(chan struct{}, 1),
		closed:   make(chan struct{}),
		failed:   make(chan struct{}),
		finished: make(chan struct{}),
		ctx:      ctx,
		abort:    abort,
	}
}

// Stats returns the counts so far.
func (s *Sender) Stats() SenderStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	stats := s.stats
	stats.Unanswered = len(s.queue) - s.head
	return stats
}

// Err is why the sender stopped, if it failed (gave up, never reached
// ingest, a status no retry fixes, aborted); nil otherwise.
func (s *Sender) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failure == nil {
		return nil
	}
	return s.failure
}

// Send queues event, blocking while Window events are unanswered (or until
// ctx ends: then it returns ctx's error and nothing is sent), and returns
// the [Pending] of its answer. An event without an idempotency key is sent
// with a random one (the caller's message is not changed), so a resend is
// counted once. The event is encoded at once: changing it afterwards changes
// nothing that is sent.
//
// Send fails with a KindClosed error after Close or Abort, and with the
// sender's failure once it has failed.
func (s *Sender) Send(ctx context.Context, event *Event) (*Pending, error) {
	if event == nil {
		return nil, invalid("event", "must not be nil")
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	select {
	case s.room <- struct{}{}:
	default:
		select {
		case s.room <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.closed:
			return nil, s.checkOpen()
		case <-s.failed:
			return nil, s.checkOpen()
		}
	}
	key := event.GetIdempotencyKey()
	if key == "" {
		event = proto.CloneOf(event)
		key = uuid.NewString()
		event.IdempotencyKey = key
	}
	// Encoded once, now: resends reuse the bytes, and a caller changing
	// the event later changes nothing that is sent.
	data, err := encodeEvent(event)
	if err != nil {
		<-s.room
		return nil, &Error{Kind: KindInvalid, Code: "INVALID_ARGUMENT", Field: "event", Message: err.Error(), Err: err}
	}
	pending := &Pending{IdempotencyKey: key, done: make(chan struct{})}
	s.mu.Lock()
	if err := s.checkOpenLocked(); err != nil {
		s.mu.Unlock()
		<-s.room
		return nil, err
	}
	s.queue = append(s.queue, &inFlight{data: data, pending: pending})
	s.stats.Sent++
	start := !s.started
	s.started = true
	s.mu.Unlock()
	if start {
		go s.run()
	}
	s.signal()
	return pending, nil
}

// SendAndWait sends event and waits for its answer.
func (s *Sender) SendAndWait(ctx context.Context, event *Event) (*Ack, error) {
	pending, err := s.Send(ctx, event)
	if err != nil {
		return nil, err
	}
	return pending.Wait(ctx)
}

// Close stops taking events and waits until every sent event is answered
// (or ctx ends). It returns the sender's failure: KindGaveUp, KindUnavailable
// (never reached ingest) or KindStatus (a status no retry fixes, e.g.
// UNAUTHENTICATED). Sends blocked for room fail with KindClosed.
func (s *Sender) Close(ctx context.Context) error {
	s.markClosing()
	s.signal()
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if started {
		select {
		case <-s.finished:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Err()
}

// Abort stops at once: the unanswered events fail with a KindClosed error
// (they may or may not have been stored).
func (s *Sender) Abort() {
	s.markClosing()
	s.abort()
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if started {
		<-s.finished
	}
	s.fail(closedError("the sender was aborted"))
}

func (s *Sender) markClosing() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.closeOnce.Do(func() { close(s.closed) })
}

func (s *Sender) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Sender) checkOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkOpenLocked()
}

func (s *Sender) checkOpenLocked() error {
	if s.failure != nil {
		return s.failure
	}
	if s.closing {
		return closedError("the sender is closed")
	}
	return nil
}

// fail fails every unanswered event with err (or the first failure), for good.
func (s *Sender) fail(err *Error) {
	s.mu.Lock()
	if s.failure == nil {
		s.failure = err
		close(s.failed)
	}
	err = s.failure
	items := s.queue[s.head:]
	s.queue, s.head, s.written = nil, 0, 0
	s.mu.Unlock()
	for _, item := range items {
		item.pending.resolve(nil, err)
		<-s.room
	}
}

// answer pops the oldest unanswered event (the stream carried it) and
// delivers its answer.
func (s *Sender) answer(ack *Ack, err error) {
	item := s.queue[s.head]
	s.queue[s.head] = nil
	s.head++
	s.written--
	if err == nil {
		s.stats.Acked++
	} else {
		s.stats.Rejected++
	}
	if s.head >= 1024 && s.head*2 >= len(s.queue) {
		s.queue = append([]*inFlight(nil), s.queue[s.head:]...)
		s.head = 0
	}
	s.mu.Unlock()
	item.pending.resolve(ack, err)
	<-s.room
	s.mu.Lock()
}

type endKind int

const (
	endDone endKind = iota
	endRetry
	endFatal
)

type streamEnd struct {
	kind   endKind
	reason string
	err    *Error
}

func retry(format string, args ...any) streamEnd {
	return streamEnd{kind: endRetry, reason: fmt.Sprintf(format, args...)}
}

// run opens streams while there are unanswered events, until the sender is
// closed and everything is answered, or it fails.
func (s *Sender) run() {
	defer close(s.finished)
	var firstAttempt, failingSince time.Time
	reached := false
	failed := 0 // attempts since the last progress
	backoff := newBackoff(s.opts.InitialBackoff, s.opts.MaxBackoff)
	for {
		if s.ctx.Err() != nil {
			s.fail(closedError("the sender was aborted"))
			return
		}
		s.mu.Lock()
		unanswered, closing := len(s.queue)-s.head, s.closing
		s.mu.Unlock()
		if unanswered == 0 {
			if closing {
				return
			}
			// Nothing waits for an answer, so no time without progress
			// accrues while idle; open a stream only when there is
			// something to send.
			failingSince = time.Time{}
			failed = 0
			backoff.reset()
			select {
			case <-s.wake:
			case <-s.ctx.Done():
			}
			continue
		}
		s.mu.Lock()
		s.stats.Attempts++
		attempts := s.stats.Attempts
		s.mu.Unlock()
		if firstAttempt.IsZero() {
			// From the first attempt, not from creation: a sender may wait
			// long for its first event.
			firstAttempt = time.Now()
		}
		answered, reachedNow, end := s.stream()
		reached = reached || reachedNow
		switch {
		case s.ctx.Err() != nil:
			s.fail(closedError("the sender was aborted"))
			return
		case end.kind == endDone:
			return
		case end.kind == endFatal:
			s.fail(end.err)
			return
		}
		if answered {
			failingSince = time.Time{}
			failed = 0
			backoff.reset()
		}
		failed++
		now := time.Now()
		if !reached && now.Sub(firstAttempt) >= s.opts.FirstConnectTimeout {
			s.fail(unavailable(s.client.url, end.reason, nil))
			return
		}
		if failingSince.IsZero() {
			failingSince = now
		}
		if waited := now.Sub(failingSince); waited >= s.opts.GiveUpAfter {
			s.fail(&Error{
				Kind:     KindGaveUp,
				Code:     "UNAVAILABLE",
				GRPCCode: codes.Unavailable,
				URL:      s.client.url,
				Attempts: failed,
				Message: fmt.Sprintf("gave up after %d attempts over %.1f s without progress to stream to %s: %s",
					failed, waited.Seconds(), s.client.url, end.reason),
			})
			return
		}
		delay := backoff.next()
		if !reached {
			delay = max(0, min(delay, firstAttempt.Add(s.opts.FirstConnectTimeout).Sub(now)))
		}
		s.mu.Lock()
		s.stats.Reconnects++
		info := ReconnectInfo{Reason: end.reason, Delay: delay, Unanswered: len(s.queue) - s.head, Attempts: attempts}
		s.mu.Unlock()
		s.notify(info)
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-s.ctx.Done():
			timer.Stop()
		}
	}
}

func (s *Sender) notify(info ReconnectInfo) {
	if s.opts.OnReconnect == nil {
		return
	}
	// A panicking callback must not fail the sender's events.
	defer func() { _ = recover() }()
	s.opts.OnReconnect(info)
}

type eventStream = grpc.BidiStreamingClient[tributaryv1.SubmitEventsRequest, tributaryv1.SubmitEventsResponse]

// stream runs one SubmitEvents call: writes the unanswered events first,
// then new ones as they come, and answers events in order as results
// arrive. It reports whether any event was answered, whether ingest was
// reached, and how the stream ended.
func (s *Sender) stream() (answered, reached bool, end streamEnd) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	var accepted, timedOut atomic.Bool
	timer := time.AfterFunc(s.opts.ConnectTimeout, func() {
		if !accepted.Load() {
			timedOut.Store(true)
			cancel()
		}
	})
	defer timer.Stop()
	classify := func(err error) streamEnd {
		if timedOut.Load() {
			return retry("ingest did not accept the stream within %v", s.opts.ConnectTimeout)
		}
		st := status.Convert(err)
		if fatal(st.Code()) {
			return streamEnd{kind: endFatal, err: fromCallError(err, s.client.url, "").(*Error)}
		}
		return retry("%s: %s", codeName(st.Code()), st.Message())
	}

	stream, err := s.client.ingest.SubmitEvents(ctx)
	if err != nil {
		return false, false, classify(err)
	}
	s.mu.Lock()
	s.written = 0
	s.mu.Unlock()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		s.write(ctx, stream)
	}()
	defer func() {
		cancel() // ends the call, and so the writer
		<-wrote
	}()

	if header, err := stream.Header(); err == nil && header != nil {
		accepted.Store(true)
		reached = true
	}
	var index uint64
	for {
		response, err := stream.Recv()
		if err != nil {
			s.mu.Lock()
			finished := s.closing && s.head == len(s.queue)
			s.mu.Unlock()
			switch {
			case finished:
				// Every event is answered; however the stream ended.
				return answered, reached, streamEnd{kind: endDone}
			case errors.Is(err, io.EOF):
				return answered, reached, retry("ingest ended the stream early")
			default:
				return answered, reached, classify(err)
			}
		}
		accepted.Store(true)
		reached = true
		for _, result := range results(response) {
			if result.index != index {
				return answered, reached, retry("ingest answered out of order at %d", index)
			}
			if result.ack == nil && result.err == nil {
				return answered, reached, retry("a result without an outcome")
			}
			if result.err != nil && result.err.GetCode() == tributaryv1.EventErrorCode_EVENT_ERROR_CODE_UNAVAILABLE {
				// Not stored: resend it and everything after it.
				return answered, reached, retry("UNAVAILABLE: %s", result.err.GetMessage())
			}
			s.mu.Lock()
			if s.written == 0 {
				s.mu.Unlock()
				return answered, reached, retry("ingest answered event %d, which was not sent", index)
			}
			if result.ack != nil {
				s.answer(result.ack, nil)
			} else {
				s.answer(nil, rejected(result.err, s.queue[s.head].pending.IdempotencyKey))
			}
			finished := s.closing && s.head == len(s.queue)
			s.mu.Unlock()
			index++
			answered = true
			if finished {
				// The writer half-closes; ingest then ends the stream. Do
				// not wait long for that: everything is answered.
				time.AfterFunc(2*time.Second, cancel)
			}
		}
	}
}

// write sends the events of the unanswered queue that this stream has not
// carried yet, many to a message (whatever is queued when the stream is
// ready for the next message, up to maxEventsPerMessage and
// maxMessageBytes), waiting for new ones, and half-closes once the sender
// is closing and every event is written.
func (s *Sender) write(ctx context.Context, stream eventStream) {
	var entries [][]byte
	for {
		s.mu.Lock()
		if next := s.head + s.written; next < len(s.queue) {
			batch := s.queue[next:]
			batch = batch[:fitting(batch, inFlightSize)]
			entries = entries[:0]
			for _, item := range batch {
				if item.writes > 0 {
					s.stats.Resent++
				}
				item.writes++
				entries = append(entries, item.data)
			}
			s.written += len(batch)
			s.mu.Unlock()
			if err := stream.Send(eventsMessage(entries)); err != nil {
				// The call ended: the reader sees its status.
				return
			}
			continue
		}
		closing := s.closing
		s.mu.Unlock()
		if closing {
			// Half-close: ingest answers the rest and ends the stream.
			_ = stream.CloseSend()
			return
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		}
	}
}

// fatal reports whether a stream's status says the request itself is
// wrong: no retry can fix it. Anything else (unreachable, restarting,
// overloaded, reset) is retried.
func fatal(code codes.Code) bool {
	switch code {
	case codes.InvalidArgument, codes.Unauthenticated, codes.PermissionDenied, codes.Unimplemented,
		codes.FailedPrecondition, codes.OutOfRange, codes.NotFound, codes.AlreadyExists:
		return true
	}
	return false
}
