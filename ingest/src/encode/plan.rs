//! Typed events (`ad_click`, `price_tick`) written straight to Avro, with no
//! JSON object or Avro `Value` in between.
//!
//! A [`TypedPlan`] is compiled once per writer schema (when the schema is
//! cached): for each field of the schema, in the schema's order, which field
//! of a typed event fills it, how that value is written (e.g. a string, a
//! double, a union branch by index), and the bytes of the field's default.
//! It covers only what it can prove the general path
//! ([`crate::avro_json`]) writes the same way: a field whose conversion
//! depends on the value (an `int` from a timestamp, a string into an enum or
//! a UUID, a named type) is [`Write::Unsupported`], and an event that needs
//! it, or a field that would be refused, makes the plan answer
//! [`Planned::General`], so the caller takes the general path, which also
//! words every rejection. The tests in `encode.rs` check that both paths
//! write the same bytes.
use apache_avro::{
    Schema,
    schema::{RecordSchema, UnionSchema},
    types::Value,
};
use serde_json::Value as Json;

use crate::{
    avro_json::{self, Names},
    event::{AdClick, PriceTick},
};

/// A field a typed event may carry, under its Avro field name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    IpAddress,
    UserAgent,
    ReferringUrl,
    AdvertiserId,
    Metadata,
    CampaignId,
    Pair,
    Source,
    Price,
    Volume,
    /// The envelope's event time, which fills a schema's `event_time`.
    EventTime,
}

/// What kind of JSON value the general path converts a source from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A JSON string.
    Str,
    /// A JSON number made from a finite `f64`.
    F64,
    /// A JSON number made from an `i64` (milliseconds since the epoch).
    Millis,
}

impl Field {
    const ALL: [Field; 11] = [
        Field::IpAddress,
        Field::UserAgent,
        Field::ReferringUrl,
        Field::AdvertiserId,
        Field::Metadata,
        Field::CampaignId,
        Field::Pair,
        Field::Source,
        Field::Price,
        Field::Volume,
        Field::EventTime,
    ];

    fn name(self) -> &'static str {
        match self {
            Field::IpAddress => "ip_address",
            Field::UserAgent => "user_agent",
            Field::ReferringUrl => "referring_url",
            Field::AdvertiserId => "advertiser_id",
            Field::Metadata => "metadata",
            Field::CampaignId => "campaign_id",
            Field::Pair => "pair",
            Field::Source => "source",
            Field::Price => "price",
            Field::Volume => "volume",
            Field::EventTime => "event_time",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Field::Price | Field::Volume => Kind::F64,
            Field::EventTime => Kind::Millis,
            _ => Kind::Str,
        }
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }

    fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// How a present value of a field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// The general path may convert it otherwise, or refuse it.
    Unsupported,
    /// `string` or `bytes`: length and UTF-8 bytes.
    Str,
    /// `double` from a double.
    F64AsDouble,
    /// `float` from a double.
    F64AsFloat,
    /// `long` or `timestamp-millis` from milliseconds.
    MillisAsLong,
    /// `timestamp-micros` from milliseconds.
    MillisAsMicros,
    /// `double` from milliseconds.
    MillisAsDouble,
    /// `float` from milliseconds.
    MillisAsFloat,
}

#[derive(Debug, Clone)]
struct Step {
    /// The event field that fills this schema field, if any is named so.
    source: Option<Field>,
    /// How a present value is written.
    write: Write,
    /// The union branch a present value takes, when the field is a union.
    branch: Option<u32>,
    /// The encoded default, for an absent value; `None` when the field has
    /// none or the general path would convert it otherwise.
    default: Option<Box<[u8]>>,
}

/// A writer schema compiled for typed events.
#[derive(Debug, Clone)]
pub struct TypedPlan {
    /// The sources the schema has a field for.
    has: u16,
    steps: Vec<Step>,
}

/// What the plan did with an event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Planned {
    /// Written to the buffer.
    Written,
    /// The event sets a field the schema does not have: the general path
    /// would not try to encode with this schema either.
    Lacks,
    /// Only the general path can tell (and it words the rejection).
    General,
}

/// A typed event's values, as the plan reads them.
pub(crate) struct TypedView<'a> {
    pub(crate) payload: TypedPayload<'a>,
    /// The ip address as the general path writes it (`IpAddr`'s `Display`).
    pub(crate) ip_address: &'a str,
    pub(crate) event_time_ms: i64,
}

/// The payload of a typed event.
#[derive(Clone, Copy)]
pub(crate) enum TypedPayload<'a> {
    AdClick(&'a AdClick),
    PriceTick(&'a PriceTick),
}

enum Val<'a> {
    Str(&'a str),
    F64(f64),
    Millis(i64),
}

impl TypedView<'_> {
    /// The sources the event sets (optional ones left unset count as absent;
    /// the event time is set whenever the schema has a field for it).
    fn present(&self) -> u16 {
        match self.payload {
            TypedPayload::AdClick(click) => {
                let mut bits = Field::IpAddress.bit()
                    | Field::UserAgent.bit()
                    | Field::ReferringUrl.bit()
                    | Field::AdvertiserId.bit()
                    | Field::Metadata.bit();
                if click.campaign_id.is_some() {
                    bits |= Field::CampaignId.bit();
                }
                bits
            }
            TypedPayload::PriceTick(tick) => {
                let mut bits = Field::Pair.bit() | Field::Source.bit() | Field::Price.bit();
                if tick.volume.is_some() {
                    bits |= Field::Volume.bit();
                }
                bits
            }
        }
    }

    fn value(&self, source: Field) -> Option<Val<'_>> {
        if source == Field::EventTime {
            return Some(Val::Millis(self.event_time_ms));
        }
        match self.payload {
            TypedPayload::AdClick(click) => Some(match source {
                Field::IpAddress => Val::Str(self.ip_address),
                Field::UserAgent => Val::Str(&click.user_agent),
                Field::ReferringUrl => Val::Str(&click.referring_url),
                Field::AdvertiserId => Val::Str(&click.advertiser_id),
                Field::Metadata => Val::Str(&click.metadata_json),
                Field::CampaignId => Val::Str(click.campaign_id.as_deref()?),
                _ => return None,
            }),
            TypedPayload::PriceTick(tick) => Some(match source {
                Field::Pair => Val::Str(&tick.pair),
                Field::Source => Val::Str(&tick.source),
                Field::Price => Val::F64(tick.price),
                Field::Volume => Val::F64(tick.volume?),
                _ => return None,
            }),
        }
    }
}

impl TypedPlan {
    /// The plan of `record`, whose named types are `names`.
    pub fn compile(record: &RecordSchema, names: &Names) -> Self {
        let mut has = 0;
        let steps = record
            .fields
            .iter()
            .map(|field| {
                let source = Field::named(&field.name);
                let (write, branch) = match source {
                    Some(source) => {
                        has |= source.bit();
                        write_of(&field.schema, source.kind())
                    }
                    None => (Write::Unsupported, None),
                };
                let default = field
                    .default
                    .as_ref()
                    .and_then(|default| default_bytes(&field.schema, names, default));
                Step {
                    source,
                    write,
                    branch,
                    default,
                }
            })
            .collect();
        Self { has, steps }
    }

    /// Appends the Avro body of `event` to `out`, or leaves `out` as it was
    /// and says why not.
    pub(crate) fn write(&self, event: &TypedView<'_>, out: &mut Vec<u8>) -> Planned {
        let event_time = Field::EventTime.bit();
        if event.present() & !self.has & !event_time != 0 {
            return Planned::Lacks;
        }
        let start = out.len();
        for step in &self.steps {
            let value = step.source.and_then(|source| event.value(source));
            let written = match value {
                Some(value) => write_value(step, value, out),
                None => match &step.default {
                    Some(default) => {
                        out.extend_from_slice(default);
                        true
                    }
                    None => false,
                },
            };
            if !written {
                out.truncate(start);
                return Planned::General;
            }
        }
        Planned::Written
    }
}

fn write_value(step: &Step, value: Val<'_>, out: &mut Vec<u8>) -> bool {
    if step.write == Write::Unsupported {
        return false;
    }
    if let Some(branch) = step.branch {
        write_long(i64::from(branch), out);
    }
    match (step.write, value) {
        (Write::Str, Val::Str(s)) => write_bytes(s.as_bytes(), out),
        (Write::F64AsDouble, Val::F64(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Write::F64AsFloat, Val::F64(x)) => out.extend_from_slice(&(x as f32).to_le_bytes()),
        (Write::MillisAsLong, Val::Millis(ms)) => write_long(ms, out),
        (Write::MillisAsMicros, Val::Millis(ms)) => match ms.checked_mul(1000) {
            Some(micros) => write_long(micros, out),
            None => return false,
        },
        (Write::MillisAsDouble, Val::Millis(ms)) => {
            out.extend_from_slice(&(ms as f64).to_le_bytes())
        }
        (Write::MillisAsFloat, Val::Millis(ms)) => {
            out.extend_from_slice(&(ms as f64 as f32).to_le_bytes())
        }
        // A source's kind always matches the writes compiled for it.
        _ => return false,
    }
    true
}

/// How the general path writes a value of `kind` into `schema`, when that
/// does not depend on the value: the write and, for a union, the branch.
fn write_of(schema: &Schema, kind: Kind) -> (Write, Option<u32>) {
    match schema {
        Schema::Union(union) => union_write(union, kind),
        other => (direct_write(other, kind), None),
    }
}

/// The general path tries a non-null value against each non-null branch in
/// order and takes the first that converts it: the plan takes a branch only
/// when every branch before it refuses every value of the kind.
fn union_write(union: &UnionSchema, kind: Kind) -> (Write, Option<u32>) {
    for (index, branch) in union.variants().iter().enumerate() {
        if matches!(branch, Schema::Null) {
            continue;
        }
        match direct_write(branch, kind) {
            Write::Unsupported if refuses(branch, kind) => continue,
            Write::Unsupported => return (Write::Unsupported, None),
            write => return (write, u32::try_from(index).ok()),
        }
    }
    (Write::Unsupported, None)
}

fn direct_write(schema: &Schema, kind: Kind) -> Write {
    match (kind, schema) {
        (Kind::Str, Schema::String | Schema::Bytes) => Write::Str,
        (Kind::F64, Schema::Double) => Write::F64AsDouble,
        (Kind::F64, Schema::Float) => Write::F64AsFloat,
        (Kind::Millis, Schema::Long | Schema::TimestampMillis) => Write::MillisAsLong,
        (Kind::Millis, Schema::TimestampMicros) => Write::MillisAsMicros,
        (Kind::Millis, Schema::Double) => Write::MillisAsDouble,
        (Kind::Millis, Schema::Float) => Write::MillisAsFloat,
        _ => Write::Unsupported,
    }
}

/// Whether [`avro_json::to_avro`] refuses every value of `kind` for
/// `schema` (so a union moves on to its next branch).
fn refuses(schema: &Schema, kind: Kind) -> bool {
    let never_a_value = matches!(
        schema,
        Schema::Boolean | Schema::Array(_) | Schema::Map(_) | Schema::Record(_)
    );
    never_a_value
        || match kind {
            // Strings: every numeric type wants a JSON number.
            Kind::Str => matches!(
                schema,
                Schema::Int | Schema::Long | Schema::Float | Schema::Double | Schema::Date
            ),
            // A number made from an f64 is not an integer to serde_json.
            Kind::F64 => matches!(
                schema,
                Schema::Int
                    | Schema::Long
                    | Schema::Date
                    | Schema::TimestampMillis
                    | Schema::TimestampMicros
                    | Schema::String
                    | Schema::Bytes
                    | Schema::Uuid(_)
                    | Schema::Enum(_)
                    | Schema::Fixed(_)
            ),
            Kind::Millis => matches!(
                schema,
                Schema::String
                    | Schema::Bytes
                    | Schema::Uuid(_)
                    | Schema::Enum(_)
                    | Schema::Fixed(_)
            ),
        }
}

/// A field's default as the general path writes it (the union's first
/// branch, Avro spec), for the types whose encoding the plan knows;
/// `None` for others and for a default the general path refuses.
fn default_bytes(schema: &Schema, names: &Names, default: &Json) -> Option<Box<[u8]>> {
    let mut out = Vec::new();
    let (schema, branch) = match schema {
        Schema::Union(union) => (union.variants().first()?, Some(0)),
        other => (other, None),
    };
    if let Some(branch) = branch {
        write_long(branch, &mut out);
    }
    let value = avro_json::to_avro(schema, names, default, "").ok()?;
    match (schema, value) {
        (Schema::Null, Value::Null) => {}
        (Schema::Boolean, Value::Boolean(b)) => out.push(u8::from(b)),
        (Schema::Int, Value::Int(n)) | (Schema::Date, Value::Date(n)) => {
            write_long(i64::from(n), &mut out)
        }
        (Schema::Long, Value::Long(n))
        | (Schema::TimestampMillis, Value::TimestampMillis(n))
        | (Schema::TimestampMicros, Value::TimestampMicros(n)) => write_long(n, &mut out),
        (Schema::Float, Value::Float(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Schema::Double, Value::Double(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Schema::String, Value::String(s)) => write_bytes(s.as_bytes(), &mut out),
        (Schema::Bytes, Value::Bytes(b)) => write_bytes(&b, &mut out),
        _ => return None,
    }
    Some(out.into_boxed_slice())
}

/// An Avro `long`: zig-zag, then a base-128 varint.
fn write_long(n: i64, out: &mut Vec<u8>) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Avro `bytes` / `string`: the length as a `long`, then the bytes.
fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    write_long(bytes.len() as i64, out);
    out.extend_from_slice(bytes);
}
