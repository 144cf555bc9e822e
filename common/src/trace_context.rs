//! W3C trace context on Kafka records: the `traceparent` header a producer
//! writes from its current span, and the context a consumer reads back to
//! continue the trace (as the parent of its span, or as a link when one span
//! covers many records).
//!
//! The header is written on every record. When spans go to OpenTelemetry
//! (see [`crate::telemetry`]) it is the producing span's own context;
//! otherwise it is a fresh span id in the caller's trace (or a new trace),
//! so the caller's trace id still travels with the event.
use opentelemetry::{
    propagation::{Extractor, TextMapPropagator as _},
    trace::{TraceContextExt as _, TraceFlags, TraceState},
};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{IdGenerator as _, RandomIdGenerator},
};
use rdkafka::message::{Header, Headers as _, Message, OwnedHeaders};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub use opentelemetry::{Context, trace::SpanContext};

/// Most links one span carries (the OTel SDK's default span limit too):
/// a span that covers more records links to the first this many.
pub const MAX_LINKS: usize = 128;

/// The header (and gRPC metadata / HTTP header) name.
pub const TRACEPARENT: &str = "traceparent";

/// A carrier holding one `traceparent` value.
struct One<'a>(Option<&'a str>);

impl Extractor for One<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0).flatten()
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

/// The remote context a `traceparent` value names; an empty context when the
/// value is absent or not a valid W3C traceparent.
pub fn from_traceparent(value: Option<&str>) -> Context {
    TraceContextPropagator::new().extract(&One(value.map(str::trim)))
}

/// The span context of a valid `traceparent` value.
pub fn span_context(value: Option<&str>) -> Option<SpanContext> {
    let cx = from_traceparent(value);
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.clone())
}

/// The `traceparent` header of a record, if present and UTF-8.
pub fn header_of<M: Message>(message: &M) -> Option<&str> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == TRACEPARENT)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// The remote context of a record's `traceparent` header (empty without one).
pub fn context_of<M: Message>(message: &M) -> Context {
    from_traceparent(header_of(message))
}

/// The span context of a record's `traceparent` header, if valid.
pub fn span_context_of<M: Message>(message: &M) -> Option<SpanContext> {
    span_context(header_of(message))
}

/// The `traceparent` value (`00-{trace id}-{span id}-{flags}`, lowercase
/// hex) of a span context. Written on every record ingest produces, so it is
/// hex-encoded into a fixed buffer: `format!` of the ids was 4 % of ingest's
/// CPU in a profile of streaming.
pub fn format(sc: &SpanContext) -> String {
    // "00-" 32 hex digits "-" 16 hex digits "-" 2 hex digits.
    let mut value = [b'-'; 55];
    value[..2].copy_from_slice(b"00");
    let hex_into = |bytes: &[u8], to: &mut [u8]| {
        hex::encode_to_slice(bytes, to).expect("each slice is twice its bytes' length")
    };
    hex_into(&sc.trace_id().to_bytes(), &mut value[3..35]);
    hex_into(&sc.span_id().to_bytes(), &mut value[36..52]);
    hex_into(&[sc.trace_flags().to_u8()], &mut value[53..55]);
    String::from_utf8(value.to_vec()).expect("hex digits and dashes are ASCII")
}

/// The `traceparent` to send on behalf of `span`: the span's own context
/// when it is recorded into OpenTelemetry; otherwise a new span id in the
/// trace of `parent` (keeping its flags), or in a new sampled trace when
/// `parent` has none.
pub fn traceparent_of(span: &tracing::Span, parent: &Context) -> String {
    let own = span.context();
    let own_span = own.span();
    if own_span.span_context().is_valid() {
        return format(own_span.span_context());
    }
    let ids = RandomIdGenerator::default();
    let parent_span = parent.span();
    let parent = parent_span.span_context();
    let (trace_id, flags) = if parent.is_valid() {
        (parent.trace_id(), parent.trace_flags())
    } else {
        (ids.new_trace_id(), TraceFlags::SAMPLED)
    };
    format(&SpanContext::new(
        trace_id,
        ids.new_span_id(),
        flags,
        false,
        TraceState::NONE,
    ))
}

/// Makes the remote `parent` the parent of `span`, which must not have been
/// entered yet. Nothing changes when `parent` names no span (the span keeps
/// its place under the current span) or when spans are not exported.
pub fn set_parent(span: &tracing::Span, parent: Context) {
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Links `span` to each of `links` (at most [`MAX_LINKS`] are kept).
pub fn add_links<'a>(span: &tracing::Span, links: impl IntoIterator<Item = &'a SpanContext>) {
    for link in links.into_iter().take(MAX_LINKS) {
        span.add_link(link.clone());
    }
}

/// Makes `span` (not entered yet) the child of the first of `traces` and
/// links it to the others (at most [`MAX_LINKS`]): the span of a batch that
/// writes many records continues the first record's trace and points at the
/// rest. Nothing changes when `traces` is empty.
pub fn continue_first(span: &tracing::Span, traces: &[SpanContext]) {
    if let Some((first, rest)) = traces.split_first() {
        set_parent(span, Context::new().with_remote_span_context(first.clone()));
        add_links(span, rest);
    }
}

/// `headers` with a `traceparent` header.
pub fn with_header(headers: OwnedHeaders, traceparent: &str) -> OwnedHeaders {
    headers.insert(Header {
        key: TRACEPARENT,
        value: Some(traceparent),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_round_trips() {
        let sc = span_context(Some(PARENT)).expect("valid");
        assert!(sc.is_remote());
        assert_eq!(format(&sc), PARENT);
    }

    #[test]
    fn the_value_is_the_w3c_form_of_any_context() {
        let ids = RandomIdGenerator::default();
        for flags in [
            TraceFlags::SAMPLED,
            TraceFlags::default(),
            TraceFlags::new(0xab),
        ] {
            for _ in 0..200 {
                let sc = SpanContext::new(
                    ids.new_trace_id(),
                    ids.new_span_id(),
                    flags,
                    false,
                    TraceState::NONE,
                );
                let w3c = format!(
                    "00-{:032x}-{:016x}-{:02x}",
                    u128::from_be_bytes(sc.trace_id().to_bytes()),
                    u64::from_be_bytes(sc.span_id().to_bytes()),
                    flags.to_u8()
                );
                assert_eq!(format(&sc), w3c);
                // The propagator reads back the flags it knows (sampled).
                if flags.to_u8() <= 1 {
                    assert_eq!(
                        span_context(Some(&w3c)).map(|read| read.trace_id()),
                        Some(sc.trace_id())
                    );
                }
            }
        }
    }

    #[test]
    fn invalid_values_give_no_context() {
        for bad in [
            "",
            "00-zz-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ] {
            assert!(span_context(Some(bad)).is_none(), "{bad}");
        }
        assert!(span_context(None).is_none());
    }

    #[test]
    fn without_an_otel_layer_the_header_continues_the_callers_trace() {
        // No subscriber here, so the span has no OTel context.
        let span = tracing::info_span!("produce");
        let child = traceparent_of(&span, &from_traceparent(Some(PARENT)));
        assert!(
            child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{child}"
        );
        assert!(child.ends_with("-01"));
        assert_ne!(child, PARENT);
        assert!(span_context(Some(&child)).is_some());

        let root = traceparent_of(&span, &from_traceparent(Some("garbage")));
        let root_sc = span_context(Some(&root)).expect("a new valid trace");
        assert_ne!(
            root_sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(root.len(), 55);
    }

    #[test]
    fn the_header_is_read_back_from_a_record() {
        use rdkafka::message::{OwnedMessage, Timestamp};
        let headers = with_header(OwnedHeaders::new(), PARENT);
        let message = OwnedMessage::new(
            None,
            None,
            "t".into(),
            Timestamp::NotAvailable,
            0,
            0,
            Some(headers),
        );
        assert_eq!(header_of(&message), Some(PARENT));
        assert_eq!(
            span_context_of(&message).map(|sc| format(&sc)),
            Some(PARENT.to_string())
        );
    }
}
