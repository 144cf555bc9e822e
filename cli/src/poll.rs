//! `trib poll`: the pull source of the old pipelines. Every `--every` it GETs
//! an HTTP JSON API, takes the items `--items` selects (each element of an
//! array, or the document itself), builds one event per item from
//! `--map FIELD=JSONPATH` and `--set FIELD=VALUE`, and streams the events
//! through the SDK's sender. FIELD is an envelope field (`key`,
//! `event_time`, `idempotency_key`) or a payload field of the event type.
//! An API that fails one poll is reported and polled again next time.
use std::{process::ExitCode, time::Duration};

use clap::Args;
use humantime::parse_duration;
use serde_json::{Map, Value};
use serde_json_path::JsonPath;
use sha2::{Digest as _, Sha256};
use tributary_client::{Error, SenderOptions, event};

use super::{IngestArgs, summary::Summary};

const ENVELOPE: &[&str] = &["key", "event_time", "idempotency_key"];

#[derive(Args)]
pub struct PollArgs {
    /// The HTTP JSON API to poll.
    #[arg(long = "url")]
    source: String,
    /// Ingest's gRPC endpoint (`--url` is the polled API here).
    #[arg(long = "ingest-url", env = "TRIBUTARY_URL", default_value = tributary_client::DEFAULT_URL)]
    ingest_url: String,
    /// Sent to ingest as `authorization: Bearer <key>`.
    #[arg(long = "api-key", env = "TRIBUTARY_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// A PEM CA certificate to trust for an https:// ingest URL.
    #[arg(long = "ca-cert", env = "TRIBUTARY_CA_CERT")]
    ca_cert: Option<std::path::PathBuf>,
    /// Time between polls.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    every: Duration,
    /// The event type of the events made.
    #[arg(long = "type")]
    event_type: String,
    /// FIELD=JSONPATH, evaluated against each item (repeatable).
    #[arg(long = "map", value_parser = mapping)]
    maps: Vec<(String, JsonPath)>,
    /// FIELD=VALUE, a constant string (repeatable).
    #[arg(long = "set", value_parser = constant)]
    sets: Vec<(String, String)>,
    /// JSONPath selecting the items in the response.
    #[arg(long, value_parser = JsonPath::parse, default_value = "$")]
    items: JsonPath,
    /// Stop after this many polls (default: poll until interrupted).
    #[arg(long)]
    polls: Option<u64>,
}

fn mapping(s: &str) -> Result<(String, JsonPath), String> {
    let (field, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected FIELD=JSONPATH, got `{s}`"))?;
    let path = JsonPath::parse(path).map_err(|e| format!("`{path}` is not a JSONPath: {e}"))?;
    Ok((field.to_string(), path))
}

fn constant(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected FIELD=VALUE, got `{s}`"))
}

pub async fn run(args: PollArgs) -> anyhow::Result<ExitCode> {
    let ingest = IngestArgs {
        url: args.ingest_url.clone(),
        api_key: args.api_key.clone(),
        ca_cert: args.ca_cert.clone(),
    };
    let sender = ingest.client()?.sender(SenderOptions::default());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut summary = Summary::default();
    let mut ticker = tokio::time::interval(args.every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut poll = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        poll += 1;
        let polled_at = chrono::Utc::now().timestamp_millis();
        match fetch(&http, &args.source).await {
            Ok(document) => {
                let items = select_items(&args.items, &document);
                let mut pending = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let at = format!("poll {poll} item {i}");
                    match make_event(&args, item, polled_at) {
                        Ok(event) => pending.push((at, sender.send(event).await?)),
                        Err(Error::InvalidEvent { field, message }) => {
                            summary.reject(format!("invalid_argument {field}"), at, message)
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                let before = (summary.acked(), summary.refused());
                for (at, answer) in pending {
                    summary.record(at, answer.await);
                }
                eprintln!(
                    "poll {poll}: {} items, {} acked, {} rejected",
                    items.len(),
                    summary.acked() - before.0,
                    summary.refused() - before.1
                );
            }
            Err(e) => eprintln!("poll {poll}: {e:#}"),
        }
        if args.polls.is_some_and(|n| poll >= n) {
            break;
        }
    }
    let closed = sender.close().await;
    print!("{summary}");
    closed?;
    Ok(if summary.refused() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn fetch(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let response = http.get(url).send().await?.error_for_status()?;
    Ok(response.json().await?)
}

/// The items of a response: every node the path selects, an array node
/// standing for its elements.
fn select_items(path: &JsonPath, document: &Value) -> Vec<Value> {
    let nodes = path.query(document).all();
    match nodes.as_slice() {
        [Value::Array(items)] => items.clone(),
        _ => nodes.into_iter().cloned().collect(),
    }
}

/// Builds the JSON envelope of one item and reads it like `trib send` does.
fn make_event(
    args: &PollArgs,
    item: &Value,
    polled_at: i64,
) -> tributary_client::Result<tributary_client::proto::Event> {
    let mut envelope = Map::new();
    let mut payload = Map::new();
    let mut put = |field: &str, value: Value| {
        let value = coerce(&args.event_type, field, value);
        if ENVELOPE.contains(&field) {
            envelope.insert(field.to_string(), value);
        } else {
            payload.insert(field.to_string(), value);
        }
    };
    for (field, value) in &args.sets {
        put(field, Value::String(value.clone()));
    }
    for (field, path) in &args.maps {
        if let Some(value) = path.query(item).first() {
            put(field, value.clone());
        }
    }
    envelope.insert("event_type".into(), Value::String(args.event_type.clone()));
    envelope
        .entry("event_time")
        .or_insert(Value::from(polled_at));
    let slot = match args.event_type.as_str() {
        "ad_click" | "price_tick" => args.event_type.clone(),
        _ => "generic".into(),
    };
    envelope.insert(slot, Value::Object(payload));
    if !envelope.contains_key("idempotency_key") {
        // The same observation polled twice (same fields, same time) is one event.
        let digest = Sha256::digest(Value::Object(envelope.clone()).to_string().as_bytes());
        let key = format!("poll:{}", hex::encode(&digest[..16]));
        envelope.insert("idempotency_key".into(), Value::String(key));
    }
    event::from_json(&Value::Object(envelope))
}

/// APIs often send prices as strings: numeric fields take numeric strings.
fn coerce(event_type: &str, field: &str, value: Value) -> Value {
    let numeric = event_type == "price_tick" && matches!(field, "price" | "volume");
    match value {
        Value::String(s) if numeric => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(s)),
        other => other,
    }
}
