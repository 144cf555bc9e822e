//! The Avro schemas of `schemas/`, compiled into every binary so that readers
//! and the local stack use exactly the files in the repository.
use apache_avro::Schema;

/// Event type of ad clicks.
pub const AD_CLICK: &str = "ad_click";
/// Event type of price ticks.
pub const PRICE_TICK: &str = "price_tick";
/// Name of the aggregate record family.
pub const AGGREGATE: &str = "aggregate";

/// One version of one schema in `schemas/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinSchema {
    /// `ad_click`, `price_tick` or `aggregate`.
    pub name: &'static str,
    /// The version, from the file name `v{N}.avsc`.
    pub version: u32,
    /// The schema's JSON text.
    pub json: &'static str,
}

impl BuiltinSchema {
    /// Parses the schema. The files are checked by this crate's tests, so
    /// parsing cannot fail at runtime.
    pub fn parse(&self) -> Schema {
        Schema::parse_str(self.json).unwrap_or_else(|e| {
            panic!(
                "schemas/{}/v{}.avsc is invalid: {e}",
                self.name, self.version
            )
        })
    }
}

/// Every schema version shipped in `schemas/`, oldest first per name.
pub const BUILTIN: &[BuiltinSchema] = &[
    BuiltinSchema {
        name: AD_CLICK,
        version: 1,
        json: include_str!("../../schemas/ad_click/v1.avsc"),
    },
    BuiltinSchema {
        name: AD_CLICK,
        version: 2,
        json: include_str!("../../schemas/ad_click/v2.avsc"),
    },
    BuiltinSchema {
        name: PRICE_TICK,
        version: 1,
        json: include_str!("../../schemas/price_tick/v1.avsc"),
    },
    BuiltinSchema {
        name: PRICE_TICK,
        version: 2,
        json: include_str!("../../schemas/price_tick/v2.avsc"),
    },
    BuiltinSchema {
        name: AGGREGATE,
        version: 1,
        json: include_str!("../../schemas/aggregate/v1.avsc"),
    },
    BuiltinSchema {
        name: AGGREGATE,
        version: 2,
        json: include_str!("../../schemas/aggregate/v2.avsc"),
    },
    BuiltinSchema {
        name: AGGREGATE,
        version: 3,
        json: include_str!("../../schemas/aggregate/v3.avsc"),
    },
];

/// The versions of `name`, oldest first.
pub fn versions(name: &str) -> impl Iterator<Item = &'static BuiltinSchema> + '_ {
    BUILTIN.iter().filter(move |s| s.name == name)
}

/// The newest version of `name`, if it is a built-in schema.
pub fn latest(name: &str) -> Option<&'static BuiltinSchema> {
    versions(name).max_by_key(|s| s.version)
}

/// The Schema Registry subject of a topic's values under Confluent's
/// TopicNameStrategy.
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use apache_avro::{
        reader::datum::GenericDatumReader, schema_compatibility::SchemaCompatibility, types::Value,
        writer::datum::GenericDatumWriter,
    };

    use super::*;

    fn schema(name: &str, version: u32) -> Schema {
        versions(name)
            .find(|s| s.version == version)
            .unwrap()
            .parse()
    }

    #[test]
    fn every_schema_exists_in_its_versions_and_parses() {
        for (name, expected) in [
            (AD_CLICK, &[1, 2][..]),
            (PRICE_TICK, &[1, 2]),
            (AGGREGATE, &[1, 2, 3]),
        ] {
            let found: Vec<u32> = versions(name).map(|s| s.version).collect();
            assert_eq!(found, expected, "{name}");
            for s in versions(name) {
                s.parse();
            }
        }
    }

    #[test]
    fn every_version_is_fully_transitively_compatible() {
        for name in [AD_CLICK, PRICE_TICK, AGGREGATE] {
            for a in versions(name) {
                for b in versions(name) {
                    let (reader, writer) = (a.parse(), b.parse());
                    SchemaCompatibility::can_read(&writer, &reader).unwrap_or_else(|e| {
                        panic!(
                            "{name}: a v{} reader cannot read v{}: {e}",
                            a.version, b.version
                        )
                    });
                }
            }
        }
    }

    fn price_tick_v1() -> Value {
        Value::Record(vec![
            ("pair".into(), Value::String("ETH-USD".into())),
            ("source".into(), Value::String("coinbase".into())),
            ("price".into(), Value::Double(3012.5)),
            (
                "event_time".into(),
                Value::TimestampMillis(1_700_000_000_123),
            ),
        ])
    }

    fn write(schema: &Schema, value: Value) -> Vec<u8> {
        GenericDatumWriter::builder(schema)
            .build()
            .unwrap()
            .write_value_to_vec(value)
            .unwrap()
    }

    fn read(writer: &Schema, reader: &Schema, bytes: &[u8]) -> Value {
        GenericDatumReader::builder(writer)
            .reader_schema(reader)
            .build()
            .unwrap()
            .read_value(&mut &bytes[..])
            .unwrap()
    }

    fn fields(value: Value) -> HashMap<String, Value> {
        match value {
            Value::Record(fields) => fields.into_iter().collect(),
            other => panic!("expected a record, got {other:?}"),
        }
    }

    #[test]
    fn v1_record_read_with_v2_reader_gets_the_default_for_the_new_field() {
        let (v1, v2) = (schema(PRICE_TICK, 1), schema(PRICE_TICK, 2));
        let bytes = write(&v1, price_tick_v1());
        let read = fields(read(&v1, &v2, &bytes));
        assert_eq!(read["price"], Value::Double(3012.5));
        assert_eq!(
            read["event_time"],
            Value::TimestampMillis(1_700_000_000_123)
        );
        assert_eq!(read["volume"], Value::Union(0, Box::new(Value::Null)));
    }

    #[test]
    fn v2_record_read_with_v1_reader_drops_the_new_field() {
        let (v1, v2) = (schema(PRICE_TICK, 1), schema(PRICE_TICK, 2));
        let Value::Record(mut record) = price_tick_v1() else {
            unreachable!()
        };
        record.push((
            "volume".into(),
            Value::Union(1, Box::new(Value::Double(4.0))),
        ));
        let bytes = write(&v2, Value::Record(record));
        let read = fields(read(&v2, &v1, &bytes));
        assert_eq!(read.len(), 4);
        assert_eq!(read["pair"], Value::String("ETH-USD".into()));
        assert!(!read.contains_key("volume"));
    }
}
