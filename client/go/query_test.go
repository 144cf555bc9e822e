package tributary

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	tributaryv1 "github.com/tributary-io/tributary/client/go/gen/tributary/v1"
)

func aggregate(key string, count int64) *tributaryv1.Aggregate {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &tributaryv1.Aggregate{EventType: "ad_click", Key: key, Count: count, DistinctCount: &count,
		WindowStart: timestamppb.New(at), WindowEnd: timestamppb.New(at.Add(time.Minute))}
}

func TestAggregatesFollowsPageTokensWithTheSameParameters(t *testing.T) {
	ctx := testContext(t)
	fake := newFake(t)
	fake.pages = [][]*tributaryv1.Aggregate{
		{aggregate("a", 1), aggregate("b", 2)},
		{aggregate("c", 3)},
		{aggregate("d", 4), aggregate("e", 5)},
	}
	client := fake.client()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	query := AggregatesQuery{EventType: "ad_click", Start: start, End: start.Add(time.Hour), Keys: []string{"a", "b", "c", "d", "e"},
		Granularity: time.Minute, Order: OrderDesc, PageSize: 2}
	var keys string
	for a, err := range client.Aggregates(ctx, query) {
		if err != nil {
			t.Fatal(err)
		}
		keys += fmt.Sprintf("%s=%d/%d ", a.Key, a.Count, *a.DistinctCount)
		if a.Min != nil || !a.WindowEnd.Equal(start.Add(time.Minute)) {
			t.Fatalf("aggregate %+v", a)
		}
	}
	if keys != "a=1/1 b=2/2 c=3/3 d=4/4 e=5/5 " {
		t.Fatalf("keys %q", keys)
	}
	if len(fake.queries) != 3 {
		t.Fatalf("%d calls", len(fake.queries))
	}
	for i, q := range fake.queries {
		token := ""
		if i > 0 {
			token = fmt.Sprintf("page-%d", i)
		}
		if q.GetPageToken() != token || q.GetEventType() != "ad_click" || q.GetPageSize() != 2 || len(q.GetKeys()) != 5 ||
			q.GetOrder() != tributaryv1.AggregateOrder_AGGREGATE_ORDER_WINDOW_DESC || q.GetGranularity().AsDuration() != time.Minute ||
			!q.GetStartTime().AsTime().Equal(start) {
			t.Fatalf("call %d: %v", i, q)
		}
	}
	// Stopping early fetches no further page.
	for range client.Aggregates(ctx, query) {
		break
	}
	if len(fake.queries) != 4 {
		t.Fatalf("%d calls after an early stop", len(fake.queries))
	}
}

func TestAggregatesEndsWithTheErrorNamingTheParameter(t *testing.T) {
	ctx := testContext(t)
	client := newFake(t).client()
	start := time.Now().Add(-time.Hour)
	var got []error
	for a, err := range client.Aggregates(ctx, AggregatesQuery{EventType: "ad_click", Start: start, End: time.Now(), PageSize: -1}) {
		if a != nil {
			t.Fatalf("aggregate %v", a)
		}
		got = append(got, err)
	}
	var terr *Error
	if len(got) != 1 || !errors.As(got[0], &terr) || terr.Field != "page_size" || terr.Code != "INVALID_ARGUMENT" {
		t.Fatalf("%v", got)
	}
	got = nil
	for _, err := range client.Aggregates(ctx, AggregatesQuery{EventType: "ad_click", End: time.Now()}) {
		got = append(got, err)
	}
	if len(got) != 1 || !errors.As(got[0], &terr) || terr.Kind != KindInvalid || terr.Field != "start_time" {
		t.Fatalf("%v", got)
	}
}

func TestPriceAccuracyReadsEveryRow(t *testing.T) {
	ctx := testContext(t)
	client := newFake(t).client()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rows, err := client.PriceAccuracy(ctx, PriceAccuracyQuery{Pairs: []string{"ETH-USD"}, Start: start, End: start.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Pair != "ETH-USD" || rows[0].PercentDifference != 1 || !rows[0].WindowStart.Equal(start) {
		t.Fatalf("%+v", rows)
	}
}
