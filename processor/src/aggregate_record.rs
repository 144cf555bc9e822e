//! Aggregates as Avro records of the `aggregate` schema, Confluent-framed,
//! keyed by (event type, group key, window start). Each carries the window's
//! full totals, so replaying one is an idempotent upsert downstream.
use apache_avro::{
    Schema, schema::ResolvedSchema, types::Value, writer::datum::GenericDatumWriter,
};
use tributary_common::{schemas, wire};

use crate::window::{Totals, Update};

/// The encoder of aggregate records, prepared once.
pub struct AggregateEncoder {
    schema_id: u32,
    writer: GenericDatumWriter<'static>,
}

impl AggregateEncoder {
    /// An encoder writing with the built-in latest `aggregate` schema, which
    /// the registry knows as `schema_id`.
    pub fn new(schema_id: u32) -> Result<Self, apache_avro::Error> {
        // Leaked once per process: the prepared writer borrows it for good.
        let schema: &'static Schema = Box::leak(Box::new(
            schemas::latest(schemas::AGGREGATE)
                .expect("built-in aggregate schema")
                .parse(),
        ));
        let resolved = ResolvedSchema::try_from(schema)?;
        let writer = GenericDatumWriter::builder(schema)
            .resolved_schemata(resolved)
            .build()?;
        Ok(Self { schema_id, writer })
    }

    /// The record key of an update.
    pub fn key(event_type: &str, update: &Update) -> String {
        format!(
            "{event_type}|{}|{}",
            update.group_key, update.window_start_ms
        )
    }

    /// The framed Avro value of an update emitted at `emitted_at_ms`.
    pub fn encode(
        &self,
        event_type: &str,
        update: &Update,
        emitted_at_ms: i64,
    ) -> Result<Vec<u8>, apache_avro::Error> {
        let some_long = |v: i64| Value::Union(1, Box::new(Value::Long(v)));
        let some_double = |v: f64| Value::Union(1, Box::new(Value::Double(v)));
        let none = || Value::Union(0, Box::new(Value::Null));
        let (distinct, min, max, sum, last, last_time) = match &update.totals {
            Totals::Clicks { ips, .. } => (
                some_long(ips.len() as i64),
                none(),
                none(),
                none(),
                none(),
                none(),
            ),
            Totals::Prices {
                min,
                max,
                sum,
                last,
                last_time_ms,
                ..
            } => (
                none(),
                some_double(*min),
                some_double(*max),
                some_double(*sum),
                some_double(*last),
                Value::Union(1, Box::new(Value::TimestampMillis(*last_time_ms))),
            ),
            Totals::Count { .. } => (none(), none(), none(), none(), none(), none()),
        };
        let record = Value::Record(vec![
            ("event_type".into(), Value::String(event_type.to_string())),
            ("group_key".into(), Value::String(update.group_key.clone())),
            (
                "window_start".into(),
                Value::TimestampMillis(update.window_start_ms),
            ),
            (
                "window_end".into(),
                Value::TimestampMillis(update.window_end_ms),
            ),
            ("count".into(), Value::Long(update.totals.count())),
            ("distinct_count".into(), distinct),
            ("min".into(), min),
            ("max".into(), max),
            ("sum".into(), sum),
            ("last".into(), last),
            ("last_event_time".into(), last_time),
            ("final".into(), Value::Boolean(update.is_final)),
            (
                "emitted_at".into(),
                Value::Union(1, Box::new(Value::TimestampMillis(emitted_at_ms))),
            ),
            (
                "revision".into(),
                Value::Int(i32::try_from(update.revision).unwrap_or(i32::MAX)),
            ),
        ]);
        let mut out = Vec::with_capacity(128);
        wire::frame_into(self.schema_id, &[], &mut out);
        self.writer.write_value(&mut out, record)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use apache_avro::reader::datum::GenericDatumReader;

    use super::*;

    #[test]
    fn a_click_update_round_trips_through_the_aggregate_schema() {
        let encoder = AggregateEncoder::new(42).unwrap();
        let update = Update {
            group_key: "adv-1".into(),
            window_start_ms: 60_000,
            window_end_ms: 120_000,
            totals: Totals::Clicks {
                count: 3,
                ips: HashSet::from(["a".to_string(), "b".to_string()]),
            },
            is_final: true,
            revision: 2,
        };
        assert_eq!(
            AggregateEncoder::key("ad_click", &update),
            "ad_click|adv-1|60000"
        );
        let bytes = encoder.encode("ad_click", &update, 5).unwrap();
        let (id, body) = wire::unframe(&bytes).unwrap();
        assert_eq!(id, 42);
        let schema = schemas::latest(schemas::AGGREGATE).unwrap().parse();
        let Value::Record(fields) = GenericDatumReader::builder(&schema)
            .build()
            .unwrap()
            .read_value(&mut &body[..])
            .unwrap()
        else {
            panic!()
        };
        let fields: std::collections::HashMap<_, _> = fields.into_iter().collect();
        assert_eq!(fields["count"], Value::Long(3));
        assert_eq!(
            fields["distinct_count"],
            Value::Union(1, Box::new(Value::Long(2)))
        );
        assert_eq!(fields["final"], Value::Boolean(true));
        assert_eq!(fields["revision"], Value::Int(2));
    }
}
