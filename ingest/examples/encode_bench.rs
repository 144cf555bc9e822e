//! Measures ingest's hot path from a submitted event to the bytes it
//! produces, against a raw baseline, in one run:
//!
//! ```sh
//! cargo run --release -p tributary-ingest --example encode_bench -- [EVENTS] [ROUNDS]
//! ```
//!
//! For ad clicks and price ticks shaped like `dev/bench`'s (metadata and a
//! campaign; a volume), against the built-in schemas as the registry lists
//! them (v2 and v1, auto-registered), each round times:
//!
//! - **validate + typed**: `ValidEvent::parse` → `EventRecord::split` →
//!   `encode` (the typed path: each schema's compiled plan writes the Avro
//!   body straight from the event), into one reused buffer: what ingest
//!   does per event before producing;
//! - **validate + general**: the same with the general path (the event as a
//!   JSON object → an apache-avro `Value` → bytes), which was ingest's only
//!   path before the typed one;
//! - **typed** and **general**: the encoding alone, from validated events;
//! - **raw apache-avro**: `GenericDatumWriter::write_value_ref` of prebuilt
//!   `Value`s of the same records plus the Confluent frame: the least an
//!   apache-avro encoder does per record, with nothing of ingest.
//!
//! It prints ns per event (median of the rounds, and the spread),
//! allocations per event (counted by this binary's allocator), and the
//! ratios. Needs Postgres (for the registry's state).
use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use apache_avro::{Schema, types::Value, writer::datum::GenericDatumWriter};
use tributary_common::{
    config::{KafkaArgs, RegistryArgs},
    schemas, wire,
};
use tributary_ingest::{
    config::{SchemaArgs, SchemaPolicy},
    encode::EventRecord,
    event::{ValidEvent, Validation},
    writer_schema::{WriterCandidates, WriterSchemas},
};
use tributary_proto::v1::{AdClick, Event, PriceTick, event::Payload};
use tributary_stack::{postgres::TestDatabase, registry::RunningRegistry};

/// The system allocator, counting allocations.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rules(now_ms: i64) -> Validation {
    Validation {
        max_skew: Duration::from_secs(3600),
        now_ms,
    }
}

fn stamped(payload: Payload, now_ms: i64, i: usize) -> Event {
    Event {
        event_time: Some(prost_types::Timestamp {
            seconds: now_ms / 1000,
            nanos: 0,
        }),
        idempotency_key: format!("bench-{i}"),
        payload: Some(payload),
        ..Default::default()
    }
}

fn ad_clicks(n: usize, now_ms: i64) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let metadata = serde_json::json!({"slot": "top", "page": i % 7});
            let click = AdClick {
                ip_address: format!("10.0.{}.{}", i / 250 % 250, i % 250),
                user_agent: "Mozilla/5.0 (X11; Linux x86_64) bench".into(),
                referring_url: "https://example.com/landing?utm_source=bench".into(),
                advertiser_id: format!("adv-{}", i % 100),
                metadata: Some(tributary_proto::envelope::object_to_struct(
                    metadata.as_object().expect("an object").clone(),
                )),
                campaign_id: Some(format!("campaign-{}", i % 10)),
            };
            stamped(Payload::AdClick(click), now_ms, i)
        })
        .collect()
}

fn price_ticks(n: usize, now_ms: i64) -> Vec<Event> {
    const PAIRS: [&str; 3] = ["ETH-USD", "LINK-USD", "BTC-USD"];
    (0..n)
        .map(|i| {
            let tick = PriceTick {
                pair: PAIRS[i % 3].into(),
                source: format!("source-{}", i % 2),
                price: 1000.0 + i as f64 / 7.0,
                volume: Some(i as f64),
            };
            stamped(Payload::PriceTick(tick), now_ms, i)
        })
        .collect()
}

/// Nanoseconds and allocations per event of `f` over `events`.
fn timed<T>(events: Vec<T>, mut f: impl FnMut(T, &mut Vec<u8>) -> usize) -> (f64, f64, usize) {
    let n = events.len();
    let mut buf = Vec::with_capacity(512);
    let mut bytes = 0;
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let started = Instant::now();
    for event in events {
        buf.clear();
        bytes += f(event, &mut buf);
    }
    let elapsed = started.elapsed();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    // The events dropped inside f are counted with f; the Vec itself is not.
    (
        elapsed.as_nanos() as f64 / n as f64,
        allocations as f64 / n as f64,
        bytes,
    )
}

struct Variant {
    name: &'static str,
    ns: Vec<f64>,
    allocations: f64,
}

impl Variant {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            ns: Vec::new(),
            allocations: 0.0,
        }
    }

    fn record(&mut self, (ns, allocations, _): (f64, f64, usize)) {
        self.ns.push(ns);
        self.allocations = allocations;
    }

    fn median(&self) -> f64 {
        let mut v = self.ns.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    fn spread(&self) -> (f64, f64) {
        let min = self.ns.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.ns.iter().copied().fold(0.0, f64::max);
        (min, max)
    }
}

fn encode_with(
    typed: bool,
    record: &mut EventRecord,
    candidates: &WriterCandidates,
    out: &mut Vec<u8>,
) -> usize {
    let written = if typed {
        record.encode(candidates, out)
    } else {
        record.encode_general(candidates, out)
    };
    written.expect("the event fits");
    out.len()
}

/// One kind of event through every variant, `rounds` times.
fn measure(
    kind: &str,
    events: &[Event],
    now_ms: i64,
    candidates: &WriterCandidates,
    rounds: usize,
) -> anyhow::Result<()> {
    let validated = |events: &[Event]| -> Vec<ValidEvent> {
        events
            .iter()
            .map(|e| ValidEvent::parse(e.clone(), rules(now_ms)).expect("valid"))
            .collect()
    };
    // The raw baseline's values: the general path's own, built untimed.
    let newest = candidates.newest();
    let raw_writer = GenericDatumWriter::builder(newest.schema).build()?;
    let values: Vec<Value> = validated(events)
        .into_iter()
        .map(|e| {
            let mut record = EventRecord::new(e);
            let mut out = Vec::new();
            record
                .encode_general(candidates, &mut out)
                .expect("the event fits");
            let Schema::Record(_) = newest.schema else {
                unreachable!("a record schema")
            };
            let mut body = &out[wire::HEADER_LEN..];
            apache_avro::reader::datum::GenericDatumReader::builder(newest.schema)
                .build()
                .expect("a reader")
                .read_value(&mut body)
                .expect("decodes")
        })
        .collect();

    let mut variants = [
        Variant::new("validate + typed"),
        Variant::new("validate + general (before)"),
        Variant::new("typed"),
        Variant::new("general (before)"),
        Variant::new("raw apache-avro (prebuilt Values)"),
    ];
    for _ in 0..rounds {
        let mut sizes = Vec::new();
        for (i, typed) in [(0, true), (1, false)] {
            let copies = events.to_vec();
            let result = timed(copies, |event, out| {
                let valid = ValidEvent::parse(event, rules(now_ms)).expect("valid");
                let (_envelope, mut record) = EventRecord::split(valid);
                encode_with(typed, &mut record, candidates, out)
            });
            sizes.push(result.2);
            variants[i].record(result);
        }
        for (i, typed) in [(2, true), (3, false)] {
            let copies = validated(events);
            let result = timed(copies, |valid, out| {
                let (_envelope, mut record) = EventRecord::split(valid);
                encode_with(typed, &mut record, candidates, out)
            });
            sizes.push(result.2);
            variants[i].record(result);
        }
        let result = timed(values.iter().collect(), |value, out| {
            wire::frame_into(newest.id, &[], out);
            raw_writer.write_value_ref(out, value).expect("encodes");
            out.len()
        });
        sizes.push(result.2);
        variants[4].record(result);
        anyhow::ensure!(
            sizes.iter().all(|s| *s == sizes[0]),
            "every variant must write the same bytes: {sizes:?}"
        );
    }
    println!(
        "\n{kind}: {} events, {rounds} rounds, schema id {} (newest of {} listed)",
        events.len(),
        newest.id,
        candidates.schemas.len()
    );
    println!(
        "{:<36} {:>12} {:>20} {:>14}",
        "variant", "ns/event", "spread (min-max)", "allocs/event"
    );
    for v in &variants {
        let (min, max) = v.spread();
        println!(
            "{:<36} {:>12.0} {:>9.0} - {:<9.0} {:>14.1}",
            v.name,
            v.median(),
            min,
            max,
            v.allocations
        );
    }
    let m = |i: usize| variants[i].median();
    println!(
        "ratios (medians): typed / raw apache-avro {:.2}; general / typed {:.2}; validate+general / validate+typed {:.2}",
        m(2) / m(4),
        m(3) / m(2),
        m(1) / m(0)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(7);

    let database = TestDatabase::create().await?;
    let registry = RunningRegistry::start(database.url()).await?;
    let kafka = KafkaArgs::for_brokers("unused:9092");
    let registry_args = RegistryArgs::at(registry.url());
    let cache = WriterSchemas::new(
        &registry_args,
        kafka.clone(),
        SchemaArgs {
            policy: SchemaPolicy::AutoRegister,
            pinned: Vec::new(),
            refresh: Duration::from_secs(3600),
        },
    )?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    for (kind, events) in [
        (schemas::AD_CLICK, ad_clicks(n, now_ms)),
        (schemas::PRICE_TICK, price_ticks(n, now_ms)),
    ] {
        let candidates = cache.get(kind).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        measure(kind, &events, now_ms, &candidates, rounds)?;
    }
    Ok(())
}
