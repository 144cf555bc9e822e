package tributary

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tributaryv1 "github.com/tributary-io/tributary/client/go/gen/tributary/v1"
)

func withDetails(t *testing.T, code codes.Code, message string, details ...*errdetails.ErrorInfo) error {
	t.Helper()
	st := status.New(code, message)
	for _, d := range details {
		var err error
		if st, err = st.WithDetails(d); err != nil {
			t.Fatal(err)
		}
	}
	return st.Err()
}

func TestACallRefusingAnEventIsARejectionNamingTheFieldOfItsDetails(t *testing.T) {
	err := fromCallError(withDetails(t, codes.InvalidArgument, "ad_click.ip_address: \"x\" is not an IP address",
		&errdetails.ErrorInfo{Reason: "EVENT_ERROR_CODE_INVALID_ARGUMENT", Domain: "tributary.io", Metadata: map[string]string{"field": "ad_click.ip_address"}}),
		"http://h:1", "key-1")
	var terr *Error
	if !errors.As(err, &terr) || terr.Kind != KindRejected || terr.Code != "INVALID_ARGUMENT" || terr.Field != "ad_click.ip_address" ||
		terr.Message != `"x" is not an IP address` || terr.IdempotencyKey != "key-1" {
		t.Fatalf("%#v", err)
	}
	unknown := fromCallError(withDetails(t, codes.NotFound, "no schema is registered for `signup`",
		&errdetails.ErrorInfo{Reason: "EVENT_ERROR_CODE_UNKNOWN_EVENT_TYPE", Metadata: map[string]string{"field": ""}}), "http://h:1", "")
	if !errors.As(unknown, &terr) || terr.Code != "UNKNOWN_EVENT_TYPE" || terr.Field != "" || !errors.Is(unknown, ErrRejected) {
		t.Fatalf("%#v", unknown)
	}
}

func TestOtherStatusesAreStatusErrorsWithTheFieldOfTheirMessage(t *testing.T) {
	err := fromCallError(status.Error(codes.InvalidArgument, "page_size: must be between 1 and 10000"), "http://h:1", "")
	var terr *Error
	if !errors.As(err, &terr) || terr.Kind != KindStatus || terr.Code != "INVALID_ARGUMENT" || terr.Field != "page_size" ||
		terr.Message != "must be between 1 and 10000" || terr.GRPCCode != codes.InvalidArgument {
		t.Fatalf("%#v", err)
	}
	if err.Error() != "page_size: must be between 1 and 10000" || !errors.Is(err, ErrStatus) || errors.Is(err, ErrRejected) {
		t.Fatalf("%v", err)
	}
	if st, ok := status.FromError(err); !ok || st.Code() != codes.InvalidArgument {
		t.Fatalf("status %v", st)
	}
	auth := fromCallError(status.Error(codes.Unauthenticated, "a valid API key is required"), "http://h:1", "")
	if !errors.As(auth, &terr) || terr.Code != "UNAUTHENTICATED" || terr.Field != "" || terr.Message != "a valid API key is required" {
		t.Fatalf("%#v", auth)
	}
	down := fromCallError(status.Error(codes.Unavailable, "connection refused"), "http://h:1", "")
	if !errors.As(down, &terr) || terr.Kind != KindUnavailable || terr.URL != "http://h:1" || terr.Error() != "cannot reach Tributary at http://h:1: connection refused" {
		t.Fatalf("%#v", down)
	}
	wrapped := fmt.Errorf("query: %w", down)
	if !errors.Is(wrapped, ErrUnavailable) || status.Code(down) != codes.Unavailable {
		t.Fatalf("%v", wrapped)
	}
}

func TestAStreamRejectionCarriesTheEventErrorCodeFieldAndReason(t *testing.T) {
	err := rejected(&tributaryv1.EventError{
		Code: tributaryv1.EventErrorCode_EVENT_ERROR_CODE_SCHEMA_MISMATCH, Field: "extra_fields.country", Message: "extra_fields.country: no registered version has it",
	}, "k")
	if err.Code != "SCHEMA_MISMATCH" || err.Field != "extra_fields.country" || err.Message != "no registered version has it" || err.IdempotencyKey != "k" {
		t.Fatalf("%#v", err)
	}
	if odd := rejected(&tributaryv1.EventError{Code: 99, Message: "new"}, ""); odd.Code != "UNSPECIFIED" || odd.Error() != "new" {
		t.Fatalf("%#v", odd)
	}
}

func TestSplitFieldReadsDottedAndIndexedPaths(t *testing.T) {
	for message, want := range map[string][2]string{
		"generic.items[2].name: must be a string": {"generic.items[2].name", "must be a string"},
		"start_time: is required":                 {"start_time", "is required"},
		"no field here":                           {"", "no field here"},
		"two words: not a field":                  {"", "two words: not a field"},
	} {
		if field, reason := splitField(message, ""); field != want[0] || reason != want[1] {
			t.Errorf("%q: %q, %q", message, field, reason)
		}
	}
}
