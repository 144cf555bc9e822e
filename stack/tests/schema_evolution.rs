//! Schema evolution of a built-in event type, end to end on Tansu and on Apache Kafka: once ad
//! clicks flow with the auto-registered v2, a v3 with `country` is
//! registered in the registry, and at once (well within `--schema-refresh`)
//! clicks with `country` are acknowledged with v3's schema id through every
//! path — gRPC typed `ad_click` + `extra_fields`, gRPC `generic`, and
//! `POST /v1/events` with `country` inside `ad_click`, in the envelope's
//! `extra_fields` and in `generic`; a field no version has is refused,
//! naming it. The processor, reading with its built-in v2 reader schema,
//! counts every acknowledged event: `GetAggregates` matches the ground truth
//! computed from the acknowledgements, counts and distinct counts. Confluent's
//! Python `AvroDeserializer` decodes the v3 records straight from Kafka and
//! sees `country`.
use rstest::rstest;
use std::{
    collections::HashMap,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tributary_proto::{
    envelope::object_to_struct,
    v1::{
        Event, EventAck, SubmitEventRequest, event::Payload,
        ingest_service_client::IngestServiceClient, query_service_client::QueryServiceClient,
    },
};
mod support;

use support::{ClickTruth, clicks_exact_within};
use tributary_stack::{
    TestStack,
    broker::BrokerKind,
    events::{ad_click, submit_acknowledged, timestamp},
    ingest::RunningIngest,
    processor, sink,
};

/// The processor's default window (`ProcessorConfig::local`): one minute.
const PARTITIONS: i32 = 4;
const SUBJECT: &str = "tributary.events.ad_click-value";
const TOPIC: &str = "tributary.events.ad_click";
/// One acknowledged click: what was sent and where ingest stored it.
#[derive(Debug, Clone)]
struct Acked {
    /// How it was sent, for messages.
    path: &'static str,
    advertiser: String,
    ip: String,
    idempotency_key: String,
    at_ms: i64,
    /// The `country` sent, if any.
    country: Option<String>,
    partition: i32,
    offset: i64,
    schema_id: i32,
}

/// A typed gRPC click with `country` as an extra field (when given).
fn click_with(advertiser: &str, ip: &str, at: i64, id: &str, country: Option<&str>) -> Event {
    let mut event = ad_click(advertiser, ip, at, id);
    if let Some(country) = country {
        let Value::Object(extra) = json!({ "country": country }) else {
            unreachable!()
        };
        event.extra_fields = Some(object_to_struct(extra));
    }
    event
}

/// A gRPC `generic` payload of event type `ad_click`, with `extra` keys
/// beside the AdClick message's.
fn generic_click(advertiser: &str, ip: &str, at: i64, id: &str, extra: Value) -> Event {
    let mut fields = json!({
        "ip_address": ip,
        "user_agent": "test",
        "referring_url": "https://example.com/",
        "advertiser_id": advertiser,
    });
    fields
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let Value::Object(object) = fields else {
        unreachable!()
    };
    Event {
        event_type: "ad_click".into(),
        event_time: timestamp(at),
        idempotency_key: id.into(),
        payload: Some(Payload::Generic(object_to_struct(object))),
        ..Default::default()
    }
}

/// Submits `events` in one `SubmitBatch` (all must be acknowledged) and
/// records them with their acknowledgements.
async fn submit_grpc(
    url: &str,
    path: &'static str,
    events: Vec<(Event, Option<&str>)>,
) -> anyhow::Result<Vec<Acked>> {
    let acks = submit_acknowledged(url, events.iter().map(|(e, _)| e.clone()).collect()).await?;
    Ok(events
        .iter()
        .zip(acks)
        .map(|((event, country), ack)| {
            let (advertiser, ip) = match &event.payload {
                Some(Payload::AdClick(click)) => {
                    (click.advertiser_id.clone(), click.ip_address.clone())
                }
                Some(Payload::Generic(object)) => {
                    let text = |name: &str| match object.fields[name].kind {
                        Some(prost_types::value::Kind::StringValue(ref s)) => s.clone(),
                        ref other => panic!("{name} is not a string: {other:?}"),
                    };
                    (text("advertiser_id"), text("ip_address"))
                }
                other => panic!("not a click: {other:?}"),
            };
            acked(
                path,
                advertiser,
                ip,
                event.idempotency_key.clone(),
                event
                    .event_time
                    .as_ref()
                    .map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000),
                country.map(Into::into),
                &ack,
            )
        })
        .collect())
}

fn acked(
    path: &'static str,
    advertiser: String,
    ip: String,
    idempotency_key: String,
    at_ms: i64,
    country: Option<String>,
    ack: &EventAck,
) -> Acked {
    assert_eq!(ack.topic, TOPIC, "{path}: {ack:?}");
    Acked {
        path,
        advertiser,
        ip,
        idempotency_key,
        at_ms,
        country,
        partition: ack.partition,
        offset: ack.offset,
        schema_id: ack.schema_id,
    }
}

/// Posts `envelopes` as a JSON array to `POST /v1/events`; returns the
/// results array.
async fn post_events(http_url: &str, envelopes: &[Value]) -> anyhow::Result<Vec<Value>> {
    let response = reqwest::Client::new()
        .post(format!("{http_url}/v1/events"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(envelopes)?)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status == 200, "POST /v1/events: {status} {body}");
    let results = body["results"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("no results: {body}"))?
        .clone();
    anyhow::ensure!(results.len() == envelopes.len(), "{body}");
    Ok(results)
}

/// The clicks of `POST /v1/events` envelopes, all of which must have been
/// acknowledged: (path, envelope, country sent).
fn acked_json(sent: &[(&'static str, Value, Option<&str>)], results: &[Value]) -> Vec<Acked> {
    sent.iter()
        .zip(results)
        .enumerate()
        .map(|(index, ((path, envelope, country), result))| {
            assert_eq!(result["index"], index, "{result}");
            let ack = &result["ack"];
            assert!(ack.is_object(), "{path}: event {index} refused: {result}");
            let payload = if envelope["generic"].is_object() {
                &envelope["generic"]
            } else {
                &envelope["ad_click"]
            };
            acked(
                path,
                payload["advertiser_id"].as_str().unwrap().into(),
                payload["ip_address"].as_str().unwrap().into(),
                envelope["idempotency_key"].as_str().unwrap().into(),
                envelope["event_time"].as_i64().unwrap(),
                country.map(Into::into),
                &EventAck {
                    topic: ack["topic"].as_str().unwrap().into(),
                    partition: ack["partition"].as_i64().unwrap() as i32,
                    offset: ack["offset"].as_i64().unwrap(),
                    schema_id: ack["schema_id"].as_i64().unwrap() as i32,
                },
            )
        })
        .collect()
}

/// Registers `schema` under [`SUBJECT`]; returns its id.
async fn register(stack: &TestStack, schema: &str) -> anyhow::Result<i32> {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/subjects/{SUBJECT}/versions",
            stack.registry.url()
        ))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .json(&json!({ "schema": schema }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status == 200, "registering v3: {status} {body}");
    Ok(body["id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no id: {body}"))? as i32)
}

/// [`clicks_exact_within`] over the clicks of `acked`.
async fn exact_within(
    query: &mut QueryServiceClient<tonic::transport::Channel>,
    acked: &[Acked],
    within: Duration,
) -> anyhow::Result<bool> {
    let mut truth = ClickTruth::default();
    for a in acked {
        truth.add(&a.advertiser, a.at_ms, &a.idempotency_key, &a.ip);
    }
    clicks_exact_within(query, &truth, within).await
}

/// Decodes the records of `acked` from Kafka with Confluent's Python
/// `AvroDeserializer` (tests/clients/avro_deserialize.py): (partition,
/// offset) → (schema id in the record's header, decoded value).
async fn confluent_decode(
    stack: &TestStack,
    acked: &[Acked],
) -> anyhow::Result<HashMap<(i32, i64), (i32, Value)>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/avro_deserialize.py");
    let mut command = Command::new("python3");
    command
        .arg(script)
        .arg(stack.broker.brokers())
        .arg(stack.registry.url())
        .arg(TOPIC)
        .args(
            acked
                .iter()
                .map(|a| format!("{}:{}", a.partition, a.offset)),
        );
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || command.output()),
    )
    .await???;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(
        output.status.success(),
        "avro_deserialize.py failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let mut decoded = HashMap::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let record: Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("not JSON ({e}): {line}\nstderr:\n{stderr}"))?;
        decoded.insert(
            (
                record["partition"].as_i64().unwrap() as i32,
                record["offset"].as_i64().unwrap(),
            ),
            (
                record["schema_id"].as_i64().unwrap() as i32,
                record["value"].clone(),
            ),
        );
    }
    Ok(decoded)
}

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test]
async fn a_newly_registered_ad_click_version_is_written_at_once_and_every_click_is_counted(
    #[case] broker: BrokerKind,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let stack = TestStack::start_on(broker).await?;
    tributary_stack::bootstrap::create_topics(&stack.kafka(), PARTITIONS).await?;
    let sink = sink::start(&stack, |_| {}).await?;
    let processor = processor::start(&stack, processor::quick_windows).await?;
    // Listings are trusted for an hour: only the on-demand re-listing can
    // find v3 in time.
    let ingest = RunningIngest::start(&stack, |c| {
        c.ingest.schemas.refresh = Duration::from_secs(3600)
    })
    .await?;
    let grpc = ingest.grpc_url();
    let http = ingest.http_url();
    let mut query = QueryServiceClient::connect(grpc.clone()).await?;

    // 1. Ordinary typed clicks: ingest auto-registers v2, lists the
    // subject's versions and caches them.
    let before_listing = Instant::now();
    let now = chrono::Utc::now().timestamp_millis();
    let mut acked = submit_grpc(
        &grpc,
        "grpc typed (before v3)",
        (0..4)
            .flat_map(|a| {
                (0..2).map(move |i| {
                    let id = format!("plain-{a}-{i}");
                    (
                        ad_click(
                            &format!("evo-plain-{a}"),
                            &format!("10.0.{a}.{i}"),
                            now,
                            &id,
                        ),
                        None,
                    )
                })
            })
            .collect(),
    )
    .await?;
    let v2_id = acked[0].schema_id;
    assert!(
        acked.iter().all(|a| a.schema_id == v2_id),
        "one writer schema before v3: {acked:?}"
    );
    // Counted before the schema changes.
    assert!(
        exact_within(&mut query, &acked, Duration::from_secs(20)).await?,
        "the v2 clicks were not counted within 20 s"
    );
    println!(
        "v2 clicks counted; registering v3 {:?} after the first clicks were sent",
        before_listing.elapsed()
    );

    // 2. v3 = v2 + optional country, registered behind ingest's back.
    let v2_json = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/ad_click/v2.avsc"),
    )?;
    let mut v3: Value = serde_json::from_str(&v2_json)?;
    v3["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "country", "type": ["null", "string"], "default": null}));
    let v3_id = register(&stack, &v3.to_string()).await?;
    assert_ne!(v3_id, v2_id, "v3 is a new schema");
    let registered = Instant::now();

    // 3a/3b. gRPC, at once: typed + extra_fields, and generic.
    let now = chrono::Utc::now().timestamp_millis();
    let mut grpc_events = Vec::new();
    for i in 0..3 {
        grpc_events.push((
            click_with(
                "evo-grpc-extra",
                &format!("10.1.0.{}", i % 2),
                now,
                &format!("grpc-extra-{i}"),
                Some("DE"),
            ),
            Some("DE"),
        ));
        grpc_events.push((
            generic_click(
                "evo-grpc-generic",
                &format!("10.2.0.{i}"),
                now,
                &format!("grpc-generic-{i}"),
                json!({"country": "DE"}),
            ),
            Some("DE"),
        ));
    }
    let grpc_acked = submit_grpc(&grpc, "grpc (after v3)", grpc_events).await?;

    // 3c/3d. POST /v1/events: country inside ad_click, in the envelope's
    // extra_fields, and in a generic payload.
    let envelope = |advertiser: &str, ip: &str, id: &str| {
        json!({
            "event_time": now,
            "idempotency_key": id,
            "ad_click": {
                "ip_address": ip,
                "user_agent": "test",
                "referring_url": "https://example.com/",
                "advertiser_id": advertiser,
            }
        })
    };
    let mut sent: Vec<(&'static str, Value, Option<&str>)> = Vec::new();
    for i in 0..3 {
        let mut typed = envelope(
            "evo-json-typed",
            &format!("10.4.0.{}", i % 2),
            &format!("json-typed-{i}"),
        );
        typed["ad_click"]["country"] = json!("DE");
        sent.push(("json ad_click.country", typed, Some("DE")));

        let mut extra = envelope(
            "evo-json-extra",
            &format!("10.5.0.{i}"),
            &format!("json-extra-{i}"),
        );
        extra["extra_fields"] = json!({"country": "DE"});
        sent.push(("json extra_fields", extra, Some("DE")));

        let mut generic = envelope(
            "evo-json-generic",
            &format!("10.6.0.{}", i % 2),
            &format!("json-generic-{i}"),
        );
        let mut payload = generic.as_object_mut().unwrap().remove("ad_click").unwrap();
        payload["country"] = json!("DE");
        generic["generic"] = payload;
        generic["event_type"] = json!("ad_click");
        sent.push(("json generic", generic, Some("DE")));
    }
    let envelopes: Vec<Value> = sent.iter().map(|(_, e, _)| e.clone()).collect();
    let json_acked = acked_json(&sent, &post_events(&http, &envelopes).await?);
    let v3_acks_after = registered.elapsed();
    println!("v3 in use {v3_acks_after:?} after its registration");
    // Once ingest has listed v3, a click without country is written with it
    // too (the newest version it fits). Sent after the clicks above: in the
    // same batch it may be encoded before an event with country has made
    // ingest list the versions again, and then fits the cached v2.
    let plain_after = submit_grpc(
        &grpc,
        "grpc typed without country (after v3)",
        (0..2)
            .map(|i| {
                (
                    ad_click(
                        "evo-grpc-plain",
                        "10.3.0.1",
                        now,
                        &format!("grpc-plain-{i}"),
                    ),
                    None,
                )
            })
            .collect(),
    )
    .await?;

    for a in grpc_acked.iter().chain(&json_acked).chain(&plain_after) {
        assert_eq!(
            a.schema_id, v3_id,
            "{}: written with the newest version (v3, id {v3_id}; v2 is {v2_id}): {a:?}",
            a.path
        );
    }
    acked.extend(grpc_acked);
    acked.extend(json_acked);
    acked.extend(plain_after);

    // 4. A field no registered version has is refused, naming it.
    let mut client = IngestServiceClient::connect(grpc.clone()).await?;
    let mut region = click_with("evo-refused", "10.9.0.1", now, "refused-grpc", None);
    region.extra_fields = Some(object_to_struct(
        json!({"region": "eu-west"}).as_object().unwrap().clone(),
    ));
    let status = client
        .submit_event(SubmitEventRequest {
            event: Some(region),
        })
        .await
        .expect_err("a click with `region` was acknowledged");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    // The subject is named in the message (or in the provenance after it).
    assert!(
        status
            .message()
            .starts_with("ad_click.region: is not a field of any registered version")
            && status.message().contains(SUBJECT),
        "{}",
        status.message()
    );
    println!("refused: {}", status.message());
    let mut typed = envelope("evo-refused", "10.9.0.2", "refused-json-typed");
    typed["ad_click"]["region"] = json!("eu-west");
    let mut generic = envelope("evo-refused", "10.9.0.3", "refused-json-generic");
    let mut payload = generic.as_object_mut().unwrap().remove("ad_click").unwrap();
    payload["region"] = json!("eu-west");
    generic["generic"] = payload;
    generic["event_type"] = json!("ad_click");
    let results = post_events(&http, &[typed, generic]).await?;
    for (result, field) in results.iter().zip(["ad_click.region", "generic.region"]) {
        let error = &result["error"];
        assert_eq!(
            (error["code"].as_str(), error["field"].as_str()),
            (Some("SCHEMA_MISMATCH"), Some(field)),
            "{result}"
        );
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("is not a field of any registered version")
                && message.contains(SUBJECT),
            "{result}"
        );
    }

    // A click of the same advertiser after the refused ones: its partition
    // is read in order, so had a refused click been produced, it would be
    // counted by the time this one is.
    acked.extend(
        submit_grpc(
            &grpc,
            "grpc typed after the refusals",
            vec![(
                ad_click("evo-refused", "10.9.0.9", now, "accepted-after-refusals"),
                None,
            )],
        )
        .await?,
    );

    // 5. Every acknowledged click is counted (and no refused one): per
    // advertiser and window, counts and distinct addresses.
    let last_ack = Instant::now();
    assert!(
        exact_within(&mut query, &acked, Duration::from_secs(20)).await?,
        "GetAggregates was not exact within 20 s of the last acknowledgement"
    );
    println!(
        "exact {:?} after the last acknowledgement",
        last_ack.elapsed()
    );

    // 6. Confluent's AvroDeserializer reads the records as written: v3 with
    // country, and v2 before it.
    let decoded = confluent_decode(&stack, &acked).await?;
    for a in &acked {
        let (schema_id, value) = decoded.get(&(a.partition, a.offset)).unwrap_or_else(|| {
            panic!(
                "{}: record {}:{} not decoded",
                a.path, a.partition, a.offset
            )
        });
        assert_eq!(*schema_id, a.schema_id, "{}: header id = ack id", a.path);
        assert_eq!(
            (
                value["advertiser_id"].as_str(),
                value["ip_address"].as_str(),
                value["event_time"].as_i64()
            ),
            (
                Some(a.advertiser.as_str()),
                Some(a.ip.as_str()),
                Some(a.at_ms)
            ),
            "{}: {value}",
            a.path
        );
        let country = value.get("country");
        if a.schema_id == v2_id {
            assert_eq!(country, None, "{}: v2 has no country: {value}", a.path);
        } else {
            let expected = a.country.as_deref().map_or(Value::Null, |c| json!(c));
            assert_eq!(country, Some(&expected), "{}: {value}", a.path);
        }
    }
    let with_country = acked.iter().filter(|a| a.country.is_some()).count();
    println!(
        "AvroDeserializer decoded {} records, {with_country} with country DE",
        decoded.len()
    );

    ingest.shutdown().await?;
    processor.shutdown().await?;
    sink.shutdown().await?;
    println!("took {:?}", started.elapsed());
    Ok(())
}
