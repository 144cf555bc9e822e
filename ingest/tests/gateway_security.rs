//! The JSON gateway's transport and access rules against a real stack: TLS
//! with `--tls-cert`/`--tls-key` (the handshake with a generated certificate,
//! plain HTTP refused), CORS restricted to `--cors-allowed-origin`, and the
//! per-key rate limit (429 with `Retry-After`).
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Gateway, click_body, records_in, status_and_json};
use tributary_stack::certs::TestCertificates;

const AD_CLICK_TOPIC: &str = "tributary.events.ad_click";

/// The gateway's URL over TLS, by the name the certificate carries.
fn https_url(gateway: &Gateway, path: &str) -> String {
    let port = gateway
        .ingest
        .http_url()
        .rsplit(':')
        .next()
        .expect("a port")
        .to_string();
    format!("https://localhost:{port}{path}")
}

#[tokio::test]
async fn over_tls_a_client_trusting_the_ca_submits_and_plain_http_is_refused() -> anyhow::Result<()>
{
    let certs = TestCertificates::generate()?;
    let gateway = Gateway::start_with(|config| {
        config.edge.tls.cert = Some(certs.cert());
        config.edge.tls.key = Some(certs.key());
        config.edge.auth.api_keys = vec!["secret".into()];
    })
    .await?;
    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&certs.ca_pem()?)?])
        .build()?;

    let stored = trusting
        .post(https_url(&gateway, "/submit"))
        .bearer_auth("secret")
        .json(&click_body("adv-tls"))
        .send()
        .await?;
    assert_eq!(stored.status().as_u16(), 204);
    assert_eq!(records_in(&gateway.kafka(), AD_CLICK_TOPIC).await?, 1);

    // The key check holds over TLS too.
    let wrong_key = trusting
        .post(https_url(&gateway, "/submit"))
        .bearer_auth("guess")
        .json(&click_body("adv-tls"))
        .send()
        .await?;
    assert_eq!(
        status_and_json(wrong_key).await?,
        (
            401,
            json!({"error": "unauthenticated", "message": "the API key is not valid"})
        )
    );

    // A client that does not trust the CA fails the handshake.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only(Vec::<reqwest::Certificate>::new())
        .build()?;
    let error = untrusting
        .post(https_url(&gateway, "/submit"))
        .bearer_auth("secret")
        .json(&click_body("adv-tls"))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");

    // Plain HTTP to the TLS port gets no HTTP answer at all.
    let plain = gateway
        .post_json("/submit", &click_body("adv-tls"))
        .bearer_auth("secret")
        .timeout(Duration::from_secs(15))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    assert_eq!(records_in(&gateway.kafka(), AD_CLICK_TOPIC).await?, 1);

    // The listener keeps serving TLS after the failed handshakes.
    let again = trusting.get(https_url(&gateway, "/healthz")).send().await?;
    assert_eq!(again.status().as_u16(), 204);
    Ok(())
}

const ALLOWED: &str = "https://dashboard.example.com";

fn preflight(gateway: &Gateway, origin: &str) -> reqwest::RequestBuilder {
    gateway
        .http
        .request(reqwest::Method::OPTIONS, gateway.url("/submit"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization, traceparent",
        )
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() -> anyhow::Result<()> {
    let gateway = Gateway::start_with(|config| {
        config.edge.cors_allowed_origins = vec![ALLOWED.into(), "http://localhost:3000".into()];
    })
    .await?;

    let allowed = preflight(&gateway, ALLOWED).send().await?;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], ALLOWED);
    let methods = headers["access-control-allow-methods"]
        .to_str()?
        .to_string();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let allowed_headers = headers["access-control-allow-headers"]
        .to_str()?
        .to_ascii_lowercase();
    for name in ["content-type", "authorization", "traceparent"] {
        assert!(allowed_headers.contains(name), "{allowed_headers}");
    }

    let refused = preflight(&gateway, "https://evil.example.com")
        .send()
        .await?;
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin"),
        "{:?}",
        refused.headers()
    );

    // The actual request: the allowed origin may read the response, and even
    // an error response (so a browser sees the 400's body), the other may not.
    let submitted = gateway
        .post_json("/submit", &click_body("adv-cors"))
        .header("origin", "http://localhost:3000")
        .send()
        .await?;
    assert_eq!(submitted.status().as_u16(), 204);
    assert_eq!(
        submitted.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let invalid = gateway
        .post_json("/submit", &json!({}))
        .header("origin", ALLOWED)
        .send()
        .await?;
    assert_eq!(invalid.status().as_u16(), 400);
    assert_eq!(invalid.headers()["access-control-allow-origin"], ALLOWED);
    let other = gateway
        .post_json("/submit", &click_body("adv-cors"))
        .header("origin", "https://evil.example.com")
        .send()
        .await?;
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    Ok(())
}

#[tokio::test]
async fn without_configured_origins_there_are_no_cors_headers() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let answer = preflight(&gateway, ALLOWED).send().await?;
    assert!(
        !answer.headers().contains_key("access-control-allow-origin"),
        "{:?}",
        answer.headers()
    );
    let submitted = gateway
        .post_json("/submit", &click_body("adv-cors"))
        .header("origin", ALLOWED)
        .send()
        .await?;
    assert_eq!(submitted.status().as_u16(), 204);
    assert!(
        !submitted
            .headers()
            .contains_key("access-control-allow-origin")
    );
    Ok(())
}

fn retry_after(response: &reqwest::Response) -> anyhow::Result<u64> {
    Ok(response
        .headers()
        .get("retry-after")
        .ok_or_else(|| anyhow::anyhow!("no Retry-After: {:?}", response.headers()))?
        .to_str()?
        .parse()?)
}

#[tokio::test]
async fn over_its_rate_limit_a_key_gets_429_with_retry_after_and_other_keys_do_not()
-> anyhow::Result<()> {
    let gateway = Gateway::start_with(|config| {
        config.edge.auth.api_keys = vec!["busy".into(), "quiet".into(), "warm-up".into()];
        config.edge.rate_limit.per_second = Some(1.0);
        config.edge.rate_limit.burst = Some(3.0);
    })
    .await?;
    let submit = |key: &'static str| {
        gateway
            .post_json("/submit", &click_body("adv-rate"))
            .bearer_auth(key)
            .send()
    };
    // The first event creates the topic, which takes a while: not on the
    // keys under test.
    assert_eq!(submit("warm-up").await?.status().as_u16(), 204);
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(submit("busy").await?.status().as_u16(), 204);
    }
    let limited = submit("busy").await?;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the burst took {:?}: tokens refilled meanwhile",
        started.elapsed()
    );
    let wait = retry_after(&limited)?;
    assert_eq!(wait, 1, "one token per second: at most a second to wait");
    let (status, body) = status_and_json(limited).await?;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "resource_exhausted");
    assert!(body["request_id"].is_string(), "{body}");
    assert_eq!(records_in(&gateway.kafka(), AD_CLICK_TOPIC).await?, 1 + 3);

    // After Retry-After the key works again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(submit("busy").await?.status().as_u16(), 204);

    // Another key has its own bucket.
    assert_eq!(submit("quiet").await?.status().as_u16(), 204);

    // A batch is charged per event: 5 events need a full bucket of 3, and
    // "quiet" has 2 left.
    let batch: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            json!({"event_time": support::now_ms(), "idempotency_key": format!("b-{i}"),
                   "ad_click": {"ip_address": "203.0.113.7", "user_agent": "ua", "referring_url": "https://example.com/", "advertiser_id": "adv-rate"}})
        })
        .collect();
    let post_batch = || {
        gateway
            .post_json("/v1/events", &json!(batch))
            .bearer_auth("quiet")
            .send()
    };
    let refused = post_batch().await?;
    assert_eq!(refused.status().as_u16(), 429);
    let wait = retry_after(&refused)?;
    assert_eq!(wait, 1);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let accepted = post_batch().await?;
    let (status, body) = status_and_json(accepted).await?;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 5);
    assert!(results.iter().all(|r| r.get("ack").is_some()), "{body}");
    // The batch left 2 tokens of debt: the next event waits 3 s (the debt
    // plus its own token).
    let after_batch = submit("quiet").await?;
    assert_eq!(after_batch.status().as_u16(), 429);
    assert_eq!(retry_after(&after_batch)?, 3);
    assert_eq!(
        records_in(&gateway.kafka(), AD_CLICK_TOPIC).await?,
        1 + 3 + 1 + 1 + 5
    );
    Ok(())
}
