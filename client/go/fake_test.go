package tributary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tributaryv1 "github.com/tributary-io/tributary/client/go/gen/tributary/v1"
)

// fakeIngest is an in-process IngestService and QueryService on a real
// loopback port, for the unit tests: it refuses ad clicks with a bad IP
// address and negative prices naming the field, as ingest does, records
// every event it stored by idempotency key, and can be told to fail.
type fakeIngest struct {
	t      *testing.T
	addr   string
	server *grpc.Server

	mu sync.Mutex
	// stored counts how often each idempotency key was stored.
	stored map[string]int
	// streams holds the idempotency keys each SubmitEvents call received, in order.
	streams [][]string
	// messages holds, per SubmitEvents call, how many events each message carried.
	messages [][]int
	// authorization holds the authorization header of every call.
	authorization []string
	offset        int64

	// failStreamAfter, when > 0, ends the first stream with UNAVAILABLE
	// after answering that many events (and reading at least one more).
	failStreamAfter int
	// unavailableOnce answers the event with this key EVENT_ERROR_CODE_UNAVAILABLE the first time.
	unavailableOnce string
	// status, when set, ends every stream with it at once.
	status *status.Status
	// hold, when set, delays every answer until it is closed.
	hold chan struct{}
	// pages are the pages GetAggregates serves, in order (token = index).
	pages [][]*tributaryv1.Aggregate
	// queries records every GetAggregates request.
	queries []*tributaryv1.GetAggregatesRequest

	tributaryv1.UnimplementedIngestServiceServer
	tributaryv1.UnimplementedQueryServiceServer
}

func newFake(t *testing.T) *fakeIngest {
	t.Helper()
	f := &fakeIngest{t: t, stored: map[string]int{}}
	f.serve("127.0.0.1:0")
	t.Cleanup(func() { f.stop() })
	return f
}

func (f *fakeIngest) url() string { return "http://" + f.addr }

// serve listens on addr (the same port again after stop, to play a restart).
func (f *fakeIngest) serve(addr string) {
	f.t.Helper()
	var listener net.Listener
	var err error
	for range 50 { // the port of a stopped server may linger briefly
		if listener, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatalf("listen %s: %v", addr, err)
	}
	f.addr = listener.Addr().String()
	f.server = grpc.NewServer()
	tributaryv1.RegisterIngestServiceServer(f.server, f)
	tributaryv1.RegisterQueryServiceServer(f.server, f)
	go func() { _ = f.server.Serve(listener) }()
}

// stop kills the server: every open stream breaks.
func (f *fakeIngest) stop() { f.server.Stop() }

func (f *fakeIngest) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authorization = append(f.authorization, md.Get("authorization")...)
}

// judge is what ingest would say about the event, storing it when valid.
func (f *fakeIngest) judge(event *tributaryv1.Event) *tributaryv1.EventResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(code tributaryv1.EventErrorCode, field, message string) *tributaryv1.EventResult {
		return &tributaryv1.EventResult{Outcome: &tributaryv1.EventResult_Error{Error: &tributaryv1.EventError{
			Code: code, Field: field, Message: field + ": " + message,
		}}}
	}
	key := event.GetIdempotencyKey()
	if key != "" && key == f.unavailableOnce {
		f.unavailableOnce = ""
		return fail(tributaryv1.EventErrorCode_EVENT_ERROR_CODE_UNAVAILABLE, "", "the broker is not answering")
	}
	switch p := event.GetPayload().(type) {
	case *tributaryv1.Event_AdClick:
		if _, err := netip.ParseAddr(p.AdClick.GetIpAddress()); err != nil {
			return fail(tributaryv1.EventErrorCode_EVENT_ERROR_CODE_INVALID_ARGUMENT, "ad_click.ip_address",
				fmt.Sprintf("%q is not an IPv4 or IPv6 address", p.AdClick.GetIpAddress()))
		}
	case *tributaryv1.Event_PriceTick:
		if p.PriceTick.GetPrice() <= 0 {
			return fail(tributaryv1.EventErrorCode_EVENT_ERROR_CODE_INVALID_ARGUMENT, "price_tick.price", "must be positive")
		}
	case nil:
		return fail(tributaryv1.EventErrorCode_EVENT_ERROR_CODE_INVALID_ARGUMENT, "payload", "is required")
	}
	f.stored[key]++
	f.offset++
	return &tributaryv1.EventResult{Outcome: &tributaryv1.EventResult_Ack{Ack: &tributaryv1.EventAck{
		Topic: "tributary.events." + event.GetEventType(), Offset: f.offset - 1, SchemaId: 1,
	}}}
}

func (f *fakeIngest) SubmitEvents(stream grpc.BidiStreamingServer[tributaryv1.SubmitEventsRequest, tributaryv1.SubmitEventsResponse]) error {
	f.record(stream.Context())
	f.mu.Lock()
	if f.status != nil {
		st := f.status
		f.mu.Unlock()
		return st.Err()
	}
	f.streams = append(f.streams, nil)
	f.messages = append(f.messages, nil)
	n := len(f.streams) - 1
	failAfter := 0
	if n == 0 {
		failAfter = f.failStreamAfter
	}
	hold := f.hold
	f.mu.Unlock()
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	var index uint64
	for {
		request, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		// One event answered with `result`, many compactly (acked runs and
		// errors), as ingest does; the compact answers of a message are
		// spread over responses of at most 7 events, as ingest may.
		single := request.GetEvent() != nil && len(request.GetEvents()) == 0
		events := request.GetEvents()
		if request.GetEvent() != nil {
			events = append([]*tributaryv1.Event{request.GetEvent()}, events...)
		}
		f.mu.Lock()
		f.messages[n] = append(f.messages[n], len(events))
		f.mu.Unlock()
		var compact []*tributaryv1.EventResult
		flush := func() error {
			if len(compact) == 0 {
				return nil
			}
			response := compactResponse(compact)
			compact = nil
			return stream.Send(response)
		}
		for _, event := range events {
			f.mu.Lock()
			f.streams[n] = append(f.streams[n], event.GetIdempotencyKey())
			f.mu.Unlock()
			if failAfter > 0 && index == uint64(failAfter) {
				// This event and the ones after it stay unanswered.
				_ = flush()
				return status.Error(codes.Unavailable, "ingest is restarting")
			}
			if hold != nil {
				if err := flush(); err != nil {
					return err
				}
				select {
				case <-hold:
				case <-stream.Context().Done():
					return stream.Context().Err()
				}
			}
			result := f.judge(event)
			result.Index = index
			index++
			if single {
				if err := stream.Send(&tributaryv1.SubmitEventsResponse{Result: result}); err != nil {
					return err
				}
				continue
			}
			compact = append(compact, result)
			if len(compact) == 7 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
	}
}

// compactResponse answers consecutive results with acked runs (consecutive
// acks of one topic and schema) and errors, as ingest's CompactResults.
func compactResponse(results []*tributaryv1.EventResult) *tributaryv1.SubmitEventsResponse {
	response := &tributaryv1.SubmitEventsResponse{}
	for _, result := range results {
		ack := result.GetAck()
		if ack == nil {
			response.Errors = append(response.Errors, result)
			continue
		}
		if k := len(response.Acked); k > 0 {
			run := response.Acked[k-1]
			if run.FirstIndex+uint64(len(run.Offsets)) == result.Index && run.Topic == ack.Topic && run.SchemaId == ack.SchemaId {
				run.Partitions = append(run.Partitions, ack.Partition)
				run.Offsets = append(run.Offsets, ack.Offset)
				continue
			}
		}
		response.Acked = append(response.Acked, &tributaryv1.AckedEvents{
			FirstIndex: result.Index, Topic: ack.Topic, SchemaId: ack.SchemaId,
			Partitions: []int32{ack.Partition}, Offsets: []int64{ack.Offset},
		})
	}
	return response
}

func (f *fakeIngest) SubmitEvent(ctx context.Context, request *tributaryv1.SubmitEventRequest) (*tributaryv1.SubmitEventResponse, error) {
	f.record(ctx)
	result := f.judge(request.GetEvent())
	if e := result.GetError(); e != nil {
		return nil, status.Error(codes.InvalidArgument, e.GetMessage())
	}
	return &tributaryv1.SubmitEventResponse{Ack: result.GetAck()}, nil
}

func (f *fakeIngest) SubmitBatch(ctx context.Context, request *tributaryv1.SubmitBatchRequest) (*tributaryv1.SubmitBatchResponse, error) {
	f.record(ctx)
	response := &tributaryv1.SubmitBatchResponse{}
	for i, event := range request.GetEvents() {
		result := f.judge(event)
		result.Index = uint64(i)
		response.Results = append(response.Results, result)
	}
	return response, nil
}

func (f *fakeIngest) GetAggregates(ctx context.Context, request *tributaryv1.GetAggregatesRequest) (*tributaryv1.GetAggregatesResponse, error) {
	f.record(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, request)
	if f.status != nil {
		return nil, f.status.Err()
	}
	if request.GetPageSize() < 0 {
		return nil, status.Error(codes.InvalidArgument, "page_size: must be between 1 and 10000")
	}
	page := 0
	if token := request.GetPageToken(); token != "" {
		if _, err := fmt.Sscanf(token, "page-%d", &page); err != nil {
			return nil, status.Error(codes.InvalidArgument, "page_token: is not a token of this query")
		}
	}
	if page >= len(f.pages) {
		return &tributaryv1.GetAggregatesResponse{}, nil
	}
	response := &tributaryv1.GetAggregatesResponse{Aggregates: f.pages[page]}
	if page+1 < len(f.pages) {
		response.NextPageToken = fmt.Sprintf("page-%d", page+1)
	}
	return response, nil
}

func (f *fakeIngest) GetPriceAccuracy(ctx context.Context, request *tributaryv1.GetPriceAccuracyRequest) (*tributaryv1.GetPriceAccuracyResponse, error) {
	f.record(ctx)
	return &tributaryv1.GetPriceAccuracyResponse{Accuracy: []*tributaryv1.PriceAccuracy{{
		Pair: "ETH-USD", Source: "a", WindowStart: request.GetStartTime(), SourceAvg: 101, OthersMean: 100, PercentDifference: 1,
	}}}, nil
}

// storedKeys is a copy of how often each key was stored.
func (f *fakeIngest) storedKeys() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.stored))
	for k, v := range f.stored {
		out[k] = v
	}
	return out
}

// streamKeys is a copy of the keys each stream received.
func (f *fakeIngest) streamKeys() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]string, len(f.streams))
	for i, s := range f.streams {
		out[i] = append([]string(nil), s...)
	}
	return out
}

// messageSizes is a copy of how many events each message of each stream carried.
func (f *fakeIngest) messageSizes() [][]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]int, len(f.messages))
	for i, m := range f.messages {
		out[i] = append([]int(nil), m...)
	}
	return out
}

// client connects to the fake, failing the test when it cannot.
func (f *fakeIngest) client(opts ...Option) *Client {
	f.t.Helper()
	c, err := NewClient(f.url(), opts...)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = c.Close() })
	return c
}
