// Command stream is the end-to-end run of the Go SDK against a real
// pipeline, driven by stack/tests/sdk_go.rs, which SIGKILLs and restarts
// ingest while it streams:
//
//		go run ./internal/e2e/stream URL [EVENTS]
//
//	 1. Streams EVENTS (default 20,000) mixed ad clicks and price ticks
//	    (several keys, event times spread over four one-minute windows a few
//	    minutes ago, some invalid: a bad IP address, a negative price)
//	    through one sender, printing "acked N" every 250 acknowledgements and
//	    a line per reconnection.
//	 2. Checks that every invalid event was rejected naming its field and
//	    every other one acknowledged.
//	 3. Computes the aggregates from what the SDK was told (acknowledged
//	    events only: per key and window, count and distinct IPs of clicks;
//	    count, min, max and sum of ticks) and polls client.Aggregates until
//	    they are exact (60 s at most); checks client.PriceAccuracy against
//	    them.
//
// Prints one JSON summary line last; exits 0 only when everything matched.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	tributary "github.com/tributary-io/tributary/client/go"
)

type sent struct {
	i       int
	event   *tributary.Event
	invalid string
	pending *tributary.Pending
	ack     *tributary.Ack
	err     error
}

type clickGroup struct {
	count int64
	ips   map[string]bool
}

type tickGroup struct {
	count         int64
	min, max, sum float64
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: stream URL [EVENTS]")
		os.Exit(2)
	}
	url := os.Args[1]
	total := 20_000
	if len(os.Args) > 2 {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		total = n
	}
	os.Exit(run(url, total))
}

func run(url string, total int) int {
	ctx := context.Background()
	started := time.Now()
	var opts []tributary.Option
	if key := os.Getenv("TRIBUTARY_API_KEY"); key != "" {
		opts = append(opts, tributary.WithAPIKey(key))
	}
	if ca := os.Getenv("TRIBUTARY_CA_CERT"); ca != "" {
		opts = append(opts, tributary.WithCAFile(ca))
	}
	client, err := tributary.NewClient(url, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer client.Close()

	// Four whole windows, ending at least a minute ago.
	base := started.Truncate(time.Minute).Add(-5 * time.Minute)
	span := 4 * time.Minute
	runID := uuid.NewString()[:8]
	pairs := []string{"ETH-USD", "BTC-USD"}
	sources := []string{"go-a", "go-b", "go-c"}

	build := func(i int) (*tributary.Event, string, error) {
		at := tributary.EventTime(base.Add(time.Duration(int64(i) * int64(span) / int64(total))))
		key := tributary.IdempotencyKey(fmt.Sprintf("%s-%d", runID, i))
		switch {
		case i%1000 == 500:
			e, err := tributary.AdClick("go-adv-0", "not-an-ip", "sdk-go", "https://example.com/", at, key)
			return e, "ad_click.ip_address", err
		case i%1000 == 750:
			e, err := tributary.PriceTick("ETH-USD", "go-a", -1, at, key)
			return e, "price_tick.price", err
		case i%3 == 0:
			// Multiples of 1/8: every sum is exact whatever order it is added in.
			price := 100 + float64(i%997)/8
			e, err := tributary.PriceTick(pairs[i%len(pairs)], sources[(i/3)%len(sources)], price, tributary.Volume(1), at, key)
			return e, "", err
		default:
			opts := []tributary.EventOption{at, key, tributary.Metadata(map[string]any{"i": i})}
			if i%2 == 0 {
				opts = append(opts, tributary.CampaignID("spring"))
			}
			e, err := tributary.AdClick(fmt.Sprintf("go-adv-%d", i%5), fmt.Sprintf("10.%d.%d.%d", i%7, i%11, i%3),
				"sdk-go", "https://example.com/", opts...)
			return e, "", err
		}
	}

	// 1. Stream everything through one sender; a goroutine collects the
	// answers in order as they come.
	sender := client.Sender(tributary.SenderOptions{
		// The default window (1024 unanswered events); ingest may still be
		// starting when the first event is sent.
		FirstConnectTimeout: 60 * time.Second,
		OnReconnect: func(info tributary.ReconnectInfo) {
			fmt.Printf("reconnecting after %v, %d unanswered: %s\n", info.Delay.Round(time.Millisecond), info.Unanswered, info.Reason)
		},
	})
	queue := make(chan *sent, total)
	collected := make(chan []*sent)
	go func() {
		var all []*sent
		acked := 0
		for s := range queue {
			s.ack, s.err = s.pending.Wait(ctx)
			if s.err == nil {
				acked++
				if acked%250 == 0 {
					fmt.Printf("acked %d\n", acked)
				}
			}
			all = append(all, s)
		}
		collected <- all
	}()
	var problems []string
	for i := range total {
		event, invalid, err := build(i)
		if err != nil {
			problems = append(problems, fmt.Sprintf("event %d: %v", i, err))
			break
		}
		pending, err := sender.Send(ctx, event)
		if err != nil {
			problems = append(problems, fmt.Sprintf("send %d: %v", i, err))
			break
		}
		queue <- &sent{i: i, event: event, invalid: invalid, pending: pending}
	}
	close(queue)
	if err := sender.Close(ctx); err != nil {
		problems = append(problems, "close: "+err.Error())
	}
	all := <-collected
	stats := sender.Stats()
	statsJSON, _ := json.Marshal(stats)
	fmt.Printf("sent %d: %s\n", total, statsJSON)

	// 2. Per-event answers.
	acked, rejected, valid := 0, 0, 0
	fields := map[string]int{}
	for _, s := range all {
		if s.invalid == "" {
			valid++
		}
		var terr *tributary.Error
		switch {
		case s.invalid != "" && !errors.As(s.err, &terr):
			problems = append(problems, fmt.Sprintf("event %d (invalid %s) was not rejected: %v %v", s.i, s.invalid, s.ack, s.err))
		case s.invalid != "" && (terr.Kind != tributary.KindRejected || terr.Field != s.invalid || terr.Code != "INVALID_ARGUMENT" ||
			!strings.HasPrefix(terr.Error(), s.invalid+": ")):
			problems = append(problems, fmt.Sprintf("event %d: expected INVALID_ARGUMENT naming %s, got %s %s: %s", s.i, s.invalid, terr.Code, terr.Field, terr.Message))
		case s.invalid != "" && terr.IdempotencyKey != s.event.GetIdempotencyKey():
			problems = append(problems, fmt.Sprintf("event %d: the rejection carries idempotency key %q", s.i, terr.IdempotencyKey))
		case s.invalid != "":
			rejected++
			fields[terr.Field]++
		case s.err != nil:
			problems = append(problems, fmt.Sprintf("event %d was not acknowledged: %v", s.i, s.err))
		case !strings.HasPrefix(s.ack.Topic, "tributary.events.") || s.ack.SchemaID <= 0 || s.ack.Offset < 0:
			problems = append(problems, fmt.Sprintf("event %d: odd ack %+v", s.i, s.ack))
		default:
			acked++
		}
	}

	// 3. Ground truth from the acknowledged events.
	clicks := map[string]*clickGroup{}
	ticks := map[string]*tickGroup{}
	for _, s := range all {
		if s.ack == nil {
			continue
		}
		window := s.event.GetEventTime().AsTime().Truncate(time.Minute).UnixMilli()
		if c := s.event.GetAdClick(); c != nil {
			id := fmt.Sprintf("%s|%d", c.GetAdvertiserId(), window)
			g := clicks[id]
			if g == nil {
				g = &clickGroup{ips: map[string]bool{}}
				clicks[id] = g
			}
			g.count++
			g.ips[c.GetIpAddress()] = true
		} else if t := s.event.GetPriceTick(); t != nil {
			id := fmt.Sprintf("%s/%s|%d", t.GetPair(), t.GetSource(), window)
			g := ticks[id]
			if g == nil {
				g = &tickGroup{min: math.Inf(1), max: math.Inf(-1)}
				ticks[id] = g
			}
			g.count++
			g.min = math.Min(g.min, t.GetPrice())
			g.max = math.Max(g.max, t.GetPrice())
			g.sum += t.GetPrice()
		}
	}
	expected := map[string]string{}
	for id, g := range clicks {
		expected["ad_click "+id] = fmt.Sprintf("count=%d distinct=%d", g.count, len(g.ips))
	}
	for id, g := range ticks {
		expected["price_tick "+id] = fmt.Sprintf("count=%d min=%v max=%v sum=%v", g.count, g.min, g.max, g.sum)
	}

	observed := func() (map[string]string, error) {
		got := map[string]string{}
		for _, eventType := range []string{"ad_click", "price_tick"} {
			query := tributary.AggregatesQuery{EventType: eventType, Start: base, End: base.Add(span), PageSize: 7}
			for a, err := range client.Aggregates(ctx, query) {
				if err != nil {
					return nil, err
				}
				if !strings.HasPrefix(a.Key, "go-adv-") && !strings.Contains(a.Key, "/go-") {
					continue
				}
				id := fmt.Sprintf("%s %s|%d", eventType, a.Key, a.WindowStart.UnixMilli())
				if eventType == "ad_click" {
					got[id] = fmt.Sprintf("count=%d distinct=%s", a.Count, show(a.DistinctCount))
				} else {
					got[id] = fmt.Sprintf("count=%d min=%s max=%s sum=%s", a.Count, show(a.Min), show(a.Max), show(a.Sum))
				}
			}
		}
		return got, nil
	}
	differences := func(got map[string]string) []string {
		var lines []string
		for id, want := range expected {
			if got[id] != want {
				lines = append(lines, fmt.Sprintf("%s: expected %s, got %q", id, want, got[id]))
			}
		}
		for id, have := range got {
			if _, ok := expected[id]; !ok {
				lines = append(lines, fmt.Sprintf("%s: expected nothing, got %s", id, have))
			}
		}
		sort.Strings(lines)
		return lines
	}

	diff := []string{"not queried yet"}
	queryError := ""
	polling := time.Now()
	for time.Since(polling) < 60*time.Second {
		got, err := observed()
		if err != nil {
			queryError = err.Error()
		} else {
			queryError = ""
			diff = differences(got)
		}
		if len(diff) == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	exactAfter := time.Since(polling).Seconds()
	if len(diff) > 0 {
		problems = append(problems, fmt.Sprintf("aggregates not exact after 60 s (%d groups differ, last error %q):", len(diff), queryError))
		problems = append(problems, diff[:min(20, len(diff))]...)
	}

	// The price accuracy of each source: its average against the others'.
	accuracyChecked := 0
	if len(diff) == 0 {
		rows, err := client.PriceAccuracy(ctx, tributary.PriceAccuracyQuery{Pairs: pairs, Start: base, End: base.Add(span), Granularity: time.Minute})
		if err != nil {
			problems = append(problems, "price accuracy: "+err.Error())
		}
		for _, a := range rows {
			if !strings.HasPrefix(a.Source, "go-") {
				continue
			}
			window := a.WindowStart.UnixMilli()
			mine := ticks[fmt.Sprintf("%s/%s|%d", a.Pair, a.Source, window)]
			var others []float64
			for _, s := range sources {
				if g := ticks[fmt.Sprintf("%s/%s|%d", a.Pair, s, window)]; s != a.Source && g != nil {
					others = append(others, g.sum/float64(g.count))
				}
			}
			mean := 0.0
			for _, o := range others {
				mean += o
			}
			mean /= float64(len(others))
			if mine == nil || !near(a.SourceAvg, mine.sum/float64(mine.count)) || !near(a.OthersMean, mean) {
				problems = append(problems, fmt.Sprintf("price accuracy of %s/%s at %v: %+v", a.Pair, a.Source, a.WindowStart, a))
			}
			accuracyChecked++
		}
		if accuracyChecked == 0 {
			problems = append(problems, "price accuracy returned nothing")
		}
	}
	if acked != valid {
		problems = append(problems, fmt.Sprintf("%d of %d valid events acknowledged", acked, valid))
	}

	summary := map[string]any{
		"events":              total,
		"acked":               acked,
		"valid":               valid,
		"rejected":            rejected,
		"rejected_fields":     fields,
		"resent":              stats.Resent,
		"reconnects":          stats.Reconnects,
		"groups":              len(expected),
		"exact":               len(diff) == 0,
		"exact_after_seconds": exactAfter,
		"accuracy_checked":    accuracyChecked,
		"seconds":             time.Since(started).Seconds(),
		"problems":            append([]string{}, problems[:min(30, len(problems))]...),
	}
	line, _ := json.Marshal(summary)
	fmt.Println(string(line))
	if len(problems) > 0 {
		return 1
	}
	return 0
}

func show[T any](v *T) string {
	if v == nil {
		return "none"
	}
	return fmt.Sprint(*v)
}

func near(x, y float64) bool {
	return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y))
}
