//! The typed plans read what the general path reads: for generated records
//! of many writer schemas (the built-in versions and variants of them:
//! fields reordered, added of every plain type, nullable or not, missing),
//! intact, truncated, extended and with bytes flipped, read with the v1 and
//! v2 readers, a plan either leaves the record to the general path or gives
//! exactly its result: the same event, or the same rejection.
use apache_avro::{
    Schema,
    types::{Record as AvroRecord, Value},
    writer::datum::GenericDatumWriter,
};
use tributary_common::{schemas, wire};

use super::{DecodeError, Decoded, Decoder, Kind, ReaderVersion, plan::TypedPlan};

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn string(rng: &mut Rng, field: &str) -> String {
    let ordinary = match field {
        "ip_address" => ["10.0.0.1", "198.51.100.7", "2001:db8::1", "::1"],
        "pair" => ["ETH-USD", "BTC-USD", "LINK-USD", "X"],
        "source" => ["coinbase", "kraken", "contract", "s"],
        "advertiser_id" => ["adv-001", "adv-042", "a", "广告主"],
        _ => [
            "",
            "curl/8",
            "https://example.com/a?b=c",
            "{\"slot\":\"top\"}",
        ],
    };
    match rng.below(10) {
        0 => String::new(),
        1 => "10.0.0.256".into(),
        2 => "not an address ☃".into(),
        3 => "x".repeat(rng.below(300)),
        _ => (*rng.pick(&ordinary)).into(),
    }
}

fn double(rng: &mut Rng) -> f64 {
    match rng.below(12) {
        0 => 0.0,
        1 => -1.5,
        2 => f64::NAN,
        3 => f64::INFINITY,
        4 => f64::NEG_INFINITY,
        5 => f64::MIN_POSITIVE,
        _ => (rng.below(10_000_000) as f64) / 100.0 + 0.01,
    }
}

fn long(rng: &mut Rng) -> i64 {
    match rng.below(8) {
        0 => 0,
        1 => -1,
        2 => i64::MAX,
        3 => i64::MIN,
        _ => 1_700_000_000_000 + rng.below(100_000_000) as i64,
    }
}

/// A value of `schema` (plain types and unions of them) for field `field`.
fn value(rng: &mut Rng, field: &str, schema: &Schema) -> Value {
    match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(rng.below(2) == 1),
        Schema::Int => Value::Int(rng.next() as i32),
        Schema::Date => Value::Date(rng.next() as i32),
        Schema::Long => Value::Long(long(rng)),
        Schema::TimestampMillis => Value::TimestampMillis(long(rng)),
        Schema::TimestampMicros => Value::TimestampMicros(long(rng)),
        Schema::Float => Value::Float(double(rng) as f32),
        Schema::Double => Value::Double(double(rng)),
        Schema::Bytes => Value::Bytes((0..rng.below(20)).map(|_| rng.next() as u8).collect()),
        Schema::String => Value::String(string(rng, field)),
        Schema::Union(union) => {
            let index = rng.below(union.variants().len());
            Value::Union(
                index as u32,
                Box::new(value(rng, field, &union.variants()[index])),
            )
        }
        other => panic!("no generator for {other:?}"),
    }
}

fn body(rng: &mut Rng, schema: &Schema) -> Vec<u8> {
    let Schema::Record(record) = schema else {
        panic!("not a record")
    };
    let mut out = AvroRecord::new(schema).unwrap();
    for field in &record.fields {
        out.put(&field.name, value(rng, &field.name, &field.schema));
    }
    GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value_to_vec(out)
        .unwrap()
}

/// Intact, truncated, extended or with a byte changed; and whether it
/// changed.
fn mangled(rng: &mut Rng, body: Vec<u8>) -> (Vec<u8>, bool) {
    let mut out = body.clone();
    match rng.below(8) {
        0 if !out.is_empty() => out.truncate(rng.below(out.len())),
        1 => out.extend((0..1 + rng.below(3)).map(|_| rng.next() as u8)),
        2 if !out.is_empty() => {
            let at = rng.below(out.len());
            out[at] = rng.next() as u8;
        }
        3 if !out.is_empty() => {
            let at = rng.below(out.len());
            out[at] = *rng.pick(&[0x00, 0x01, 0x7F, 0x80, 0xFF, 0xC3]);
        }
        _ => {}
    }
    let changed = out != body;
    (out, changed)
}

fn record_schema(name: &str, fields: &[String]) -> String {
    format!(
        r#"{{"type": "record", "name": "{name}", "namespace": "io.tributary.events", "fields": [{}]}}"#,
        fields.join(", ")
    )
}

fn field(name: &str, schema: &str) -> String {
    format!(r#"{{"name": "{name}", "type": {schema}}}"#)
}

fn nullable(name: &str, schema: &str) -> String {
    format!(r#"{{"name": "{name}", "type": ["null", {schema}], "default": null}}"#)
}

const STRING: &str = r#""string""#;
const DOUBLE: &str = r#""double""#;
const MILLIS: &str = r#"{"type": "long", "logicalType": "timestamp-millis"}"#;

/// Fields a writer may add that no reader has, of every plain type.
fn extras() -> Vec<String> {
    vec![
        field("flag", r#""boolean""#),
        field("small", r#""int""#),
        field("day", r#"{"type": "int", "logicalType": "date"}"#),
        field("big", r#""long""#),
        field(
            "micros",
            r#"{"type": "long", "logicalType": "timestamp-micros"}"#,
        ),
        field("ratio", r#""float""#),
        field("weight", DOUBLE),
        field("blob", r#""bytes""#),
        field("note", STRING),
        field("nothing", r#""null""#),
        nullable("maybe", r#""int""#),
        field(
            "choice",
            r#"["string", "long", "null", "double", "boolean"]"#,
        ),
    ]
}

/// Writer schemas of `kind`: (schema JSON, whether the v2 reader must have a plan for it).
fn writers(kind: Kind, rng: &mut Rng) -> Vec<(String, bool)> {
    let (name, required, optional, optional_type) = match kind {
        Kind::AdClick => (
            "AdClick",
            vec![
                field("ip_address", STRING),
                field("user_agent", STRING),
                field("referring_url", STRING),
                field("advertiser_id", STRING),
                field("metadata", STRING),
                field("event_time", MILLIS),
            ],
            "campaign_id",
            STRING,
        ),
        Kind::PriceTick => (
            "PriceTick",
            vec![
                field("pair", STRING),
                field("source", STRING),
                field("price", DOUBLE),
                field("event_time", MILLIS),
            ],
            "volume",
            DOUBLE,
        ),
        Kind::Generic => unreachable!(),
    };
    let kind_name = match kind {
        Kind::AdClick => schemas::AD_CLICK,
        _ => schemas::PRICE_TICK,
    };
    let mut out: Vec<(String, bool)> = schemas::versions(kind_name)
        .map(|s| (s.json.to_string(), true))
        .collect();
    let with = |fields: Vec<String>| record_schema(name, &fields);
    let mut v2 = required.clone();
    v2.push(nullable(optional, optional_type));
    // The optional field plain, or nullable with null second.
    let mut plain = required.clone();
    plain.push(field(optional, optional_type));
    out.push((with(plain), true));
    let mut reversed = required.clone();
    reversed.push(format!(
        r#"{{"name": "{optional}", "type": [{optional_type}, "null"]}}"#
    ));
    out.push((with(reversed), true));
    // event_time as a plain long.
    let long_time: Vec<String> = v2
        .iter()
        .map(|f| {
            if f.contains("\"event_time\"") {
                field("event_time", r#""long""#)
            } else {
                f.clone()
            }
        })
        .collect();
    out.push((with(long_time), true));
    // Reordered, with extra fields of every plain type in between.
    for _ in 0..12 {
        let mut fields = v2.clone();
        if rng.below(3) == 0 {
            fields.pop();
        }
        for extra in extras() {
            if rng.below(2) == 0 {
                fields.push(extra);
            }
        }
        for i in (1..fields.len()).rev() {
            fields.swap(i, rng.below(i + 1));
        }
        out.push((with(fields), true));
    }
    // Shapes the plan leaves to the general path: event_time in another
    // precision, a required field nullable, a promoted type, a nested record.
    let swap = |target: &str, replacement: String| -> String {
        let fields: Vec<String> = v2
            .iter()
            .map(|f| {
                if f.contains(&format!("\"{target}\"")) {
                    replacement.clone()
                } else {
                    f.clone()
                }
            })
            .collect();
        with(fields)
    };
    out.push((
        swap(
            "event_time",
            field(
                "event_time",
                r#"{"type": "long", "logicalType": "timestamp-micros"}"#,
            ),
        ),
        false,
    ));
    let key = match kind {
        Kind::AdClick => "advertiser_id",
        _ => "pair",
    };
    out.push((swap(key, nullable(key, STRING)), false));
    out.push((swap(key, field(key, r#""bytes""#)), false));
    let mut nested = v2.clone();
    nested.push(field(
        "nested",
        r#"{"type": "record", "name": "Nested", "fields": [{"name": "n", "type": "long"}]}"#,
    ));
    out.push((with(nested), false));
    if kind == Kind::PriceTick {
        out.push((swap("price", field("price", r#""float""#)), false));
    }
    out
}

#[tokio::test]
async fn typed_plans_read_what_the_general_path_reads() {
    let mut rng = Rng(0x005E_ED0F_7B1B_0A27);
    let (mut typed, mut compared) = (0, 0);
    for kind in [Kind::AdClick, Kind::PriceTick] {
        for (id, (json, planned)) in (1u32..).zip(writers(kind, &mut rng)) {
            let writer = Schema::parse_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
            for version in [ReaderVersion::V1, ReaderVersion::V2] {
                let decoder = Decoder::new(
                    schema_registry_converter::async_impl::schema_registry::SrSettings::new(
                        "http://127.0.0.1:1".into(),
                    ),
                    version,
                );
                decoder.readers.insert_writer(id, &json);
                let reader = match kind {
                    Kind::AdClick => decoder.ad_click,
                    _ => decoder.price_tick,
                };
                let plan = TypedPlan::new(kind, &writer, reader);
                assert_eq!(
                    plan.is_some(),
                    planned,
                    "{version:?} reader, writer {json}: plan {plan:?}"
                );
                let Some(plan) = plan else { continue };
                for _ in 0..200 {
                    let written = body(&mut rng, &writer);
                    let (body, changed) = mangled(&mut rng, written);
                    let mut framed = Vec::new();
                    wire::frame_into(id, &body, &mut framed);
                    let general = decoder.decode_general(kind, &framed, Some(1)).await;
                    compared += 1;
                    match plan.read(&body) {
                        Some(read) => {
                            typed += 1;
                            // Compared as printed: a NaN volume equals itself
                            // there, and `Debug` prints every f64 exactly.
                            assert_eq!(
                                format!("{:?}", read.map_err(DecodeError::Poison)),
                                format!("{general:?}"),
                                "{version:?} reader, writer {json}, body {body:?}"
                            );
                        }
                        // Only a record that is not as written is left to
                        // the general path.
                        None => {
                            assert!(changed, "{version:?} reader, writer {json}, body {body:?}")
                        }
                    }
                }
            }
        }
    }
    // Most records are intact and read by a plan.
    assert!(typed * 2 > compared, "typed {typed} of {compared}");
}

#[tokio::test]
async fn a_decoder_reads_with_the_plan_once_it_has_one() {
    let decoder = Decoder::new(
        schema_registry_converter::async_impl::schema_registry::SrSettings::new(
            "http://127.0.0.1:1".into(),
        ),
        ReaderVersion::V2,
    );
    let json = schemas::versions(schemas::PRICE_TICK)
        .find(|s| s.version == 1)
        .unwrap()
        .json;
    let writer = Schema::parse_str(json).unwrap();
    decoder.readers.insert_writer(9, json);
    let mut rng = Rng(7);
    let mut framed = Vec::new();
    let body = loop {
        let body = body(&mut rng, &writer);
        let plan = TypedPlan::new(Kind::PriceTick, &writer, decoder.price_tick).unwrap();
        if matches!(plan.read(&body), Some(Ok(_))) {
            break body;
        }
    };
    wire::frame_into(9, &body, &mut framed);
    let general = decoder
        .decode(schemas::PRICE_TICK, Some(&framed), None)
        .await
        .unwrap();
    // Id 9's writer schema is in the reader cache: its plan comes from
    // there, without asking the (unreachable) registry.
    assert_eq!(
        decoder.plans.read().unwrap().get(&(9, Kind::PriceTick)),
        Some(&TypedPlan::new(
            Kind::PriceTick,
            &writer,
            decoder.price_tick
        ))
    );
    assert!(decoder.plans.read().unwrap()[&(9, Kind::PriceTick)].is_some());
    // Id 10 is not in the reader cache and the registry is unreachable, so
    // the general path cannot read it; with a plan the decoder reads it.
    let mut unknown = Vec::new();
    wire::frame_into(10, &body, &mut unknown);
    assert!(matches!(
        decoder
            .decode(schemas::PRICE_TICK, Some(&unknown), None)
            .await,
        Err(DecodeError::Unavailable(_))
    ));
    decoder.plans.write().unwrap().insert(
        (10, Kind::PriceTick),
        TypedPlan::new(Kind::PriceTick, &writer, decoder.price_tick),
    );
    let typed = decoder
        .decode(schemas::PRICE_TICK, Some(&unknown), None)
        .await
        .unwrap();
    assert_eq!(typed, general);
    assert!(matches!(typed, Decoded::PriceTick(_)));
    assert_eq!(decoder.registry_lookups(), 1);
}
