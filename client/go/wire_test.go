package tributary

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	tributaryv1 "github.com/tributary-io/tributary/client/go/gen/tributary/v1"
)

func size(b []byte) int { return len(b) }

func TestFittingKeepsAMessageWithinItsEventAndByteLimits(t *testing.T) {
	small := make([][]byte, 3000)
	for i := range small {
		small[i] = make([]byte, 10)
	}
	if n := fitting(small, size); n != maxEventsPerMessage {
		t.Fatalf("%d small events in a message", n)
	}
	big := make([][]byte, 10)
	for i := range big {
		big[i] = make([]byte, 20_000)
	}
	if n := fitting(big, size); n != 3 { // 60,000 bytes; a fourth would pass 64 KiB
		t.Fatalf("%d events of 20 kB in a message", n)
	}
	huge := [][]byte{make([]byte, 100_000), make([]byte, 10)}
	if n := fitting(huge, size); n != 1 {
		t.Fatalf("an event over the limit went with %d others", n-1)
	}
	if n := fitting([][]byte(nil), size); n != 0 {
		t.Fatalf("%d events of none", n)
	}
}

func TestAMessageOfEncodedEventsDecodesToTheEvents(t *testing.T) {
	var events []*Event
	var entries [][]byte
	for i := range 3 {
		event, err := PriceTick("ETH-USD", "a", float64(i+1), IdempotencyKey(fmt.Sprintf("k-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		entry, err := encodeEvent(event)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, event)
		entries = append(entries, entry)
	}
	wire, err := proto.Marshal(eventsMessage(entries))
	if err != nil {
		t.Fatal(err)
	}
	var decoded tributaryv1.SubmitEventsRequest
	if err := proto.Unmarshal(wire, &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.GetEvent() != nil || len(decoded.GetEvents()) != 3 {
		t.Fatalf("decoded %v", &decoded)
	}
	for i, event := range decoded.GetEvents() {
		if !proto.Equal(event, events[i]) {
			t.Fatalf("event %d: %v, want %v", i, event, events[i])
		}
	}
}

func TestResultsReadsCompactResponsesBackIntoOneResultPerEventInOrder(t *testing.T) {
	bad := &tributaryv1.EventError{Code: tributaryv1.EventErrorCode_EVENT_ERROR_CODE_INVALID_ARGUMENT, Field: "price_tick.price"}
	response := &tributaryv1.SubmitEventsResponse{
		Acked: []*tributaryv1.AckedEvents{
			{FirstIndex: 10, Topic: "t.a", SchemaId: 1, Partitions: []int32{0, 1}, Offsets: []int64{100, 200}},
			{FirstIndex: 13, Topic: "t.b", SchemaId: 2, Partitions: []int32{3}, Offsets: []int64{300}},
		},
		Errors: []*tributaryv1.EventResult{
			{Index: 14, Outcome: &tributaryv1.EventResult_Error{Error: bad}},
			{Index: 12, Outcome: &tributaryv1.EventResult_Error{Error: bad}},
		},
	}
	var got []string
	for _, r := range results(response) {
		switch {
		case r.ack != nil:
			got = append(got, fmt.Sprintf("%d:%s/%d@%d#%d", r.index, r.ack.Topic, r.ack.Partition, r.ack.Offset, r.ack.SchemaID))
		case r.err != nil:
			got = append(got, fmt.Sprintf("%d:%s", r.index, r.err.GetField()))
		}
	}
	want := "10:t.a/0@100#1 11:t.a/1@200#1 12:price_tick.price 13:t.b/3@300#2 14:price_tick.price"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %s", strings.Join(got, " "))
	}

	single := results(&tributaryv1.SubmitEventsResponse{Result: &tributaryv1.EventResult{
		Index: 4, Outcome: &tributaryv1.EventResult_Ack{Ack: &tributaryv1.EventAck{Topic: "t", Offset: 9}},
	}})
	if len(single) != 1 || single[0].index != 4 || single[0].ack.Offset != 9 {
		t.Fatalf("%+v", single)
	}
	// An outcome-less result stays one (the sender retries on it); a run
	// whose partitions and offsets differ in length yields the pairs it has.
	odd := results(&tributaryv1.SubmitEventsResponse{
		Acked:  []*tributaryv1.AckedEvents{{FirstIndex: 0, Partitions: []int32{0, 0}, Offsets: []int64{5}}},
		Errors: []*tributaryv1.EventResult{{Index: 1}},
	})
	if len(odd) != 2 || odd[0].ack == nil || odd[1].ack != nil || odd[1].err != nil {
		t.Fatalf("%+v", odd)
	}
}
