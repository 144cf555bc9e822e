//! The typed path ([`super::plan`]) against the general path (JSON object →
//! Avro value → bytes): over many generated events and many writer
//! schemas, whenever the typed path writes a record, the general path
//! writes the same bytes with the same schema, and `encode` (typed first)
//! answers exactly as the general path alone does, rejections included.
use std::time::Duration;

use serde_json::{Value as Json, json};
use tributary_proto::{
    envelope::object_to_struct,
    v1::{self as proto, event::Payload},
};

use super::*;
use crate::event::Validation;

const NOW: i64 = 1_800_000_000_000;
const AD_SUBJECT: &str = "tributary.events.ad_click-value";
const TICK_SUBJECT: &str = "tributary.events.price_tick-value";
const AD_V1: &str = include_str!("../../../schemas/ad_click/v1.avsc");
const AD_V2: &str = include_str!("../../../schemas/ad_click/v2.avsc");
const TICK_V1: &str = include_str!("../../../schemas/price_tick/v1.avsc");
const TICK_V2: &str = include_str!("../../../schemas/price_tick/v2.avsc");

/// A small deterministic generator (splitmix64), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Text of 1 to ~300 bytes mixing ASCII and multi-byte characters, so
    /// lengths cross the one-byte varint boundary.
    fn text(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "0",
            "-",
            " ",
            "/",
            "é",
            "Ü",
            "ß",
            "日本",
            "語",
            "🚀",
            "🔥",
            "ℤ",
            "ش",
            "\t",
            "\"",
            "\\",
            "{}",
            "Mozilla/5.0 (X11; Linux x86_64) ",
        ];
        let most = if self.chance(20) { 60 } else { 8 };
        let pieces = 1 + self.below(most);
        (0..pieces).map(|_| self.pick(PIECES)).collect()
    }

    /// Text of at most 6 pieces (under 256 bytes: identifiers).
    fn short(&mut self) -> String {
        loop {
            let text = self.text();
            if text.len() < 200 {
                return text;
            }
        }
    }

    fn price(&mut self) -> f64 {
        match self.below(6) {
            0 => 1.0,
            1 => 1e308,
            2 => 5e-324,
            3 => 0.1,
            4 => (self.next() >> 11) as f64 / (1u64 << 40) as f64 + 1e-9,
            _ => f64::from_bits(0x3FF0_0000_0000_0000 | (self.next() >> 12)),
        }
    }
}

fn rules() -> Validation {
    Validation {
        max_skew: Duration::from_secs(3600),
        now_ms: NOW,
    }
}

fn timestamp(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

/// Extra fields, often none, sometimes only nulls (which count as absent).
fn extra(rng: &mut Rng, names: &[&str]) -> Option<serde_json::Map<String, Json>> {
    match rng.below(10) {
        0..=5 => None,
        6 => Some(
            json!({ rng.pick(names): null })
                .as_object()
                .unwrap()
                .clone(),
        ),
        7 => Some(
            json!({ rng.pick(names): rng.text() })
                .as_object()
                .unwrap()
                .clone(),
        ),
        8 => Some(json!({ rng.pick(names): 1.5 }).as_object().unwrap().clone()),
        _ => Some(serde_json::Map::new()),
    }
}

fn ad_click(rng: &mut Rng) -> ValidEvent {
    const IPS: &[&str] = &[
        "203.0.113.7",
        " 10.1.2.3 ",
        "0.0.0.0",
        "255.255.255.255",
        "2001:DB8::1",
        "::ffff:192.0.2.1",
        "fe80::1:2:3:4",
        "::",
        "2001:0db8:0000:0000:0000:ff00:0042:8329",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];
    const URLS: &[&str] = &[
        "https://example.com/",
        "http://例え.jp/パス?q=ü",
        "https://a.b/c?d=e#f",
        "HTTP://EXAMPLE.COM:8080/Path",
    ];
    let mut url = rng.pick(URLS).to_string();
    if rng.chance(30) {
        url.push_str(&"x".repeat(rng.below(300)));
    }
    let metadata = rng.chance(30).then(|| {
        object_to_struct(
            json!({"slot": rng.text(), "n": 3, "nested": {"a": [1, "x", null]}})
                .as_object()
                .unwrap()
                .clone(),
        )
    });
    let click = proto::AdClick {
        ip_address: rng.pick(IPS).into(),
        user_agent: format!("ua{}", rng.text()),
        referring_url: url,
        advertiser_id: format!("adv-{}", rng.short()),
        metadata,
        campaign_id: rng.chance(50).then(|| rng.short()),
    };
    let extra = extra(rng, &["country", "tier", "region"]);
    let mut event = proto::Event {
        event_time: timestamp(NOW - rng.below(3_600_000) as i64),
        idempotency_key: "k".into(),
        ..Default::default()
    };
    if rng.chance(15) {
        // A built-in type sent as `generic`: its fields and extras in one object.
        let mut object = serde_json::Map::new();
        object.insert("ip_address".into(), click.ip_address.clone().into());
        object.insert("user_agent".into(), click.user_agent.clone().into());
        object.insert("referring_url".into(), click.referring_url.clone().into());
        object.insert("advertiser_id".into(), click.advertiser_id.clone().into());
        if let Some(campaign) = &click.campaign_id {
            object.insert("campaign_id".into(), campaign.clone().into());
        }
        object.extend(extra.unwrap_or_default());
        event.event_type = "ad_click".into();
        event.payload = Some(Payload::Generic(object_to_struct(object)));
    } else {
        event.payload = Some(Payload::AdClick(click));
        event.extra_fields = extra.map(object_to_struct);
    }
    ValidEvent::parse(event, rules()).expect("a valid ad click")
}

fn price_tick(rng: &mut Rng) -> ValidEvent {
    let tick = proto::PriceTick {
        pair: rng
            .pick(&["ETH-USD", "LINK-USD", "BTC-USD", "ÉTH-€"])
            .into(),
        source: format!("s{}", rng.short()),
        price: rng.price(),
        volume: match rng.below(3) {
            0 => None,
            1 => Some(0.0),
            _ => Some(rng.price()),
        },
    };
    let event = proto::Event {
        event_time: timestamp(NOW + rng.below(3_600_000) as i64),
        extra_fields: extra(rng, &["venue", "bid"]).map(object_to_struct),
        payload: Some(Payload::PriceTick(tick)),
        ..Default::default()
    };
    ValidEvent::parse(event, rules()).expect("a valid price tick")
}

/// `base` with its fields changed by `edit`.
fn variant(base: &str, edit: impl FnOnce(&mut Vec<Json>)) -> String {
    let mut schema: Json = serde_json::from_str(base).unwrap();
    edit(schema["fields"].as_array_mut().unwrap());
    schema.to_string()
}

fn set_type(fields: &mut [Json], name: &str, kind: Json, default: Option<Json>) {
    let field = fields.iter_mut().find(|f| f["name"] == name).unwrap();
    field["type"] = kind;
    let field = field.as_object_mut().unwrap();
    match default {
        Some(default) => field.insert("default".into(), default),
        None => field.remove("default"),
    };
}

fn remove(fields: &mut Vec<Json>, name: &str) {
    fields.retain(|f| f["name"] != name);
}

fn ad_click_schemas() -> Vec<String> {
    let v2 = |edit: fn(&mut Vec<Json>)| variant(AD_V2, edit);
    vec![
        AD_V1.into(),
        AD_V2.into(),
        v2(|f| f.reverse()),
        v2(|f| f.rotate_left(3)),
        v2(|f| {
            set_type(
                f,
                "campaign_id",
                json!(["string", "null"]),
                Some(json!("none")),
            )
        }),
        v2(|f| {
            set_type(
                f,
                "campaign_id",
                json!(["null", "int", "string"]),
                Some(json!(null)),
            )
        }),
        v2(|f| {
            set_type(
                f,
                "campaign_id",
                json!(["null", "bytes"]),
                Some(json!(null)),
            )
        }),
        v2(|f| {
            set_type(
                f,
                "campaign_id",
                json!(["null", {"type": "enum", "name": "Camp", "symbols": ["c1", "spring"]}]),
                Some(json!(null)),
            )
        }),
        v2(|f| set_type(f, "campaign_id", json!("string"), None)),
        v2(|f| {
            set_type(
                f,
                "ip_address",
                json!(["null", "string"]),
                Some(json!(null)),
            )
        }),
        v2(|f| {
            set_type(
                f,
                "metadata",
                json!({"type": "string", "logicalType": "uuid"}),
                None,
            )
        }),
        v2(|f| set_type(f, "referring_url", json!("int"), None)),
        v2(|f| set_type(f, "user_agent", json!("bytes"), None)),
        v2(|f| remove(f, "event_time")),
        v2(|f| remove(f, "metadata")),
        variant(AD_V1, |f| set_type(f, "event_time", json!("long"), None)),
        variant(AD_V1, |f| {
            set_type(
                f,
                "event_time",
                json!({"type": "long", "logicalType": "timestamp-micros"}),
                None,
            )
        }),
        variant(AD_V1, |f| set_type(f, "event_time", json!("double"), None)),
        variant(AD_V1, |f| set_type(f, "event_time", json!("float"), None)),
        variant(AD_V1, |f| set_type(f, "event_time", json!("int"), None)),
        variant(AD_V1, |f| {
            set_type(
                f,
                "event_time",
                json!(["null", {"type": "long", "logicalType": "timestamp-millis"}]),
                Some(json!(null)),
            )
        }),
        v2(|f| {
            f.push(json!({"name": "country", "type": ["null", "string"], "default": null}));
            f.push(json!({"name": "tier", "type": "string", "default": "gold ü"}));
            f.push(json!({"name": "weight", "type": "double", "default": 1.5}));
            f.push(json!({"name": "share", "type": "float", "default": 0.25}));
            f.push(json!({"name": "n", "type": "int", "default": -7}));
            f.push(json!({"name": "big", "type": "long", "default": 1_234_567_890_123_i64}));
            f.push(json!({"name": "flag", "type": "boolean", "default": true}));
            f.push(json!({"name": "raw", "type": "bytes", "default": "ab"}));
            f.push(json!({"name": "none", "type": "null", "default": null}));
            f.push(json!({"name": "since", "type": {"type": "long", "logicalType": "timestamp-millis"}, "default": 5}));
            f.push(json!({"name": "day", "type": {"type": "int", "logicalType": "date"}, "default": 20000}));
        }),
        v2(|f| {
            f.insert(
                2,
                json!({"name": "nested", "type": ["null", {"type": "record", "name": "Nested", "fields": [{"name": "x", "type": "int"}]}], "default": null}),
            );
            f.push(json!({"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}, "default": "B"}));
        }),
        v2(|f| f.push(json!({"name": "region", "type": ["string", "null"], "default": "EU"}))),
        v2(|f| f.push(json!({"name": "required_extra", "type": "string"}))),
    ]
}

fn price_tick_schemas() -> Vec<String> {
    let v2 = |edit: fn(&mut Vec<Json>)| variant(TICK_V2, edit);
    vec![
        TICK_V1.into(),
        TICK_V2.into(),
        v2(|f| f.reverse()),
        v2(|f| set_type(f, "volume", json!(["null", "float"]), Some(json!(null)))),
        v2(|f| set_type(f, "volume", json!(["double", "null"]), Some(json!(0.0)))),
        v2(|f| set_type(f, "volume", json!("double"), None)),
        v2(|f| set_type(f, "price", json!("float"), None)),
        v2(|f| {
            set_type(
                f,
                "price",
                json!(["null", "long", "string", "double"]),
                Some(json!(null)),
            )
        }),
        v2(|f| set_type(f, "price", json!(["null", "int"]), Some(json!(null)))),
        v2(|f| {
            set_type(
                f,
                "price",
                json!({"type": "long", "logicalType": "timestamp-millis"}),
                None,
            )
        }),
        v2(|f| set_type(f, "pair", json!("bytes"), None)),
        v2(|f| set_type(f, "event_time", json!("float"), None)),
        v2(|f| remove(f, "volume")),
        v2(|f| {
            f.push(json!({"name": "venue", "type": ["null", "string"], "default": null}));
            f.push(json!({"name": "bid", "type": ["null", "double"], "default": null}));
        }),
    ]
}

/// Candidate lists: each schema alone, each before v2 and v1 (newest
/// first), v2 then v1, v1 alone, and pinned ones.
fn candidate_sets(subject: &str, schemas: &[String], v1: &str, v2: &str) -> Vec<WriterCandidates> {
    let mut sets = vec![
        WriterCandidates::listed(subject, &[(2, v2), (1, v1)]),
        WriterCandidates::listed(subject, &[(1, v1)]),
        WriterCandidates::pinned_to(subject, v1),
        WriterCandidates::pinned_to(subject, v2),
    ];
    for (i, schema) in schemas.iter().enumerate() {
        let version = 10 + i as u32;
        sets.push(WriterCandidates::listed(subject, &[(version, schema)]));
        sets.push(WriterCandidates::listed(
            subject,
            &[(version, schema), (2, v2), (1, v1)],
        ));
        sets.push(WriterCandidates::listed(
            subject,
            &[(version, schema), (1, v1)],
        ));
    }
    sets
}

type Outcome = Result<(u32, Vec<u8>), Rejection>;

fn outcome(result: Result<Arc<WriterSchema>, Rejection>, out: Vec<u8>) -> Outcome {
    result.map(|schema| (schema.id, out))
}

#[derive(Default, Debug)]
struct Tally {
    typed: usize,
    general_written: usize,
    rejected: usize,
}

/// Checks one event against one candidate list.
fn check(event: &ValidEvent, candidates: &WriterCandidates, tally: &mut Tally) {
    let record = EventRecord::new(event.clone());
    let mut general_out = vec![7]; // something before, as in a reused buffer
    let general = outcome(
        record.clone().encode_general(candidates, &mut general_out),
        general_out,
    );
    let mut typed_out = vec![7];
    match record.encode_typed(candidates, &mut typed_out) {
        Some(schema) => {
            tally.typed += 1;
            assert_eq!(
                Ok((schema.id, typed_out)),
                general,
                "typed and general paths differ for {event:?} with {:?}",
                candidates
                    .schemas
                    .iter()
                    .map(|(v, s)| (v, s.id))
                    .collect::<Vec<_>>()
            );
        }
        None => {
            assert_eq!(typed_out, [7], "the typed path left bytes behind");
            match &general {
                Ok(_) => tally.general_written += 1,
                Err(_) => tally.rejected += 1,
            }
        }
    }
    // `encode` (typed first) answers as the general path alone does.
    let mut out = vec![7];
    let answered = outcome(record.clone().encode(candidates, &mut out), out);
    assert_eq!(answered, general, "encode differs for {event:?}");
}

#[test]
fn the_typed_path_writes_what_the_general_path_writes() {
    let mut rng = Rng(0x5EED);
    let ad_sets = candidate_sets(AD_SUBJECT, &ad_click_schemas(), AD_V1, AD_V2);
    let tick_sets = candidate_sets(TICK_SUBJECT, &price_tick_schemas(), TICK_V1, TICK_V2);
    let mut tally = Tally::default();
    for _ in 0..400 {
        let click = ad_click(&mut rng);
        for candidates in &ad_sets {
            check(&click, candidates, &mut tally);
        }
        let tick = price_tick(&mut rng);
        for candidates in &tick_sets {
            check(&tick, candidates, &mut tally);
        }
    }
    // Every kind of outcome is exercised, and most writes are typed.
    assert!(
        tally.typed > 4 * tally.general_written && tally.general_written > 100,
        "{tally:?}"
    );
    assert!(tally.rejected > 1000, "{tally:?}");
}

#[test]
fn the_built_in_versions_are_written_by_the_typed_path() {
    let mut rng = Rng(7);
    let ad = WriterCandidates::listed(AD_SUBJECT, &[(2, AD_V2), (1, AD_V1)]);
    let tick = WriterCandidates::listed(TICK_SUBJECT, &[(2, TICK_V2), (1, TICK_V1)]);
    for _ in 0..500 {
        for (event, candidates) in [(ad_click(&mut rng), &ad), (price_tick(&mut rng), &tick)] {
            let has_extra = match &EventRecord::new(event.clone()).fields {
                Fields::AdClick(_, extra) | Fields::PriceTick(_, extra) => !extra.is_empty(),
                Fields::Object(_) => unreachable!("typed"),
            };
            let mut out = Vec::new();
            let typed = EventRecord::new(event).encode_typed(candidates, &mut out);
            assert_eq!(typed.is_some(), !has_extra);
        }
    }
}
