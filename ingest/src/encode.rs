//! A validated event as a Confluent-framed Avro record of the newest
//! registered version it fits.
//!
//! An event fits a version when every field it sets is a field of that
//! version, with a value of the field's type, and every field of the version
//! it leaves out has a default. The typed payloads' optional fields left
//! unset (e.g. `campaign_id`) count as absent, so a typed event also fits
//! the versions before they were added; a field that is set, or an extra
//! field, is never left out: an event no version has room for is refused,
//! naming the field.
use std::{io::Write as _, net::IpAddr, sync::Arc};

use apache_avro::{Schema, schema::RecordSchema};
use serde_json::{Map, Value as Json, json};
use tributary_common::wire;

use crate::{
    avro_json,
    event::{AdClick, PriceTick, ValidEvent, ValidPayload},
    rejection::Rejection,
    writer_schema::{WriterCandidates, WriterSchema},
};

mod plan;
#[cfg(test)]
mod plan_tests;

pub use plan::TypedPlan;
use plan::{Planned, TypedPayload, TypedView};

/// What of an event travels beside its record: the Kafka key and headers.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The event type.
    pub event_type: std::borrow::Cow<'static, str>,
    /// The partitioning key.
    pub key: String,
    /// The idempotency key.
    pub idempotency_key: String,
    /// Event time in milliseconds since the Unix epoch.
    pub event_time_ms: i64,
}

/// An event's fields, ready to be checked against the registered versions
/// (more than once when the registry is asked again).
#[derive(Debug, Clone)]
pub struct EventRecord {
    fields: Fields,
    event_time_ms: i64,
    /// `ad_click`, `price_tick` or `generic`, for field paths in errors.
    path: &'static str,
}

/// A typed payload stays typed (and is written by the schema's
/// [`TypedPlan`]) until the general path needs it as one JSON object.
#[derive(Debug, Clone)]
enum Fields {
    /// An ad click and its extra fields (JSON nulls left out).
    AdClick(AdClick, Map<String, Json>),
    /// A price tick and its extra fields (JSON nulls left out).
    PriceTick(PriceTick, Map<String, Json>),
    /// Every field as one JSON object: a generic payload, or a typed one
    /// the general path has seen.
    Object(Map<String, Json>),
}

impl Fields {
    /// The fields as one JSON object, the strings moved into it.
    fn into_object(self) -> Map<String, Json> {
        let (mut object, extra_fields) = match self {
            Fields::AdClick(click, extra) => {
                let mut object = Map::new();
                object.insert(
                    "ip_address".into(),
                    Json::String(click.ip_address.to_string()),
                );
                object.insert("user_agent".into(), Json::String(click.user_agent));
                object.insert("referring_url".into(), Json::String(click.referring_url));
                object.insert("advertiser_id".into(), Json::String(click.advertiser_id));
                object.insert(
                    "metadata".into(),
                    Json::String(click.metadata_json.into_owned()),
                );
                if let Some(campaign_id) = click.campaign_id {
                    object.insert("campaign_id".into(), Json::String(campaign_id));
                }
                (object, extra)
            }
            Fields::PriceTick(tick, extra) => {
                let mut object = Map::new();
                object.insert("pair".into(), Json::String(tick.pair));
                object.insert("source".into(), Json::String(tick.source));
                object.insert("price".into(), json!(tick.price));
                if let Some(volume) = tick.volume {
                    object.insert("volume".into(), json!(volume));
                }
                (object, extra)
            }
            Fields::Object(object) => return object,
        };
        object.extend(extra_fields);
        object
    }
}

impl EventRecord {
    /// The record of `event`. The payload is consumed: its strings move into
    /// the record instead of being copied.
    pub fn new(event: ValidEvent) -> Self {
        Self::split(event).1
    }

    /// The record of `event` and what travels beside it, each moved out of
    /// the event (nothing copied per event).
    pub fn split(event: ValidEvent) -> (Envelope, Self) {
        let ValidEvent {
            mut extra_fields,
            path,
            event_type,
            key,
            event_time_ms,
            idempotency_key,
            payload,
        } = event;
        let envelope = Envelope {
            event_type,
            key,
            idempotency_key,
            event_time_ms,
        };
        // Extra fields of a typed payload: JSON null counts as absent, as
        // for the message's own optional fields.
        extra_fields.retain(|_, v| !v.is_null());
        let fields = match payload {
            ValidPayload::AdClick(click) => Fields::AdClick(click, extra_fields),
            ValidPayload::PriceTick(tick) => Fields::PriceTick(tick, extra_fields),
            ValidPayload::Generic(mut object) => {
                object.extend(extra_fields);
                Fields::Object(object)
            }
        };
        let record = Self {
            fields,
            event_time_ms,
            path,
        };
        (envelope, record)
    }

    /// Appends the encoding of the record with the newest of `candidates` it
    /// fits to `out` and returns that schema. When it fits none, the
    /// rejection is the newest version's reason when some version has every
    /// field the event sets, and otherwise names the field no version has.
    ///
    /// A typed event without extra fields is written by the candidates'
    /// [`TypedPlan`]s; anything they cannot settle takes the general path
    /// (JSON object → Avro value → bytes), which writes the same bytes.
    pub fn encode(
        &mut self,
        candidates: &WriterCandidates,
        out: &mut Vec<u8>,
    ) -> Result<Arc<WriterSchema>, Rejection> {
        match self.encode_typed(candidates, out) {
            Some(schema) => Ok(schema),
            None => self.encode_general(candidates, out),
        }
    }

    /// The typed path: `Some` when a plan wrote the record with the schema
    /// the general path would choose, `None` when only the general path
    /// can tell (`out` is then as it was).
    pub(crate) fn encode_typed(
        &self,
        candidates: &WriterCandidates,
        out: &mut Vec<u8>,
    ) -> Option<Arc<WriterSchema>> {
        let (payload, extra) = match &self.fields {
            Fields::AdClick(click, extra) => (TypedPayload::AdClick(click), extra),
            Fields::PriceTick(tick, extra) => (TypedPayload::PriceTick(tick), extra),
            Fields::Object(_) => return None,
        };
        if !extra.is_empty() {
            return None;
        }
        let mut ip = IpText::default();
        let ip_address = match payload {
            TypedPayload::AdClick(click) => ip.format(click.ip_address)?,
            TypedPayload::PriceTick(_) => "",
        };
        let view = TypedView {
            payload,
            ip_address,
            event_time_ms: self.event_time_ms,
        };
        for (_, schema) in &candidates.schemas {
            let plan = schema.plan.as_ref()?;
            let start = out.len();
            wire::frame_into(schema.id, &[], out);
            match plan.write(&view, out) {
                Planned::Written => return Some(schema.clone()),
                Planned::Lacks => out.truncate(start),
                Planned::General => {
                    out.truncate(start);
                    return None;
                }
            }
        }
        None
    }

    /// The general path alone: the record as a JSON object, converted to an
    /// Avro value of each candidate in turn. [`Self::encode`] takes it when
    /// the typed path cannot settle an event; public for benchmarks.
    pub fn encode_general(
        &mut self,
        candidates: &WriterCandidates,
        out: &mut Vec<u8>,
    ) -> Result<Arc<WriterSchema>, Rejection> {
        let object = match &mut self.fields {
            Fields::Object(object) => object,
            typed => {
                let fields = std::mem::replace(typed, Fields::Object(Map::new()));
                *typed = Fields::Object(fields.into_object());
                let Fields::Object(object) = typed else {
                    unreachable!("just made an object")
                };
                object
            }
        };
        let mut first_mismatch = None;
        let mut lacking = Vec::new();
        for (version, schema) in &candidates.schemas {
            let Schema::Record(record) = schema.schema else {
                first_mismatch.get_or_insert_with(|| {
                    Rejection::internal(format!(
                        "schema {} of `{}` is not a record",
                        schema.id, candidates.subject
                    ))
                });
                continue;
            };
            // The envelope's event time fills the schema's event_time field.
            let stamped = record.fields.iter().any(|f| f.name == "event_time")
                && !object.contains_key("event_time");
            if stamped {
                object.insert("event_time".into(), json!(self.event_time_ms));
            }
            let result = match unknown_field(object, record) {
                Some(field) => {
                    lacking.push((*version, schema.id, field));
                    None
                }
                None => Some(
                    avro_json::record_value(record, &schema.names, object, self.path).and_then(
                        |value| {
                            let start = out.len();
                            schema
                                .encode_into(value, out)
                                .inspect_err(|_| out.truncate(start))
                        },
                    ),
                ),
            };
            if stamped {
                object.remove("event_time");
            }
            match result {
                Some(Ok(())) => return Ok(schema.clone()),
                Some(Err(rejection)) => {
                    first_mismatch.get_or_insert(rejection);
                }
                None => {}
            }
        }
        Err(first_mismatch.unwrap_or_else(|| self.no_room(candidates.pinned(), &lacking)))
    }

    /// Every candidate lacks a field the event sets: the field, when it is
    /// the same one, or else what each version lacks.
    fn no_room(&self, pinned: bool, lacking: &[(Option<u32>, u32, String)]) -> Rejection {
        let first = lacking.first().map(|(_, _, f)| f.as_str()).unwrap_or("");
        if pinned {
            return Rejection::schema_mismatch(
                format!("{}.{first}", self.path),
                "is not a field of the schema --schema-id pins",
            );
        }
        if lacking.iter().all(|(_, _, field)| field == first) {
            return Rejection::schema_mismatch(
                format!("{}.{first}", self.path),
                "is not a field of any registered version; register one that has it",
            );
        }
        let each: Vec<String> = lacking
            .iter()
            .map(|(version, id, field)| match version {
                Some(version) => format!("version {version} lacks `{field}`"),
                None => format!("schema id {id} lacks `{field}`"),
            })
            .collect();
        Rejection::schema_mismatch(
            self.path,
            format!(
                "no registered version has every field the event sets: {}",
                each.join(", ")
            ),
        )
    }
}

/// A field `object` sets that `record` does not have (by name, as
/// [`avro_json::record_value`] matches them).
fn unknown_field(object: &Map<String, Json>, record: &RecordSchema) -> Option<String> {
    object
        .keys()
        .find(|k| !record.fields.iter().any(|f| &f.name == *k))
        .cloned()
}

/// An IP address written as `IpAddr`'s `Display` writes it (as the general
/// path's `to_string` does), on the stack.
struct IpText {
    buf: [u8; 64],
}

impl Default for IpText {
    fn default() -> Self {
        Self { buf: [0; 64] }
    }
}

impl IpText {
    fn format(&mut self, ip: IpAddr) -> Option<&str> {
        let mut rest = &mut self.buf[..];
        write!(rest, "{ip}").ok()?;
        let len = 64 - rest.len();
        std::str::from_utf8(&self.buf[..len]).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use apache_avro::{reader::datum::GenericDatumReader, types::Value};
    use tributary_proto::v1::{self as proto, event::Payload};

    use super::*;
    use crate::event::Validation;

    const NOW: i64 = 1_800_000_000_000;
    const SUBJECT: &str = "tributary.events.ad_click-value";
    const V1: &str = include_str!("../../schemas/ad_click/v1.avsc");
    const V2: &str = include_str!("../../schemas/ad_click/v2.avsc");

    /// v2 plus `extra` fields (JSON field definitions).
    fn v2_with(extra: &str) -> String {
        let mut schema: Json = serde_json::from_str(V2).unwrap();
        let extra: Json = serde_json::from_str(extra).unwrap();
        let fields = schema["fields"].as_array_mut().unwrap();
        fields.extend(extra.as_array().unwrap().iter().cloned());
        schema.to_string()
    }

    fn country(kind: &str) -> String {
        v2_with(&format!(
            r#"[{{"name": "country", "type": ["null", "{kind}"], "default": null}}]"#
        ))
    }

    fn click(campaign: Option<&str>, extra: Json) -> ValidEvent {
        let event = proto::Event {
            event_time: Some(prost_types::Timestamp {
                seconds: NOW / 1000,
                nanos: 0,
            }),
            payload: Some(Payload::AdClick(proto::AdClick {
                ip_address: "203.0.113.7".into(),
                user_agent: "u".into(),
                referring_url: "https://example.com/".into(),
                advertiser_id: "adv-1".into(),
                metadata: None,
                campaign_id: campaign.map(Into::into),
            })),
            extra_fields: extra
                .as_object()
                .map(|o| tributary_proto::envelope::object_to_struct(o.clone())),
            ..Default::default()
        };
        let rules = Validation {
            max_skew: Duration::from_secs(60),
            now_ms: NOW,
        };
        ValidEvent::parse(event, rules).unwrap()
    }

    /// (schema id written with, the decoded record's fields).
    fn write(
        event: ValidEvent,
        candidates: &WriterCandidates,
    ) -> Result<(u32, Vec<(String, Value)>), Rejection> {
        let mut out = Vec::new();
        let schema = EventRecord::new(event).encode(candidates, &mut out)?;
        // The frame names the schema written with, and the body is one whole
        // record of it.
        assert_eq!(out[0], 0);
        assert_eq!(out[1..5], schema.id.to_be_bytes());
        let mut body = &out[5..];
        let decoded = GenericDatumReader::builder(schema.schema)
            .build()
            .unwrap()
            .read_value(&mut body)
            .unwrap();
        assert!(body.is_empty(), "{} bytes left over", body.len());
        let Value::Record(fields) = decoded else {
            panic!("not a record")
        };
        Ok((schema.id, fields))
    }

    fn field<'a>(fields: &'a [(String, Value)], name: &str) -> &'a Value {
        &fields.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn an_event_is_written_with_the_newest_version_it_fits() {
        let v3 = country("string");
        let candidates = WriterCandidates::listed(SUBJECT, &[(3, &v3), (2, V2), (1, V1)]);
        let (id, fields) = write(click(None, json!({"country": "DE"})), &candidates).unwrap();
        assert_eq!(id, 103);
        assert_eq!(
            field(&fields, "country"),
            &Value::Union(1, Box::new(Value::String("DE".into())))
        );
        assert_eq!(field(&fields, "event_time"), &Value::TimestampMillis(NOW));
        // Without the new field it still fits the newest, which defaults it.
        let (id, fields) = write(click(Some("c"), json!({})), &candidates).unwrap();
        assert_eq!(id, 103);
        assert_eq!(
            field(&fields, "country"),
            &Value::Union(0, Box::new(Value::Null))
        );

        // A newest version without `country`: only events without it use it.
        let v4 = V2;
        let candidates = WriterCandidates::listed(SUBJECT, &[(4, v4), (3, &v3)]);
        assert_eq!(
            write(click(None, json!({"country": "DE"})), &candidates)
                .unwrap()
                .0,
            103
        );
        assert_eq!(write(click(None, json!({})), &candidates).unwrap().0, 104);
    }

    #[test]
    fn an_unset_optional_field_fits_a_version_before_it_but_a_set_one_does_not() {
        let candidates = WriterCandidates::listed(SUBJECT, &[(1, V1)]);
        assert_eq!(
            write(click(None, json!({"country": null})), &candidates)
                .unwrap()
                .0,
            101
        );
        let refused = write(click(Some("spring"), json!({})), &candidates).unwrap_err();
        assert_eq!(
            refused.describe(),
            "ad_click.campaign_id: is not a field of any registered version; register one that has it"
        );
        assert_eq!(refused.code, proto::EventErrorCode::SchemaMismatch);
    }

    #[test]
    fn a_field_no_version_has_is_named_and_a_wrong_type_beats_it() {
        let candidates = WriterCandidates::listed(SUBJECT, &[(2, V2), (1, V1)]);
        assert_eq!(
            write(click(None, json!({"country": "DE"})), &candidates)
                .unwrap_err()
                .field,
            "ad_click.country"
        );
        // Two fields that no one version has together.
        let v3 = country("string");
        let v4 = v2_with(r#"[{"name": "region", "type": ["null", "string"], "default": null}]"#);
        let candidates = WriterCandidates::listed(SUBJECT, &[(4, &v4), (3, &v3)]);
        assert_eq!(
            write(
                click(None, json!({"country": "DE", "region": "EU"})),
                &candidates
            )
            .unwrap_err()
            .describe(),
            "ad_click: no registered version has every field the event sets: version 4 lacks `country`, version 3 lacks `region`"
        );
        // v3 has the field with another type: its reason is the useful one.
        let v3 = country("int");
        let candidates = WriterCandidates::listed(SUBJECT, &[(3, &v3), (2, V2)]);
        assert_eq!(
            write(click(None, json!({"country": "DE"})), &candidates)
                .unwrap_err()
                .describe(),
            "ad_click.country: expected an integer, got string \"DE\""
        );
    }
}
