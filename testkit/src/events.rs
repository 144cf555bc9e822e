//! Events for tests: typed builders with the fields every test repeats, and
//! a submission that fails unless ingest acknowledged every event.
use tributary_proto::v1::{
    AdClick, Event, EventAck, SubmitBatchRequest, event::Payload, event_result::Outcome,
    ingest_service_client::IngestServiceClient,
};

/// A protobuf timestamp of `ms` milliseconds since the Unix epoch.
pub fn timestamp(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

/// An ad click of `advertiser` from `ip` at `at_ms`, with idempotency key
/// `id` (user agent `test`, referrer `https://example.com/`).
pub fn ad_click(advertiser: &str, ip: &str, at_ms: i64, id: &str) -> Event {
    Event {
        event_time: timestamp(at_ms),
        idempotency_key: id.into(),
        payload: Some(Payload::AdClick(AdClick {
            ip_address: ip.into(),
            user_agent: "test".into(),
            referring_url: "https://example.com/".into(),
            advertiser_id: advertiser.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Submits `events` in one `SubmitBatch` to ingest at `grpc_url`; an error
/// names every event ingest did not acknowledge.
pub async fn submit_acknowledged(
    grpc_url: &str,
    events: Vec<Event>,
) -> anyhow::Result<Vec<EventAck>> {
    let results = IngestServiceClient::connect(grpc_url.to_string())
        .await?
        .submit_batch(SubmitBatchRequest { events })
        .await?
        .into_inner()
        .results;
    let mut acks = Vec::with_capacity(results.len());
    let mut refused = Vec::new();
    for (index, result) in results.into_iter().enumerate() {
        match result.outcome {
            Some(Outcome::Ack(ack)) => acks.push(ack),
            other => refused.push(format!("event {index}: {other:?}")),
        }
    }
    anyhow::ensure!(
        refused.is_empty(),
        "not acknowledged: {}",
        refused.join("; ")
    );
    Ok(acks)
}
