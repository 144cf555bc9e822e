// Command tls checks the Go SDK over TLS with a private CA and an API key,
// driven by stack/tests/sdk_go.rs:
//
//	go run ./internal/e2e/tls https://localhost:PORT CA_PEM_FILE API_KEY
//
// With the CA and the key: ten price ticks and one ad click with a bad IP
// address through a sender (window 4): the ticks are acknowledged, the
// click refused naming its field; a query answers. Without the key: the
// sender fails at once with UNAUTHENTICATED (no retry can fix it), and so
// does a query. Without the CA, and with plain http to the TLS port: a
// KindUnavailable error naming the address. Prints one JSON line; exits 0
// when all of that held.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	tributary "github.com/tributary-io/tributary/client/go"
)

type outcome struct {
	Kind     string  `json:"kind"`
	Code     string  `json:"code"`
	Field    string  `json:"field"`
	Message  string  `json:"message"`
	NamesURL bool    `json:"names_url"`
	Seconds  float64 `json:"seconds,omitempty"`
}

func describe(err error, url string) outcome {
	if err == nil {
		return outcome{Kind: "none"}
	}
	var terr *tributary.Error
	if !errors.As(err, &terr) {
		return outcome{Kind: fmt.Sprintf("%T", err), Message: err.Error()}
	}
	return outcome{Kind: terr.Kind.String(), Code: terr.Code, Field: terr.Field, Message: terr.Error(), NamesURL: strings.Contains(terr.Error(), url)}
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: tls URL CA_PEM_FILE API_KEY")
		os.Exit(2)
	}
	url, caFile, apiKey := os.Args[1], os.Args[2], os.Args[3]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	result := map[string]any{}
	fail := func(what string, err error) {
		result["error"] = what + ": " + err.Error()
		line, _ := json.Marshal(result)
		fmt.Println(string(line))
		os.Exit(1)
	}

	client, err := tributary.Connect(ctx, url, tributary.WithCAFile(caFile), tributary.WithAPIKey(apiKey))
	if err != nil {
		fail("connect", err)
	}
	defer client.Close()
	sender := client.Sender(tributary.SenderOptions{Window: 4})
	var pendings []*tributary.Pending
	for i := range 10 {
		event, err := tributary.PriceTick("TLS-USD", "go", float64(1+i))
		if err != nil {
			fail("build", err)
		}
		p, err := sender.Send(ctx, event)
		if err != nil {
			fail("send", err)
		}
		pendings = append(pendings, p)
	}
	bad, _ := tributary.AdClick("tls-adv", "999.1.1.1", "sdk-go", "https://example.com/")
	refusedClick, err := sender.Send(ctx, bad)
	if err != nil {
		fail("send", err)
	}
	if err := sender.Close(ctx); err != nil {
		fail("close", err)
	}
	acked, topics := 0, map[string]bool{}
	for _, p := range pendings {
		ack, err := p.Wait(ctx)
		if err != nil {
			fail("ack", err)
		}
		acked++
		topics[ack.Topic] = true
	}
	_, err = refusedClick.Wait(ctx)
	result["acked"] = acked
	result["topics"] = topics
	result["rejection"] = describe(err, url)
	rows := 0
	for _, err := range client.Aggregates(ctx, tributary.AggregatesQuery{EventType: "price_tick", Start: time.Now().Add(-time.Hour), End: time.Now().Add(time.Minute)}) {
		if err != nil {
			fail("query", err)
		}
		rows++
	}
	result["aggregates"] = rows

	keyless, err := tributary.NewClient(url, tributary.WithCAFile(caFile))
	if err != nil {
		fail("client", err)
	}
	defer keyless.Close()
	refused := keyless.Sender(tributary.SenderOptions{})
	event, _ := tributary.PriceTick("TLS-USD", "go", 1)
	started := time.Now()
	p, err := refused.Send(ctx, event)
	if err != nil {
		fail("send without key", err)
	}
	_, err = p.Wait(ctx)
	withoutKey := describe(err, url)
	withoutKey.Seconds = time.Since(started).Seconds()
	result["without_key"] = withoutKey
	result["without_key_close"] = describe(refused.Close(ctx), url)
	var queryErr error
	for _, err := range keyless.Aggregates(ctx, tributary.AggregatesQuery{EventType: "price_tick", Start: time.Now().Add(-time.Hour), End: time.Now()}) {
		queryErr = err
	}
	result["without_key_query"] = describe(queryErr, url)

	untrusted, err := tributary.NewClient(url, tributary.WithAPIKey(apiKey))
	if err != nil {
		fail("client", err)
	}
	defer untrusted.Close()
	_, err = untrusted.Submit(ctx, event)
	result["without_ca"] = describe(err, url)
	_, err = tributary.Connect(ctx, url, tributary.WithAPIKey(apiKey))
	result["without_ca_connect"] = describe(err, url)

	plain := "http://" + strings.TrimPrefix(url, "https://")
	plainText, err := tributary.NewClient(plain, tributary.WithAPIKey(apiKey), tributary.WithTimeout(5*time.Second))
	if err != nil {
		fail("client", err)
	}
	defer plainText.Close()
	_, err = plainText.Submit(ctx, event)
	result["plain_text"] = describe(err, plain)

	line, _ := json.Marshal(result)
	fmt.Println(string(line))
	rejection := result["rejection"].(outcome)
	ok := acked == 10 && rejection.Code == "INVALID_ARGUMENT" && rejection.Field == "ad_click.ip_address" &&
		withoutKey.Code == "UNAUTHENTICATED" && withoutKey.Seconds < 3 &&
		result["without_key_close"].(outcome).Code == "UNAUTHENTICATED" &&
		result["without_key_query"].(outcome).Code == "UNAUTHENTICATED" &&
		result["without_ca"].(outcome).Kind == "unavailable" && result["without_ca"].(outcome).NamesURL &&
		result["without_ca_connect"].(outcome).Kind == "unavailable" && result["without_ca_connect"].(outcome).NamesURL &&
		result["plain_text"].(outcome).Kind == "unavailable" && result["plain_text"].(outcome).NamesURL
	if !ok {
		os.Exit(1)
	}
}
