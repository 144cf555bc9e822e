// Command unreachable checks that with a stopped stack every call of the Go
// SDK fails within seconds with a KindUnavailable error naming the address,
// driven by stack/tests/sdk_go.rs:
//
//	go run ./internal/e2e/unreachable URL
//
// Prints one JSON line: per call, the error's kind, code, message and the
// seconds it took. Exits 0 when every call failed that way.
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
	Kind    string  `json:"kind"`
	Code    string  `json:"code"`
	Message string  `json:"message"`
	URL     string  `json:"url"`
	Seconds float64 `json:"seconds"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: unreachable URL")
		os.Exit(2)
	}
	url := os.Args[1]
	ctx := context.Background()
	result := map[string]outcome{}
	timed := func(name string, call func() error) {
		started := time.Now()
		err := call()
		o := outcome{Kind: "none", Message: "it succeeded", Seconds: time.Since(started).Seconds()}
		var terr *tributary.Error
		if errors.As(err, &terr) {
			o.Kind, o.Code, o.Message, o.URL = terr.Kind.String(), terr.Code, terr.Error(), terr.URL
		} else if err != nil {
			o.Kind, o.Message = fmt.Sprintf("%T", err), err.Error()
		}
		result[name] = o
	}

	timed("connect", func() error {
		client, err := tributary.Connect(ctx, url) // the default connect timeout: 5 s
		if err == nil {
			_ = client.Close()
		}
		return err
	})
	client, err := tributary.NewClient(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer client.Close()
	event, _ := tributary.PriceTick("ETH-USD", "a", 1)
	sender := client.Sender(tributary.SenderOptions{})
	timed("send", func() error {
		p, err := sender.Send(ctx, event)
		if err != nil {
			return err
		}
		_, err = p.Wait(ctx)
		return err
	})
	timed("close", func() error { return sender.Close(ctx) })
	timed("aggregates", func() error {
		for _, err := range client.Aggregates(ctx, tributary.AggregatesQuery{EventType: "ad_click", Start: time.Now().Add(-time.Hour), End: time.Now()}) {
			if err != nil {
				return err
			}
		}
		return nil
	})
	timed("price_accuracy", func() error {
		_, err := client.PriceAccuracy(ctx, tributary.PriceAccuracyQuery{Start: time.Now().Add(-time.Hour), End: time.Now()})
		return err
	})
	timed("submit", func() error {
		_, err := client.Submit(ctx, event)
		return err
	})
	line, _ := json.Marshal(result)
	fmt.Println(string(line))
	for _, o := range result {
		if o.Kind != "unavailable" || o.URL != url || !strings.Contains(o.Message, url) {
			os.Exit(1)
		}
	}
}
