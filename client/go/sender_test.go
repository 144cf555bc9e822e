package tributary

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func click(t *testing.T, i int, ip string) *Event {
	t.Helper()
	event, err := AdClick(fmt.Sprintf("adv-%d", i%3), ip, "go-test", "https://example.com/", IdempotencyKey(fmt.Sprintf("key-%d", i)))
	if err != nil {
		t.Fatal(err)
	}
	return event
}

// sendAll sends events through sender and returns their pendings.
func sendAll(t *testing.T, ctx context.Context, sender *Sender, events []*Event) []*Pending {
	t.Helper()
	pendings := make([]*Pending, len(events))
	for i, event := range events {
		p, err := sender.Send(ctx, event)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		pendings[i] = p
	}
	return pendings
}

func TestSenderAnswersEveryEventInOrderAndRejectsNamingTheField(t *testing.T) {
	ctx := testContext(t)
	fake := newFake(t)
	sender := fake.client().Sender(SenderOptions{Window: 8})
	var events []*Event
	for i := range 100 {
		ip := "203.0.113.7"
		if i%10 == 3 {
			ip = "not-an-ip"
		}
		events = append(events, click(t, i, ip))
	}
	pendings := sendAll(t, ctx, sender, events)
	if err := sender.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	lastOffset := int64(-1)
	for i, p := range pendings {
		ack, err := p.Wait(ctx)
		if i%10 == 3 {
			var terr *Error
			if !errors.As(err, &terr) || !errors.Is(err, ErrRejected) {
				t.Fatalf("event %d: want a rejection, got %v, %v", i, ack, err)
			}
			if terr.Code != "INVALID_ARGUMENT" || terr.Field != "ad_click.ip_address" || terr.IdempotencyKey != fmt.Sprintf("key-%d", i) {
				t.Fatalf("event %d: %#v", i, terr)
			}
			if terr.Message != `"not-an-ip" is not an IPv4 or IPv6 address` || terr.Error() != `ad_click.ip_address: "not-an-ip" is not an IPv4 or IPv6 address` {
				t.Fatalf("event %d: message %q", i, terr.Error())
			}
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("event %d: status code %v", i, status.Code(err))
			}
			continue
		}
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ack.Offset <= lastOffset || ack.Topic != "tributary.events.ad_click" || ack.SchemaID != 1 {
			t.Fatalf("event %d: ack %+v after offset %d", i, ack, lastOffset)
		}
		lastOffset = ack.Offset
	}
	stats := sender.Stats()
	if stats.Sent != 100 || stats.Acked != 90 || stats.Rejected != 10 || stats.Unanswered != 0 || stats.Reconnects != 0 || stats.Attempts != 1 {
		t.Fatalf("stats %+v", stats)
	}
	if got := len(fake.storedKeys()); got != 90 {
		t.Fatalf("stored %d events", got)
	}
}

func TestSenderResendsEveryUnansweredEventInOrderWithItsKeyAfterTheStreamFails(t *testing.T) {
	ctx := testContext(t)
	fake := newFake(t)
	fake.failStreamAfter = 20
	var reconnects []ReconnectInfo
	sender := fake.client().Sender(SenderOptions{Window: 64, OnReconnect: func(info ReconnectInfo) {
		reconnects = append(reconnects, info)
	}})
	var events []*Event
	for i := range 50 {
		events = append(events, click(t, i, "10.0.0.1"))
	}
	pendings := sendAll(t, ctx, sender, events)
	if err := sender.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	for i, p := range pendings {
		if _, err := p.Wait(ctx); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	// Every event stored exactly once (the fake stores none of the
	// unanswered ones), the second stream starting with the first
	// unanswered event and carrying the rest in order.
	stored := fake.storedKeys()
	for i := range 50 {
		if n := stored[fmt.Sprintf("key-%d", i)]; n != 1 {
			t.Fatalf("key-%d stored %d times", i, n)
		}
	}
	streams := fake.streamKeys()
	if len(streams) != 2 {
		t.Fatalf("%d streams: %v", len(streams), streams)
	}
	for i, key := range streams[1] {
		if want := fmt.Sprintf("key-%d", 20+i); key != want {
			t.Fatalf("second stream event %d is %s, want %s", i, key, want)
		}
	}
	if len(streams[1]) != 30 {
		t.Fatalf("the second stream carried %d events", len(streams[1]))
	}
	// Everything unanswered was queued when the second stream opened: it
	// went in one message.
	if sizes := fake.messageSizes(); sizes[1][0] != 30 {
		t.Fatalf("messages per stream: %v", sizes)
	}
	stats := sender.Stats()
	// Resent: what the first stream carried beyond the answered events (at
	// least what the fake read of it, at most every unanswered event).
	if stats.Reconnects != 1 || stats.Resent < len(streams[0])-20 || stats.Resent > 30 || stats.Resent < 1 || stats.Acked != 50 {
		t.Fatalf("stats %+v, first stream %d events", stats, len(streams[0]))
	}
	if len(reconnects) != 1 || !strings.Contains(reconnects[0].Reason, "UNAVAILABLE: ingest is restarting") || reconnects[0].Unanswered != 30 {
		t.Fatalf("reconnects %+v", reconnects)
	}
}

func TestSenderResendsFromAnEventAnsweredUnavailable(t *testing.T) {
	ctx := testContext(t)
	fake := newFake(t)
	fake.unavailableOnce = "key-5"
	sender := fake.client().Sender(SenderOptions{})
	var events []*Event
	for i := range 10 {
		events = append(events, click(t, i, "10.0.0.1"))
	}
	pendings := sendAll(t, ctx, sender, events)
	if err := sender.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i, p := range pendings {
		if _, err := p.Wait(ctx); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	streams := fake.streamKeys()
	if len(streams) != 2 || streams[1][0] != "key-5" || len(streams[1]) != 5 {
		t.Fatalf("streams %v", streams)
	}
	if stored := fake.storedKeys(); len(stored) != 10 {
		t.Fatalf("stored %v", stored)
	}
}

func TestSendBlocksWhileTheWindowIsFullAndRespectsItsContext(t *testing.T) {
	ctx := testContext(t)
	fake := newFake(t)
	fake.hold = make(chan struct{})
	sender := fake.client().Sender(SenderOptions{Window: 4})
	pendings := sendAll(t, ctx, sender, []*Event{click(t, 0, "10.0.0.1"), click(t, 1, "10.0.0.1"), click(t, 2, "10.0.0.1"), click(t, 3, "10.0.0.1")})
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	started := time.Now()
	if _, err := sender.Send(short, click(t, 4, "10.0.0.1")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a send into a full window: %v", err)
	}
	if waited := time.Since(started); waited < 150*time.Millisecond {
		t.Fatalf("the send returned after %v", waited)
	}
	if got := sender.Stats().Unanswered; got != 4 {
		t.Fatalf("%d unanswered", got)
	}
	// Room again once answers come.
	blocked := make(chan error, 1)
	go func() {
		_, err := sender.Send(ctx, click(t, 5, "10.0.0.1"))
		blocked <- err
	}()
	select {
	case err := <-blocked:
		t.Fatalf("the send did not wait: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(fake.hold)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	if err := sender.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range pendings {
		if _, err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if stats := sender.Stats(); stats.Acked != 5 || stats.Sent != 5 {
		t.Fatalf("stats %+v", stats)
	}
}

func TestAStatusNoRetryFixesFailsThePendingEventsAtOnce(t *testing.T) {
	ctx := testContext(t)
	fake := newFake(t)
	fake.status = status.New(codes.Unauthenticated, "a valid API key is required")
	sender := fake.client().Sender(SenderOptions{})
	started := time.Now()
	pendings := sendAll(t, ctx, sender, []*Event{click(t, 0, "10.0.0.1"), click(t, 1, "10.0.0.1")})
	for _, p := range pendings {
		_, err := p.Wait(ctx)
		var terr *Error
		if !errors.As(err, &terr) || terr.Kind != KindStatus || terr.Code != "UNAUTHENTICATED" || terr.GRPCCode != codes.Unauthenticated {
			t.Fatalf("want UNAUTHENTICATED, got %#v", err)
		}
	}
	if took := time.Since(started); took > 3*time.Second {
		t.Fatalf("took %v", took)
	}
	if err := sender.Close(ctx); !errors.Is(err, ErrStatus) {
		t.Fatalf("close: %v", err)
	}
	if _, err := sender.Send(ctx, click(t, 2, "10.0.0.1")); !errors.Is(err, ErrStatus) {
		t.Fatalf("send after failure: %v", err)
	}
	if stats := sender.Stats(); stats.Reconnects != 0 {
		t.Fatalf("retried a fatal status: %+v", stats)
	}
}

func TestTheSenderGivesUpAfterTimeWithoutProgress(t *testing.T) {
	ctx := testContext(t)
	fake := newFake(t)
	fake.status = status.New(codes.Unavailable, "the broker is down")
	sender := fake.client().Sender(SenderOptions{GiveUpAfter: 700 * time.Millisecond, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	started := time.Now()
	p, err := sender.Send(ctx, click(t, 0, "10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Wait(ctx)
	var terr *Error
	if !errors.As(err, &terr) || terr.Kind != KindGaveUp || !errors.Is(err, ErrGaveUp) || terr.Attempts < 2 {
		t.Fatalf("want gave up, got %#v", err)
	}
	if !strings.Contains(terr.Message, fake.url()) || !strings.Contains(terr.Message, "the broker is down") {
		t.Fatalf("message %q", terr.Message)
	}
	if took := time.Since(started); took < 700*time.Millisecond || took > 5*time.Second {
		t.Fatalf("gave up after %v", took)
	}
	if err := sender.Close(ctx); !errors.Is(err, ErrGaveUp) {
		t.Fatalf("close: %v", err)
	}
}

func TestASenderThatNeverReachesIngestFailsNamingTheAddress(t *testing.T) {
	ctx := testContext(t)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + listener.Addr().String()
	_ = listener.Close() // nothing listens there now
	client, err := NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sender := client.Sender(SenderOptions{FirstConnectTimeout: time.Second})
	started := time.Now()
	p, err := sender.Send(ctx, click(t, 0, "10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Wait(ctx)
	var terr *Error
	if !errors.As(err, &terr) || terr.Kind != KindUnavailable || terr.URL != url || !strings.HasPrefix(terr.Message, "cannot reach Tributary at "+url+": ") {
		t.Fatalf("got %#v", err)
	}
	if !strings.Contains(terr.Message, "connection refused") {
		t.Fatalf("no reason in %q", terr.Message)
	}
	if took := time.Since(started); took < time.Second || took > 4*time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestTheSenderResendsAcrossARestartOfIngest(t *testing.T) {
	ctx := testContext(t)
	fake := newFake(t)
	fake.hold = make(chan struct{})
	sender := fake.client().Sender(SenderOptions{Window: 16, InitialBackoff: 20 * time.Millisecond})
	var events []*Event
	for i := range 40 {
		events = append(events, click(t, i, "10.0.0.1"))
	}
	var mu sync.Mutex
	var pendings []*Pending
	sent := make(chan error, 1)
	go func() {
		for _, event := range events {
			p, err := sender.Send(ctx, event)
			if err != nil {
				sent <- err
				return
			}
			mu.Lock()
			pendings = append(pendings, p)
			mu.Unlock()
		}
		sent <- nil
	}()
	// The window fills while ingest holds its answers; then it dies and
	// comes back on the same port.
	deadline := time.Now().Add(5 * time.Second)
	for sender.Stats().Unanswered < 16 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	fake.stop()
	time.Sleep(200 * time.Millisecond)
	fake.mu.Lock()
	fake.hold = nil
	fake.mu.Unlock()
	fake.serve(fake.addr)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := sender.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i, p := range pendings {
		if _, err := p.Wait(ctx); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	stored := fake.storedKeys()
	if len(stored) != 40 {
		t.Fatalf("stored %d keys", len(stored))
	}
	stats := sender.Stats()
	if stats.Reconnects < 1 || stats.Resent < 16 || stats.Acked != 40 {
		t.Fatalf("stats %+v", stats)
	}
}

func TestAbortFailsTheUnansweredEvents(t *testing.T) {
	ctx := testContext(t)
	fake := newFake(t)
	fake.hold = make(chan struct{})
	defer close(fake.hold)
	sender := fake.client().Sender(SenderOptions{})
	p, err := sender.Send(ctx, click(t, 0, "10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	sender.Abort()
	if _, err := p.Wait(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v", err)
	}
	if _, err := sender.Send(ctx, click(t, 1, "10.0.0.1")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after abort: %v", err)
	}
	if err := sender.Close(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("close after abort: %v", err)
	}
}

func TestSendGivesAnEventWithoutAKeyARandomOneAndLeavesTheCallersMessageAlone(t *testing.T) {
	ctx := testContext(t)
	fake := newFake(t)
	sender := fake.client().Sender(SenderOptions{})
	event := click(t, 0, "10.0.0.1")
	event.IdempotencyKey = ""
	p, err := sender.Send(ctx, event)
	if err != nil {
		t.Fatal(err)
	}
	if event.IdempotencyKey != "" || len(p.IdempotencyKey) != 36 {
		t.Fatalf("event key %q, pending key %q", event.IdempotencyKey, p.IdempotencyKey)
	}
	if err := sender.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if stored := fake.storedKeys(); stored[p.IdempotencyKey] != 1 {
		t.Fatalf("stored %v", stored)
	}
	if _, err := sender.Send(ctx, event); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

func TestClosingAnIdleSenderReturnsAtOnce(t *testing.T) {
	fake := newFake(t)
	sender := fake.client().Sender(SenderOptions{})
	if err := sender.Close(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if len(fake.streamKeys()) != 0 {
		t.Fatal("an idle sender opened a stream")
	}
}

func TestBackoffDoublesWithEqualJitterUpToItsMaximum(t *testing.T) {
	b := newBackoff(100*time.Millisecond, time.Second)
	b.random = func() float64 { return 1 }
	var got []time.Duration
	for range 6 {
		got = append(got, b.next())
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v", got)
		}
	}
	b.random = func() float64 { return 0 }
	b.reset()
	if d := b.next(); d != 50*time.Millisecond {
		t.Fatalf("after reset, the least delay is %v", d)
	}
}
