//! Aggregate records read straight from their Avro bytes into rows, with no
//! apache-avro `Value` in between.
//!
//! An [`AggregatePlan`] is built once per writer schema: for each field of
//! the writer, in the writer's order, how its bytes are read and which field
//! of the row they fill, if any. It covers only what it can show the general
//! path (decode with the writer schema, resolve against the built-in reader,
//! [`AggregateRow::from_value`]) reads to the same row: every field the row
//! uses written as the reader's own type (a `long` for a timestamp-millis
//! window bound, a plain value or any union of it and `null` for a nullable
//! one), other fields of the writer of plain types or unions of them, and
//! fields of the reader the writer lacks only where their default is what
//! the row takes for "absent". Any other writer has no plan.
//!
//! [`AggregatePlan::read`] answers `None` for anything but a record it reads
//! whole and exactly (bad lengths, invalid UTF-8, a union index out of range,
//! an `int` out of range, bytes left over), so the caller takes the general
//! path, which words every rejection. The row is checked by the general
//! path's own code. `plan_tests.rs` checks that both paths give the same
//! result for generated records of many writer schemas.
use apache_avro::Schema;
use tributary_common::avro_bytes::{Bytes, Encoding};

use crate::aggregate::{AggregateRow, Partial};

/// A field of the row, by its reader schema name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    EventType,
    GroupKey,
    WindowStart,
    WindowEnd,
    Count,
    DistinctCount,
    Min,
    Max,
    Sum,
    Last,
    LastEventTime,
    Final,
    EmittedAt,
    Revision,
}

impl Target {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "event_type" => Self::EventType,
            "group_key" => Self::GroupKey,
            "window_start" => Self::WindowStart,
            "window_end" => Self::WindowEnd,
            "count" => Self::Count,
            "distinct_count" => Self::DistinctCount,
            "min" => Self::Min,
            "max" => Self::Max,
            "sum" => Self::Sum,
            "last" => Self::Last,
            "last_event_time" => Self::LastEventTime,
            "final" => Self::Final,
            "emitted_at" => Self::EmittedAt,
            "revision" => Self::Revision,
            _ => return None,
        })
    }

    /// The reader's plain type of the field, and whether the reader has it
    /// as a nullable union (`["null", type]`).
    fn reader_type(self) -> (Schema, bool) {
        match self {
            Self::EventType | Self::GroupKey => (Schema::String, false),
            Self::WindowStart | Self::WindowEnd => (Schema::TimestampMillis, false),
            Self::Count => (Schema::Long, false),
            Self::DistinctCount => (Schema::Long, true),
            Self::Min | Self::Max | Self::Sum | Self::Last => (Schema::Double, true),
            Self::LastEventTime | Self::EmittedAt => (Schema::TimestampMillis, true),
            Self::Final => (Schema::Boolean, false),
            Self::Revision => (Schema::Int, false),
        }
    }
}

/// One field of the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Read and dropped (still checked, as the general path decodes it).
    Skip(Encoding),
    /// Read into the row.
    Read(Target, Encoding),
}

/// How records of one writer schema are read as rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatePlan {
    steps: Vec<Step>,
}

impl AggregatePlan {
    /// The plan for records written with `writer` and read with the
    /// built-in aggregate `reader`; `None` when the writer has a shape the
    /// plan does not cover, or cannot be read as the reader at all.
    pub fn new(writer: &Schema, reader: &Schema) -> Option<Self> {
        tributary_common::avro_reader::readable_as(writer, reader).ok()?;
        let (Schema::Record(writer), Schema::Record(reader)) = (writer, reader) else {
            return None;
        };
        // The reader must be the aggregate the row is made from.
        for field in &reader.fields {
            let target = Target::named(&field.name)?;
            if !field.aliases.is_empty() || !is_reader_type(target, &field.schema) {
                return None;
            }
        }
        let mut steps = Vec::with_capacity(writer.fields.len());
        for field in &writer.fields {
            let encoding = Encoding::of(&field.schema)?;
            let in_reader = reader.fields.iter().any(|r| r.name == field.name);
            let step = match Target::named(&field.name).filter(|_| in_reader) {
                None => Step::Skip(encoding),
                Some(target) => {
                    readable_into(target, &field.schema, &encoding)?;
                    Step::Read(target, encoding)
                }
            };
            steps.push(step);
        }
        // Absent from the writer: resolution takes the reader's default,
        // which must be what the row takes when the field is missing.
        for field in &reader.fields {
            if writer.fields.iter().any(|w| w.name == field.name) {
                continue;
            }
            let target = Target::named(&field.name)?;
            let absent_default = match target {
                Target::Revision => serde_json::json!(0),
                _ if target.reader_type().1 => serde_json::Value::Null,
                _ => return None,
            };
            if field.default.as_ref() != Some(&absent_default) {
                return None;
            }
        }
        Some(Self { steps })
    }

    /// The row in `body` (the record after the Confluent header): `None`
    /// when the general path has to read it (see the module docs), else the
    /// row or why it is invalid, in the general path's words.
    pub fn read(&self, body: &[u8]) -> Option<Result<AggregateRow, String>> {
        let mut bytes = Bytes::new(body, MAX_LEN);
        let mut row = Partial::default();
        for step in &self.steps {
            match step {
                Step::Skip(encoding) => bytes.skip(encoding)?,
                Step::Read(target, encoding) => read_into(&mut row, &mut bytes, *target, encoding)?,
            }
        }
        if !bytes.rest.is_empty() {
            return None;
        }
        Some(row.into_row())
    }
}

fn is_reader_type(target: Target, schema: &Schema) -> bool {
    match target.reader_type() {
        (plain, false) => *schema == plain && Encoding::of(schema).is_some(),
        (plain, true) => matches!(schema, Schema::Union(u)
            if u.variants().len() == 2
                && u.variants()[0] == Schema::Null
                && u.variants()[1] == plain),
    }
}

/// Whether `target`, written with `writer` (as `encoding`), resolves into
/// the reader's field to the value the row takes, whatever the value.
fn readable_into(target: Target, writer: &Schema, encoding: &Encoding) -> Option<()> {
    let (plain, nullable) = target.reader_type();
    // The writer's type, exactly the reader's (a timestamp-millis bound may
    // be a plain long: it resolves to the same number).
    let same = |schema: &Schema| {
        std::mem::discriminant(schema) == std::mem::discriminant(&plain)
            || (plain == Schema::TimestampMillis && !nullable && *schema == Schema::Long)
    };
    let ok = if nullable {
        match (writer, encoding) {
            (Schema::Union(union), Encoding::Union(_)) => {
                let variants = union.variants();
                variants.iter().all(|v| *v == Schema::Null || same(v))
                    && variants.iter().filter(|v| same(v)).count() <= 1
            }
            (schema, _) => same(schema),
        }
    } else {
        same(writer)
    };
    ok.then_some(())
}

fn read_into(
    row: &mut Partial,
    bytes: &mut Bytes<'_>,
    target: Target,
    encoding: &Encoding,
) -> Option<()> {
    match target {
        Target::EventType => row.event_type = Some(bytes.string()?.to_owned()),
        Target::GroupKey => row.group_key = Some(bytes.string()?.to_owned()),
        Target::WindowStart => row.window_start = millis(bytes.long()?),
        Target::WindowEnd => row.window_end = millis(bytes.long()?),
        Target::Count => row.count = Some(bytes.long()?),
        Target::Final => row.is_final = Some(bytes.boolean()?),
        Target::Revision => row.revision = Some(i32::try_from(bytes.long()?).ok()?),
        Target::DistinctCount => {
            if bytes.present(encoding)? {
                row.distinct_count = Some(bytes.long()?);
            }
        }
        Target::Min | Target::Max | Target::Sum | Target::Last => {
            if bytes.present(encoding)? {
                let value = Some(bytes.double()?);
                match target {
                    Target::Min => row.min = value,
                    Target::Max => row.max = value,
                    Target::Sum => row.sum = value,
                    _ => row.last = value,
                }
            }
        }
        Target::LastEventTime | Target::EmittedAt => {
            if bytes.present(encoding)? {
                let value = millis(bytes.long()?);
                if target == Target::LastEventTime {
                    row.last_event_time = value;
                } else {
                    row.emitted_at = value;
                }
            }
        }
    }
    Some(())
}

/// `DateTime::from_timestamp_millis(ms)`, the same way, with the date of
/// the last day it met kept (per thread): a batch's timestamps fall on a
/// handful of days, and turning a day number into a date was most of the
/// conversion's cost (three per row).
pub(crate) fn millis(ms: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    use std::cell::Cell;

    use chrono::{DateTime, NaiveDate, NaiveTime};
    thread_local! {
        static LAST_DAY: Cell<Option<(i64, NaiveDate)>> = const { Cell::new(None) };
    }
    let secs = ms.div_euclid(1000);
    let nanos = ms.rem_euclid(1000) as u32 * 1_000_000;
    let days = secs.div_euclid(86_400);
    let date = LAST_DAY.with(|last| match last.get() {
        Some((day, date)) if day == days => Some(date),
        _ => {
            let date = DateTime::from_timestamp(days * 86_400, 0)?.date_naive();
            last.set(Some((days, date)));
            Some(date)
        }
    })?;
    let time =
        NaiveTime::from_num_seconds_from_midnight_opt(secs.rem_euclid(86_400) as u32, nanos)?;
    Some(date.and_time(time).and_utc())
}

/// The longest string or bytes value read here; longer ones are left to the
/// general path, whatever its limit.
const MAX_LEN: usize = 1024 * 1024;
