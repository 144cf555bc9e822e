package tributary

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tributaryv1 "github.com/tributary-io/tributary/client/go/gen/tributary/v1"
)

// DefaultURL is the gRPC endpoint of the local stack (dev/up).
const DefaultURL = "http://127.0.0.1:50051"

// Option configures a [Client]; see [Connect].
type Option func(*settings) error

type settings struct {
	apiKey         *string
	ca             []byte
	serverName     string
	timeout        time.Duration
	connectTimeout time.Duration
	dialOptions    []grpc.DialOption
}

// WithAPIKey sends "authorization: Bearer KEY" on every call.
func WithAPIKey(key string) Option {
	return func(s *settings) error {
		if key == "" {
			return invalid("api_key", "must be non-empty printable ASCII without spaces")
		}
		for _, c := range key {
			if c < 0x21 || c > 0x7e {
				return invalid("api_key", "must be non-empty printable ASCII without spaces")
			}
		}
		s.apiKey = &key
		return nil
	}
}

// WithCA trusts the PEM CA certificate(s) for an https:// URL, in addition
// to the system's roots: for a private or self-signed server certificate.
func WithCA(pem []byte) Option {
	return func(s *settings) error {
		if len(pem) == 0 {
			return invalid("ca", "is empty")
		}
		s.ca = append(s.ca, pem...)
		s.ca = append(s.ca, '\n')
		return nil
	}
}

// WithCAFile is [WithCA] with the PEM read from a file.
func WithCAFile(path string) Option {
	return func(s *settings) error {
		pem, err := os.ReadFile(path)
		if err != nil {
			return &Error{Kind: KindInvalid, Code: "INVALID_ARGUMENT", Field: "ca", Message: err.Error(), Err: err}
		}
		return WithCA(pem)(s)
	}
}

// WithServerName sets the name the server certificate must carry, when it
// differs from the URL's host.
func WithServerName(name string) Option {
	return func(s *settings) error {
		s.serverName = name
		return nil
	}
}

// WithTimeout sets the deadline of unary calls (queries, Submit) that have
// none in their context (default 30 s).
func WithTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return invalid("timeout", "must be positive, not %v", d)
		}
		s.timeout = d
		return nil
	}
}

// WithConnectTimeout sets how long [Connect] waits for the endpoint to
// accept a connection (default 5 s).
func WithConnectTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return invalid("connect_timeout", "must be positive, not %v", d)
		}
		s.connectTimeout = d
		return nil
	}
}

// WithDialOptions adds options to the underlying [grpc.NewClient] call
// (after the SDK's own), e.g. a custom dialer or stats handler.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) error {
		s.dialOptions = append(s.dialOptions, opts...)
		return nil
	}
}

// Client is a connection to Tributary's gRPC endpoint (ingest and the query
// API at one address). It is safe for concurrent use; close it with
// [Client.Close]. The connection is remade by itself after ingest restarts,
// so a Client outlives them.
type Client struct {
	url     string
	conn    *grpc.ClientConn
	ingest  tributaryv1.IngestServiceClient
	query   tributaryv1.QueryServiceClient
	timeout time.Duration
	connect time.Duration
}

// Connect returns a [Client] for url (http://host:port or
// https://host:port) once the endpoint accepts a connection: a stopped
// stack fails within the connect timeout (5 s, [WithConnectTimeout]) or
// ctx's deadline, whichever comes first, with a KindUnavailable [*Error]
// naming the address.
//
//	client, err := tributary.Connect(ctx, "https://ingest.example.com:443",
//		tributary.WithAPIKey(os.Getenv("TRIBUTARY_API_KEY")), tributary.WithCAFile("ca.pem"))
func Connect(ctx context.Context, url string, opts ...Option) (*Client, error) {
	client, err := NewClient(url, opts...)
	if err != nil {
		return nil, err
	}
	if err := client.WaitReady(ctx); err != nil {
		_ = client.Close()
		return nil, err
	}
	return client, nil
}

// NewClient is [Connect] without waiting: nothing is dialled until the
// first call, and a stopped stack is reported by the calls themselves.
func NewClient(rawURL string, opts ...Option) (*Client, error) {
	s := settings{timeout: 30 * time.Second, connectTimeout: 5 * time.Second}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&s); err != nil {
			return nil, err
		}
	}
	target, useTLS, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	var creds credentials.TransportCredentials
	switch {
	case useTLS:
		config := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.serverName}
		if s.ca != nil {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(s.ca) {
				return nil, invalid("ca", "holds no PEM certificate")
			}
			config.RootCAs = pool
		}
		creds = credentials.NewTLS(config)
	case s.ca != nil:
		return nil, invalid("ca", "a CA is only used with an https:// URL, not %s", rawURL)
	default:
		creds = insecure.NewCredentials()
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// The channel reconnects by itself between the sender's attempts;
		// grpc's default backoff grows to 120 s, which would outlast the
		// sender's own (100 ms doubling to 5 s).
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 2,
				Jitter:     0.2,
				MaxDelay:   5 * time.Second,
			},
			MinConnectTimeout: 5 * time.Second,
		}),
		// Notice a dead connection (a killed ingest behind a proxy, a
		// dropped network) within seconds, as the Rust SDK does.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                10 * time.Second,
			Timeout:             5 * time.Second,
			PermitWithoutStream: true,
		}),
	}
	if s.apiKey != nil {
		value := "Bearer " + *s.apiKey
		dial = append(dial,
			grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				return invoker(metadata.AppendToOutgoingContext(ctx, "authorization", value), method, req, reply, cc, opts...)
			}),
			grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(metadata.AppendToOutgoingContext(ctx, "authorization", value), desc, cc, method, opts...)
			}),
		)
	}
	dial = append(dial, s.dialOptions...)
	// passthrough: the address is dialled as given (the system resolver,
	// every address of a name), as grpc.Dial did.
	conn, err := grpc.NewClient("passthrough:///"+target, dial...)
	if err != nil {
		return nil, invalid("url", "%s: %v", rawURL, err)
	}
	return &Client{
		url:     rawURL,
		conn:    conn,
		ingest:  tributaryv1.NewIngestServiceClient(conn),
		query:   tributaryv1.NewQueryServiceClient(conn),
		timeout: s.timeout,
		connect: s.connectTimeout,
	}, nil
}

// parseURL returns host:port of an http:// or https:// URL and whether it
// uses TLS.
func parseURL(raw string) (target string, useTLS bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, invalid("url", "%q is not a URL such as %s", raw, DefaultURL)
	}
	switch u.Scheme {
	case "http":
	case "https":
		useTLS = true
	default:
		return "", false, invalid("url", "%q must start with http:// or https://", raw)
	}
	if u.Hostname() == "" {
		return "", false, invalid("url", "%q has no host", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", false, invalid("url", "%q must be scheme://host:port only", raw)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if useTLS {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port), useTLS, nil
}

// URL is the endpoint, as given.
func (c *Client) URL() string { return c.url }

// Conn is the underlying gRPC connection.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Ingest is the generated IngestService client, for anything else (the API
// key is added to its calls).
func (c *Client) Ingest() tributaryv1.IngestServiceClient { return c.ingest }

// Query is the generated QueryService client.
func (c *Client) Query() tributaryv1.QueryServiceClient { return c.query }

// Close closes the connection; calls still running fail.
func (c *Client) Close() error { return c.conn.Close() }

// WaitReady waits until the endpoint accepts a connection, for at most the
// connect timeout or ctx's deadline; it fails with a KindUnavailable
// [*Error] naming the address and grpc's reason (connection refused,
// certificate not trusted, ...).
func (c *Client) WaitReady(ctx context.Context) error {
	wait, cancel := context.WithTimeout(ctx, c.connect)
	defer cancel()
	c.conn.Connect()
	for {
		state := c.conn.GetState()
		if state == connectivity.Ready {
			return nil
		}
		if state == connectivity.Shutdown {
			return closedError("the client is closed")
		}
		if !c.conn.WaitForStateChange(wait, state) {
			break
		}
	}
	reason := "no connection within " + c.connect.String()
	if err := ctx.Err(); err != nil {
		reason = "no connection before the context ended: " + err.Error()
	}
	// Ask once without waiting, for grpc's reason.
	probe, cancelProbe := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelProbe()
	_, err := c.query.GetAggregates(probe, &tributaryv1.GetAggregatesRequest{})
	switch code := codeOf(err); code {
	case codes.Unavailable:
		reason += ": " + messageOf(err)
	case codes.DeadlineExceeded, codes.Canceled:
	default:
		return nil // it answered after all (with a refusal of the empty query)
	}
	return unavailable(c.url, reason, err)
}

// deadline gives ctx the client's unary timeout when it has no deadline.
func (c *Client) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// Ack says where an acknowledged event was stored; it is durable in Kafka.
type Ack struct {
	// Topic is the Kafka topic, e.g. tributary.events.ad_click.
	Topic string
	// Partition is the partition within the topic.
	Partition int32
	// Offset is the offset within the partition.
	Offset int64
	// SchemaID is the Schema Registry id of the Avro schema the event was encoded with.
	SchemaID int32
}

func toAck(a *tributaryv1.EventAck) *Ack {
	return &Ack{Topic: a.GetTopic(), Partition: a.GetPartition(), Offset: a.GetOffset(), SchemaID: a.GetSchemaId()}
}

// Submit submits one event with the unary SubmitEvent call: its [Ack], or a
// KindRejected [*Error] naming the field when ingest refuses it, or a
// KindUnavailable one when ingest cannot be reached.
func (c *Client) Submit(ctx context.Context, event *Event) (*Ack, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	response, err := c.ingest.SubmitEvent(ctx, &tributaryv1.SubmitEventRequest{Event: event})
	if err != nil {
		return nil, fromCallError(err, c.url, event.GetIdempotencyKey())
	}
	return toAck(response.GetAck()), nil
}

// Result is the answer to one event of [Client.SubmitBatch]: an Ack, or
// the KindRejected [*Error] saying why it was refused.
type Result struct {
	Ack *Ack
	Err error
}

// SubmitBatch submits events with one SubmitBatch call: one Result per
// event, in order.
func (c *Client) SubmitBatch(ctx context.Context, events []*Event) ([]Result, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	response, err := c.ingest.SubmitBatch(ctx, &tributaryv1.SubmitBatchRequest{Events: events})
	if err != nil {
		return nil, fromCallError(err, c.url, "")
	}
	if len(response.GetResults()) != len(events) {
		return nil, &Error{Kind: KindStatus, Code: "INTERNAL", GRPCCode: codes.Internal,
			Message: fmt.Sprintf("ingest answered %d results for %d events", len(response.GetResults()), len(events))}
	}
	results := make([]Result, len(events))
	for i, result := range response.GetResults() {
		switch outcome := result.GetOutcome().(type) {
		case *tributaryv1.EventResult_Ack:
			results[i].Ack = toAck(outcome.Ack)
		case *tributaryv1.EventResult_Error:
			results[i].Err = rejected(outcome.Error, events[i].GetIdempotencyKey())
		default:
			results[i].Err = &Error{Kind: KindStatus, Code: "INTERNAL", GRPCCode: codes.Internal, Message: "a result without an outcome"}
		}
	}
	return results, nil
}

func codeOf(err error) codes.Code { return status.Code(err) }

func messageOf(err error) string { return status.Convert(err).Message() }
