package tributary

import (
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	tributaryv1 "github.com/tributary-io/tributary/client/go/gen/tributary/v1"
)

// The stream's wire format: events go many to a SubmitEventsRequest
// (`events`), as the Rust, Python and TypeScript SDKs send them, and ingest
// answers them compactly (`acked` runs of consecutive events in one topic
// and schema, and `errors` by index), which results reads back into one
// result per event.

const (
	// maxEventsPerMessage is the most events the sender puts in one message.
	maxEventsPerMessage = 1024
	// maxMessageBytes is the size a message of many events is kept under (an
	// event larger than that goes alone).
	maxMessageBytes = 64 * 1024
	// eventsField is the field number of SubmitEventsRequest.events.
	eventsField protowire.Number = 2
)

// encodeEvent is event as the `events` field of a SubmitEventsRequest: its
// tag, its length and its bytes, encoded once and reused on every resend.
func encodeEvent(event *Event) ([]byte, error) {
	body, err := proto.Marshal(event)
	if err != nil {
		return nil, err
	}
	field := protowire.AppendTag(make([]byte, 0, len(body)+8), eventsField, protowire.BytesType)
	return protowire.AppendBytes(field, body), nil
}

// fitting is how many of items (each size(item) bytes encoded, from
// encodeEvent) go in the next message: at least one, then as many as keep it
// within maxEventsPerMessage events and maxMessageBytes.
func fitting[T any](items []T, size func(T) int) int {
	total, count := 0, 0
	for _, item := range items {
		n := size(item)
		if count >= maxEventsPerMessage || (count > 0 && total+n > maxMessageBytes) {
			break
		}
		total += n
		count++
	}
	return count
}

// eventsMessage is the SubmitEventsRequest carrying entries in `events`, in
// order: their bytes are the message's (unknown-to-it) fields, which
// marshalling writes as they are.
func eventsMessage(entries [][]byte) *tributaryv1.SubmitEventsRequest {
	size := 0
	for _, entry := range entries {
		size += len(entry)
	}
	raw := make([]byte, 0, size)
	for _, entry := range entries {
		raw = append(raw, entry...)
	}
	message := &tributaryv1.SubmitEventsRequest{}
	message.ProtoReflect().SetUnknown(protoreflect.RawFields(raw))
	return message
}

// streamResult is one event's result read from a response: an ack, an
// error, or neither (a result without an outcome).
type streamResult struct {
	index uint64
	ack   *Ack
	err   *tributaryv1.EventError
}

func fromEventResult(result *tributaryv1.EventResult) streamResult {
	r := streamResult{index: result.GetIndex(), err: result.GetError()}
	if ack := result.GetAck(); ack != nil {
		r.ack = toAck(ack)
	}
	return r
}

// results are the results response carries, one per event, in index order:
// its `result` (the answer to a one-event message), or its `acked` runs
// (event first_index + i at partitions[i], offsets[i]) and its `errors`
// merged. The same as the Rust SDK's stream_results::results.
func results(response *tributaryv1.SubmitEventsResponse) []streamResult {
	out := make([]streamResult, 0, len(response.GetErrors())+1)
	for _, run := range response.GetAcked() {
		out = slices.Grow(out, len(run.GetOffsets()))
	}
	if response.Result != nil {
		out = append(out, fromEventResult(response.Result))
	}
	for _, run := range response.GetAcked() {
		partitions, offsets := run.GetPartitions(), run.GetOffsets()
		count := min(len(partitions), len(offsets))
		for i := range count {
			out = append(out, streamResult{
				index: run.GetFirstIndex() + uint64(i),
				ack:   &Ack{Topic: run.GetTopic(), Partition: partitions[i], Offset: offsets[i], SchemaID: run.GetSchemaId()},
			})
		}
	}
	for _, e := range response.GetErrors() {
		out = append(out, fromEventResult(e))
	}
	if len(response.GetErrors()) > 0 || len(response.GetAcked()) > 1 {
		slices.SortStableFunc(out, func(a, b streamResult) int {
			switch {
			case a.index < b.index:
				return -1
			case a.index > b.index:
				return 1
			}
			return 0
		})
	}
	return out
}
