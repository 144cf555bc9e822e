//! `trib poll` turns a JSON HTTP API into events (polling it twice: the same
//! observations are counted once), and `trib query --json` shows the
//! resulting aggregates.
use std::time::Duration;

use axum::{Json, Router, routing::get};
use serde_json::{Value, json};
use tributary_stack::{TestStack, ingest::RunningIngest, processor, sink};

const MINUTE: i64 = 60_000;

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[tokio::test]
async fn trib_poll_streams_a_json_api_as_events_and_trib_query_json_shows_the_aggregates()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let sink = sink::start(&stack, |_| {}).await?;
    let processor = processor::start(&stack, processor::quick_windows).await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;

    let w = (chrono::Utc::now().timestamp_millis() / MINUTE - 5) * MINUTE;
    let body = json!({"data": [
        {"symbol": "ETH-USD", "last": "3000.5", "at": w + 1000},
        {"symbol": "ETH-USD", "last": "3001.5", "at": w + 2000},
    ]});
    let api = Router::new().route("/prices", get(move || async move { Json(body.clone()) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_url = format!("http://{}/prices", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, api).await });

    let polled = tokio::process::Command::new(env!("CARGO_BIN_EXE_trib"))
        .args([
            "poll", "--url", &api_url, "--every", "100ms", "--polls", "2",
        ])
        .args(["--type", "price_tick", "--items", "$.data"])
        .args([
            "--map",
            "pair=$.symbol",
            "--map",
            "price=$.last",
            "--map",
            "event_time=$.at",
        ])
        .args([
            "--set",
            "source=api-test",
            "--ingest-url",
            &ingest.grpc_url(),
        ])
        .output()
        .await?;
    assert_eq!(
        String::from_utf8(polled.stdout)?,
        "acked: 4\nrejected: 0\n",
        "{}",
        String::from_utf8_lossy(&polled.stderr)
    );
    assert_eq!(
        String::from_utf8(polled.stderr)?,
        "poll 1: 2 items, 2 acked, 0 rejected\npoll 2: 2 items, 2 acked, 0 rejected\n"
    );
    assert_eq!(polled.status.code(), Some(0));

    let expected = json!([{
        "event_type": "price_tick", "key": "ETH-USD/api-test",
        "window_start": rfc3339(w), "window_end": rfc3339(w + MINUTE),
        "count": 2, "min": 3000.5, "max": 3001.5, "sum": 6002.0, "avg": 3001.0, "last": 3001.5,
        "revisions": 0
    }]);
    let mut got = Value::Null;
    for _ in 0..300 {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_trib"))
            .args([
                "query",
                "--url",
                &ingest.grpc_url(),
                "--type",
                "price_tick",
                "--json",
            ])
            .args(["--from", &rfc3339(w), "--to", &rfc3339(w + MINUTE)])
            .output()
            .await?;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        got = serde_json::from_slice(&output.stdout)?;
        if got == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(got, expected);

    processor.shutdown().await?;
    sink.shutdown().await?;
    Ok(())
}
