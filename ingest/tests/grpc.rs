//! IngestService against a real Tansu broker and the real registry: every
//! ack points at the record that was stored, bad events get per-event errors
//! while the stream goes on, and failures of the broker are reported, never
//! acknowledged.
use std::{collections::HashMap, time::Duration};

mod support;

use apache_avro::types::Value;
use futures::StreamExt as _;
use rdkafka::consumer::Consumer as _;
use tonic::{Code, Request};
use tributary_common::{avro_reader::ReaderCache, config::KafkaArgs, kafka, registry_client, wire};
use tributary_proto::{
    envelope::object_to_struct,
    stream_results,
    v1::{
        AdClick, Event, EventErrorCode, PriceTick, SubmitBatchRequest, SubmitEventRequest,
        SubmitEventsRequest, event::Payload, event_result::Outcome,
        ingest_service_client::IngestServiceClient,
    },
};
use tributary_stack::{TestStack, ingest::RunningIngest};

fn now() -> prost_types::Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    prost_types::Timestamp {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

fn ad_click(i: usize) -> Event {
    Event {
        event_time: Some(now()),
        idempotency_key: format!("click-{i}"),
        payload: Some(Payload::AdClick(AdClick {
            ip_address: format!("10.0.{}.{}", i / 250 % 250, i % 250),
            user_agent: "test-agent/1.0".into(),
            referring_url: format!("https://example.com/p/{i}"),
            advertiser_id: format!("adv-{}", i % 7),
            metadata: None,
            campaign_id: (i.is_multiple_of(2)).then(|| format!("camp-{i}")),
        })),
        ..Default::default()
    }
}

fn price_tick(i: usize) -> Event {
    Event {
        event_time: Some(now()),
        idempotency_key: format!("tick-{i}"),
        payload: Some(Payload::PriceTick(PriceTick {
            pair: ["ETH-USD", "BTC-USD", "LINK-USD"][i % 3].into(),
            source: format!("source-{}", i % 2),
            price: 100.0 + i as f64,
            volume: None,
        })),
        ..Default::default()
    }
}

/// The record stored at one (partition, offset) of a topic, decoded.
struct Stored {
    key: String,
    schema_id: u32,
    value: HashMap<String, Value>,
    headers: HashMap<String, String>,
}

/// Reads `count` records of `topic` and decodes each with its writer schema,
/// through the same reader cache the processor and the sink use.
async fn read_back(
    stack: &TestStack,
    topic: &str,
    count: usize,
) -> anyhow::Result<HashMap<(i32, i64), Stored>> {
    let readers = ReaderCache::new(registry_client::settings(&stack.registry_args())?);
    let mut stored = HashMap::new();
    for record in support::read_topic(&stack.kafka(), topic, count).await? {
        let mut framed = Vec::new();
        wire::frame_into(record.schema_id, &record.avro, &mut framed);
        let Value::Record(fields) = readers.read(&framed, None).await? else {
            panic!("not a record")
        };
        stored.insert(
            (record.partition, record.offset),
            Stored {
                key: record.key,
                schema_id: record.schema_id,
                value: fields.into_iter().collect(),
                headers: record.headers,
            },
        );
    }
    Ok(stored)
}

#[tokio::test]
async fn a_stream_of_mixed_events_is_acked_in_order_and_every_ack_matches_the_stored_record()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;

    const TOTAL: usize = 10_000;
    let invalid_at = [17usize, 5_000, 9_999];
    let events: Vec<Event> = (0..TOTAL)
        .map(|i| {
            let mut event = if i.is_multiple_of(3) {
                price_tick(i)
            } else {
                ad_click(i)
            };
            if invalid_at.contains(&i) {
                event = ad_click(i);
                if let Some(Payload::AdClick(click)) = &mut event.payload {
                    click.ip_address = "not-an-ip".into();
                }
            }
            event
        })
        .collect();
    // Messages of every form: one event (`event`), many (`events`, from 1 to
    // 500), and both at once (`event` first).
    let mut messages = Vec::new();
    let mut rest = events.clone().into_iter().peekable();
    let mut n = 0usize;
    while rest.peek().is_some() {
        n += 1;
        let message = match n % 4 {
            0 | 1 => SubmitEventsRequest {
                event: rest.next(),
                ..Default::default()
            },
            2 => SubmitEventsRequest {
                events: rest.by_ref().take(1 + n % 500).collect(),
                ..Default::default()
            },
            _ => SubmitEventsRequest {
                event: rest.next(),
                events: rest.by_ref().take(n % 50).collect(),
            },
        };
        messages.push(message);
    }
    let message_count = messages.len();
    let mut responses = client
        .submit_events(futures::stream::iter(messages))
        .await?
        .into_inner();

    let mut acks = Vec::new();
    let mut index = 0;
    let mut response_count = 0;
    let mut results = Vec::new();
    while let Some(response) = responses.next().await {
        let response = response?;
        response_count += 1;
        assert!(
            response.result.is_some()
                != (!response.acked.is_empty() || !response.errors.is_empty()),
            "a response answers one event or a run compactly: {response:?}"
        );
        results.extend(stream_results::results(response));
    }
    assert!(
        response_count < message_count,
        "{response_count} responses to {message_count} messages: runs are answered compactly"
    );
    for result in results {
        assert_eq!(result.index, index as u64, "results come in request order");
        match result.outcome.unwrap() {
            Outcome::Ack(ack) => {
                assert!(
                    !invalid_at.contains(&index),
                    "event {index} is invalid but was acked"
                );
                acks.push((index, ack));
            }
            Outcome::Error(error) => {
                assert!(
                    invalid_at.contains(&index),
                    "event {index} was refused: {error:?}"
                );
                assert_eq!(error.code, EventErrorCode::InvalidArgument as i32);
                assert_eq!(error.field, "ad_click.ip_address");
                assert_eq!(error.message, "`not-an-ip` is not an IPv4 or IPv6 address");
            }
        }
        index += 1;
    }
    assert_eq!(index, TOTAL, "one result per event");
    assert_eq!(acks.len(), TOTAL - invalid_at.len());

    let per_topic = |topic: &str| acks.iter().filter(|(_, a)| a.topic == topic).count();
    let mut stored = HashMap::new();
    for topic in ["tributary.events.ad_click", "tributary.events.price_tick"] {
        for ((partition, offset), record) in read_back(&stack, topic, per_topic(topic)).await? {
            stored.insert((topic.to_string(), partition, offset), record);
        }
    }
    assert_eq!(
        stored.len(),
        acks.len(),
        "nothing but the acked events was stored"
    );
    for (i, ack) in &acks {
        let record = stored
            .get(&(ack.topic.clone(), ack.partition, ack.offset))
            .unwrap_or_else(|| panic!("event {i}: nothing stored at {ack:?}"));
        assert_eq!(record.schema_id, ack.schema_id as u32, "event {i}");
        assert_eq!(
            record.headers["tributary.idempotency_key"],
            events[*i].idempotency_key
        );
        assert_eq!(
            record.headers["tributary.schema_id"],
            ack.schema_id.to_string()
        );
        assert_eq!(record.headers["traceparent"].len(), 55);
        match events[*i].payload.as_ref().unwrap() {
            Payload::AdClick(click) => {
                assert_eq!(ack.topic, "tributary.events.ad_click");
                assert_eq!(record.key, click.advertiser_id);
                assert_eq!(record.headers["tributary.event_type"], "ad_click");
                assert_eq!(
                    record.value["ip_address"],
                    Value::String(click.ip_address.clone())
                );
                assert_eq!(
                    record.value["referring_url"],
                    Value::String(click.referring_url.clone())
                );
                let campaign = match &click.campaign_id {
                    Some(c) => Value::Union(1, Box::new(Value::String(c.clone()))),
                    None => Value::Union(0, Box::new(Value::Null)),
                };
                assert_eq!(record.value["campaign_id"], campaign);
            }
            Payload::PriceTick(tick) => {
                assert_eq!(ack.topic, "tributary.events.price_tick");
                assert_eq!(record.key, tick.pair);
                assert_eq!(record.value["price"], Value::Double(tick.price));
                assert_eq!(record.value["source"], Value::String(tick.source.clone()));
            }
            Payload::Generic(_) => unreachable!(),
        }
        let event_time = events[*i].event_time.as_ref().unwrap();
        let ms = event_time.seconds * 1000 + i64::from(event_time.nanos / 1_000_000);
        assert_eq!(record.value["event_time"], Value::TimestampMillis(ms));
    }
    Ok(())
}

#[tokio::test]
async fn a_message_of_more_events_than_the_limit_ends_the_stream_after_answering_the_ones_before()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;
    let messages = vec![
        SubmitEventsRequest {
            events: (0..3).map(ad_click).collect(),
            ..Default::default()
        },
        SubmitEventsRequest {
            events: (0..4097).map(ad_click).collect(),
            ..Default::default()
        },
    ];
    let mut responses = client
        .submit_events(futures::stream::iter(messages))
        .await?
        .into_inner();
    let mut results = Vec::new();
    let status = loop {
        match responses.next().await {
            Some(Ok(response)) => results.extend(stream_results::results(response)),
            Some(Err(status)) => break status,
            None => anyhow::bail!("the stream ended without an error"),
        }
    };
    assert_eq!(results.len(), 3, "the first message is answered");
    assert!(
        results
            .iter()
            .all(|r| matches!(r.outcome, Some(Outcome::Ack(_))))
    );
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("the message at index 3 carries 4097 events, more than 4096"),
        "{}",
        status.message()
    );
    Ok(())
}

#[tokio::test]
async fn unary_and_batch_calls_ack_valid_events_and_name_the_invalid_field() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;

    let ack = client
        .submit_event(SubmitEventRequest {
            event: Some(price_tick(1)),
        })
        .await?
        .into_inner()
        .ack
        .unwrap();
    assert_eq!(ack.topic, "tributary.events.price_tick");

    let mut bad = price_tick(2);
    if let Some(Payload::PriceTick(tick)) = &mut bad.payload {
        tick.price = -3.0;
    }
    let status = client
        .submit_event(SubmitEventRequest {
            event: Some(bad.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "price_tick.price: must be finite and positive, got -3"
    );
    let details = tonic_types::StatusExt::get_error_details(&status);
    let violations = &details
        .bad_request()
        .expect("a field violation")
        .field_violations;
    assert_eq!(violations[0].field, "price_tick.price");
    assert_eq!(
        details.error_info().unwrap().reason,
        "EVENT_ERROR_CODE_INVALID_ARGUMENT"
    );

    let batch = client
        .submit_batch(SubmitBatchRequest {
            events: vec![ad_click(1), bad, ad_click(3)],
        })
        .await?
        .into_inner();
    let outcomes: Vec<&str> = batch
        .results
        .iter()
        .map(|r| match r.outcome.as_ref().unwrap() {
            Outcome::Ack(_) => "ack",
            Outcome::Error(_) => "error",
        })
        .collect();
    assert_eq!(outcomes, ["ack", "error", "ack"]);
    assert_eq!(
        batch.results.iter().map(|r| r.index).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    Ok(())
}

async fn register(stack: &TestStack, subject: &str, schema: &str) -> anyhow::Result<u32> {
    let response: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/subjects/{subject}/versions",
            stack.registry.url()
        ))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .json(&serde_json::json!({ "schema": schema }))
        .send()
        .await?
        .json()
        .await?;
    Ok(response["id"].as_u64().unwrap() as u32)
}

fn generic(event_type: &str, key: &str, json: serde_json::Value) -> Event {
    let serde_json::Value::Object(object) = json else {
        panic!("not an object")
    };
    Event {
        event_type: event_type.into(),
        key: key.into(),
        event_time: Some(now()),
        payload: Some(Payload::Generic(object_to_struct(object))),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_newly_registered_schema_driven_type_is_accepted_without_a_restart() -> anyhow::Result<()>
{
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;
    let page_view = r#"{"type":"record","name":"PageView","fields":[
        {"name":"url","type":"string"},
        {"name":"duration_ms","type":"long"},
        {"name":"event_time","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;

    let status = client
        .submit_event(SubmitEventRequest {
            event: Some(generic(
                "page_view",
                "user-1",
                serde_json::json!({"url": "/a", "duration_ms": 5}),
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.message(),
        "event_type: no schema is registered for event type `page_view`: subject `tributary.events.page_view-value` has no schema"
    );

    let id = register(&stack, "tributary.events.page_view-value", page_view).await?;
    let ack = client
        .submit_event(SubmitEventRequest {
            event: Some(generic(
                "page_view",
                "user-1",
                serde_json::json!({"url": "/a", "duration_ms": 5}),
            )),
        })
        .await?
        .into_inner()
        .ack
        .unwrap();
    assert_eq!(
        (ack.topic.as_str(), ack.schema_id as u32),
        ("tributary.events.page_view", id)
    );

    let status = client
        .submit_event(SubmitEventRequest {
            event: Some(generic(
                "page_view",
                "user-1",
                serde_json::json!({"url": "/a", "duration_ms": "slow"}),
            )),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    // The refusal says which versions the event was checked against and
    // when the registry will be asked again.
    let message = status.message();
    assert!(
        message.starts_with(&format!(
            "generic.duration_ms: expected an integer, got string \"slow\" (checked against version 1 of `tributary.events.page_view-value`, newest schema id {id}, listed by the registry "
        )),
        "{message}"
    );
    assert!(
        message.ends_with(
            " s ago; asked again every 30s (--schema-refresh) and at once for an unknown field)"
        ),
        "{message}"
    );

    let stored = read_back(&stack, "tributary.events.page_view", 1).await?;
    let record = &stored[&(ack.partition, ack.offset)];
    assert_eq!(record.key, "user-1");
    assert_eq!(record.value["duration_ms"], Value::Long(5));
    Ok(())
}

#[tokio::test]
async fn with_api_keys_a_call_without_the_right_key_is_unauthenticated_and_nothing_is_produced()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |c| {
        c.ingest.edge.auth.api_keys = vec!["s3cret".into()]
    })
    .await?;
    let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;

    let status = client
        .submit_event(SubmitEventRequest {
            event: Some(ad_click(1)),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        status.message(),
        "missing `authorization: Bearer <api key>`"
    );

    let mut wrong = Request::new(SubmitEventRequest {
        event: Some(ad_click(2)),
    });
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer guess".parse()?);
    assert_eq!(
        client.submit_event(wrong).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let kafka_args: KafkaArgs = stack.kafka();
    let consumer: rdkafka::consumer::BaseConsumer = kafka::client_config(&kafka_args).create()?;
    let metadata =
        consumer.fetch_metadata(Some("tributary.events.ad_click"), Duration::from_secs(5))?;
    let produced: i64 = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            consumer
                .fetch_watermarks("tributary.events.ad_click", p.id(), Duration::from_secs(5))
                .map(|(lo, hi)| hi - lo)
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(produced, 0, "a refused call produced records");

    let mut right = Request::new(SubmitEventRequest {
        event: Some(ad_click(3)),
    });
    right
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse()?);
    assert!(client.submit_event(right).await?.into_inner().ack.is_some());
    Ok(())
}

/// `schemas/ad_click/v2.avsc` with `fields` added (JSON field definitions).
fn ad_click_v2_with(fields: serde_json::Value) -> String {
    let mut schema: serde_json::Value =
        serde_json::from_str(include_str!("../../schemas/ad_click/v2.avsc")).unwrap();
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .extend(fields.as_array().unwrap().iter().cloned());
    schema.to_string()
}

fn with_extra(mut event: Event, extra: serde_json::Value) -> Event {
    let serde_json::Value::Object(extra) = extra else {
        panic!("not an object")
    };
    event.extra_fields = Some(object_to_struct(extra));
    event
}

#[tokio::test]
async fn a_new_version_of_a_built_in_type_is_written_with_as_soon_as_an_event_needs_it()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    // Listings are trusted for an hour: only the on-demand re-check can find
    // a version registered after the first event.
    let ingest = RunningIngest::start(&stack, |c| {
        c.ingest.schemas.refresh = Duration::from_secs(3600)
    })
    .await?;
    let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;
    let mut submit = async |event: Event| {
        client
            .submit_event(SubmitEventRequest { event: Some(event) })
            .await
            .map(|r| r.into_inner().ack.unwrap())
    };
    let builtin = submit(ad_click(0)).await?.schema_id as u32;

    let subject = "tributary.events.ad_click-value";
    let country =
        serde_json::json!([{"name": "country", "type": ["null", "string"], "default": null}]);
    let region =
        serde_json::json!([{"name": "region", "type": ["null", "string"], "default": null}]);
    let v3 = register(&stack, subject, &ad_click_v2_with(country)).await?;
    let v4 = register(&stack, subject, &ad_click_v2_with(region)).await?;
    assert!(builtin < v3 && v3 < v4, "{builtin} {v3} {v4}");

    // Each event is written with the newest version that has its fields.
    let with_country = submit(with_extra(
        ad_click(1),
        serde_json::json!({"country": "DE"}),
    ))
    .await?;
    assert_eq!(with_country.schema_id as u32, v3);
    let with_region = submit(with_extra(ad_click(2), serde_json::json!({"region": "EU"}))).await?;
    assert_eq!(with_region.schema_id as u32, v4);
    let plain = submit(ad_click(3)).await?;
    assert_eq!(plain.schema_id as u32, v4);
    // A generic payload of a built-in type: its message's fields plus any.
    let serde_json::Value::Object(fields) = serde_json::json!({
        "ip_address": "10.9.9.9", "user_agent": "ua", "referring_url": "https://example.com/g",
        "advertiser_id": "adv-g", "country": "FR"
    }) else {
        unreachable!()
    };
    let generic_click = submit(Event {
        event_type: "ad_click".into(),
        event_time: Some(now()),
        payload: Some(Payload::Generic(object_to_struct(fields))),
        ..Default::default()
    })
    .await?;
    assert_eq!(generic_click.schema_id as u32, v3);

    // No version has both fields, or a field nobody registered.
    let both = submit(with_extra(
        ad_click(4),
        serde_json::json!({"country": "DE", "region": "EU"}),
    ))
    .await
    .unwrap_err();
    assert_eq!(both.code(), Code::InvalidArgument);
    assert!(
        both.message().starts_with(&format!(
            "ad_click: no registered version has every field the event sets: version 3 lacks `country`, version 2 lacks `region`, version 1 lacks `country` (checked against versions 3, 2, 1 of `{subject}`, newest schema id {v4}, listed by the registry "
        )),
        "{}",
        both.message()
    );
    let unknown = submit(with_extra(
        ad_click(5),
        serde_json::json!({"colour": "red"}),
    ))
    .await
    .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert!(
        unknown.message().starts_with(&format!(
            "ad_click.colour: is not a field of any registered version; register one that has it (checked against versions 3, 2, 1 of `{subject}`"
        )),
        "{}",
        unknown.message()
    );

    // A version registered right after a refusal (within the second in
    // which no new re-listing is made) still serves the next event: it
    // waits for the next re-listing rather than being refused on the last.
    let colour =
        serde_json::json!([{"name": "colour", "type": ["null", "string"], "default": null}]);
    let v5 = register(&stack, subject, &ad_click_v2_with(colour)).await?;
    let with_colour = submit(with_extra(
        ad_click(6),
        serde_json::json!({"colour": "red"}),
    ))
    .await?;
    assert_eq!(with_colour.schema_id as u32, v5);

    let stored = read_back(&stack, "tributary.events.ad_click", 6).await?;
    let value = |ack: &tributary_proto::v1::EventAck| &stored[&(ack.partition, ack.offset)];
    assert_eq!(value(&with_country).schema_id, v3);
    assert_eq!(
        value(&with_country).value["country"],
        Value::Union(1, Box::new(Value::String("DE".into())))
    );
    assert_eq!(
        value(&with_region).value["region"],
        Value::Union(1, Box::new(Value::String("EU".into())))
    );
    assert_eq!(
        value(&generic_click).value["country"],
        Value::Union(1, Box::new(Value::String("FR".into())))
    );
    assert_eq!(
        value(&plain).value["region"],
        Value::Union(0, Box::new(Value::Null))
    );
    Ok(())
}
