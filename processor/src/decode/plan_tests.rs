//! The typed plans read what the general path reads: for generated records
//! of many writer schemas (the built-in versions and variants of them:
//! fields reordered, added of every plain type, nullable or not, missing),
//! intact, truncated, extended and with bytes flipped, read with the v1 and
//! v2 readers, a plan either leaves the record to the general path or gives
//! exactly its result: the same event, or the same rejection.
use apache_avro::Schema;
use tributary_common::{schemas, wire};
use tributary_testkit::avro_records::{
    MICROS, MILLIS, Rng, body, extra_fields, field, mangled, nullable, record_schema,
};

use super::{DecodeError, Decoded, Decoder, Kind, ReaderVersion, plan::TypedPlan};

/// Strings by field: addresses (valid and not), pairs, sources, advertisers.
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

const STRING: &str = r#""string""#;
const DOUBLE: &str = r#""double""#;

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
    let with = |fields: Vec<String>| record_schema("io.tributary.events", name, &fields);
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
        for extra in extra_fields() {
            if rng.below(2) == 0 {
                fields.push(extra);
            }
        }
        rng.shuffle(&mut fields);
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
    out.push((swap("event_time", field("event_time", MICROS)), false));
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
                    let written = body(&mut rng, &writer, string);
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
        let body = body(&mut rng, &writer, string);
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
