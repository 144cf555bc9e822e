package tributary

import (
	"context"
	"iter"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tributaryv1 "github.com/tributary-io/tributary/client/go/gen/tributary/v1"
)

// Order is the order of aggregates.
type Order int

const (
	// OrderDefault is the server's default: window start ascending.
	OrderDefault Order = iota
	// OrderAsc is window start ascending, then key ascending.
	OrderAsc
	// OrderDesc is window start descending, then key ascending.
	OrderDesc
)

// AggregatesQuery selects aggregates; see [Client.Aggregates].
type AggregatesQuery struct {
	// EventType is ad_click, price_tick, or a schema-driven type. Required.
	EventType string
	// Start is inclusive: buckets starting at or after it. Required.
	Start time.Time
	// End is exclusive: buckets starting before it. Required; after Start.
	End time.Time
	// Keys limits the group keys (advertiser ids, pair/source, event
	// keys); all when empty.
	Keys []string
	// Granularity is the bucket size, the processor's window or a multiple
	// of it; the window when zero.
	Granularity time.Duration
	// Order of the buckets.
	Order Order
	// PageSize is the number of aggregates per call (default 100, at most 10000).
	PageSize int32
}

// Aggregate is the summary of one key over one bucket of time.
type Aggregate struct {
	EventType string
	// Key is the advertiser id for ad_click, pair/source for price_tick,
	// the event key for schema-driven types.
	Key string
	// WindowStart is the bucket's inclusive start.
	WindowStart time.Time
	// WindowEnd is the bucket's exclusive end.
	WindowEnd time.Time
	// Count is the number of events.
	Count int64
	// DistinctCount is the number of distinct client IPs (ad_click only).
	DistinctCount *int64
	// Min, Max, Sum, Avg and Last are the smallest, largest, summed, mean
	// and latest (by event time) value (price_tick only).
	Min, Max, Sum, Avg, Last *float64
	// Revisions counts how many times late events corrected the bucket's
	// windows after their final was first stored.
	Revisions int64
}

// PriceAccuracyQuery selects pairs and a time range; see [Client.PriceAccuracy].
type PriceAccuracyQuery struct {
	// Pairs limits the pairs, e.g. ETH-USD; all when empty.
	Pairs []string
	// Start is inclusive. Required.
	Start time.Time
	// End is exclusive. Required; after Start.
	End time.Time
	// Granularity is the bucket size, as for aggregates.
	Granularity time.Duration
}

// PriceAccuracy compares one source with the others for one pair and bucket.
type PriceAccuracy struct {
	Pair        string
	Source      string
	WindowStart time.Time
	// SourceAvg is the source's average price in the bucket.
	SourceAvg float64
	// OthersMean is the mean of the other sources' average prices.
	OthersMean float64
	// PercentDifference is 100 * (SourceAvg - OthersMean) / OthersMean.
	PercentDifference float64
}

func timestamp(t time.Time, field string) (*timestamppb.Timestamp, error) {
	if t.IsZero() {
		return nil, invalid(field, "is required")
	}
	return timestamppb.New(t), nil
}

func (q AggregatesQuery) request() (*tributaryv1.GetAggregatesRequest, error) {
	start, err := timestamp(q.Start, "start_time")
	if err != nil {
		return nil, err
	}
	end, err := timestamp(q.End, "end_time")
	if err != nil {
		return nil, err
	}
	request := &tributaryv1.GetAggregatesRequest{
		EventType: q.EventType,
		Keys:      q.Keys,
		StartTime: start,
		EndTime:   end,
		PageSize:  q.PageSize,
	}
	if q.Granularity != 0 {
		request.Granularity = durationpb.New(q.Granularity)
	}
	switch q.Order {
	case OrderDefault:
	case OrderAsc:
		request.Order = tributaryv1.AggregateOrder_AGGREGATE_ORDER_WINDOW_ASC
	case OrderDesc:
		request.Order = tributaryv1.AggregateOrder_AGGREGATE_ORDER_WINDOW_DESC
	default:
		return nil, invalid("order", "must be OrderAsc or OrderDesc, not %d", int(q.Order))
	}
	return request, nil
}

func optional[T any](has bool, value T) *T {
	if !has {
		return nil
	}
	return &value
}

func toAggregate(a *tributaryv1.Aggregate) Aggregate {
	return Aggregate{
		EventType:     a.GetEventType(),
		Key:           a.GetKey(),
		WindowStart:   a.GetWindowStart().AsTime(),
		WindowEnd:     a.GetWindowEnd().AsTime(),
		Count:         a.GetCount(),
		DistinctCount: optional(a.DistinctCount != nil, a.GetDistinctCount()),
		Min:           optional(a.Min != nil, a.GetMin()),
		Max:           optional(a.Max != nil, a.GetMax()),
		Sum:           optional(a.Sum != nil, a.GetSum()),
		Avg:           optional(a.Avg != nil, a.GetAvg()),
		Last:          optional(a.Last != nil, a.GetLast()),
		Revisions:     a.GetRevisions(),
	}
}

// AggregatePages calls GetAggregates page by page, passing each
// next_page_token on with the other parameters unchanged, until the last
// page; each page's call has the client's timeout unless ctx has a
// deadline. A failed call ends the sequence with its error: KindStatus
// naming a bad parameter in Field (e.g. page_size), KindUnavailable when
// the endpoint cannot be reached.
func (c *Client) AggregatePages(ctx context.Context, query AggregatesQuery) iter.Seq2[[]Aggregate, error] {
	return func(yield func([]Aggregate, error) bool) {
		request, err := query.request()
		if err != nil {
			yield(nil, err)
			return
		}
		for {
			page, err := c.getAggregates(ctx, request)
			if err != nil {
				yield(nil, err)
				return
			}
			aggregates := make([]Aggregate, len(page.GetAggregates()))
			for i, a := range page.GetAggregates() {
				aggregates[i] = toAggregate(a)
			}
			if !yield(aggregates, nil) || page.GetNextPageToken() == "" {
				return
			}
			request = proto.CloneOf(request)
			request.PageToken = page.GetNextPageToken()
		}
	}
}

func (c *Client) getAggregates(ctx context.Context, request *tributaryv1.GetAggregatesRequest) (*tributaryv1.GetAggregatesResponse, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	page, err := c.query.GetAggregates(ctx, request)
	if err != nil {
		return nil, fromCallError(err, c.url, "")
	}
	return page, nil
}

// Aggregates is every aggregate of query.EventType whose bucket starts in
// [query.Start, query.End), following page tokens (see
// [Client.AggregatePages]):
//
//	for a, err := range client.Aggregates(ctx, tributary.AggregatesQuery{EventType: "ad_click", Start: start, End: end}) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(a.Key, a.WindowStart, a.Count, *a.DistinctCount)
//	}
func (c *Client) Aggregates(ctx context.Context, query AggregatesQuery) iter.Seq2[*Aggregate, error] {
	return func(yield func(*Aggregate, error) bool) {
		for page, err := range c.AggregatePages(ctx, query) {
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range page {
				if !yield(&page[i], nil) {
					return
				}
			}
		}
	}
}

// PriceAccuracy reports, per pair, bucket and source in [query.Start,
// query.End), how far the source's average price is from the mean of the
// other sources (GetPriceAccuracy).
func (c *Client) PriceAccuracy(ctx context.Context, query PriceAccuracyQuery) ([]PriceAccuracy, error) {
	start, err := timestamp(query.Start, "start_time")
	if err != nil {
		return nil, err
	}
	end, err := timestamp(query.End, "end_time")
	if err != nil {
		return nil, err
	}
	request := &tributaryv1.GetPriceAccuracyRequest{Pairs: query.Pairs, StartTime: start, EndTime: end}
	if query.Granularity != 0 {
		request.Granularity = durationpb.New(query.Granularity)
	}
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	response, err := c.query.GetPriceAccuracy(ctx, request)
	if err != nil {
		return nil, fromCallError(err, c.url, "")
	}
	accuracy := make([]PriceAccuracy, len(response.GetAccuracy()))
	for i, a := range response.GetAccuracy() {
		accuracy[i] = PriceAccuracy{
			Pair:              a.GetPair(),
			Source:            a.GetSource(),
			WindowStart:       a.GetWindowStart().AsTime(),
			SourceAvg:         a.GetSourceAvg(),
			OthersMean:        a.GetOthersMean(),
			PercentDifference: a.GetPercentDifference(),
		}
	}
	return accuracy, nil
}
