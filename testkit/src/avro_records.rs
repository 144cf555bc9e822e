//! Random Avro records for the typed-plan property tests of the processor
//! (`processor/src/decode/plan_tests.rs`) and the sink
//! (`sink/src/plan_tests.rs`): writer schemas built from JSON fields, record
//! bodies of plain types with the edge values mixed in, and copies of them
//! cut short, extended or with a byte flipped. Deterministic, so a failure
//! reproduces from its seed.
use apache_avro::{
    Schema,
    types::{Record, Value},
    writer::datum::GenericDatumWriter,
};

/// A small deterministic generator (xorshift64*), seeded by its value.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `items` in a random order (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// A test's strings for a field, by the field's name: what its reader
/// checks (addresses, keys, NUL characters) is the test's to choose.
pub type Strings = fn(&mut Rng, &str) -> String;

/// Mostly small (one-byte varints), sometimes any 32 bits.
fn int(rng: &mut Rng) -> i32 {
    match rng.below(4) {
        0 => rng.next_u64() as i32,
        _ => rng.below(4) as i32,
    }
}

/// Timestamps and counts: mostly ordinary, sometimes zero, negative or out
/// of chrono's range; two of them are out of order as often as not.
fn long(rng: &mut Rng) -> i64 {
    match rng.below(10) {
        0 => 0,
        1 => -1,
        2 => i64::MAX,
        3 => i64::MIN,
        _ => 1_700_000_000_000 + rng.below(100_000_000) as i64,
    }
}

/// Mostly ordinary, sometimes zero, negative, NaN, infinite or the
/// smallest normal.
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

/// A value of `schema` (plain types and unions of them) for field `field`.
pub fn value(rng: &mut Rng, field: &str, schema: &Schema, strings: Strings) -> Value {
    match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(rng.below(2) == 1),
        Schema::Int => Value::Int(int(rng)),
        Schema::Date => Value::Date(rng.next_u64() as i32),
        Schema::Long => Value::Long(long(rng)),
        Schema::TimestampMillis => Value::TimestampMillis(long(rng)),
        Schema::TimestampMicros => Value::TimestampMicros(long(rng)),
        Schema::Float => Value::Float(double(rng) as f32),
        Schema::Double => Value::Double(double(rng)),
        Schema::Bytes => Value::Bytes((0..rng.below(20)).map(|_| rng.next_u64() as u8).collect()),
        Schema::String => Value::String(strings(rng, field)),
        Schema::Union(union) => {
            let index = rng.below(union.variants().len());
            Value::Union(
                index as u32,
                Box::new(value(rng, field, &union.variants()[index], strings)),
            )
        }
        other => panic!("no generator for {other:?}"),
    }
}

/// A random record of the record schema `schema`, encoded (Avro binary,
/// unframed).
pub fn body(rng: &mut Rng, schema: &Schema, strings: Strings) -> Vec<u8> {
    let Schema::Record(record) = schema else {
        panic!("not a record")
    };
    let mut out = Record::new(schema).unwrap();
    for field in &record.fields {
        out.put(&field.name, value(rng, &field.name, &field.schema, strings));
    }
    GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value_to_vec(out)
        .unwrap()
}

/// `body` intact (half the time), cut short, extended, or with a byte
/// changed (to anything, or to a varint, union-branch or UTF-8 edge); and
/// whether it changed.
pub fn mangled(rng: &mut Rng, body: Vec<u8>) -> (Vec<u8>, bool) {
    let mut out = body.clone();
    match rng.below(8) {
        0 if !out.is_empty() => out.truncate(rng.below(out.len())),
        1 => out.extend((0..1 + rng.below(3)).map(|_| rng.next_u64() as u8)),
        2 if !out.is_empty() => {
            let at = rng.below(out.len());
            out[at] = rng.next_u64() as u8;
        }
        3 if !out.is_empty() => {
            let at = rng.below(out.len());
            out[at] = *rng.pick(&[0x00, 0x01, 0x02, 0x7F, 0x80, 0xFF, 0xC3]);
        }
        _ => {}
    }
    let changed = out != body;
    (out, changed)
}

/// The JSON of a record schema `namespace.name` with `fields` (as made by
/// [`field`] and [`nullable`]).
pub fn record_schema(namespace: &str, name: &str, fields: &[String]) -> String {
    format!(
        r#"{{"type": "record", "name": "{name}", "namespace": "{namespace}", "fields": [{}]}}"#,
        fields.join(", ")
    )
}

/// The JSON of a field `name` of type `schema` (itself JSON).
pub fn field(name: &str, schema: &str) -> String {
    format!(r#"{{"name": "{name}", "type": {schema}}}"#)
}

/// The JSON of an optional field: `["null", schema]`, null by default.
pub fn nullable(name: &str, schema: &str) -> String {
    format!(r#"{{"name": "{name}", "type": ["null", {schema}], "default": null}}"#)
}

/// A `timestamp-millis` long, as JSON.
pub const MILLIS: &str = r#"{"type": "long", "logicalType": "timestamp-millis"}"#;

/// A `timestamp-micros` long, as JSON.
pub const MICROS: &str = r#"{"type": "long", "logicalType": "timestamp-micros"}"#;

/// Fields a writer may add that no reader has, of every plain type (and a
/// nullable one and a wider union).
pub fn extra_fields() -> Vec<String> {
    vec![
        field("flag", r#""boolean""#),
        field("small", r#""int""#),
        field("day", r#"{"type": "int", "logicalType": "date"}"#),
        field("big", r#""long""#),
        field("micros", MICROS),
        field("ratio", r#""float""#),
        field("weight", r#""double""#),
        field("blob", r#""bytes""#),
        field("note", r#""string""#),
        field("nothing", r#""null""#),
        nullable("maybe", r#""int""#),
        field(
            "choice",
            r#"["string", "long", "null", "double", "boolean"]"#,
        ),
    ]
}
