//! Events submitted through ingest come out of the processor as exact
//! window totals; late events correct their closed window's final totals;
//! poison and expired records go to the dead-letter topic with their reason; retries are counted once; two processors share partitions
//! without double counting; and a crashed processor's successor rebuilds the
//! same totals.
use std::{collections::HashMap, time::Duration};

use apache_avro::{reader::datum::GenericDatumReader, types::Value};
use futures::StreamExt as _;
use rdkafka::{
    Message as _,
    consumer::{Consumer as _, StreamConsumer},
    message::Headers as _,
    producer::{FutureProducer, FutureRecord},
};
use tributary_common::{kafka, schemas, wire};
use tributary_proto::v1::{
    AdClick, Event, PriceTick, SubmitBatchRequest, event::Payload, event_result::Outcome,
    ingest_service_client::IngestServiceClient,
};
use tributary_stack::{TestStack, ingest::RunningIngest, processor};

const MINUTE: i64 = 60_000;

/// Start of a whole minute a few minutes ago: every test event falls inside
/// the skew ingest accepts, in windows that the idle advance closes quickly.
fn base_window() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    (now / MINUTE - 5) * MINUTE
}

fn at(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    })
}

fn click(advertiser: &str, ip: &str, time_ms: i64, idempotency_key: &str) -> Event {
    Event {
        event_time: at(time_ms),
        idempotency_key: idempotency_key.into(),
        payload: Some(Payload::AdClick(AdClick {
            ip_address: ip.into(),
            user_agent: "ua".into(),
            referring_url: "https://example.com/".into(),
            advertiser_id: advertiser.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn tick(pair: &str, source: &str, price: f64, time_ms: i64, idempotency_key: &str) -> Event {
    Event {
        event_time: at(time_ms),
        idempotency_key: idempotency_key.into(),
        payload: Some(Payload::PriceTick(PriceTick {
            pair: pair.into(),
            source: source.into(),
            price,
            volume: None,
        })),
        ..Default::default()
    }
}

async fn submit(ingest: &RunningIngest, events: Vec<Event>) -> anyhow::Result<()> {
    let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;
    for chunk in events.chunks(500) {
        let results = client
            .submit_batch(SubmitBatchRequest {
                events: chunk.to_vec(),
            })
            .await?
            .into_inner()
            .results;
        for r in results {
            anyhow::ensure!(
                matches!(r.outcome, Some(Outcome::Ack(_))),
                "not acked: {r:?}"
            );
        }
    }
    Ok(())
}

/// The latest final aggregate per (event type, group key, window start).
#[derive(Debug, Clone, PartialEq)]
struct Final {
    count: i64,
    distinct: Option<i64>,
    min: Option<f64>,
    max: Option<f64>,
    sum: Option<f64>,
    last: Option<f64>,
}

fn opt_long(v: &Value) -> Option<i64> {
    match v {
        Value::Union(_, inner) => match **inner {
            Value::Long(n) => Some(n),
            _ => None,
        },
        _ => None,
    }
}

fn opt_double(v: &Value) -> Option<f64> {
    match v {
        Value::Union(_, inner) => match **inner {
            Value::Double(n) => Some(n),
            _ => None,
        },
        _ => None,
    }
}

/// Reads the aggregates topic until `expected` final aggregates are there (or
/// 60 s pass) and returns the final totals by "type|key|window".
async fn finals(
    stack: &TestStack,
    group: &str,
    expected: usize,
) -> anyhow::Result<HashMap<String, Final>> {
    finals_until(stack, group, |finals| finals.len() >= expected).await
}

/// Reads the aggregates topic until the latest final aggregates satisfy
/// `done` (or 60 s pass) and returns them by "type|key|window".
async fn finals_until(
    stack: &TestStack,
    group: &str,
    done: impl Fn(&HashMap<String, Final>) -> bool,
) -> anyhow::Result<HashMap<String, Final>> {
    let consumer: StreamConsumer = kafka::consumer_config(&stack.kafka(), group).create()?;
    consumer.subscribe(&["tributary.aggregates"])?;
    let mut finals = HashMap::new();
    let mut stream = consumer.stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(&finals) {
        let message = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(m) => m.unwrap()?,
            Err(_) => anyhow::bail!(
                "the final aggregates after 60 s are not the expected ones: {finals:?}"
            ),
        };
        if let Some((key, value)) = decode_final(&message)? {
            finals.insert(key, value);
        }
    }
    Ok(finals)
}

/// The key and totals of an aggregate record, if it is a final one.
fn decode_final(
    message: &rdkafka::message::BorrowedMessage<'_>,
) -> anyhow::Result<Option<(String, Final)>> {
    let schema = schemas::latest(schemas::AGGREGATE).unwrap().parse();
    let (_, body) = wire::unframe(message.payload().unwrap())?;
    let Value::Record(fields) = GenericDatumReader::builder(&schema)
        .build()?
        .read_value(&mut &body[..])?
    else {
        unreachable!()
    };
    let f: HashMap<String, Value> = fields.into_iter().collect();
    if f["final"] != Value::Boolean(true) {
        return Ok(None);
    }
    let Value::Long(count) = f["count"] else {
        unreachable!()
    };
    let key = String::from_utf8(message.key().unwrap().to_vec())?;
    Ok(Some((
        key,
        Final {
            count,
            distinct: opt_long(&f["distinct_count"]),
            min: opt_double(&f["min"]),
            max: opt_double(&f["max"]),
            sum: opt_double(&f["sum"]),
            last: opt_double(&f["last"]),
        },
    )))
}

/// The latest final aggregate per key of every record on the aggregates
/// topic when called.
async fn finals_to_end(stack: &TestStack, group: &str) -> anyhow::Result<HashMap<String, Final>> {
    let consumer: StreamConsumer = kafka::consumer_config(&stack.kafka(), group).create()?;
    let metadata =
        consumer.fetch_metadata(Some("tributary.aggregates"), Duration::from_secs(10))?;
    let mut remaining = 0;
    for p in metadata.topics()[0].partitions() {
        let (low, high) =
            consumer.fetch_watermarks("tributary.aggregates", p.id(), Duration::from_secs(10))?;
        remaining += high - low;
    }
    consumer.subscribe(&["tributary.aggregates"])?;
    let mut finals = HashMap::new();
    while remaining > 0 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
        remaining -= 1;
        if let Some((key, value)) = decode_final(&message)? {
            finals.insert(key, value);
        }
    }
    Ok(finals)
}

/// The processor binary against `stack`, emitting every 200 ms, its
/// partitions idle after `idle_advance`; killed if dropped.
fn spawn_processor(
    stack: &TestStack,
    idle_advance: &str,
) -> std::io::Result<tokio::process::Child> {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary-processor"))
        .env("TRIBUTARY_KAFKA_BROKERS", stack.broker.brokers())
        .env("TRIBUTARY_REGISTRY_URL", stack.registry.url())
        .env("TRIBUTARY_IDLE_ADVANCE", idle_advance)
        .env("TRIBUTARY_EMIT_INTERVAL", "200ms")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
}

/// Sends `processor` SIGTERM and requires it to exit 0 within 30 s.
async fn stop_cleanly(mut processor: tokio::process::Child) -> anyhow::Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(processor.id().expect("running") as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let status = tokio::time::timeout(Duration::from_secs(30), processor.wait()).await??;
    assert!(status.success(), "{status}");
    Ok(())
}

#[tokio::test]
async fn clicks_and_ticks_become_exact_window_totals() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let processor = processor::start(&stack, processor::quick_windows).await?;
    let w = base_window();

    let mut events = Vec::new();
    // adv-a: 30 clicks from 3 addresses in window w; 5 clicks in w+1m.
    for i in 0..30 {
        events.push(click(
            "adv-a",
            &format!("10.0.0.{}", i % 3),
            w + i * 1000,
            &format!("a{i}"),
        ));
    }
    // The last millisecond of window w, and window w+1m from its first.
    events.push(click("adv-a", "10.0.0.0", w + MINUTE - 1, "a-edge"));
    for i in 0..5 {
        events.push(click(
            "adv-a",
            "10.0.0.9",
            w + MINUTE + i * 1000,
            &format!("a2-{i}"),
        ));
    }
    // adv-b: 7 clicks from 7 addresses; one retried with the same key.
    for i in 0..7 {
        events.push(click(
            "adv-b",
            &format!("192.0.2.{i}"),
            w + 500 * i,
            &format!("b{i}"),
        ));
    }
    events.push(click("adv-b", "192.0.2.0", w, "b0"));
    // ETH-USD from two sources; the latest by event time is not the last sent.
    events.push(tick("ETH-USD", "api-1", 100.0, w + 10_000, "t1"));
    events.push(tick("ETH-USD", "api-1", 104.0, w + 30_000, "t2"));
    events.push(tick("ETH-USD", "api-1", 98.0, w + 20_000, "t3"));
    events.push(tick("ETH-USD", "contract", 101.5, w + 5_000, "t4"));
    submit(&ingest, events).await?;

    let finals = finals(&stack, "check-exact", 5).await?;
    let clicks = |count, distinct| Final {
        count,
        distinct: Some(distinct),
        min: None,
        max: None,
        sum: None,
        last: None,
    };
    assert_eq!(finals[&format!("ad_click|adv-a|{w}")], clicks(31, 3));
    assert_eq!(
        finals[&format!("ad_click|adv-a|{}", w + MINUTE)],
        clicks(5, 1)
    );
    assert_eq!(
        finals[&format!("ad_click|adv-b|{w}")],
        clicks(7, 7),
        "the retry is counted once"
    );
    assert_eq!(
        finals[&format!("price_tick|ETH-USD/api-1|{w}")],
        Final {
            count: 3,
            distinct: None,
            min: Some(98.0),
            max: Some(104.0),
            sum: Some(302.0),
            last: Some(104.0)
        }
    );
    assert_eq!(
        finals[&format!("price_tick|ETH-USD/contract|{w}")],
        Final {
            count: 1,
            distinct: None,
            min: Some(101.5),
            max: Some(101.5),
            sum: Some(101.5),
            last: Some(101.5)
        }
    );
    processor.shutdown().await?;
    Ok(())
}

/// Reads `expected` dead letters: (reason, source key).
async fn dead_letters(
    stack: &TestStack,
    expected: usize,
) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let consumer: StreamConsumer = kafka::consumer_config(&stack.kafka(), "check-dlq").create()?;
    consumer.subscribe(&["tributary.dead-letter"])?;
    let mut stream = consumer.stream();
    let mut found = Vec::new();
    while found.len() < expected {
        let message = match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
            Ok(m) => m.unwrap()?,
            Err(_) => anyhow::bail!("only {found:?} after 30 s"),
        };
        let reason = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "tributary.dlq.reason"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        found.push((
            reason,
            message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
        ));
    }
    Ok(found)
}

#[tokio::test]
async fn poison_invalid_and_expired_records_are_dead_lettered_late_ones_correct_their_window_and_the_partition_goes_on()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let processor = processor::start(&stack, processor::quick_windows).await?;
    let w = base_window();

    submit(&ingest, vec![click("adv-p", "10.1.1.1", w + 1_000, "p1")]).await?;
    // Straight to the topic, bypassing ingest: garbage bytes, an unknown
    // schema id, and a well-formed record whose ip_address is not an address.
    let latest: serde_json::Value = reqwest::get(format!(
        "{}/subjects/tributary.events.ad_click-value/versions/latest",
        stack.registry.url()
    ))
    .await?
    .json()
    .await?;
    let schema_id = latest["id"].as_u64().unwrap() as u32;
    let schema = apache_avro::Schema::parse_str(latest["schema"].as_str().unwrap())?;
    let invalid = Value::Record(vec![
        ("ip_address".into(), Value::String("not-an-ip".into())),
        ("user_agent".into(), Value::String("ua".into())),
        (
            "referring_url".into(),
            Value::String("https://example.com/".into()),
        ),
        ("advertiser_id".into(), Value::String("adv-p".into())),
        ("metadata".into(), Value::String("{}".into())),
        ("event_time".into(), Value::TimestampMillis(w + 1_500)),
        ("campaign_id".into(), Value::Union(0, Box::new(Value::Null))),
    ]);
    let framed = |value: Value| -> anyhow::Result<Vec<u8>> {
        let body = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()?
            .write_value_to_vec(value)?;
        let mut record = Vec::new();
        wire::frame_into(schema_id, &body, &mut record);
        Ok(record)
    };
    let invalid_record = framed(invalid)?;
    // Stamped now, with an event time 25 h before: older than the 24 h
    // ingest accepts (and the processor keeps windows for).
    let expired_record = framed(Value::Record(vec![
        ("ip_address".into(), Value::String("10.1.1.9".into())),
        ("user_agent".into(), Value::String("ua".into())),
        (
            "referring_url".into(),
            Value::String("https://example.com/".into()),
        ),
        ("advertiser_id".into(), Value::String("adv-p".into())),
        ("metadata".into(), Value::String("{}".into())),
        (
            "event_time".into(),
            Value::TimestampMillis(w - 25 * 60 * MINUTE),
        ),
        ("campaign_id".into(), Value::Union(0, Box::new(Value::Null))),
    ]))?;
    let mut unknown = Vec::new();
    wire::frame_into(999_999, b"\x02x", &mut unknown);
    let producer: FutureProducer = kafka::producer_config(&stack.kafka()).create()?;
    for payload in [
        b"{\"json\": true}".to_vec(),
        unknown,
        invalid_record,
        expired_record,
    ] {
        producer
            .send(
                FutureRecord::to("tributary.events.ad_click")
                    .key("adv-p")
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    // Watermark to w+2m+5s. Window w+1m (ends w+2m, +10 s lateness) is still
    // open: an event for it counts. Window w (closed at w+1m+10s) has had its
    // final aggregate: a late event for it counts as a correction.
    submit(
        &ingest,
        vec![click("adv-p", "10.1.1.2", w + 2 * MINUTE + 5_000, "p2")],
    )
    .await?;
    submit(
        &ingest,
        vec![click("adv-p", "10.1.1.5", w + MINUTE + 30_000, "p5")],
    )
    .await?;
    submit(&ingest, vec![click("adv-p", "10.1.1.3", w + 2_000, "p3")]).await?;
    submit(
        &ingest,
        vec![click("adv-p", "10.1.1.4", w + 2 * MINUTE + 16_000, "p4")],
    )
    .await?;

    let mut letters = dead_letters(&stack, 4).await?;
    letters.sort();
    let reasons: Vec<&str> = letters.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        reasons,
        ["expired", "invalid", "not_framed", "unknown_schema"]
    );
    assert!(
        letters
            .iter()
            .all(|(_, key)| key.as_deref() == Some("adv-p"))
    );

    let window_w = format!("ad_click|adv-p|{w}");
    let finals = finals_until(&stack, "check-poison", |f| {
        f.len() >= 3 && f.get(&window_w).is_some_and(|w| w.count == 2)
    })
    .await?;
    assert_eq!(
        (finals[&window_w].count, finals[&window_w].distinct),
        (2, Some(2)),
        "the late click corrected its window's final"
    );
    assert_eq!(
        finals[&format!("ad_click|adv-p|{}", w + MINUTE)].count,
        1,
        "within the lateness it counts"
    );
    assert_eq!(
        finals[&format!("ad_click|adv-p|{}", w + 2 * MINUTE)].count,
        2,
        "records after poison are processed"
    );
    processor.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn two_processors_in_one_group_count_every_event_once() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let first = processor::start(&stack, processor::quick_windows).await?;
    let second = processor::start(&stack, processor::quick_windows).await?;
    let w = base_window();
    let advertisers: Vec<String> = (0..12).map(|i| format!("adv-{i}")).collect();
    let mut events = Vec::new();
    for (n, advertiser) in advertisers.iter().enumerate() {
        for i in 0..(n + 1) {
            events.push(click(
                advertiser,
                "10.2.0.1",
                w + i as i64 * 100,
                &format!("{advertiser}-{i}"),
            ));
        }
    }
    submit(&ingest, events).await?;
    let finals = finals(&stack, "check-shared", advertisers.len()).await?;
    for (n, advertiser) in advertisers.iter().enumerate() {
        assert_eq!(
            finals[&format!("ad_click|{advertiser}|{w}")].count,
            n as i64 + 1,
            "{advertiser}"
        );
    }
    first.shutdown().await?;
    second.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn after_a_crash_the_next_processor_rebuilds_the_same_totals() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    // A long idle advance keeps the window open across the crash.
    let crashing = processor::start(&stack, |c| {
        c.idle_advance = Duration::from_secs(600);
        c.emit_interval = Duration::from_millis(200);
    })
    .await?;
    let w = base_window();
    let first: Vec<Event> = (0..40)
        .map(|i| {
            click(
                "adv-c",
                &format!("10.3.0.{}", i % 5),
                w + i * 100,
                &format!("c{i}"),
            )
        })
        .collect();
    submit(&ingest, first.clone()).await?;
    // Let it emit (and commit) open-window totals, then kill it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    crashing.crash().await;

    // Retries of events it already counted, and new ones.
    let mut second: Vec<Event> = first[..10].to_vec();
    second.extend((40..60).map(|i| {
        click(
            "adv-c",
            &format!("10.3.0.{}", i % 7),
            w + i * 100,
            &format!("c{i}"),
        )
    }));
    submit(&ingest, second).await?;
    let successor = processor::start(&stack, processor::quick_windows).await?;
    let finals = finals(&stack, "check-crash", 1).await?;
    assert_eq!(
        finals[&format!("ad_click|adv-c|{w}")],
        Final {
            count: 60,
            distinct: Some(7),
            min: None,
            max: None,
            sum: None,
            last: None
        }
    );
    successor.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_schema_driven_type_registered_at_runtime_is_counted_per_key() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let processor = processor::start(&stack, processor::quick_windows).await?;
    let schema = r#"{"type":"record","name":"PageView","fields":[
        {"name":"url","type":"string"},
        {"name":"event_time","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;
    let registered = reqwest::Client::new()
        .post(format!(
            "{}/subjects/tributary.events.page_view-value/versions",
            stack.registry.url()
        ))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .json(&serde_json::json!({ "schema": schema }))
        .send()
        .await?;
    assert_eq!(registered.status().as_u16(), 200);

    let w = base_window();
    let view = |user: &str, i: i64| {
        let url = prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue(format!("/p/{i}"))),
        };
        Event {
            event_type: "page_view".into(),
            key: user.into(),
            event_time: at(w + i * 1000),
            idempotency_key: format!("{user}-{i}"),
            payload: Some(Payload::Generic(prost_types::Struct {
                fields: [("url".to_string(), url)].into(),
            })),
            extra_fields: None,
        }
    };
    let mut events: Vec<Event> = (0..4).map(|i| view("user-1", i)).collect();
    events.extend((0..9).map(|i| view("user-2", i)));
    submit(&ingest, events).await?;

    let finals = finals(&stack, "check-generic", 2).await?;
    let count = |n| Final {
        count: n,
        distinct: None,
        min: None,
        max: None,
        sum: None,
        last: None,
    };
    assert_eq!(finals[&format!("page_view|user-1|{w}")], count(4));
    assert_eq!(finals[&format!("page_view|user-2|{w}")], count(9));
    processor.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn the_processor_binary_killed_with_sigkill_mid_run_is_replaced_without_loss_or_double_counting()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let spawn = |idle_advance: &str| spawn_processor(&stack, idle_advance);
    let w = base_window();
    // The window stays open while the first processor runs.
    let mut first = spawn("10m")?;
    let events: Vec<Event> = (0..50)
        .map(|i| {
            click(
                "adv-k",
                &format!("10.4.0.{}", i % 6),
                w + i * 100,
                &format!("k{i}"),
            )
        })
        .collect();
    submit(&ingest, events[..30].to_vec()).await?;
    // Wait until it has emitted (and so committed) part of the work; the
    // binary creates the aggregates topic as it starts.
    tributary_stack::bootstrap::wait_for_topic(
        &stack.kafka(),
        "tributary.aggregates",
        Duration::from_secs(60),
    )
    .await?;
    let consumer: StreamConsumer =
        kafka::consumer_config(&stack.kafka(), "watch-emits").create()?;
    consumer.subscribe(&["tributary.aggregates"])?;
    tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await??;
    first.kill().await?; // SIGKILL

    // Retries of counted events, and the rest.
    let mut rest = events[20..].to_vec();
    rest.extend(events[..5].iter().cloned());
    submit(&ingest, rest).await?;
    let second = spawn("2s")?;
    let finals = finals(&stack, "check-sigkill", 1).await?;
    assert_eq!(
        finals[&format!("ad_click|adv-k|{w}")],
        Final {
            count: 50,
            distinct: Some(6),
            min: None,
            max: None,
            sum: None,
            last: None
        }
    );
    stop_cleanly(second).await
}

/// A processor started while nothing answers at the registry's address (a
/// registry restarting) waits for it instead of exiting, and works once the
/// registry answers there (a forwarder to the test's registry).
#[tokio::test]
async fn a_processor_started_before_its_registry_answers_waits_for_it() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut processor = tokio::process::Command::new(env!("CARGO_BIN_EXE_tributary-processor"))
        .env("TRIBUTARY_KAFKA_BROKERS", stack.broker.brokers())
        .env("TRIBUTARY_REGISTRY_URL", format!("http://127.0.0.1:{port}"))
        .env("TRIBUTARY_IDLE_ADVANCE", "2s")
        .env("TRIBUTARY_EMIT_INTERVAL", "200ms")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        processor.try_wait()?.is_none(),
        "the processor exited while its registry did not answer"
    );
    let registry = stack
        .registry
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let forwarder = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let registry = registry.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(registry).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let w = base_window();
    submit(
        &ingest,
        vec![
            click("adv-r", "10.7.0.1", w, "r1"),
            click("adv-r", "10.7.0.2", w + 1_000, "r2"),
        ],
    )
    .await?;
    // The processor creates the aggregates topic once it is past the registry.
    tributary_stack::bootstrap::wait_for_topic(
        &stack.kafka(),
        "tributary.aggregates",
        Duration::from_secs(60),
    )
    .await?;
    let key = format!("ad_click|adv-r|{w}");
    finals_until(&stack, "registry-late", |f| {
        f.get(&key).is_some_and(|w| w.count == 2)
    })
    .await?;
    stop_cleanly(processor).await?;
    forwarder.abort();
    Ok(())
}

#[tokio::test]
async fn a_processor_killed_while_correcting_closed_windows_is_replaced_exactly()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let spawn = || spawn_processor(&stack, "2s");
    let w = base_window();
    let key = format!("ad_click|adv-c|{w}");
    let mover = format!("ad_click|adv-c|{}", w + 2 * MINUTE);
    let mut first = spawn()?;
    // Traffic two minutes later closes window w; idleness then closes its
    // own window, so no open window holds the committed offset back and a
    // restart must take window w's state from the changelog.
    submit(
        &ingest,
        vec![click("adv-c", "10.5.0.1", w + 2 * MINUTE + 5_000, "mover")],
    )
    .await?;
    let late: Vec<Event> = (0..60)
        .map(|i| {
            click(
                "adv-c",
                &format!("10.5.1.{}", i % 7),
                w + i * 500,
                &format!("late-{i}"),
            )
        })
        .collect();
    submit(&ingest, late[..20].to_vec()).await?;
    tributary_stack::bootstrap::wait_for_topic(
        &stack.kafka(),
        "tributary.aggregates",
        Duration::from_secs(60),
    )
    .await?;
    finals_until(&stack, "see-final", |f| {
        f.get(&key).is_some_and(|w| w.count == 20) && f.contains_key(&mover)
    })
    .await?;
    // Corrections arrive one by one; the processor is killed after the first
    // corrected final, while the rest are still coming.
    let trickle = {
        let url = ingest.grpc_url();
        let events = late[20..40].to_vec();
        tokio::spawn(async move {
            let mut client = IngestServiceClient::connect(url).await?;
            for event in events {
                client
                    .submit_batch(SubmitBatchRequest {
                        events: vec![event],
                    })
                    .await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(())
        })
    };
    finals_until(&stack, "see-correction", |f| {
        f.get(&key).is_some_and(|w| w.count > 20)
    })
    .await?;
    first.kill().await?; // SIGKILL
    trickle.await??;
    // The rest, and retries of events counted before and after the close.
    let mut rest = late[40..].to_vec();
    rest.extend(late[..3].iter().cloned());
    rest.extend(late[20..23].iter().cloned());
    submit(&ingest, rest).await?;
    let second = spawn()?;
    let exact = Final {
        count: 60,
        distinct: Some(7),
        min: None,
        max: None,
        sum: None,
        last: None,
    };
    let finals = finals_until(&stack, "check-corrections", |f| {
        f.get(&key).is_some_and(|w| w.count >= 60)
    })
    .await?;
    assert_eq!(finals[&key], exact);
    // Nothing counted twice arrives later either.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        finals_to_end(&stack, "check-corrections-later").await?[&key],
        exact
    );
    stop_cleanly(second).await
}
