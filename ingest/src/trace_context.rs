//! W3C trace context for the `traceparent` Kafka header: each produced event
//! carries a span of the caller's trace (or a new trace), so the processor and
//! sink can continue it.
use uuid::Uuid;

/// A `traceparent` value (`00-{trace id}-{span id}-{flags}`) for a new span:
/// a child of `incoming` when that is a valid traceparent, a new root
/// otherwise.
pub fn child_traceparent(incoming: Option<&str>) -> String {
    let span_id = &Uuid::new_v4().simple().to_string()[..16];
    match incoming.and_then(parse) {
        Some((trace_id, flags)) => format!("00-{trace_id}-{span_id}-{flags}"),
        None => format!("00-{}-{span_id}-01", Uuid::new_v4().simple()),
    }
}

/// The trace id and flags of a valid version-00 traceparent.
fn parse(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.trim().split('-');
    let (version, trace_id, span_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = version == "00"
        && parts.next().is_none()
        && hex(trace_id, 32)
        && hex(span_id, 16)
        && hex(flags, 2)
        && trace_id != "0".repeat(32)
        && span_id != "0".repeat(16);
    valid.then_some((trace_id, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_keeps_the_trace_id_and_flags_with_a_new_span() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let child = child_traceparent(Some(parent));
        assert!(
            child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{child}"
        );
        assert!(child.ends_with("-01"));
        assert_ne!(child, parent);
    }

    #[test]
    fn an_invalid_parent_starts_a_new_trace() {
        let child = child_traceparent(Some("00-zz-00f067aa0ba902b7-01"));
        assert_eq!(parse(&child).map(|(t, _)| t.len()), Some(32));
        assert_eq!(child.len(), 55);
    }
}
