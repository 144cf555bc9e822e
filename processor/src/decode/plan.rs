//! `ad_click` and `price_tick` records read straight from their Avro bytes
//! into typed events, with no apache-avro `Value` in between.
//!
//! A [`TypedPlan`] is built once per (writer schema, built-in reader
//! schema): for each field of the writer, in the writer's order, how its
//! bytes are read and which field of the event they fill, if any. It covers
//! only what it can show the general path (decode with the writer schema,
//! resolve against the reader schema, [`AdClickEvent::from_value`] or
//! [`PriceTickEvent::from_value`]) reads to the same event: plain types and
//! unions of them, fields of the reader the event uses read from the same
//! type (or a nullable union of it), the reader's other fields of the
//! writer's exact type or absent with a null default. Any other writer has
//! no plan.
//!
//! [`TypedPlan::read`] answers `None` for anything but a record it reads
//! whole and exactly (bad lengths, invalid UTF-8, a union index out of
//! range, bytes left over, a value the general path would refuse), so the
//! caller takes the general path, which words every rejection. Validation of
//! the event is the general path's own ([`AdClickEvent::validated`],
//! [`PriceTickEvent::validated`]). `plan_tests.rs` checks that both paths
//! give the same result for generated records of many writer schemas.
use std::collections::HashSet;
use tributary_common::avro_bytes::{Bytes, Encoding};

use apache_avro::{Schema, schema::RecordField};

use super::{
    Kind,
    event::{AdClickEvent, Decoded, PriceTickEvent},
    poison::Poison,
};

/// A field of a typed event, by its reader schema name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    AdvertiserId,
    IpAddress,
    CampaignId,
    Pair,
    Source,
    Price,
    Volume,
    EventTime,
}

impl Target {
    fn named(kind: Kind, name: &str) -> Option<Self> {
        Some(match (kind, name) {
            (Kind::AdClick, "advertiser_id") => Self::AdvertiserId,
            (Kind::AdClick, "ip_address") => Self::IpAddress,
            (Kind::AdClick, "campaign_id") => Self::CampaignId,
            (Kind::AdClick | Kind::PriceTick, "event_time") => Self::EventTime,
            (Kind::PriceTick, "pair") => Self::Pair,
            (Kind::PriceTick, "source") => Self::Source,
            (Kind::PriceTick, "price") => Self::Price,
            (Kind::PriceTick, "volume") => Self::Volume,
            _ => return None,
        })
    }

    /// Whether the event has no value for it when the writer lacks the field
    /// (a nullable field of the reader).
    fn optional(self) -> bool {
        matches!(self, Self::CampaignId | Self::Volume)
    }
}

/// One field of the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Read and dropped (still checked, as the general path decodes it).
    Skip(Encoding),
    /// Read into the event.
    Read(Target, Encoding),
}

/// How records of one writer schema are read as one built-in event type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypedPlan {
    kind: Kind,
    steps: Vec<Step>,
    /// The reader has `campaign_id` (`volume`): the event has `Some` of it.
    reads_optional: bool,
}

impl TypedPlan {
    /// The plan for records written with `writer` and read with the
    /// built-in `reader` of `kind`; `None` when the writer has a shape the
    /// plan does not cover, or cannot be read as the reader at all.
    pub(crate) fn new(kind: Kind, writer: &Schema, reader: &Schema) -> Option<Self> {
        if kind == Kind::Generic {
            return None;
        }
        tributary_common::avro_reader::readable_as(writer, reader).ok()?;
        let (Schema::Record(writer), Schema::Record(reader)) = (writer, reader) else {
            return None;
        };
        let mut steps = Vec::with_capacity(writer.fields.len());
        let mut read = HashSet::new();
        for field in &writer.fields {
            let encoding = Encoding::of(&field.schema)?;
            let step = match reader.fields.iter().find(|r| r.name == field.name) {
                None => Step::Skip(encoding),
                Some(reader_field) => {
                    read.insert(field.name.as_str());
                    match Target::named(kind, &field.name) {
                        Some(target) => {
                            readable_into(target, &field.schema, &encoding, reader_field)?;
                            Step::Read(target, encoding)
                        }
                        None => {
                            // The event does not use it; resolution must not
                            // be able to fail on any value of it.
                            if field.schema != reader_field.schema {
                                return None;
                            }
                            Step::Skip(encoding)
                        }
                    }
                }
            };
            steps.push(step);
        }
        let mut reads_optional = false;
        for reader_field in &reader.fields {
            if !reader_field.aliases.is_empty() {
                return None;
            }
            let target = Target::named(kind, &reader_field.name);
            if target.is_some_and(Target::optional) {
                reads_optional = true;
            }
            if read.contains(reader_field.name.as_str()) {
                continue;
            }
            // Absent from the writer: resolution takes the reader's default,
            // which the plan covers only for a nullable union (null first).
            match &reader_field.schema {
                Schema::Union(union)
                    if reader_field.default.is_some()
                        && union.variants().first() == Some(&Schema::Null)
                        && target.is_none_or(Target::optional) => {}
                _ => return None,
            }
        }
        // Every field the event needs is read.
        let needed: &[Target] = match kind {
            Kind::AdClick => &[Target::AdvertiserId, Target::IpAddress, Target::EventTime],
            Kind::PriceTick => &[
                Target::Pair,
                Target::Source,
                Target::Price,
                Target::EventTime,
            ],
            Kind::Generic => return None,
        };
        let reads = |t: &Target| {
            steps
                .iter()
                .any(|s| matches!(s, Step::Read(r, _) if r == t))
        };
        if !needed.iter().all(reads) {
            return None;
        }
        Some(Self {
            kind,
            steps,
            reads_optional,
        })
    }

    /// The event in `body` (the record after the Confluent header): `None`
    /// when the general path has to read it (see the module docs), else the
    /// event or why it is invalid.
    pub(crate) fn read(&self, body: &[u8]) -> Option<Result<Decoded, Poison>> {
        let mut bytes = Bytes::new(body, MAX_LEN);
        let mut fields = Fields::default();
        for step in &self.steps {
            match step {
                Step::Skip(encoding) => bytes.skip(encoding)?,
                Step::Read(target, encoding) => fields.read(&mut bytes, *target, encoding)?,
            }
        }
        if !bytes.rest.is_empty() {
            return None;
        }
        Some(match self.kind {
            Kind::AdClick => AdClickEvent {
                advertiser_id: fields.advertiser_id?.to_owned(),
                ip_address: fields.ip_address?.to_owned(),
                event_time_ms: fields.event_time?,
                campaign_id: if self.reads_optional {
                    fields.campaign_id.flatten().map(str::to_owned)
                } else {
                    None
                },
            }
            .validated()
            .map(Decoded::AdClick),
            Kind::PriceTick => PriceTickEvent {
                pair: fields.pair?.to_owned(),
                source: fields.source?.to_owned(),
                price: fields.price?,
                event_time_ms: fields.event_time?,
                volume: if self.reads_optional {
                    fields.volume.flatten()
                } else {
                    None
                },
            }
            .validated()
            .map(Decoded::PriceTick),
            Kind::Generic => return None,
        })
    }
}

/// Whether `target`, written with `writer` (as `encoding`), resolves into
/// `reader` to the value the event takes, whatever the value.
fn readable_into(
    target: Target,
    writer: &Schema,
    encoding: &Encoding,
    reader: &RecordField,
) -> Option<()> {
    let plain = |e: &Encoding, wanted: &Encoding| e == wanted;
    let nullable = |e: &Encoding, wanted: &Encoding| match e {
        Encoding::Union(variants) => variants.iter().all(|v| *v == Encoding::Null || v == wanted),
        other => other == wanted,
    };
    let reader_is = |schema: &Schema| reader.schema == *schema;
    let reader_nullable = |schema: Schema| {
        matches!(&reader.schema, Schema::Union(u)
            if u.variants().len() == 2
                && u.variants()[0] == Schema::Null
                && u.variants()[1] == schema)
    };
    let ok = match target {
        Target::AdvertiserId | Target::IpAddress | Target::Pair | Target::Source => {
            reader_is(&Schema::String) && plain(encoding, &Encoding::String)
        }
        Target::Price => reader_is(&Schema::Double) && plain(encoding, &Encoding::Double),
        // A long or timestamp-millis value resolves to timestamp-millis
        // unchanged; other timestamps do not resolve.
        Target::EventTime => {
            reader_is(&Schema::TimestampMillis)
                && matches!(writer, Schema::Long | Schema::TimestampMillis)
        }
        Target::CampaignId => {
            reader_nullable(Schema::String) && nullable(encoding, &Encoding::String)
        }
        Target::Volume => reader_nullable(Schema::Double) && nullable(encoding, &Encoding::Double),
    };
    ok.then_some(())
}

/// The values read so far, borrowed from the record.
#[derive(Default)]
struct Fields<'a> {
    advertiser_id: Option<&'a str>,
    ip_address: Option<&'a str>,
    campaign_id: Option<Option<&'a str>>,
    pair: Option<&'a str>,
    source: Option<&'a str>,
    price: Option<f64>,
    volume: Option<Option<f64>>,
    event_time: Option<i64>,
}

impl<'a> Fields<'a> {
    fn read(&mut self, bytes: &mut Bytes<'a>, target: Target, encoding: &Encoding) -> Option<()> {
        match target {
            Target::AdvertiserId => self.advertiser_id = Some(bytes.string()?),
            Target::IpAddress => self.ip_address = Some(bytes.string()?),
            Target::Pair => self.pair = Some(bytes.string()?),
            Target::Source => self.source = Some(bytes.string()?),
            Target::Price => self.price = Some(bytes.double()?),
            Target::EventTime => self.event_time = Some(bytes.long()?),
            Target::CampaignId => {
                self.campaign_id = Some(match bytes.branch(encoding)? {
                    Encoding::Null => None,
                    _ => Some(bytes.string()?),
                });
            }
            Target::Volume => {
                self.volume = Some(match bytes.branch(encoding)? {
                    Encoding::Null => None,
                    _ => Some(bytes.double()?),
                });
            }
        }
        Some(())
    }
}

/// The longest string or bytes value read here; the general path's limit
/// (`apache_avro::util::max_allocation_bytes`, 16 MiB in the processor)
/// decides longer ones.
const MAX_LEN: usize = 16 * 1024 * 1024;
