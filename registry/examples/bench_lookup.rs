//! Latency of `GET /schemas/ids/{id}` under a fixed request rate.
//!
//! Starts a registry on a loopback port over a fresh database (or
//! `--database-url`), registers one schema, and drives an open-loop load: the
//! requests are sent on a fixed schedule whatever the answers do, so a slow
//! answer cannot hold back the next request and hide its own cost. The same
//! client then drives a minimal axum handler that returns the same body, as a
//! baseline for what the machine, the runtime and the client cost on their own.
//!
//! `cargo run --release -p tributary-registry --example bench_lookup -- --rate 2000 --seconds 10`
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use axum::{Router, routing::get};
use clap::Parser;
use tokio::net::TcpListener;
use tributary_registry::{config::RegistryConfig, startup::Registry};

/// Open-loop load on the registry's hottest endpoint, with a baseline.
#[derive(Parser, Debug)]
struct Args {
    /// Requests per second.
    #[arg(long, default_value_t = 2000)]
    rate: u32,
    /// Seconds of measured load (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Database to use instead of a fresh test database.
    #[arg(long)]
    database_url: Option<String>,
}

const SCHEMA: &str = r#"{"type":"record","name":"AdClick","namespace":"tributary","fields":[{"name":"ip_address","type":"string"},{"name":"user_agent","type":"string"},{"name":"referring_url","type":"string"},{"name":"advertiser_id","type":"long"},{"name":"metadata","type":{"type":"map","values":"string"}},{"name":"event_time","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;

/// Latency summary of one run.
struct Summary {
    achieved_rate: f64,
    p50: Duration,
    p99: Duration,
    p999: Duration,
    errors: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let test_database;
    let database_url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            test_database = tributary_testkit::postgres::TestDatabase::create().await?;
            test_database.url().to_owned()
        }
    };
    let registry = Registry::build(&RegistryConfig::new(
        ([127, 0, 0, 1], 0).into(),
        &database_url,
    ))
    .await?;
    let registry_url = format!("http://{}", registry.local_addr());
    tokio::spawn(registry.serve(std::future::pending()));

    let client = reqwest::Client::new();
    let registered: serde_json::Value = client
        .post(format!("{registry_url}/subjects/bench-value/versions"))
        .json(&serde_json::json!({"schema": SCHEMA}))
        .send()
        .await?
        .json()
        .await?;
    let id = registered["id"]
        .as_i64()
        .context("registration returned no id")?;
    let body = client
        .get(format!("{registry_url}/schemas/ids/{id}"))
        .send()
        .await?
        .bytes()
        .await?;

    let baseline_listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let baseline_url = format!("http://{}", baseline_listener.local_addr()?);
    let fixed = body.clone();
    let baseline = Router::new().route(
        "/schemas/ids/{id}",
        get(move || {
            let fixed = fixed.clone();
            async move {
                (
                    [("content-type", "application/vnd.schemaregistry.v1+json")],
                    fixed,
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(baseline_listener, baseline).await });

    println!(
        "GET /schemas/ids/{id} at {} req/s for {} s (open loop, loopback)",
        args.rate, args.seconds
    );
    let ours = drive(&client, &format!("{registry_url}/schemas/ids/{id}"), &args).await;
    report("registry", &ours);
    let raw = drive(&client, &format!("{baseline_url}/schemas/ids/{id}"), &args).await;
    report("baseline", &raw);
    println!(
        "ratio registry/baseline: p50 {:.2}x, p99 {:.2}x",
        ours.p50.as_secs_f64() / raw.p50.as_secs_f64(),
        ours.p99.as_secs_f64() / raw.p99.as_secs_f64()
    );
    Ok(())
}

fn report(name: &str, summary: &Summary) {
    println!(
        "{name:>8}: achieved {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, errors {}",
        summary.achieved_rate,
        summary.p50.as_secs_f64() * 1e3,
        summary.p99.as_secs_f64() * 1e3,
        summary.p999.as_secs_f64() * 1e3,
        summary.errors
    );
}

/// Sends `rate` requests per second to `url` on a fixed schedule: one second of
/// warm-up, then `seconds` measured. Each latency runs from the moment its
/// request is issued to the end of its body.
async fn drive(client: &reqwest::Client, url: &str, args: &Args) -> Summary {
    let warmup = args.rate as usize;
    let total = warmup + (args.rate * args.seconds) as usize;
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let errors = Arc::new(Mutex::new(0usize));
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let start = tokio::time::Instant::now();
    let mut measured_start = None;
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        tokio::time::sleep_until(start + interval * i as u32).await;
        if i == warmup {
            measured_start = Some(Instant::now());
        }
        let (client, url, latencies, errors) = (
            client.clone(),
            url.to_owned(),
            latencies.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let ok = match client.get(&url).send().await {
                Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                Err(_) => false,
            };
            if i < warmup {
                return;
            }
            if ok {
                latencies.lock().expect("latencies").push(sent.elapsed());
            } else {
                *errors.lock().expect("errors") += 1;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = measured_start.expect("measured phase started").elapsed();
    let mut latencies = std::mem::take(&mut *latencies.lock().expect("latencies"));
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Summary {
        achieved_rate: (total - warmup) as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
        errors: *errors.lock().expect("errors"),
    }
}
