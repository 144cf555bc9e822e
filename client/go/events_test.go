package tributary

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestAdClickDefaultsItsTimeToNowAndItsKeyToARandomUUID(t *testing.T) {
	before := time.Now()
	event, err := AdClick("adv-1", "203.0.113.7", "curl/8", "https://example.com/")
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if event.GetEventType() != "ad_click" || event.GetKey() != "" {
		t.Fatalf("envelope %v", event)
	}
	if at := event.GetEventTime().AsTime(); at.Before(before.Truncate(time.Microsecond)) || at.After(after) {
		t.Fatalf("event time %v not between %v and %v", at, before, after)
	}
	if _, err := uuid.Parse(event.GetIdempotencyKey()); err != nil || len(event.GetIdempotencyKey()) != 36 {
		t.Fatalf("idempotency key %q: %v", event.GetIdempotencyKey(), err)
	}
	other, _ := AdClick("adv-1", "203.0.113.7", "curl/8", "https://example.com/")
	if other.GetIdempotencyKey() == event.GetIdempotencyKey() {
		t.Fatal("two events got the same idempotency key")
	}
	click := event.GetAdClick()
	if click.GetAdvertiserId() != "adv-1" || click.GetIpAddress() != "203.0.113.7" || click.GetUserAgent() != "curl/8" ||
		click.GetReferringUrl() != "https://example.com/" || click.CampaignId != nil || click.Metadata != nil {
		t.Fatalf("payload %v", click)
	}
}

func TestTheOptionsSetWhatTheyName(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000000, time.UTC)
	event, err := AdClick("adv-1", "203.0.113.7", "curl/8", "https://example.com/",
		EventTime(at), IdempotencyKey("k-1"), Key("adv-1"), CampaignID("spring"),
		Metadata(map[string]any{"i": 3, "tags": []string{"a", "b"}, "nested": map[string]any{"ok": true, "none": nil}}),
		Fields(map[string]any{"country": "DE"}))
	if err != nil {
		t.Fatal(err)
	}
	if !event.GetEventTime().AsTime().Equal(at) || event.GetIdempotencyKey() != "k-1" || event.GetKey() != "adv-1" {
		t.Fatalf("envelope %v", event)
	}
	click := event.GetAdClick()
	if click.GetCampaignId() != "spring" {
		t.Fatalf("campaign %v", click)
	}
	m := click.GetMetadata().AsMap()
	if m["i"] != 3.0 || len(m["tags"].([]any)) != 2 || m["nested"].(map[string]any)["ok"] != true {
		t.Fatalf("metadata %v", m)
	}
	if event.GetExtraFields().AsMap()["country"] != "DE" {
		t.Fatalf("extra fields %v", event.GetExtraFields())
	}

	tick, err := PriceTick("ETH-USD", "coinbase", 3012.5, Volume(0))
	if err != nil {
		t.Fatal(err)
	}
	if p := tick.GetPriceTick(); p.GetPair() != "ETH-USD" || p.GetSource() != "coinbase" || p.GetPrice() != 3012.5 || p.Volume == nil || *p.Volume != 0 {
		t.Fatalf("price tick %v", p)
	}
	if plain, _ := PriceTick("ETH-USD", "coinbase", 1); plain.GetPriceTick().Volume != nil {
		t.Fatal("a volume nobody gave was sent")
	}

	signup, err := Generic("signup", map[string]any{"plan": "pro", "seats": 3}, Key("user-7"))
	if err != nil {
		t.Fatal(err)
	}
	if signup.GetEventType() != "signup" || signup.GetKey() != "user-7" || signup.GetGeneric().AsMap()["seats"] != 3.0 {
		t.Fatalf("generic %v", signup)
	}
}

func TestValuesProtobufCannotCarryAreRefusedNamingTheField(t *testing.T) {
	cases := []struct {
		name  string
		build func() (*Event, error)
		field string
	}{
		{"a NaN in metadata", func() (*Event, error) {
			return AdClick("a", "1.2.3.4", "u", "https://x/", Metadata(map[string]any{"score": math.NaN()}))
		}, "ad_click.metadata.score"},
		{"an integer beyond 2^53", func() (*Event, error) {
			return Generic("t", map[string]any{"ids": []any{1, int64(1) << 60}}, Key("k"))
		}, "generic.ids[1]"},
		{"a channel", func() (*Event, error) {
			return PriceTick("p", "s", 1, Fields(map[string]any{"c": make(chan int)}))
		}, "extra_fields.c"},
		{"an empty idempotency key", func() (*Event, error) {
			return PriceTick("p", "s", 1, IdempotencyKey(""))
		}, "idempotency_key"},
		{"a generic event without a type", func() (*Event, error) {
			return Generic("", map[string]any{}, Key("k"))
		}, "event_type"},
		{"a price tick with a campaign", func() (*Event, error) {
			return PriceTick("p", "s", 1, CampaignID("c"))
		}, "price_tick"},
	}
	for _, c := range cases {
		event, err := c.build()
		var terr *Error
		if event != nil || !errors.As(err, &terr) || !errors.Is(err, ErrInvalid) || terr.Field != c.field || terr.Code != "INVALID_ARGUMENT" {
			t.Errorf("%s: got %v, %#v", c.name, event, err)
		}
	}
}
