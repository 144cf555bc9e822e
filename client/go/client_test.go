package tributary

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestURLsAreCheckedBeforeAnythingIsDialled(t *testing.T) {
	for raw, want := range map[string]string{
		"http://127.0.0.1:50051":  "127.0.0.1:50051",
		"https://example.com":     "example.com:443",
		"http://example.com/":     "example.com:80",
		"https://[::1]:8443":      "[::1]:8443",
		"grpc://127.0.0.1:50051":  "",
		"127.0.0.1:50051":         "",
		"http://127.0.0.1:1/path": "",
		"http://:50051":           "",
	} {
		target, _, err := parseURL(raw)
		if want == "" {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %q, %v", raw, target, err)
			}
			continue
		}
		if err != nil || target != want {
			t.Errorf("%s: %q, %v", raw, target, err)
		}
	}
}

func TestOptionsThatCannotBeUsedAreRefusedNamingThem(t *testing.T) {
	for name, c := range map[string]struct {
		url   string
		opt   Option
		field string
	}{
		"a CA with plain http":    {"http://127.0.0.1:1", WithCA([]byte("-----BEGIN CERTIFICATE-----")), "ca"},
		"a CA that is no PEM":     {"https://127.0.0.1:1", WithCA([]byte("not a certificate")), "ca"},
		"a missing CA file":       {"https://127.0.0.1:1", WithCAFile("/nonexistent/ca.pem"), "ca"},
		"an API key with a space": {"http://127.0.0.1:1", WithAPIKey("a b"), "api_key"},
		"a bad URL":               {"ftp://127.0.0.1:1", nil, "url"},
	} {
		_, err := NewClient(c.url, c.opt)
		var terr *Error
		if !errors.As(err, &terr) || terr.Kind != KindInvalid || terr.Field != c.field {
			t.Errorf("%s: %#v", name, err)
		}
	}
}

func TestTheAPIKeyGoesOutOnEveryCall(t *testing.T) {
	ctx := testContext(t)
	fake := newFake(t)
	client := fake.client(WithAPIKey("s3cret"))
	event, _ := PriceTick("ETH-USD", "a", 1)
	if _, err := client.Submit(ctx, event); err != nil {
		t.Fatal(err)
	}
	sender := client.Sender(SenderOptions{})
	if _, err := sender.Send(ctx, event); err != nil {
		t.Fatal(err)
	}
	if err := sender.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for range client.Aggregates(ctx, AggregatesQuery{EventType: "price_tick", Start: time.Now().Add(-time.Hour), End: time.Now()}) {
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.authorization) != 3 {
		t.Fatalf("authorization headers %v", fake.authorization)
	}
	for _, value := range fake.authorization {
		if value != "Bearer s3cret" {
			t.Fatalf("authorization %q", value)
		}
	}
}

func TestSubmitAndSubmitBatchAnswerPerEvent(t *testing.T) {
	ctx := testContext(t)
	client := newFake(t).client()
	good, _ := PriceTick("ETH-USD", "a", 1)
	bad, _ := PriceTick("ETH-USD", "a", -1, IdempotencyKey("bad-1"))
	if ack, err := client.Submit(ctx, good); err != nil || ack.Topic != "tributary.events.price_tick" {
		t.Fatalf("%v, %v", ack, err)
	}
	_, err := client.Submit(ctx, bad)
	var terr *Error
	// The fake words a refusal as ingest does, without details: the field
	// comes from the message.
	if !errors.As(err, &terr) || terr.Field != "price_tick.price" || terr.Message != "must be positive" {
		t.Fatalf("%#v", err)
	}
	results, err := client.SubmitBatch(ctx, []*Event{good, bad})
	if err != nil {
		t.Fatal(err)
	}
	if results[0].Err != nil || results[0].Ack == nil || !errors.As(results[1].Err, &terr) || terr.Field != "price_tick.price" || terr.IdempotencyKey != "bad-1" {
		t.Fatalf("%+v", results)
	}
}

func TestConnectToAStoppedStackFailsFastNamingTheAddress(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + listener.Addr().String()
	_ = listener.Close()
	started := time.Now()
	client, err := Connect(context.Background(), url, WithConnectTimeout(time.Second))
	var terr *Error
	if client != nil || !errors.As(err, &terr) || terr.Kind != KindUnavailable || terr.URL != url {
		t.Fatalf("%v, %#v", client, err)
	}
	if !strings.HasPrefix(err.Error(), "cannot reach Tributary at "+url+": ") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("%v", err)
	}
	if took := time.Since(started); took > 4*time.Second {
		t.Fatalf("took %v", took)
	}
	// And a running one connects.
	fake := newFake(t)
	client, err = Connect(context.Background(), fake.url())
	if err != nil {
		t.Fatal(err)
	}
	_ = client.Close()
}
