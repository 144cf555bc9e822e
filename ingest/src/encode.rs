//! A validated event as a Confluent-framed Avro record of its writer schema.
use apache_avro::Schema;
use serde_json::{Map, Value as Json, json};

use crate::{avro_json, event::ValidPayload, rejection::Rejection, writer_schema::WriterSchema};

/// Appends the encoding of an event of `event_type` at `event_time_ms` with
/// `payload` to `out`. The payload is consumed: its strings move into the
/// record instead of being copied.
pub fn encode(
    event_type: &str,
    event_time_ms: i64,
    payload: ValidPayload,
    schema: &WriterSchema,
    out: &mut Vec<u8>,
) -> Result<(), Rejection> {
    let Schema::Record(record) = schema.schema else {
        return Err(Rejection::internal(format!(
            "schema {} of `{event_type}` is not a record",
            schema.id
        )));
    };
    let typed = !matches!(payload, ValidPayload::Generic(_));
    let (mut object, path) = match payload {
        ValidPayload::AdClick(click) => {
            let mut object = Map::new();
            object.insert(
                "ip_address".into(),
                Json::String(click.ip_address.to_string()),
            );
            object.insert("user_agent".into(), Json::String(click.user_agent));
            object.insert("referring_url".into(), Json::String(click.referring_url));
            object.insert("advertiser_id".into(), Json::String(click.advertiser_id));
            object.insert("metadata".into(), Json::String(click.metadata_json));
            object.insert("campaign_id".into(), json!(click.campaign_id));
            (object, "ad_click")
        }
        ValidPayload::PriceTick(tick) => {
            let mut object = Map::new();
            object.insert("pair".into(), Json::String(tick.pair));
            object.insert("source".into(), Json::String(tick.source));
            object.insert("price".into(), json!(tick.price));
            object.insert("volume".into(), json!(tick.volume));
            (object, "price_tick")
        }
        ValidPayload::Generic(object) => (object, "generic"),
    };
    // The envelope's event time fills the schema's event_time field.
    if record.fields.iter().any(|f| f.name == "event_time") {
        object.entry("event_time").or_insert(json!(event_time_ms));
    }
    if typed {
        // A typed event written with an older schema version leaves out the
        // fields that version does not have (Avro evolution).
        object.retain(|k, _| record.fields.iter().any(|f| &f.name == k));
    }
    let value = avro_json::record_value(record, &schema.names, &object, path)?;
    schema.encode_into(value, out)
}
