package tributary

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tributaryv1 "github.com/tributary-io/tributary/client/go/gen/tributary/v1"
)

// Kind says which of the SDK's failures an [Error] is; [errors.Is] matches
// an error against the sentinels [ErrRejected], [ErrStatus],
// [ErrUnavailable], [ErrGaveUp], [ErrClosed] and [ErrInvalid].
type Kind int

const (
	// KindRejected: ingest refused one event (invalid, unknown type, schema
	// mismatch, too large). It was not stored and sending it again would
	// fail again; the stream goes on.
	KindRejected Kind = iota + 1
	// KindStatus: a call ended with a gRPC status no retry fixes (e.g.
	// UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT naming a query
	// parameter).
	KindStatus
	// KindUnavailable: the service at URL could not be reached (nothing
	// listening, TLS refused, connection lost) or answered UNAVAILABLE.
	KindUnavailable
	// KindGaveUp: the sender kept reconnecting for GiveUpAfter without any
	// event being answered, and failed the unanswered events (which may or
	// may not have been stored; resending them with the same idempotency
	// keys is safe).
	KindGaveUp
	// KindClosed: the sender is closed or was aborted and takes no more
	// events.
	KindClosed
	// KindInvalid: an event, a query or the client's settings could not be
	// built from the given values; nothing was sent.
	KindInvalid
)

func (k Kind) String() string {
	switch k {
	case KindRejected:
		return "rejected"
	case KindStatus:
		return "status"
	case KindUnavailable:
		return "unavailable"
	case KindGaveUp:
		return "gave up"
	case KindClosed:
		return "closed"
	case KindInvalid:
		return "invalid"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// Error is every error the SDK returns: Code names the class of error (a
// gRPC status name such as UNAUTHENTICATED, or for a refused event the
// EventErrorCode without its prefix, such as INVALID_ARGUMENT; CLOSED for a
// closed sender), Field the offending field's path (e.g.
// "ad_click.ip_address"; empty when not about one field) and Message the
// reason without the field. Use [errors.As] to read it and [errors.Is] with
// the Err* sentinels to test its kind:
//
//	var terr *tributary.Error
//	if errors.As(err, &terr) && terr.Kind == tributary.KindRejected {
//		log.Printf("%s refused: %s", terr.Field, terr.Message)
//	}
type Error struct {
	// Kind is the class of failure.
	Kind Kind
	// Code is a stable upper-case name, e.g. INVALID_ARGUMENT, UNAUTHENTICATED, UNAVAILABLE, CLOSED.
	Code string
	// Field is the path of the offending field, e.g. ad_click.ip_address; "" when none.
	Field string
	// Message is the reason, without the field.
	Message string
	// GRPCCode is the gRPC status code of a failed call (KindStatus,
	// KindUnavailable); codes.OK otherwise.
	GRPCCode codes.Code
	// URL is the endpoint that could not be reached (KindUnavailable, KindGaveUp).
	URL string
	// IdempotencyKey is the refused event's idempotency key (KindRejected), when known.
	IdempotencyKey string
	// Attempts counts the streams the sender opened without progress before it gave up (KindGaveUp).
	Attempts int
	// Err is the underlying error, if any.
	Err error
}

// The sentinels [errors.Is] matches an [*Error] against, by kind.
var (
	ErrRejected    = &Error{Kind: KindRejected}
	ErrStatus      = &Error{Kind: KindStatus}
	ErrUnavailable = &Error{Kind: KindUnavailable}
	ErrGaveUp      = &Error{Kind: KindGaveUp}
	ErrClosed      = &Error{Kind: KindClosed}
	ErrInvalid     = &Error{Kind: KindInvalid}
)

// Error is "field: message", or the message when no field is named.
func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is a sentinel of the same kind (ErrRejected,
// ErrUnavailable, ...).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == "" && t.Message == "" && t.Kind == e.Kind
}

// GRPCStatus lets [status.FromError] and [status.Code] read the error: the
// call's status for KindStatus and KindUnavailable, otherwise a status of
// the code its Code names (INVALID_ARGUMENT for a refused event, CANCELED
// for a closed sender).
func (e *Error) GRPCStatus() *status.Status {
	code := e.GRPCCode
	if code == codes.OK {
		switch e.Kind {
		case KindRejected, KindInvalid:
			code = codes.InvalidArgument
			switch e.Code {
			case "UNKNOWN_EVENT_TYPE":
				code = codes.NotFound
			case "TOO_LARGE":
				code = codes.ResourceExhausted
			case "INTERNAL", "UNSPECIFIED":
				code = codes.Internal
			}
		case KindUnavailable, KindGaveUp:
			code = codes.Unavailable
		case KindClosed:
			code = codes.Canceled
		default:
			code = codes.Unknown
		}
	}
	return status.New(code, e.Error())
}

// invalid is the error of a value the SDK cannot use; nothing was sent.
func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Code: "INVALID_ARGUMENT", Field: field, Message: fmt.Sprintf(format, args...)}
}

// closedError is the error of a closed (or aborted) sender.
func closedError(message string) *Error {
	return &Error{Kind: KindClosed, Code: "CLOSED", Message: message}
}

// unavailable says the endpoint at url could not be reached, and why.
func unavailable(url, reason string, cause error) *Error {
	return &Error{
		Kind:     KindUnavailable,
		Code:     "UNAVAILABLE",
		Message:  fmt.Sprintf("cannot reach Tributary at %s: %s", url, reason),
		GRPCCode: codes.Unavailable,
		URL:      url,
		Err:      cause,
	}
}

// eventErrorCodeName is an EventErrorCode's name without its prefix, e.g.
// INVALID_ARGUMENT; UNSPECIFIED for a code this SDK does not know.
func eventErrorCodeName(code tributaryv1.EventErrorCode) string {
	name, ok := tributaryv1.EventErrorCode_name[int32(code)]
	if !ok {
		return "UNSPECIFIED"
	}
	return strings.TrimPrefix(name, "EVENT_ERROR_CODE_")
}

// rejected is the error of an event ingest refused in a stream or batch result.
func rejected(e *tributaryv1.EventError, idempotencyKey string) *Error {
	field, message := e.GetField(), e.GetMessage()
	if field != "" {
		message = strings.TrimPrefix(message, field+": ")
	}
	return &Error{
		Kind:           KindRejected,
		Code:           eventErrorCodeName(e.GetCode()),
		Field:          field,
		Message:        message,
		IdempotencyKey: idempotencyKey,
	}
}

// fieldMessage matches "field: reason", as ingest and the query API word a
// refusal: the field is a dotted path such as ad_click.ip_address,
// page_size, extra_fields.x or generic.items[2].
var fieldMessage = regexp.MustCompile(`(?s)^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+|\[\d+\])*): (.+)$`)

// splitField returns the field and the reason of a "field: reason" status
// message; known (from the status details) wins when given.
func splitField(message, known string) (field, reason string) {
	if known != "" {
		return known, strings.TrimPrefix(message, known+": ")
	}
	if m := fieldMessage.FindStringSubmatch(message); m != nil {
		return m[1], m[2]
	}
	return "", message
}

const eventErrorPrefix = "EVENT_ERROR_CODE_"

// fromCallError is the SDK's error for a failed call to url: a refused
// event (ingest's ErrorInfo names an EVENT_ERROR_CODE_*) is KindRejected;
// UNAVAILABLE is KindUnavailable naming url; any other status is KindStatus
// with the field of the details (ErrorInfo metadata "field", a BadRequest
// violation) or of a "field: reason" message. SDK errors pass through.
func fromCallError(err error, url, idempotencyKey string) error {
	if err == nil {
		return nil
	}
	var own *Error
	if errors.As(err, &own) {
		return own
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Kind: KindStatus, Code: "UNKNOWN", Message: err.Error(), GRPCCode: codes.Unknown, Err: err}
	}
	known, reason := "", ""
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
			if f := d.GetMetadata()["field"]; f != "" {
				known = f
			}
		case *errdetails.BadRequest:
			if v := d.GetFieldViolations(); known == "" && len(v) > 0 {
				known = v[0].GetField()
			}
		}
	}
	if st.Code() == codes.Unavailable {
		return unavailable(url, st.Message(), err)
	}
	field, message := splitField(st.Message(), known)
	if strings.HasPrefix(reason, eventErrorPrefix) {
		return &Error{
			Kind:           KindRejected,
			Code:           strings.TrimPrefix(reason, eventErrorPrefix),
			Field:          field,
			Message:        message,
			GRPCCode:       st.Code(),
			IdempotencyKey: idempotencyKey,
			Err:            err,
		}
	}
	return statusError(st.Code(), field, message, err)
}

// statusError is a KindStatus error of a gRPC status.
func statusError(code codes.Code, field, message string, cause error) *Error {
	return &Error{
		Kind:     KindStatus,
		Code:     codeName(code),
		Field:    field,
		Message:  message,
		GRPCCode: code,
		Err:      cause,
	}
}

// codeName is the upper-case name of a gRPC status code, e.g. UNAUTHENTICATED.
func codeName(code codes.Code) string {
	switch code {
	case codes.Canceled:
		return "CANCELLED"
	case codes.Unknown:
		return "UNKNOWN"
	case codes.InvalidArgument:
		return "INVALID_ARGUMENT"
	case codes.DeadlineExceeded:
		return "DEADLINE_EXCEEDED"
	case codes.NotFound:
		return "NOT_FOUND"
	case codes.AlreadyExists:
		return "ALREADY_EXISTS"
	case codes.PermissionDenied:
		return "PERMISSION_DENIED"
	case codes.ResourceExhausted:
		return "RESOURCE_EXHAUSTED"
	case codes.FailedPrecondition:
		return "FAILED_PRECONDITION"
	case codes.Aborted:
		return "ABORTED"
	case codes.OutOfRange:
		return "OUT_OF_RANGE"
	case codes.Unimplemented:
		return "UNIMPLEMENTED"
	case codes.Internal:
		return "INTERNAL"
	case codes.Unavailable:
		return "UNAVAILABLE"
	case codes.DataLoss:
		return "DATA_LOSS"
	case codes.Unauthenticated:
		return "UNAUTHENTICATED"
	case codes.OK:
		return "OK"
	default:
		return fmt.Sprintf("CODE_%d", uint32(code))
	}
}
