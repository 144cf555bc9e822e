//! The gateway's routes as a whole: the OpenAPI document describes exactly
//! the routes served, the probes answer, and unknown routes or methods get
//! JSON errors.
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Gateway, status_and_json};

/// Every `$ref` in `value`.
fn refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get("$ref") {
                found.push(target.clone());
            }
            object.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_document_describes_exactly_the_routes_the_gateway_serves() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let (status, document) = status_and_json(
        gateway
            .http
            .get(gateway.url("/openapi.json"))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");

    let mut routes: Vec<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    routes.sort();
    let expected = [
        ("get", "/healthz"),
        ("get", "/openapi.json"),
        ("get", "/readyz"),
        ("get", "/v1/aggregates"),
        ("get", "/v1/price-accuracy"),
        ("post", "/submit"),
        ("post", "/v1/events"),
    ];
    assert_eq!(
        routes,
        expected.map(|(m, p)| (m.to_string(), p.to_string()))
    );
    for (method, path) in &routes {
        let operation = &document["paths"][path][method];
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{method} {path} has responses"
        );
        let response = gateway
            .http
            .request(method.to_uppercase().parse()?, gateway.url(path))
            .send()
            .await?;
        assert!(
            ![404, 405].contains(&response.status().as_u16()),
            "{method} {path} is served"
        );
    }

    let mut targets = Vec::new();
    refs(&document, &mut targets);
    assert!(targets.len() > 10);
    for target in targets {
        let pointer = target.strip_prefix('#').expect("a local reference");
        assert!(document.pointer(pointer).is_some(), "{target} resolves");
    }
    Ok(())
}

#[tokio::test]
async fn healthz_is_204_while_the_process_runs() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let response = gateway.http.get(gateway.url("/healthz")).send().await?;
    assert_eq!(response.status().as_u16(), 204);
    Ok(())
}

#[tokio::test]
async fn readyz_is_204_once_the_broker_and_registry_are_reachable() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = gateway
            .http
            .get(gateway.url("/readyz"))
            .send()
            .await?
            .status()
            .as_u16();
        if status == 204 {
            return Ok(());
        }
        assert_eq!(status, 503, "not ready yet is 503");
        assert!(Instant::now() < deadline, "not ready within 10 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn readyz_is_503_while_the_registry_is_unreachable() -> anyhow::Result<()> {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let gateway =
        Gateway::start_with(|config| config.registry.url = format!("http://{closed}")).await?;
    // Past the first checks of the health watcher (every 2 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let response = gateway.http.get(gateway.url("/readyz")).send().await?;
    assert_eq!(response.status().as_u16(), 503);
    Ok(())
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() -> anyhow::Result<()> {
    let gateway = Gateway::start().await?;
    let missing = gateway.http.get(gateway.url("/v2/nothing")).send().await?;
    assert_eq!(
        status_and_json(missing).await?,
        (
            404,
            json!({"error": "not_found", "message": "no route GET /v2/nothing; see GET /openapi.json"})
        )
    );
    let wrong_method = gateway.http.get(gateway.url("/submit")).send().await?;
    assert_eq!(
        status_and_json(wrong_method).await?,
        (
            405,
            json!({"error": "method_not_allowed", "message": "GET is not allowed on /submit; see GET /openapi.json"})
        )
    );
    Ok(())
}
