//! The events every stage sends: deterministic ad clicks, built before a
//! timed run starts, as SDK events, as pre-encoded Kafka records of the same
//! size for the raw producer, and as JSON for `POST /submit`.
use apache_avro::{types::Value, writer::datum::GenericDatumWriter};
use chrono::Utc;
use tributary_client::{event, proto};
use tributary_common::{headers, schemas, wire};

/// Advertisers the events are spread over (the aggregation keys).
pub const ADVERTISERS: usize = 100;

const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) tributary-bench/1";
const REFERRER: &str = "https://news.example.com/articles/2026/11/markets";

fn ip(i: usize) -> String {
    format!("198.51.100.{}", i % 250 + 1)
}

fn advertiser(i: usize) -> String {
    format!("adv-{:03}", i % ADVERTISERS)
}

/// The `i`th ad click as an SDK event, stamped now.
pub fn ad_click(i: usize) -> proto::Event {
    ad_click_for(&advertiser(i), i)
}

/// An ad click of `advertiser`, stamped now.
pub fn ad_click_for(advertiser: &str, i: usize) -> proto::Event {
    event::ad_click(advertiser, ip(i), USER_AGENT, REFERRER)
        .campaign_id(format!("campaign-{}", i % 10))
        .metadata(serde_json::json!({"slot": "top", "page": i % 7}))
        .build()
}

/// The `i`th ad click as the JSON body of `POST /submit` (what wrk's script,
/// `stages/submit.lua`, sends; its test checks that they agree).
pub fn ad_click_json(i: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ip_address": ip(i),
        "user_agent": USER_AGENT,
        "referring_url": REFERRER,
        "advertiser_id": advertiser(i),
        "campaign_id": format!("campaign-{}", i % 10),
        "metadata": {"slot": "top", "page": i % 7},
    }))
    .expect("JSON of literals")
}

/// A Kafka record as ingest produces it: key, Confluent-framed Avro value
/// and the four headers, with values of the same sizes.
#[derive(Clone)]
pub struct RawRecord {
    /// Record key (the advertiser).
    pub key: String,
    /// Framed Avro value.
    pub payload: Vec<u8>,
    /// Header name/value pairs.
    pub headers: Vec<(&'static str, String)>,
}

/// The `i`th ad click encoded as ingest would encode it with the latest
/// built-in `ad_click` schema, registered as `schema_id`.
pub fn raw_ad_click(i: usize, schema_id: u32) -> anyhow::Result<RawRecord> {
    let schema = schemas::latest(schemas::AD_CLICK)
        .expect("built-in ad_click")
        .parse();
    let metadata = serde_json::json!({"slot": "top", "page": i % 7}).to_string();
    let value = Value::Record(vec![
        ("ip_address".into(), Value::String(ip(i))),
        ("user_agent".into(), Value::String(USER_AGENT.into())),
        ("referring_url".into(), Value::String(REFERRER.into())),
        ("advertiser_id".into(), Value::String(advertiser(i))),
        ("metadata".into(), Value::String(metadata)),
        (
            "event_time".into(),
            Value::TimestampMillis(Utc::now().timestamp_millis()),
        ),
        (
            "campaign_id".into(),
            Value::Union(1, Box::new(Value::String(format!("campaign-{}", i % 10)))),
        ),
    ]);
    let body = GenericDatumWriter::builder(&schema)
        .build()?
        .write_value_to_vec(value)?;
    let mut payload = Vec::with_capacity(body.len() + wire::HEADER_LEN);
    wire::frame_into(schema_id, &body, &mut payload);
    let traceparent = format!(
        "00-{}-{}-01",
        uuid::Uuid::new_v4().simple(),
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    Ok(RawRecord {
        key: advertiser(i),
        payload,
        headers: vec![
            (headers::EVENT_TYPE, schemas::AD_CLICK.to_string()),
            (headers::SCHEMA_ID, schema_id.to_string()),
            (headers::IDEMPOTENCY_KEY, uuid::Uuid::new_v4().to_string()),
            (headers::TRACEPARENT, traceparent),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_records_decode_with_the_schema_they_name() {
        let record = raw_ad_click(7, 42).unwrap();
        let (id, body) = wire::unframe(&record.payload).unwrap();
        assert_eq!(id, 42);
        let schema = schemas::latest(schemas::AD_CLICK).unwrap().parse();
        let value = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
            .build()
            .unwrap()
            .read_value(&mut &body[..])
            .unwrap();
        let Value::Record(fields) = value else {
            panic!("not a record")
        };
        assert_eq!(fields[3].1, Value::String("adv-007".into()));
        assert_eq!(record.key, "adv-007");
    }

    #[test]
    fn json_and_sdk_events_describe_the_same_click() {
        let json: serde_json::Value = serde_json::from_slice(&ad_click_json(3)).unwrap();
        let event = ad_click(3);
        let Some(proto::event::Payload::AdClick(click)) = event.payload else {
            panic!("not an ad click")
        };
        assert_eq!(json["advertiser_id"], click.advertiser_id);
        assert_eq!(json["ip_address"], click.ip_address);
    }
}
