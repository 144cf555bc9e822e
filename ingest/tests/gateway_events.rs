//! `POST /v1/events` against a real Tansu broker and the real registry: a
//! JSON array or NDJSON batch is answered with one result per event, in
//! request order; good events are acknowledged where they were stored, bad
//! ones fail alone.
mod support;

use std::collections::HashMap;

use serde_json::{Value, json};
use support::{Gateway, now_ms, read_topic, records_in, status_and_json};

fn click(advertiser_id: &str, idempotency_key: &str) -> Value {
    json!({
        "event_time": now_ms(),
        "idempotency_key": idempotency_key,
        "ad_click": {
            "ip_address": "2001:db8::1",
            "user_agent": "test-agent/1.0",
            "referring_url": "https://example.com/",
            "advertiser_id": advertiser_id
        }
    })
}

fn tick(idempotency_key: &str) -> Value {
    json!({
        "event_type": "price_tick",
        "event_time": chrono::Utc::now().to_rfc3339(),
        "idempotency_key": idempotency_key,
        "price_tick": {"pair": "ETH-USD", "source": "api-a", "price": 3012.5}
    })
}

/// The ack of result `index`, asserting it is one.
fn ack(results: &Value, index: usize) -> (String, i64, i64) {
    let result = &results["results"][index];
    assert_eq!(result["index"], index);
    let ack = &result["ack"];
    assert!(ack.is_object(), "result {index} is an ack: {result}");
    assert!(ack["schema_id"].as_i64().unwrap() > 0);
    (
        ack["topic"].as_str().unwrap().to_string(),
        ack["partition"].as_i64().unwrap(),
        ack["offset"].as_i64().unwrap(),
    )
}

/// Clicks of one advertiser at 0, 2 and 6, a price tick at 3 and three bad
/// envelopes, with idempotency keys tagged `tag`.
fn mixed_batch(tag: &str) -> Value {
    let mut bad_ip = click("adv-1", &format!("{tag}-bad"));
    bad_ip["ad_click"]["ip_address"] = json!("999.1.1.1");
    json!([
        click("adv-1", &format!("{tag}-c0")),
        bad_ip,
        click("adv-1", &format!("{tag}-c2")),
        tick(&format!("{tag}-t3")),
        "not an envelope",
        {"event_time": now_ms(), "ad_click": {}, "price_tick": {}},
        click("adv-1", &format!("{tag}-c6")),
    ])
}

#[tokio::test]
async fn events_as_a_json_array_get_one_result_each_in_order_and_bad_events_fail_alone()
-> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let mut acked = Vec::new();
    for (tag, first_click_offset, tick_offset) in [("cold", 0, 0), ("warm", 3, 1)] {
        let batch = mixed_batch(tag);
        let (status, results) =
            status_and_json(gateway.post_json("/v1/events", &batch).send().await?).await?;
        assert_eq!(status, 200, "{results}");
        assert_eq!(results["results"].as_array().unwrap().len(), 7);
        let result = |index: usize| results["results"][index].clone();
        assert_eq!(
            result(1),
            json!({"index": 1, "error": {"code": "INVALID_ARGUMENT", "field": "ad_click.ip_address", "message": "`999.1.1.1` is not an IPv4 or IPv6 address"}})
        );
        assert_eq!(
            result(4),
            json!({"index": 4, "error": {"code": "INVALID_ARGUMENT", "field": "event", "message": "must be a JSON object, got a string"}})
        );
        assert_eq!(
            result(5),
            json!({"index": 5, "error": {"code": "INVALID_ARGUMENT", "field": "payload", "message": "has ad_click and price_tick; set exactly one"}})
        );
        let (tick_topic, _, stored_tick_offset) = ack(&results, 3);
        assert_eq!(
            (tick_topic.as_str(), stored_tick_offset),
            ("tributary.events.price_tick", tick_offset)
        );

        let clicks: Vec<_> = [0, 2, 6].into_iter().map(|i| ack(&results, i)).collect();
        // One advertiser, so one partition.
        assert!(
            clicks
                .iter()
                .all(|(topic, partition, _)| topic == "tributary.events.ad_click"
                    && *partition == clicks[0].1)
        );
        let mut offsets: Vec<i64> = clicks.iter().map(|(_, _, offset)| *offset).collect();
        if tag == "cold" {
            // The first events of a type race to create its topic, so only
            // their offsets, not their order, are certain (see the report on
            // Ingestor::ensure_topic).
            offsets.sort();
        }
        let expected: Vec<i64> = (first_click_offset..first_click_offset + 3).collect();
        assert_eq!(
            offsets, expected,
            "{tag} batch: clicks stored in request order"
        );
        acked.extend(
            clicks
                .into_iter()
                .zip(["c0", "c2", "c6"].map(|k| format!("{tag}-{k}"))),
        );
    }

    // Each ack points at the record of its event.
    let stored: HashMap<(i32, i64), String> =
        read_topic(&gateway.kafka(), "tributary.events.ad_click", 6)
            .await?
            .into_iter()
            .map(|r| {
                (
                    (r.partition, r.offset),
                    r.headers["tributary.idempotency_key"].clone(),
                )
            })
            .collect();
    for ((_, partition, offset), key) in acked {
        assert_eq!(stored[&(partition as i32, offset)], key);
    }
    Ok(())
}

#[tokio::test]
async fn events_as_ndjson_report_a_line_that_is_not_json_and_store_the_rest() -> anyhow::Result<()>
{
    let gateway = Gateway::start().await?;
    let body = format!(
        "{}\n{{\"event_time\": oops}}\n\n{}\n{}\n",
        click("adv-2", "n0"),
        tick("n2"),
        json!({"event_type": "page_view", "key": "user-1", "event_time": now_ms(), "generic": {"url": "/"}}),
    );

    let response = gateway
        .post("/v1/events", "application/x-ndjson", body)
        .send()
        .await?;
    let (status, results) = status_and_json(response).await?;
    assert_eq!(status, 200, "{results}");
    assert_eq!(results["results"].as_array().unwrap().len(), 4);
    assert_eq!(ack(&results, 0).0, "tributary.events.ad_click");
    assert_eq!(
        results["results"][1],
        json!({"index": 1, "error": {"code": "INVALID_ARGUMENT", "field": "event", "message": "line 2 is not JSON: expected value at line 1 column 16"}})
    );
    assert_eq!(ack(&results, 2).0, "tributary.events.price_tick");
    let unknown = &results["results"][3];
    assert_eq!(unknown["index"], 3);
    assert_eq!(unknown["error"]["code"], "UNKNOWN_EVENT_TYPE");
    assert_eq!(unknown["error"]["field"], "event_type");
    assert_eq!(
        records_in(&gateway.kafka(), "tributary.events.ad_click").await?,
        1
    );
    assert_eq!(
        records_in(&gateway.kafka(), "tributary.events.price_tick").await?,
        1
    );
    Ok(())
}

#[tokio::test]
async fn events_beyond_the_per_request_maximum_are_refused_whole_with_413() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let batch = Value::Array(vec![click("adv-3", ""); 10_001]);

    let response = gateway.post_json("/v1/events", &batch).send().await?;
    assert_eq!(
        status_and_json(response).await?,
        (
            413,
            json!({"error": "too_large", "field": "body", "message": "a request carries at most 10000 events, got 10001; split the batch"})
        )
    );
    assert_eq!(
        records_in(&gateway.kafka(), "tributary.events.ad_click").await?,
        0
    );
    Ok(())
}

#[tokio::test]
async fn events_that_are_not_an_array_or_not_json_typed_are_refused_whole() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let object = gateway
        .post_json("/v1/events", &click("adv-4", "o"))
        .send()
        .await?;
    assert_eq!(
        status_and_json(object).await?,
        (
            400,
            json!({"error": "invalid_argument", "field": "body", "message": "must be a JSON array of events, got an object"})
        )
    );
    let form = gateway
        .post("/v1/events", "application/x-www-form-urlencoded", "a=1")
        .send()
        .await?;
    assert_eq!(
        status_and_json(form).await?,
        (
            415,
            json!({
                "error": "unsupported_media_type",
                "field": "content-type",
                "message": "expected application/json (an array of events) or application/x-ndjson (one event per line), got content type `application/x-www-form-urlencoded`"
            })
        )
    );
    Ok(())
}

#[tokio::test]
async fn events_without_a_valid_api_key_are_401_and_nothing_is_produced() -> anyhow::Result<()> {
    let gateway =
        Gateway::start_with(|config| config.edge.auth.api_keys = vec!["secret".into()]).await?;
    let batch = json!([click("adv-5", "k0")]);

    let refused = gateway
        .post_json("/v1/events", &batch)
        .bearer_auth("not-it")
        .send()
        .await?;
    assert_eq!(
        status_and_json(refused).await?,
        (
            401,
            json!({"error": "unauthenticated", "message": "the API key is not valid"})
        )
    );
    assert_eq!(
        records_in(&gateway.kafka(), "tributary.events.ad_click").await?,
        0
    );

    let accepted = gateway
        .post_json("/v1/events", &batch)
        .bearer_auth("secret")
        .send()
        .await?;
    let (status, results) = status_and_json(accepted).await?;
    assert_eq!(status, 200);
    assert_eq!(ack(&results, 0).2, 0);
    Ok(())
}

#[tokio::test]
async fn a_long_beyond_2_pow_53_in_a_generic_event_is_stored_exactly() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let schema = r#"{"type":"record","name":"Transfer","fields":[{"name":"amount","type":"long"},{"name":"event_time","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;
    let registered: Value = gateway
        .http
        .post(format!(
            "{}/subjects/tributary.events.transfer-value/versions",
            gateway.stack.registry.url()
        ))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .json(&json!({ "schema": schema }))
        .send()
        .await?
        .json()
        .await?;
    assert!(registered["id"].is_u64(), "{registered}");
    // 2^53 + 1 and i64::MAX: neither is a double.
    let amounts = [9_007_199_254_740_993_i64, i64::MAX];
    let body = Value::Array(
        amounts
            .iter()
            .map(|amount| {
                json!({
                    "event_type": "transfer",
                    "key": "acct-1",
                    "event_time": now_ms(),
                    "generic": {"amount": amount}
                })
            })
            .collect(),
    );
    let (status, results) =
        status_and_json(gateway.post_json("/v1/events", &body).send().await?).await?;
    assert_eq!(status, 200, "{results}");
    ack(&results, 0);
    ack(&results, 1);

    let records = read_topic(&gateway.kafka(), "tributary.events.transfer", 2).await?;
    let writer = apache_avro::Schema::parse_str(schema)?;
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(&writer).build()?;
    let mut stored: Vec<i64> = records
        .iter()
        .map(|r| {
            let value = reader.read_value(&mut r.avro.as_slice())?;
            let apache_avro::types::Value::Record(fields) = value else {
                anyhow::bail!("not a record")
            };
            match &fields[0].1 {
                apache_avro::types::Value::Long(n) => Ok(*n),
                other => anyhow::bail!("amount is {other:?}"),
            }
        })
        .collect::<anyhow::Result<_>>()?;
    stored.sort_unstable();
    assert_eq!(stored, amounts);
    Ok(())
}
