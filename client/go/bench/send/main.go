// Command send measures the Go SDK's sender: COUNT ad clicks through one
// stream.
//
//	go run ./bench/send URL COUNT WINDOW     (in client/go)
//
// Builds the events first (untimed), then sends them through one
// client.Sender(SenderOptions{Window: WINDOW}) as fast as its window lets
// it, and waits for every answer. Prints one JSON line: ok, errors, seconds
// (first send to last answer), cpu_seconds (this process's user + system
// CPU over that time) and the first error. Run by dev/bench (the SDK
// stage), beside the Rust SDK.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	tributary "github.com/tributary-io/tributary/client/go"
)

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: send URL COUNT WINDOW")
		os.Exit(2)
	}
	url := os.Args[1]
	count, err1 := strconv.Atoi(os.Args[2])
	window, err2 := strconv.Atoi(os.Args[3])
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "usage: send URL COUNT WINDOW")
		os.Exit(2)
	}
	events := make([]*tributary.Event, count)
	for i := range events {
		event, err := tributary.AdClick(
			fmt.Sprintf("bench-go-%d", i%100),
			fmt.Sprintf("10.%d.%d.1", i%250, (i/250)%250),
			"bench/go",
			fmt.Sprintf("https://example.com/landing/%d", i),
		)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		events[i] = event
	}
	ctx := context.Background()
	client, err := tributary.NewClient(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer client.Close()

	started, cpuStarted := time.Now(), cpuSeconds()
	sender := client.Sender(tributary.SenderOptions{Window: window})
	pendings := make([]*tributary.Pending, 0, count)
	var firstError *string
	note := func(err error) {
		if firstError == nil {
			text := err.Error()
			firstError = &text
		}
	}
	for _, event := range events {
		p, err := sender.Send(ctx, event)
		if err != nil {
			note(err)
			break
		}
		pendings = append(pendings, p)
	}
	ok, errors := 0, count-len(pendings)
	for _, p := range pendings {
		if _, err := p.Wait(ctx); err != nil {
			errors++
			note(err)
		} else {
			ok++
		}
	}
	if err := sender.Close(ctx); err != nil {
		note(err)
	}
	seconds, cpu := time.Since(started).Seconds(), cpuSeconds()-cpuStarted
	line, _ := json.Marshal(map[string]any{"ok": ok, "errors": errors, "seconds": seconds, "cpu_seconds": cpu, "first_error": firstError})
	fmt.Println(string(line))
	if errors > 0 {
		os.Exit(1)
	}
}
