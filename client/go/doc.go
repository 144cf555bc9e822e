// Package tributary is Tributary's Go SDK: stream events to ingest with
// backpressure and resend, and read the aggregates back, over gRPC with code
// generated from proto/ (package [tributaryv1] under gen/).
//
//   - [Connect] / [NewClient]: URL, API key ([WithAPIKey]), private CA
//     ([WithCA], [WithCAFile]).
//   - [AdClick], [PriceTick], [Generic]: events, with event time now and a
//     random UUID idempotency key unless given.
//   - [Client.Sender] → [Sender]: one SubmitEvents stream with a window of
//     unanswered events, one [Pending] answer per event in send order,
//     reconnect and resend with the original idempotency keys.
//   - [Client.Aggregates] (an iterator following page tokens),
//     [Client.PriceAccuracy], [Client.Submit], [Client.SubmitBatch].
//   - Errors are [*Error], with Kind, Code, Field and Message.
//
// Example:
//
//	client, err := tributary.Connect(ctx, "http://127.0.0.1:50051")
//	if err != nil {
//		return err
//	}
//	defer client.Close()
//	sender := client.Sender(tributary.SenderOptions{})
//	event, _ := tributary.PriceTick("ETH-USD", "coinbase", 3012.5)
//	pending, err := sender.Send(ctx, event)
//	if err != nil {
//		return err
//	}
//	if err := sender.Close(ctx); err != nil {
//		return err
//	}
//	ack, err := pending.Wait(ctx) // or a *tributary.Error of KindRejected naming the field
//
// [tributaryv1]: https://pkg.go.dev/github.com/tributary-io/tributary/client/go/gen/tributary/v1
package tributary
