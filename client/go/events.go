package tributary

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tributaryv1 "github.com/tributary-io/tributary/client/go/gen/tributary/v1"
)

// Event is the generated protobuf envelope every submitted event travels in.
type Event = tributaryv1.Event

// EventOption sets an optional part of an event built by [AdClick],
// [PriceTick] or [Generic].
type EventOption func(*eventOptions)

type eventOptions struct {
	eventTime      time.Time
	idempotencyKey *string
	key            *string
	metadata       map[string]any
	campaignID     *string
	volume         *float64
	fields         map[string]any
}

// EventTime sets when the event happened (default: now). Windows are
// computed in event time.
func EventTime(t time.Time) EventOption {
	return func(o *eventOptions) { o.eventTime = t }
}

// IdempotencyKey sets the event's idempotency key (default: a random UUID):
// an event submitted again with the same key is counted once.
func IdempotencyKey(key string) EventOption {
	return func(o *eventOptions) { o.idempotencyKey = &key }
}

// Key sets the partitioning and aggregation key. Typed events accept only
// their natural key (the advertiser id, the pair), which is also their
// default; [Generic] events need one.
func Key(key string) EventOption {
	return func(o *eventOptions) { o.key = &key }
}

// Metadata sets an ad click's free-form metadata (a JSON object).
func Metadata(metadata map[string]any) EventOption {
	return func(o *eventOptions) { o.metadata = metadata }
}

// CampaignID sets an ad click's campaign (schema v2).
func CampaignID(id string) EventOption {
	return func(o *eventOptions) { o.campaignID = &id }
}

// Volume sets a price tick's traded volume (schema v2).
func Volume(volume float64) EventOption {
	return func(o *eventOptions) { o.volume = &volume }
}

// Fields sets fields that a newer registered version of the event type's
// schema added and the typed message lacks (sent as extra_fields, e.g.
// {"country": "DE"} once an ad_click v3 with country is registered). Ingest
// writes the event with the newest registered version that has every field
// sent and refuses a field no registered version has.
func Fields(fields map[string]any) EventOption {
	return func(o *eventOptions) { o.fields = fields }
}

func collect(opts []EventOption) eventOptions {
	var o eventOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// envelope is the event without its payload: type, key, event time and
// idempotency key, with their defaults.
func envelope(eventType string, o *eventOptions) (*tributaryv1.Event, error) {
	event := &tributaryv1.Event{EventType: eventType}
	if o.key != nil {
		event.Key = *o.key
	}
	at := o.eventTime
	if at.IsZero() {
		at = time.Now()
	}
	event.EventTime = timestamppb.New(at)
	if o.idempotencyKey != nil {
		if *o.idempotencyKey == "" {
			return nil, invalid("idempotency_key", "must not be empty (leave it out for a random UUID)")
		}
		event.IdempotencyKey = *o.idempotencyKey
	} else {
		event.IdempotencyKey = uuid.NewString()
	}
	if len(o.fields) > 0 {
		extra, err := toStruct(o.fields, "extra_fields")
		if err != nil {
			return nil, err
		}
		event.ExtraFields = extra
	}
	return event, nil
}

// AdClick builds an ad_click event, keyed by advertiserID. Options:
// [EventTime] (default now), [IdempotencyKey] (default a random UUID),
// [Metadata], [CampaignID], [Fields], [Key]. The values are judged by
// ingest (a bad IP address is refused naming ad_click.ip_address); the
// error here is for metadata or fields protobuf cannot carry.
//
//	event, err := tributary.AdClick("adv-1", "203.0.113.7", "curl/8", "https://example.com/", tributary.CampaignID("spring"))
func AdClick(advertiserID, ipAddress, userAgent, referringURL string, opts ...EventOption) (*Event, error) {
	o := collect(opts)
	if o.volume != nil {
		return nil, invalid("ad_click", "has no volume (a price_tick field)")
	}
	event, err := envelope("ad_click", &o)
	if err != nil {
		return nil, err
	}
	click := &tributaryv1.AdClick{
		AdvertiserId: advertiserID,
		IpAddress:    ipAddress,
		UserAgent:    userAgent,
		ReferringUrl: referringURL,
		CampaignId:   o.campaignID,
	}
	if o.metadata != nil {
		if click.Metadata, err = toStruct(o.metadata, "ad_click.metadata"); err != nil {
			return nil, err
		}
	}
	event.Payload = &tributaryv1.Event_AdClick{AdClick: click}
	return event, nil
}

// PriceTick builds a price_tick event, keyed by pair and aggregated per
// pair/source. Options: [EventTime], [IdempotencyKey], [Volume], [Fields],
// [Key].
//
//	event, err := tributary.PriceTick("ETH-USD", "coinbase", 3012.5, tributary.Volume(1.25))
func PriceTick(pair, source string, price float64, opts ...EventOption) (*Event, error) {
	o := collect(opts)
	if o.metadata != nil || o.campaignID != nil {
		return nil, invalid("price_tick", "has no metadata or campaign_id (ad_click fields)")
	}
	event, err := envelope("price_tick", &o)
	if err != nil {
		return nil, err
	}
	event.Payload = &tributaryv1.Event_PriceTick{PriceTick: &tributaryv1.PriceTick{
		Pair:   pair,
		Source: source,
		Price:  price,
		Volume: o.volume,
	}}
	return event, nil
}

// Generic builds an event of any type from its fields (a JSON-like map),
// which ingest checks against the Avro schema versions registered for
// eventType: a schema-driven type registered at runtime, or ad_click and
// price_tick with fields of any registered version. Give it a [Key] (the
// partitioning and aggregation key); [EventTime] and [IdempotencyKey] as
// for the others.
//
//	event, err := tributary.Generic("signup", map[string]any{"plan": "pro", "seats": 3}, tributary.Key("user-7"))
func Generic(eventType string, fields map[string]any, opts ...EventOption) (*Event, error) {
	o := collect(opts)
	if o.metadata != nil || o.campaignID != nil || o.volume != nil || o.fields != nil {
		return nil, invalid("generic", "takes every field in its map (no Metadata, CampaignID, Volume or Fields options)")
	}
	if eventType == "" {
		return nil, invalid("event_type", "must not be empty")
	}
	if fields == nil {
		return nil, invalid("generic", "must be a map of field names to JSON values, not nil")
	}
	event, err := envelope(eventType, &o)
	if err != nil {
		return nil, err
	}
	payload, err := toStruct(fields, "generic")
	if err != nil {
		return nil, err
	}
	event.Payload = &tributaryv1.Event_Generic{Generic: payload}
	return event, nil
}

// maxExact is 2^53: a protobuf Struct holds numbers as doubles, so an
// integer beyond it would arrive rounded; it is refused rather than changed.
const maxExact = 1 << 53

// toStruct converts a JSON-like map into a protobuf Struct, naming the path
// of any value it cannot carry exactly.
func toStruct(fields map[string]any, path string) (*structpb.Struct, error) {
	out := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(fields))}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names) // the first offending field is always the same
	for _, name := range names {
		value, err := toValue(fields[name], path+"."+name)
		if err != nil {
			return nil, err
		}
		out.Fields[name] = value
	}
	return out, nil
}

func toValue(v any, path string) (*structpb.Value, error) {
	switch v := v.(type) {
	case nil:
		return structpb.NewNullValue(), nil
	case bool:
		return structpb.NewBoolValue(v), nil
	case string:
		return structpb.NewStringValue(v), nil
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return toValue(i, path)
		}
		f, err := v.Float64()
		if err != nil {
			return nil, invalid(path, "%q is not a number", string(v))
		}
		return toValue(f, path)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, invalid(path, "must be a finite number, not %v", v)
		}
		return structpb.NewNumberValue(v), nil
	case float32:
		return toValue(float64(v), path)
	case int, int8, int16, int32, int64:
		i := reflect.ValueOf(v).Int()
		if i > maxExact || i < -maxExact {
			return nil, invalid(path, "%d is beyond 2^53 and cannot travel exactly in a protobuf Struct (send it as a string)", i)
		}
		return structpb.NewNumberValue(float64(i)), nil
	case uint, uint8, uint16, uint32, uint64, uintptr:
		u := reflect.ValueOf(v).Uint()
		if u > maxExact {
			return nil, invalid(path, "%d is beyond 2^53 and cannot travel exactly in a protobuf Struct (send it as a string)", u)
		}
		return structpb.NewNumberValue(float64(u)), nil
	case map[string]any:
		s, err := toStruct(v, path)
		if err != nil {
			return nil, err
		}
		return structpb.NewStructValue(s), nil
	case []any:
		list := &structpb.ListValue{Values: make([]*structpb.Value, len(v))}
		for i, item := range v {
			value, err := toValue(item, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			list.Values[i] = value
		}
		return structpb.NewListValue(list), nil
	case *structpb.Value:
		return v, nil
	case *structpb.Struct:
		return structpb.NewStructValue(v), nil
	}
	// Other slices and maps with string keys, e.g. []string or map[string]int.
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		items := make([]any, rv.Len())
		for i := range items {
			items[i] = rv.Index(i).Interface()
		}
		return toValue(items, path)
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			m := make(map[string]any, rv.Len())
			iter := rv.MapRange()
			for iter.Next() {
				m[iter.Key().String()] = iter.Value().Interface()
			}
			return toValue(m, path)
		}
	}
	return nil, invalid(path, "is not a JSON value (%s)", fmt.Sprintf("%T", v))
}
