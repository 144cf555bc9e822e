//! Media types: the three JSON types are read, others refused with 415/406.
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::client::{TestRegistry, V1_JSON, answer, error};

#[tokio::test]
async fn each_registry_json_media_type_is_accepted() {
    let registry = TestRegistry::start().await;
    for (i, media) in [
        "application/vnd.schemaregistry.v1+json",
        "application/vnd.schemaregistry+json",
        "application/json; charset=utf-8",
    ]
    .into_iter()
    .enumerate()
    {
        let response = registry
            .request(Method::POST, &format!("/subjects/s{i}/versions"))
            .header("Content-Type", media)
            .header("Accept", media)
            .body(json!({"schema": "\"string\""}).to_string())
            .send()
            .await
            .unwrap();
        let answer = answer(response).await;
        assert_eq!(answer.status, StatusCode::OK, "{media}");
        assert_eq!(answer.content_type, V1_JSON);
    }
}

#[tokio::test]
async fn other_request_media_types_are_415() {
    let registry = TestRegistry::start().await;
    let response = registry
        .request(Method::POST, "/subjects/s/versions")
        .header("Content-Type", "text/plain")
        .body(json!({"schema": "\"string\""}).to_string())
        .send()
        .await
        .unwrap();
    let answer = answer(response).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(answer.content_type, V1_JSON);
    assert_eq!(answer.body, error(415, "HTTP 415 Unsupported Media Type"));
}

#[tokio::test]
async fn clients_accepting_no_json_type_get_406() {
    let registry = TestRegistry::start().await;
    let response = registry
        .request(Method::GET, "/subjects")
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    let answer = answer(response).await;
    assert_eq!(answer.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(answer.body, error(406, "HTTP 406 Not Acceptable"));
    let wildcard = registry
        .request(Method::GET, "/subjects")
        .header("Accept", "*/*")
        .send()
        .await
        .unwrap();
    assert_eq!(wildcard.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let registry = TestRegistry::start().await;
    let route = registry.get("/nothing/here").await;
    assert_eq!(route.status, StatusCode::NOT_FOUND);
    assert_eq!(route.body, error(404, "HTTP 404 Not Found"));
    let method = registry.call(Method::PATCH, "/subjects", None).await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(method.body, error(405, "HTTP 405 Method Not Allowed"));
}
