//! The typed plan reads what the general path reads: for generated records
//! of many writer schemas (the built-in v1, v2 and v3 and variants of them:
//! fields reordered, added of every plain type, optional ones missing or of
//! another union order), intact, cut short, extended and with bytes flipped,
//! a plan either leaves the record to the general path or gives exactly its
//! result: the same row, or the same rejection.
use apache_avro::Schema;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use tributary_common::{
    avro_reader::{ReadError, ReaderCache},
    schemas, wire,
};
use tributary_testkit::avro_records::{
    MICROS, MILLIS, Rng, body, extra_fields, field, mangled, nullable,
};

use crate::{
    aggregate::{AggregateRow, READER},
    plan::AggregatePlan,
};

/// Event types and group keys, any field alike: empty, with a NUL (which a
/// row refuses), long, not ASCII, or ordinary.
fn string(rng: &mut Rng, _field: &str) -> String {
    match rng.below(10) {
        0 => String::new(),
        1 => "adv\0".into(),
        2 => "广告主 ☃".into(),
        3 => "x".repeat(rng.below(300)),
        4 => "price_tick".into(),
        _ => format!("adv-{:03}", rng.below(1000)),
    }
}

/// An aggregate writer schema with `fields`.
fn record_schema(fields: &[String]) -> String {
    tributary_testkit::avro_records::record_schema("io.tributary.aggregates", "Aggregate", fields)
}

/// The v3 fields, by name and JSON.
fn v3() -> Vec<(&'static str, String)> {
    vec![
        ("event_type", field("event_type", r#""string""#)),
        ("group_key", field("group_key", r#""string""#)),
        ("window_start", field("window_start", MILLIS)),
        ("window_end", field("window_end", MILLIS)),
        ("count", field("count", r#""long""#)),
        ("distinct_count", nullable("distinct_count", r#""long""#)),
        ("min", nullable("min", r#""double""#)),
        ("max", nullable("max", r#""double""#)),
        ("sum", nullable("sum", r#""double""#)),
        ("last", nullable("last", r#""double""#)),
        ("last_event_time", nullable("last_event_time", MILLIS)),
        ("final", field("final", r#""boolean""#)),
        ("emitted_at", nullable("emitted_at", MILLIS)),
        (
            "revision",
            r#"{"name": "revision", "type": "int", "default": 0}"#.into(),
        ),
    ]
}

/// Writer schemas: (schema JSON, whether it must have a plan).
fn writers(rng: &mut Rng) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = schemas::versions(schemas::AGGREGATE)
        .map(|s| (s.json.to_string(), true))
        .collect();
    assert_eq!(out.len(), 3, "v1, v2 and v3");
    let swap = |name: &str, replacement: String| -> String {
        let fields: Vec<String> = v3()
            .into_iter()
            .map(|(n, f)| if n == name { replacement.clone() } else { f })
            .collect();
        record_schema(&fields)
    };
    // Shapes the plan reads: a plain long window bound, optional fields
    // plain or with null second.
    out.push((
        swap("window_start", field("window_start", r#""long""#)),
        true,
    ));
    out.push((swap("min", field("min", r#""double""#)), true));
    out.push((
        swap(
            "emitted_at",
            field(
                "emitted_at",
                r#"[{"type": "long", "logicalType": "timestamp-millis"}, "null"]"#,
            ),
        ),
        true,
    ));
    out.push((
        swap(
            "distinct_count",
            field("distinct_count", r#"["long", "null"]"#),
        ),
        true,
    ));
    // Reordered, optional fields missing, extra fields in between.
    let optional = [
        "distinct_count",
        "min",
        "max",
        "sum",
        "last",
        "last_event_time",
        "emitted_at",
        "revision",
    ];
    for _ in 0..12 {
        let mut fields: Vec<String> = v3()
            .into_iter()
            .filter(|(name, _)| !optional.contains(name) || rng.below(3) != 0)
            .map(|(_, f)| f)
            .collect();
        for extra in extra_fields() {
            if rng.below(2) == 0 {
                fields.push(extra);
            }
        }
        rng.shuffle(&mut fields);
        out.push((record_schema(&fields), true));
    }
    // Shapes left to the general path: another timestamp precision, a
    // promoted type, a required field nullable, a nested record, a long
    // where the reader has a nullable timestamp.
    out.push((swap("window_end", field("window_end", MICROS)), false));
    out.push((swap("count", field("count", r#""int""#)), false));
    out.push((swap("min", nullable("min", r#""float""#)), false));
    out.push((
        swap("group_key", nullable("group_key", r#""string""#)),
        false,
    ));
    out.push((
        swap("last_event_time", nullable("last_event_time", r#""long""#)),
        false,
    ));
    let mut nested: Vec<String> = v3().into_iter().map(|(_, f)| f).collect();
    nested.push(field(
        "nested",
        r#"{"type": "record", "name": "Nested", "fields": [{"name": "n", "type": "long"}]}"#,
    ));
    out.push((record_schema(&nested), false));
    out
}

/// The general path, as the pipeline takes it.
async fn general(
    readers: &ReaderCache,
    framed: &[u8],
) -> Result<AggregateRow, (&'static str, String)> {
    let value = readers.read(framed, Some(*READER)).await.map_err(|e| {
        let reason = match e {
            ReadError::NotFramed(_) => "not_framed",
            ReadError::UnknownSchema(_) => "unknown_schema",
            ReadError::Undecodable(_) => "undecodable",
            ReadError::Unavailable(_) => "unavailable",
        };
        (reason, e.to_string())
    })?;
    AggregateRow::from_value(value).map_err(|detail| ("invalid", detail))
}

#[tokio::test]
async fn the_typed_plan_reads_what_the_general_path_reads() {
    let mut rng = Rng(0x5EED_A66E_0B1C_A7E5);
    let (mut typed, mut compared, mut valid, mut invalid) = (0, 0, 0, 0);
    let readers = ReaderCache::new(SrSettings::new("http://127.0.0.1:1".into()));
    for (id, (json, planned)) in (1u32..).zip(writers(&mut rng)) {
        let writer = Schema::parse_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        readers.insert_writer(id, &json);
        let plan = AggregatePlan::new(&writer, *READER);
        assert_eq!(plan.is_some(), planned, "writer {json}: plan {plan:?}");
        let Some(plan) = plan else { continue };
        for _ in 0..300 {
            let written = body(&mut rng, &writer, string);
            let (body, changed) = mangled(&mut rng, written);
            let mut framed = Vec::new();
            wire::frame_into(id, &body, &mut framed);
            let general = general(&readers, &framed).await;
            compared += 1;
            match plan.read(&body) {
                Some(read) => {
                    typed += 1;
                    match &read {
                        Ok(_) => valid += 1,
                        Err(_) => invalid += 1,
                    }
                    // Compared as printed: a NaN equals itself there, and
                    // `Debug` prints every f64 exactly.
                    assert_eq!(
                        format!("{:?}", read.map_err(|detail| ("invalid", detail))),
                        format!("{general:?}"),
                        "writer {json}, body {body:?}"
                    );
                }
                // Only a record that is not as written is left to the
                // general path.
                None => assert!(changed, "writer {json}, body {body:?}"),
            }
        }
    }
    // Most records are intact and read by a plan, both valid and invalid.
    assert!(typed * 2 > compared, "typed {typed} of {compared}");
    assert!(
        valid > 100 && invalid > 100,
        "valid {valid}, invalid {invalid}"
    );
    assert_eq!(readers.registry_lookups(), 0);
}

#[tokio::test]
async fn the_writer_schema_comes_from_the_cache() {
    let readers = ReaderCache::new(SrSettings::new("http://127.0.0.1:1".into()));
    let json = schemas::latest(schemas::AGGREGATE).unwrap().json;
    readers.insert_writer(4, json);
    let writer = readers.writer(4).await.unwrap();
    assert!(AggregatePlan::new(writer, *READER).is_some());
    assert_eq!(readers.registry_lookups(), 0);
    // Not cached and the registry unreachable: unavailable, not unknown.
    assert!(matches!(
        readers.writer(5).await,
        Err(ReadError::Unavailable(_))
    ));
    assert_eq!(readers.registry_lookups(), 1);
}

/// The plan's timestamp conversion (a day's date kept between calls) gives
/// what chrono's gives, for any number: runs within a day and across days,
/// negative ones, and both ends of chrono's range and beyond.
#[test]
fn timestamps_convert_as_chrono_converts_them() {
    use chrono::DateTime;
    let max = DateTime::<chrono::Utc>::MAX_UTC.timestamp_millis();
    let min = DateTime::<chrono::Utc>::MIN_UTC.timestamp_millis();
    let mut rng = Rng(0x71AE_57A4_9C0F_F1CE);
    let mut values = vec![0, -1, 1, 86_399_999, 86_400_000, -86_400_000, -86_400_001];
    values.extend([
        i64::MIN,
        i64::MAX,
        max,
        max + 1,
        min,
        min - 1,
        min + 1,
        max - 1,
    ]);
    for _ in 0..20_000 {
        let base = match rng.below(4) {
            0 => rng.next_u64() as i64,
            1 => (rng.next_u64() % 8_000_000_000_000) as i64 - 4_000_000_000_000,
            2 => max - (rng.next_u64() % 200_000_000) as i64,
            _ => min + (rng.next_u64() % 200_000_000) as i64,
        };
        // A run of nearby instants, as a batch has.
        for _ in 0..rng.below(4) + 1 {
            values.push(base.saturating_add((rng.next_u64() % 100_000_000) as i64 - 50_000_000));
        }
    }
    for ms in values {
        assert_eq!(
            crate::plan::millis(ms),
            DateTime::from_timestamp_millis(ms),
            "{ms}"
        );
    }
}
