//! `POST /submit`, the old Go ad-click API, against a real Tansu broker and
//! the real registry: a valid click is 204 and stored in Kafka; every bad
//! request is refused with a JSON body naming the field, and nothing is
//! produced for a caller without a valid API key.
mod support;

use std::time::Duration;

use apache_avro::{reader::datum::GenericDatumReader, types::Value};
use serde_json::json;
use support::{Gateway, click_body, now_ms, read_topic, records_in, status_and_json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tributary_common::schemas;

const AD_CLICK_TOPIC: &str = "tributary.events.ad_click";

#[tokio::test]
async fn submit_of_a_valid_click_is_204_and_the_click_is_in_kafka_keyed_by_advertiser()
-> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let before = now_ms();

    let with_key = gateway
        .post_json("/submit", &click_body("adv-7"))
        .header("idempotency-key", "retry-safe-1")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await?;
    assert_eq!(with_key.status().as_u16(), 204);
    assert_eq!(with_key.text().await?, "");
    let without_key = gateway
        .post_json("/submit", &click_body("adv-8"))
        .send()
        .await?;
    assert_eq!(without_key.status().as_u16(), 204);

    let mut records = read_topic(&gateway.kafka(), AD_CLICK_TOPIC, 2).await?;
    records.sort_by(|a, b| a.key.cmp(&b.key));
    let (first, second) = (&records[0], &records[1]);
    assert_eq!(
        (first.key.as_str(), second.key.as_str()),
        ("adv-7", "adv-8")
    );
    assert_eq!(first.headers["tributary.event_type"], "ad_click");
    assert_eq!(first.headers["tributary.idempotency_key"], "retry-safe-1");
    assert_eq!(
        first.headers["tributary.schema_id"],
        first.schema_id.to_string()
    );
    assert!(
        first.headers["traceparent"].starts_with(&format!("00-{trace_id}-")),
        "{:?}",
        first.headers
    );
    let fresh = &second.headers["tributary.idempotency_key"];
    assert!(
        uuid::Uuid::parse_str(fresh).is_ok(),
        "a fresh idempotency key, got {fresh:?}"
    );
    assert!(!second.headers["traceparent"].contains(trace_id));

    // Auto-register registers exactly the latest built-in schema.
    let schema = schemas::latest("ad_click").unwrap().parse();
    let Value::Record(fields) = GenericDatumReader::builder(&schema)
        .build()?
        .read_value(&mut &first.avro[..])?
    else {
        panic!("not a record")
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(field("ip_address"), Value::String("203.0.113.7".into()));
    assert_eq!(
        field("user_agent"),
        Value::String("Mozilla/5.0 (X11; Linux x86_64)".into())
    );
    assert_eq!(
        field("referring_url"),
        Value::String("https://news.example.com/article?id=42".into())
    );
    assert_eq!(field("advertiser_id"), Value::String("adv-7".into()));
    let Value::String(metadata) = field("metadata") else {
        panic!("metadata is a string")
    };
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&metadata)?,
        json!({"placement": "sidebar", "slot": 3})
    );
    assert_eq!(field("campaign_id"), Value::Union(0, Box::new(Value::Null)));
    let Value::TimestampMillis(event_time) = field("event_time") else {
        panic!("event_time is timestamp-millis")
    };
    assert!(
        (before..=now_ms()).contains(&event_time),
        "event time {event_time} is the server's clock at submission"
    );
    Ok(())
}

/// Posts `body` to /submit and returns the status and JSON body.
async fn submit(
    gateway: &Gateway,
    body: serde_json::Value,
) -> anyhow::Result<(u16, serde_json::Value)> {
    status_and_json(gateway.post_json("/submit", &body).send().await?).await
}

#[tokio::test]
async fn submit_with_invalid_ip_is_400_naming_ip_address() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let mut body = click_body("adv-1");
    body["ip_address"] = json!("999.1.1.1");
    assert_eq!(
        submit(&gateway, body).await?,
        (
            400,
            json!({"error": "invalid_argument", "field": "ip_address", "message": "`999.1.1.1` is not an IPv4 or IPv6 address"})
        )
    );
    Ok(())
}

#[tokio::test]
async fn submit_with_relative_referring_url_is_400_naming_referring_url() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let mut body = click_body("adv-1");
    body["referring_url"] = json!("/landing");
    assert_eq!(
        submit(&gateway, body).await?,
        (
            400,
            json!({"error": "invalid_argument", "field": "referring_url", "message": "`/landing` is not an absolute URL: relative URL without a base"})
        )
    );
    Ok(())
}

#[tokio::test]
async fn submit_without_advertiser_id_is_400_naming_advertiser_id() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let mut body = click_body("adv-1");
    body.as_object_mut().unwrap().remove("advertiser_id");
    assert_eq!(
        submit(&gateway, body).await?,
        (
            400,
            json!({"error": "invalid_argument", "field": "advertiser_id", "message": "is required"})
        )
    );
    Ok(())
}

#[tokio::test]
async fn submit_with_non_object_metadata_is_400_naming_metadata() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let mut body = click_body("adv-1");
    body["metadata"] = json!(5);
    assert_eq!(
        submit(&gateway, body).await?,
        (
            400,
            json!({"error": "invalid_argument", "field": "metadata", "message": "must be a JSON object, got a number"})
        )
    );
    Ok(())
}

#[tokio::test]
async fn submit_with_malformed_json_is_400_naming_the_body() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let response = gateway
        .post("/submit", "application/json", r#"{"ip_address": "#)
        .send()
        .await?;
    assert_eq!(
        status_and_json(response).await?,
        (
            400,
            json!({"error": "invalid_argument", "field": "body", "message": "is not valid JSON: EOF while parsing a value at line 1 column 15"})
        )
    );
    let response = gateway
        .post("/submit", "application/json", "[1, 2]")
        .send()
        .await?;
    assert_eq!(
        status_and_json(response).await?,
        (
            400,
            json!({"error": "invalid_argument", "field": "body", "message": "must be a JSON object, got an array"})
        )
    );
    Ok(())
}

#[tokio::test]
async fn submit_with_a_content_type_other_than_json_is_415() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let response = gateway
        .post("/submit", "text/plain", click_body("adv-1").to_string())
        .send()
        .await?;
    assert_eq!(
        status_and_json(response).await?,
        (
            415,
            json!({"error": "unsupported_media_type", "field": "content-type", "message": "expected application/json, got content type `text/plain`"})
        )
    );
    let response = gateway
        .http
        .post(gateway.url("/submit"))
        .body(click_body("adv-1").to_string())
        .send()
        .await?;
    assert_eq!(
        status_and_json(response).await?,
        (
            415,
            json!({"error": "unsupported_media_type", "field": "content-type", "message": "expected application/json, got no content type"})
        )
    );
    Ok(())
}

/// Sends `body` chunked (no content-length, as a streaming client does) and
/// returns the raw HTTP/1.1 response.
async fn post_chunked(gateway: &Gateway, path: &str, body: &str) -> anyhow::Result<String> {
    let address = gateway
        .ingest
        .http_url()
        .trim_start_matches("http://")
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    for chunk in body.as_bytes().chunks(256) {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await?;
        stream.write_all(chunk).await?;
        stream.write_all(b"\r\n").await?;
    }
    stream.write_all(b"0\r\n\r\n").await?;
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await??;
    Ok(response)
}

#[tokio::test]
async fn submit_with_a_body_over_the_limit_is_413_and_nothing_is_produced() -> anyhow::Result<()> {
    let gateway = Gateway::start_with(|config| config.limits.max_message_bytes = 512).await?;
    let mut body = click_body("adv-1");
    body["user_agent"] = json!("x".repeat(1024));

    let streamed = post_chunked(&gateway, "/submit", &body.to_string()).await?;
    assert!(streamed.starts_with("HTTP/1.1 413 "), "{streamed}");
    let json_body = streamed.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(json_body)?,
        json!({"error": "too_large", "field": "body", "message": "the request body is larger than the limit of 512 bytes (--max-message-bytes)"})
    );
    // With a content-length the request is refused before the body is read,
    // with the same JSON.
    let declared = gateway.post_json("/submit", &body).send().await?;
    assert_eq!(
        status_and_json(declared).await?,
        (
            413,
            json!({"error": "too_large", "field": "body", "message": "the request body is larger than the limit of 512 bytes (--max-message-bytes)"})
        )
    );

    assert_eq!(records_in(&gateway.kafka(), AD_CLICK_TOPIC).await?, 0);
    Ok(())
}

#[tokio::test]
async fn submit_without_a_valid_api_key_is_401_and_nothing_is_produced() -> anyhow::Result<()> {
    let gateway =
        Gateway::start_with(|config| config.edge.auth.api_keys = vec!["secret".into()]).await?;

    let missing = gateway
        .post_json("/submit", &click_body("adv-1"))
        .send()
        .await?;
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        status_and_json(missing).await?,
        (
            401,
            json!({"error": "unauthenticated", "message": "missing `authorization: Bearer <api key>`"})
        )
    );
    let wrong = gateway
        .post_json("/submit", &click_body("adv-1"))
        .bearer_auth("guess")
        .send()
        .await?;
    assert_eq!(
        status_and_json(wrong).await?,
        (
            401,
            json!({"error": "unauthenticated", "message": "the API key is not valid"})
        )
    );
    assert_eq!(records_in(&gateway.kafka(), AD_CLICK_TOPIC).await?, 0);

    let right = gateway
        .post_json("/submit", &click_body("adv-1"))
        .bearer_auth("secret")
        .send()
        .await?;
    assert_eq!(right.status().as_u16(), 204);
    assert_eq!(records_in(&gateway.kafka(), AD_CLICK_TOPIC).await?, 1);
    Ok(())
}

#[tokio::test]
async fn submit_while_the_registry_is_unreachable_is_503_with_a_request_id() -> anyhow::Result<()> {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let gateway =
        Gateway::start_with(|config| config.registry.url = format!("http://{closed}")).await?;

    let response = gateway
        .post_json("/submit", &click_body("adv-1"))
        .send()
        .await?;
    let header = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string());
    let (status, body) = status_and_json(response).await?;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "unavailable");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("schema registry: "),
        "{body}"
    );
    let request_id = body["request_id"]
        .as_str()
        .expect("a request id in the body");
    assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{request_id}");
    assert_eq!(header.as_deref(), Some(request_id));
    assert_eq!(records_in(&gateway.kafka(), AD_CLICK_TOPIC).await?, 0);
    Ok(())
}
