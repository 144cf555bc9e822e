//! The console's HTTP API against real parts: the registry and a Tansu
//! broker (`TestStack`), the query API in-process over a fresh database,
//! and Prometheus endpoints served by the test. Also the page itself
//! (content types, cache headers) and the API key requirement.
use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, routing::get};
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tributary_common::{
    config::{KafkaArgs, RegistryArgs},
    dead_letter::{headers as dlq, read},
    kafka, wire,
};
use tributary_console::{Console, config::ConsoleArgs};
use tributary_testkit::{TestStack, bootstrap, postgres::TestDatabase};

/// A console serving until dropped.
struct Running {
    url: String,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    async fn start(
        args: ConsoleArgs,
        kafka: &KafkaArgs,
        registry: &RegistryArgs,
    ) -> anyhow::Result<Self> {
        let console = Console::bind(&args, kafka, registry).await?;
        let url = console.url();
        let stop = CancellationToken::new();
        let task = tokio::spawn(console.serve(stop.clone()));
        Ok(Self {
            url,
            stop,
            task: Some(task),
        })
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let response = reqwest::get(self.at(path)).await?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(StatusCode, Value)> {
        let response = reqwest::Client::new()
            .post(self.at(path))
            .json(body)
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Stops serving and waits (bounded) for the server to return.
    async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(10), task).await???;
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Settings for a console that needs neither a broker nor a registry.
fn nowhere() -> (KafkaArgs, RegistryArgs) {
    (
        KafkaArgs::for_brokers("127.0.0.1:1"),
        RegistryArgs::at("http://127.0.0.1:1"),
    )
}

#[tokio::test]
async fn the_page_loads_with_its_types_and_cache_headers() -> anyhow::Result<()> {
    let (kafka, registry) = nowhere();
    let console =
        Running::start(ConsoleArgs::local("http://127.0.0.1:1"), &kafka, &registry).await?;
    let client = reqwest::Client::new();
    for (path, content_type, cache) in [
        ("/", "text/html; charset=utf-8", "no-cache"),
        ("/index.html", "text/html; charset=utf-8", "no-cache"),
        ("/app.css", "text/css; charset=utf-8", "no-cache"),
        ("/js/app.js", "text/javascript; charset=utf-8", "no-cache"),
        (
            "/js/dead-letters.js",
            "text/javascript; charset=utf-8",
            "no-cache",
        ),
        (
            "/vendor/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
            "public, max-age=86400",
        ),
        (
            "/vendor/uPlot.min.css",
            "text/css; charset=utf-8",
            "public, max-age=86400",
        ),
        ("/favicon.svg", "image/svg+xml", "no-cache"),
    ] {
        let response = client.get(console.at(path)).send().await?;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(headers["cache-control"], cache, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let etag = headers["etag"].to_str()?.to_string();
        let body = response.bytes().await?;
        assert!(!body.is_empty(), "{path}");
        // A revalidation with the same ETag is a 304 without a body.
        let again = client
            .get(console.at(path))
            .header("if-none-match", &etag)
            .send()
            .await?;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    let page = client.get(console.at("/")).send().await?;
    let csp = page.headers()["content-security-policy"]
        .to_str()?
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await?;
    for hook in [
        "data-testid=\"nav-overview\"",
        "data-testid=\"nav-dead-letters\"",
        "id=\"api-key-input\"",
        "id=\"agg-chart\"",
        "id=\"dead-letter-replay-result\"",
        "id=\"schema-check-result\"",
        "/vendor/uPlot.iife.min.js",
    ] {
        assert!(html.contains(hook), "the page has no {hook}");
    }
    let (status, body) = console.get("/no-such-file.js").await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _) = console.get("/api/no-such-route").await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    console.stop().await
}

#[tokio::test]
async fn with_api_keys_every_api_route_needs_one_and_the_page_does_not() -> anyhow::Result<()> {
    let (kafka, registry) = nowhere();
    let mut args = ConsoleArgs::local("http://127.0.0.1:1");
    args.auth.api_keys = vec!["console-key".into()];
    let console = Running::start(args, &kafka, &registry).await?;
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(console.at("/")).send().await?.status(),
        StatusCode::OK
    );
    assert_eq!(
        client.get(console.at("/js/api.js")).send().await?.status(),
        StatusCode::OK
    );
    for (method, path) in [
        ("GET", "/api/overview"),
        ("GET", "/api/overview/stream"),
        ("GET", "/api/aggregates?event_type=ad_click"),
        ("GET", "/api/aggregates.csv?event_type=ad_click"),
        ("GET", "/api/price-accuracy"),
        ("GET", "/api/dead-letters"),
        ("GET", "/api/dead-letters/0/0"),
        ("POST", "/api/dead-letters/replay"),
        ("GET", "/api/schemas"),
        ("GET", "/api/schemas/s/versions/1"),
        ("GET", "/api/schemas/s/diff"),
        ("POST", "/api/schemas/s/check"),
    ] {
        for authorization in [None, Some("Bearer wrong"), Some("console-key")] {
            let mut request = client.request(method.parse()?, console.at(path));
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = request.send().await?;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} {authorization:?}"
            );
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = response.json().await?;
            assert_eq!(body["error"], "unauthenticated", "{body}");
        }
    }
    let response = client
        .get(console.at("/api/overview"))
        .header("authorization", "Bearer console-key")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    console.stop().await
}

/// Serves Prometheus text that the test changes.
async fn metrics_server(text: Arc<std::sync::Mutex<String>>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = text.lock().unwrap().clone();
                async move { text }
            }),
        )
        .route(
            "/readyz",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route(
            "/not-ready",
            get(|| async { axum::http::StatusCode::SERVICE_UNAVAILABLE }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn ingest_metrics(received: u64) -> String {
    format!(
        "# TYPE tributary_ingest_events_received_total counter\n\
         tributary_ingest_events_received_total {received}\n\
         # TYPE tributary_ingest_events_acked_total counter\n\
         tributary_ingest_events_acked_total{{event_type=\"ad_click\"}} {received}\n"
    )
}

#[tokio::test]
async fn the_overview_scrapes_states_rates_and_lag_and_streams_them() -> anyhow::Result<()> {
    let ingest_text = Arc::new(std::sync::Mutex::new(ingest_metrics(0)));
    let ingest = metrics_server(ingest_text.clone()).await?;
    let sink = metrics_server(Arc::new(std::sync::Mutex::new(
        "# TYPE tributary_consumer_lag gauge\n\
         tributary_consumer_lag{partition=\"0\",topic=\"tributary.aggregates\"} 7\n\
         # TYPE tributary_dead_letters_total counter\n\
         tributary_dead_letters_total{reason=\"undecodable\"} 2\n\
         # TYPE tributary_sink_newest_event_timestamp_seconds gauge\n\
         tributary_sink_newest_event_timestamp_seconds 1700000000\n"
            .to_string(),
    )))
    .await?;
    let idle = metrics_server(Arc::new(std::sync::Mutex::new(String::new()))).await?;
    let (kafka, registry) = nowhere();
    let mut args = ConsoleArgs::local("http://127.0.0.1:1");
    args.scrape_interval = Duration::from_millis(200);
    args.services = vec![
        format!("ingest=http://{ingest}/metrics,http://{ingest}/readyz")
            .parse()
            .unwrap(),
        format!("sink=http://{sink}/metrics").parse().unwrap(),
        format!("processor=http://{idle}/metrics").parse().unwrap(),
        format!("query=http://{idle}/metrics,http://{idle}/not-ready")
            .parse()
            .unwrap(),
        "registry=http://127.0.0.1:1/metrics".parse().unwrap(),
    ];
    let console = Running::start(args, &kafka, &registry).await?;

    // 50 events per 200 ms: 250 per second.
    let mut overview = Value::Null;
    for i in 1..=40u64 {
        *ingest_text.lock().unwrap() = ingest_metrics(i * 50);
        tokio::time::sleep(Duration::from_millis(200)).await;
        overview = console.get("/api/overview").await?.1;
        let rate = overview["ingest"]["received_per_second"]
            .as_f64()
            .unwrap_or(0.0);
        if i > 8 && (150.0..350.0).contains(&rate) {
            break;
        }
    }
    let status = |name: &str| {
        overview["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("ingest").as_deref(), Some("ready"), "{overview}");
    assert_eq!(status("sink").as_deref(), Some("ready"), "{overview}");
    assert_eq!(status("processor").as_deref(), Some("up"), "{overview}");
    assert_eq!(status("query").as_deref(), Some("up"), "{overview}");
    assert_eq!(status("registry").as_deref(), Some("down"), "{overview}");
    let received = overview["ingest"]["received_per_second"].as_f64().unwrap();
    assert!((150.0..350.0).contains(&received), "{overview}");
    assert_eq!(
        overview["ingest"]["acknowledged_by_event_type"][0]["label"],
        "ad_click"
    );
    assert_eq!(
        overview["lag"],
        json!([{"consumer": "sink", "topic": "tributary.aggregates", "partition": 0, "lag": 7.0}])
    );
    assert_eq!(overview["dead_letters"][0]["label"], "undecodable");
    assert_eq!(overview["dead_letters"][0]["total"], 2.0);
    assert!(overview["freshness"]["seconds"].as_f64().unwrap() > 1.0e6);

    // The stream sends the overview at once and after every scrape.
    let mut response = reqwest::get(console.at("/api/overview/stream")).await?;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while text.matches("event: overview").count() < 3 && tokio::time::Instant::now() < deadline {
        if let Some(chunk) =
            tokio::time::timeout(Duration::from_secs(5), response.chunk()).await??
        {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(text.matches("event: overview").count() >= 3, "{text}");
    let first = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    let first: Value = serde_json::from_str(first)?;
    assert!(first["updated_at_ms"].as_i64().unwrap() > 0);
    // Stopping ends the open stream rather than waiting for it.
    console.stop().await
}

/// Registers a one-field record schema under `subject`; its id.
async fn register_note_schema(registry: &str, subject: &str) -> anyhow::Result<u32> {
    let schema =
        json!({"type": "record", "name": "Note", "fields": [{"name": "note", "type": "string"}]});
    let answer: Value = reqwest::Client::new()
        .post(format!("{registry}/subjects/{subject}/versions"))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(json!({"schema": schema.to_string()}).to_string())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(answer["id"].as_u64().unwrap() as u32)
}

/// A `Note` record `{note}` in Avro binary (a string: zigzag length, bytes).
fn note_body(note: &str) -> Vec<u8> {
    let mut body = Vec::new();
    let mut n = (note.len() as u64) << 1;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            body.push(byte);
            break;
        }
        body.push(byte | 0x80);
    }
    body.extend_from_slice(note.as_bytes());
    body
}

async fn dead_letter(
    producer: &FutureProducer,
    kafka: &KafkaArgs,
    payload: &[u8],
    reason: &str,
    source: &str,
) -> anyhow::Result<()> {
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "tributary.idempotency_key",
            value: Some("idem-1"),
        })
        .insert(Header {
            key: dlq::REASON,
            value: Some(reason),
        })
        .insert(Header {
            key: dlq::DETAIL,
            value: Some("<b>detail</b>"),
        })
        .insert(Header {
            key: dlq::SOURCE,
            value: Some(source),
        });
    producer
        .send(
            FutureRecord::to(&kafka.dead_letter_topic)
                .key("k-1")
                .payload(payload)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    Ok(())
}

#[tokio::test]
async fn dead_letters_are_listed_shown_decoded_and_replayed_once() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let kafka = stack.kafka();
    let source = kafka.event_topic("note");
    kafka::ensure_topics(
        &kafka,
        &[kafka.dead_letter_topic.clone(), source.clone()],
        1,
    )
    .await?;
    let id = register_note_schema(&stack.registry.url(), &format!("{source}-value")).await?;
    let producer: FutureProducer = kafka::producer_config(&kafka).create()?;
    let script = "<script>alert('dlq')</script>";
    let mut framed = Vec::new();
    wire::frame_into(id, &note_body(script), &mut framed);
    dead_letter(
        &producer,
        &kafka,
        &framed,
        "invalid",
        &format!("{source}/0/5"),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    dead_letter(
        &producer,
        &kafka,
        script.as_bytes(),
        "not_framed",
        &format!("{source}/0/6"),
    )
    .await?;

    let console = Running::start(
        ConsoleArgs::local("http://127.0.0.1:1"),
        &kafka,
        &stack.registry_args(),
    )
    .await?;
    let (status, list) = console.get("/api/dead-letters").await?;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["topic"], kafka.dead_letter_topic);
    assert_eq!(list["total"], 2, "{list}");
    let ids: Vec<&str> = list["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["0/1", "0/0"], "newest first: {list}");
    assert_eq!(list["dead_letters"][0]["reason"], "not_framed");
    assert_eq!(list["dead_letters"][1]["source_topic"], source);
    assert_eq!(list["dead_letters"][1]["detail"], "<b>detail</b>");
    assert_eq!(list["counts"].as_array().unwrap().len(), 2);
    assert_eq!(list["complete"], true, "{list}");
    assert_eq!(list["kept_per_partition"], 10_000, "{list}");
    let (_, filtered) = console.get("/api/dead-letters?reason=invalid").await?;
    assert_eq!(filtered["total"], 1);
    let (_, by_source) = console.get("/api/dead-letters?source=elsewhere").await?;
    assert_eq!(by_source["total"], 0);
    // A source is an exact topic name, not a prefix.
    let (_, by_source) = console
        .get(&format!("/api/dead-letters?source={source}"))
        .await?;
    assert_eq!(by_source["total"], 2, "{by_source}");
    let prefix = &source[..source.len() - 2];
    let (_, by_prefix) = console
        .get(&format!("/api/dead-letters?source={prefix}"))
        .await?;
    assert_eq!(by_prefix["total"], 0, "{by_prefix}");
    let (_, limited) = console.get("/api/dead-letters?limit=1&since=1h").await?;
    assert_eq!(
        (
            limited["total"].as_u64(),
            limited["dead_letters"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );
    let (status, bad) = console.get("/api/dead-letters?since=whenever").await?;
    assert_eq!(
        (status, bad["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("since"))
    );

    // One in full: decoded through the registry; the untrusted text as data.
    let (status, shown) = console.get("/api/dead-letters/0/0").await?;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["payload"]["encoding"], "avro");
    assert_eq!(shown["payload"]["schema_id"], id);
    assert_eq!(shown["payload"]["value"], json!({"note": script}));
    assert_eq!(shown["key"], "k-1");
    let headers = shown["headers"].as_array().unwrap();
    assert!(
        headers
            .iter()
            .any(|h| h["name"] == dlq::REASON && h["value"] == "invalid"),
        "{shown}"
    );
    let (_, raw) = console.get("/api/dead-letters/0/1").await?;
    assert_eq!(raw["payload"]["encoding"], "raw");
    assert_eq!(raw["payload"]["text"], script);
    assert_eq!(raw["payload"]["bytes"], script.len());
    let (status, missing) = console.get("/api/dead-letters/0/99").await?;
    assert_eq!(
        (status, missing["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _) = console.get("/api/dead-letters/x/1").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Replay: a dry run produces nothing; then once, then skipped.
    let (status, dry) = console
        .post(
            "/api/dead-letters/replay",
            &json!({"ids": ["0/0"], "dry_run": true}),
        )
        .await?;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(
        (dry["replayed"].as_u64(), dry["dry_run"].as_bool()),
        (Some(1), Some(true))
    );
    assert!(read::read(&kafka, &source, None).await?.is_empty());
    let (status, report) = console
        .post("/api/dead-letters/replay", &json!({"ids": ["0/0", "0/42"]}))
        .await?;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (
            report["replayed"].as_u64(),
            report["skipped"].as_u64(),
            report["failed"].as_u64()
        ),
        (Some(1), Some(0), Some(1)),
        "{report}"
    );
    let replayed = read::read(&kafka, &source, None).await?;
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].payload.as_deref(), Some(framed.as_slice()));
    assert_eq!(replayed[0].key.as_deref(), Some(b"k-1".as_slice()));
    assert_eq!(
        replayed[0].header(dlq::REPLAYED_FROM).as_deref(),
        Some(format!("{}/0/0", kafka.dead_letter_topic).as_str())
    );
    assert_eq!(
        replayed[0].header(dlq::REASON),
        None,
        "the dlq headers are dropped"
    );
    assert_eq!(
        replayed[0].header("tributary.idempotency_key").as_deref(),
        Some("idem-1")
    );
    let (_, again) = console
        .post(
            "/api/dead-letters/replay",
            &json!({"filter": {"reason": ["invalid"]}}),
        )
        .await?;
    assert_eq!(
        (
            again["replayed"].as_u64(),
            again["skipped"].as_u64(),
            again["failed"].as_u64()
        ),
        (Some(0), Some(1), Some(0)),
        "{again}"
    );
    assert_eq!(read::read(&kafka, &source, None).await?.len(), 1);
    // The record of the replay is where `trib dlq replay` looks for it.
    let record = read::read(
        &kafka,
        &format!("{}.replayed", kafka.dead_letter_topic),
        None,
    )
    .await?;
    assert_eq!(record.len(), 1);
    assert_eq!(record[0].key_text().as_deref(), Some("0/0"));
    // A list reads only what is new, and sees it.
    dead_letter(
        &producer,
        &kafka,
        b"late",
        "expired",
        &format!("{source}/0/7"),
    )
    .await?;
    let (_, later) = console.get("/api/dead-letters").await?;
    assert_eq!(later["total"], 3, "{later}");
    assert_eq!(later["dead_letters"][0]["reason"], "expired");
    let (status, bad) = console.post("/api/dead-letters/replay", &json!({})).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    let (status, _) = console
        .post("/api/dead-letters/replay", &json!({"ids": ["zero"]}))
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for (path, named) in [
        ("/api/dead-letters/0/-1", "`-1`"),
        (
            "/api/dead-letters/0/9223372036854775807",
            "`9223372036854775807`",
        ),
        ("/api/dead-letters/-2/0", "`-2`"),
    ] {
        let (status, bad) = console.get(path).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {bad}");
        assert_eq!(bad["field"], "id", "{bad}");
        assert!(
            bad["message"].as_str().unwrap_or_default().contains(named),
            "{bad}"
        );
    }
    drop(producer);
    console.stop().await
}

#[tokio::test]
async fn schemas_are_listed_diffed_and_checked_by_the_registry() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let kafka = stack.kafka();
    bootstrap::register_schemas(&kafka, &stack.registry_args()).await?;
    let console = Running::start(
        ConsoleArgs::local("http://127.0.0.1:1"),
        &kafka,
        &stack.registry_args(),
    )
    .await?;
    let subject = "tributary.events.ad_click-value";

    let (status, list) = console.get("/api/schemas").await?;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ad_click = list["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject"] == subject)
        .unwrap_or_else(|| panic!("no {subject}: {list}"));
    assert_eq!(ad_click["versions"], json!([1, 2]));
    assert_eq!(ad_click["compatibility"], "FULL_TRANSITIVE");
    assert_eq!(ad_click["compatibility_source"], "subject");
    // The registry's default level (the bootstrap sets only the subjects').
    assert_eq!(list["global_compatibility"], "BACKWARD", "{list}");

    let (status, v2) = console
        .get(&format!("/api/schemas/{subject}/versions/2"))
        .await?;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert_eq!(v2["version"], 2);
    assert!(
        v2["pretty"].as_str().unwrap().contains("\n  \"fields\""),
        "{v2}"
    );
    let (status, _) = console
        .get(&format!("/api/schemas/{subject}/versions/9"))
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, diff) = console
        .get(&format!("/api/schemas/{subject}/diff?from=1&to=2"))
        .await?;
    assert_eq!(status, StatusCode::OK, "{diff}");
    let lines = diff["lines"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l["tag"] == "added" && l["text"].as_str().unwrap().contains("campaign_id")),
        "{diff}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["tag"] == "same" && l["text"].as_str().unwrap().contains("advertiser_id"))
    );
    let (_, default) = console.get(&format!("/api/schemas/{subject}/diff")).await?;
    assert_eq!(
        (default["from"].as_i64(), default["to"].as_i64()),
        (Some(1), Some(2))
    );

    // A candidate with a new optional field passes; one dropping the key fails with the reason.
    let mut candidate: Value = serde_json::from_str(v2["schema"].as_str().unwrap())?;
    candidate["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "country", "type": ["null", "string"], "default": null}));
    let (status, verdict) = console
        .post(&format!("/api/schemas/{subject}/check"), &candidate)
        .await?;
    assert_eq!(status, StatusCode::OK, "{verdict}");
    assert_eq!(verdict["compatible"], true, "{verdict}");
    assert_eq!(verdict["compatibility"], "FULL_TRANSITIVE");
    let fields = candidate["fields"].as_array_mut().unwrap();
    fields.retain(|f| f["name"] != "advertiser_id" && f["name"] != "country");
    fields.push(json!({"name": "country", "type": "string"}));
    let (_, verdict) = console
        .post(&format!("/api/schemas/{subject}/check"), &candidate)
        .await?;
    assert_eq!(verdict["compatible"], false, "{verdict}");
    // FULL_TRANSITIVE: a reader of the candidate misses a default for the
    // new `country`; a reader of v1/v2 misses one for the dropped key
    // (`advertiser_id`, field 3 of v1 and v2).
    let reasons: Vec<&str> = verdict["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        reasons.contains(&"READER_FIELD_MISSING_DEFAULT_VALUE at /fields/3: advertiser_id"),
        "{verdict}"
    );
    assert!(
        reasons.contains(&"READER_FIELD_MISSING_DEFAULT_VALUE at /fields/6: country"),
        "{verdict}"
    );
    let (status, invalid) = console
        .post(
            &format!("/api/schemas/{subject}/check"),
            &json!({"type": "record"}),
        )
        .await?;
    assert_eq!(
        (status, invalid["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("schema")),
        "{invalid}"
    );
    let (_, fresh) = console
        .post(
            "/api/schemas/brand-new-value/check",
            &json!({"type": "string"}),
        )
        .await?;
    assert_eq!(fresh["compatible"], true, "{fresh}");
    console.stop().await
}

/// The query API in-process over a fresh database with `rows` stored.
async fn query_api(
    rows: &[(&str, &str, &str, i64, Option<f64>)],
) -> anyhow::Result<(String, CancellationToken, TestDatabase)> {
    let database = TestDatabase::create().await?;
    let pool = sqlx::PgPool::connect(database.url()).await?;
    tributary_store::migrate(&pool).await?;
    for (event_type, key, start, count, avg) in rows {
        let start = chrono::DateTime::parse_from_rfc3339(start)?.with_timezone(&chrono::Utc);
        sqlx::query(
            "INSERT INTO aggregates (event_type, group_key, window_start, window_end, count,
                distinct_count, min, max, sum, last, last_event_time, is_final, emitted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $7, $3, true, now())",
        )
        .bind(event_type)
        .bind(key)
        .bind(start)
        .bind(start + chrono::Duration::minutes(1))
        .bind(count)
        .bind(avg.is_none().then_some(*count))
        .bind(*avg)
        .bind(avg.map(|a| a * *count as f64))
        .execute(&pool)
        .await?;
    }
    let api = tributary_query::QueryApi::new(pool, Duration::from_secs(60));
    let edge = tributary_edge::Edge::bind(&tributary_edge::config::EdgeArgs::local()).await?;
    let url = format!("http://{}", edge.grpc_addr());
    let stop = CancellationToken::new();
    let service = tributary_query::service::QueryService::from_api(api);
    tokio::spawn(edge.run(vec![Box::new(service)], stop.clone()));
    Ok((url, stop, database))
}

#[tokio::test]
async fn aggregates_and_price_accuracy_come_from_the_query_api() -> anyhow::Result<()> {
    let (url, stop, _database) = query_api(&[
        ("ad_click", "adv-1", "2026-01-01T00:00:00Z", 3, None),
        ("ad_click", "adv-1", "2026-01-01T00:01:00Z", 4, None),
        ("ad_click", "adv-2", "2026-01-01T00:00:00Z", 5, None),
        (
            "price_tick",
            "ETH-USD/api-1",
            "2026-01-01T00:00:00Z",
            1,
            Some(100.0),
        ),
        (
            "price_tick",
            "ETH-USD/api-2",
            "2026-01-01T00:00:00Z",
            1,
            Some(110.0),
        ),
        (
            "price_tick",
            "BTC-USD/api-1",
            "2026-01-01T00:00:00Z",
            1,
            Some(50_000.0),
        ),
        (
            "price_tick",
            "BTC-USD/api-2",
            "2026-01-01T00:00:00Z",
            1,
            Some(50_000.0),
        ),
    ])
    .await?;
    let (kafka, registry) = nowhere();
    let console = Running::start(ConsoleArgs::local(url), &kafka, &registry).await?;
    let range = "from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z";

    let (status, all) = console
        .get(&format!("/api/aggregates?event_type=ad_click&{range}"))
        .await?;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["rows"].as_array().unwrap().len(), 3, "{all}");
    assert_eq!(all["truncated"], false);
    let (_, one) = console
        .get(&format!(
            "/api/aggregates?event_type=ad_click&key=adv-1&{range}&granularity=1h"
        ))
        .await?;
    assert_eq!(one["rows"].as_array().unwrap().len(), 1, "{one}");
    assert_eq!(one["rows"][0]["count"], 7);
    assert_eq!(one["rows"][0]["window_end"], "2026-01-01T01:00:00Z");
    assert_eq!(one["rows"][0]["t"], 1_767_225_600_000i64);
    // datetime-local style times (no offset) are UTC; keys may be comma-separated.
    let (_, naive) = console
        .get("/api/aggregates?event_type=ad_click&key=adv-1,adv-2&from=2026-01-01T00:00&to=2026-01-01T00:01&granularity=window")
        .await?;
    assert_eq!(naive["rows"].as_array().unwrap().len(), 2, "{naive}");
    let (status, refused) = console
        .get(&format!(
            "/api/aggregates?event_type=ad_click&{range}&granularity=7s"
        ))
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["field"], "granularity", "{refused}");
    let (status, missing) = console.get("/api/aggregates").await?;
    assert_eq!(
        (status, missing["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("event_type"))
    );

    let response = reqwest::get(console.at(&format!(
        "/api/aggregates.csv?event_type=ad_click&key=adv-2&{range}"
    )))
    .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"aggregates-ad_click.csv\""
    );
    assert_eq!(
        response.text().await?,
        "event_type,key,window_start,window_end,count,distinct_count,min,max,sum,avg,last,revisions\n\
         ad_click,adv-2,2026-01-01T00:00:00Z,2026-01-01T00:01:00Z,5,5,,,,,,0\n"
    );

    let (status, accuracy) = console.get(&format!("/api/price-accuracy?{range}")).await?;
    assert_eq!(status, StatusCode::OK, "{accuracy}");
    let pairs: Vec<&str> = accuracy["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pair"].as_str().unwrap())
        .collect();
    assert_eq!(pairs, ["BTC-USD", "ETH-USD"], "{accuracy}");
    let eth = &accuracy["pairs"][1]["sources"];
    assert_eq!(eth[0]["source"], "api-1");
    let diff = eth[0]["points"][0]["percent_difference"].as_f64().unwrap();
    assert!(
        (diff - (100.0 - 110.0) / 110.0 * 100.0).abs() < 1e-9,
        "{accuracy}"
    );
    let (_, only) = console
        .get(&format!("/api/price-accuracy?pair=ETH-USD&{range}"))
        .await?;
    assert_eq!(only["pairs"].as_array().unwrap().len(), 1);
    console.stop().await?;
    stop.cancel();
    Ok(())
}

#[tokio::test]
async fn an_unreachable_query_api_is_503() -> anyhow::Result<()> {
    let (kafka, registry) = nowhere();
    let console =
        Running::start(ConsoleArgs::local("http://127.0.0.1:1"), &kafka, &registry).await?;
    let (status, body) = console.get("/api/aggregates?event_type=ad_click").await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable");
    assert!(body["request_id"].is_string());
    let (status, _) = console.get("/api/schemas").await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    console.stop().await
}

#[tokio::test]
async fn tls_and_cors_are_the_edges() -> anyhow::Result<()> {
    let certificates = tributary_testkit::certs::TestCertificates::generate()?;
    let (kafka, registry) = nowhere();
    let mut args = ConsoleArgs::local("http://127.0.0.1:1");
    args.tls = tributary_edge::config::TlsArgs::files(certificates.cert(), certificates.key());
    args.cors_allowed_origins = vec!["https://ops.example.com".into()];
    let console = Running::start(args, &kafka, &registry).await?;
    assert!(console.url.starts_with("https://"), "{}", console.url);
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&certificates.ca_pem()?)?)
        .build()?;
    let page = client.get(console.at("/")).send().await?;
    assert_eq!(page.status(), StatusCode::OK);
    // Plain HTTP gets no answer.
    let plain = console.url.replace("https://", "http://");
    assert!(reqwest::get(format!("{plain}/")).await.is_err());

    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, console.at("/api/overview"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://ops.example.com").await?;
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://ops.example.com"
    );
    let other = preflight("https://evil.example.com").await?;
    assert!(other.headers().get("access-control-allow-origin").is_none());
    console.stop().await
}

#[tokio::test]
async fn without_keys_the_api_answers_only_loopback_and_allowed_hosts() -> anyhow::Result<()> {
    let (kafka, registry) = nowhere();
    let mut args = ConsoleArgs::local("http://127.0.0.1:1");
    args.allowed_hosts = vec!["console".into()];
    let console = Running::start(args, &kafka, &registry).await?;
    let client = reqwest::Client::new();
    let with_host = |host: &str| {
        client
            .get(console.at("/api/overview"))
            .header("host", host)
            .send()
    };
    for host in ["localhost:8088", "127.0.0.1", "[::1]:8088", "console:8088"] {
        assert_eq!(with_host(host).await?.status(), StatusCode::OK, "{host}");
    }
    // A name rebound to this address by another site's DNS.
    let refused = with_host("rebound.example:8088").await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await?;
    assert_eq!(body["error"], "forbidden");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("rebound.example") && message.contains("--allowed-host"),
        "{body}"
    );
    // The page itself is not guarded.
    let page = client
        .get(console.at("/"))
        .header("host", "rebound.example")
        .send()
        .await?;
    assert_eq!(page.status(), StatusCode::OK);
    console.stop().await?;

    // With API keys the key decides, whatever the Host.
    let mut args = ConsoleArgs::local("http://127.0.0.1:1");
    args.auth.api_keys = vec!["console-key".into()];
    let console = Running::start(args, &kafka, &registry).await?;
    let keyed = client
        .get(console.at("/api/overview"))
        .header("host", "rebound.example")
        .bearer_auth("console-key")
        .send()
        .await?;
    assert_eq!(keyed.status(), StatusCode::OK);
    console.stop().await
}
