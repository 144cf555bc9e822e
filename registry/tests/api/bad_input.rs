//! Client mistakes get a specific 4xx error, never a 500.
use reqwest::{Method, StatusCode};
use serde_json::json;
use tributary_registry::{config::RegistryConfig, startup::Registry};

use crate::client::{TestRegistry, V1_JSON, answer, error};

#[tokio::test]
async fn malformed_json_body_is_400() {
    let registry = TestRegistry::start().await;
    let response = registry
        .request(Method::POST, "/subjects/s/versions")
        .header("Content-Type", V1_JSON)
        .body("{\"schema\": ")
        .send()
        .await
        .unwrap();
    let answer = answer(response).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.body,
        error(
            400,
            "Malformed JSON: EOF while parsing a value at line 1 column 11"
        )
    );
}

#[tokio::test]
async fn body_of_the_wrong_shape_is_422() {
    let registry = TestRegistry::start().await;
    let answer = registry
        .post("/subjects/s/versions", json!({"schema": 5}))
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.body,
        error(
            422,
            "Invalid request: invalid type: integer `5`, expected a string at line 1 column 11"
        )
    );
}

#[tokio::test]
async fn missing_schema_is_42201() {
    let registry = TestRegistry::start().await;
    let answer = registry.post("/subjects/s/versions", json!({})).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.body,
        error(42201, "Invalid schema: the request has no schema")
    );
}

#[tokio::test]
async fn schema_text_that_is_not_json_is_42201() {
    let registry = TestRegistry::start().await;
    let answer = registry
        .post("/subjects/s/versions", json!({"schema": "{not json"}))
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.body,
        error(
            42201,
            "Invalid schema: the schema is not valid JSON: key must be a string at line 1 column 2"
        )
    );
}

#[tokio::test]
async fn invalid_avro_is_42201() {
    let registry = TestRegistry::start().await;
    for schema in [
        r#"{"type":"record","name":"R"}"#,
        r#"{"type":"recrod","name":"R","fields":[]}"#,
        r#"{"type":"enum","name":"E","symbols":["A","A"]}"#,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"Unknown"}]}"#,
    ] {
        let answer = registry
            .post("/subjects/s/versions", json!({"schema": schema}))
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{schema}");
        assert_eq!(answer.body["error_code"], json!(42201), "{schema}");
        assert!(
            answer.body["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid schema: "),
            "{schema}"
        );
    }
    assert_eq!(registry.get("/subjects").await.body, json!([]));
}

#[tokio::test]
async fn unsupported_schema_type_is_42201() {
    let registry = TestRegistry::start().await;
    let answer = registry
        .post(
            "/subjects/s/versions",
            json!({"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"}),
        )
        .await;
    assert_eq!(
        answer.body,
        error(
            42201,
            "Invalid schema: unsupported schema type 'PROTOBUF': this registry stores AVRO schemas only"
        )
    );
}

#[tokio::test]
async fn reference_to_a_missing_subject_is_42201() {
    let registry = TestRegistry::start().await;
    let refs = json!([{"name": "acme.Address", "subject": "address", "version": 1}]);
    let schema = r#"{"type":"record","name":"P","fields":[{"name":"a","type":"acme.Address"}]}"#;
    let answer = registry
        .post(
            "/subjects/p/versions",
            json!({"schema": schema, "references": refs}),
        )
        .await;
    assert_eq!(
        answer.body,
        error(
            42201,
            "Invalid schema: reference 'acme.Address' not found: subject 'address' version 1"
        )
    );
}

#[tokio::test]
async fn subject_with_control_characters_is_42208() {
    let registry = TestRegistry::start().await;
    let answer = registry
        .post("/subjects/a%0Ab/versions", json!({"schema": "\"string\""}))
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.body,
        error(
            42208,
            "The specified subject 'a\\nb' is not valid: a subject is non-empty text without control characters"
        )
    );
}

#[tokio::test]
async fn subject_with_invalid_utf8_is_a_422_not_a_500() {
    let registry = TestRegistry::start().await;
    let answer = registry.get("/subjects/%FF%FE/versions").await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.body["error_code"], json!(422));
}

#[tokio::test]
async fn oversized_schema_is_refused_with_the_configured_limit() {
    let database = tributary_testkit::postgres::TestDatabase::create()
        .await
        .unwrap();
    let mut config = RegistryConfig::new(([127, 0, 0, 1], 0).into(), database.url());
    config.max_schema_bytes = 100;
    let registry = Registry::build(&config).await.unwrap();
    let url = format!("http://{}", registry.local_addr());
    let server = tokio::spawn(registry.serve(std::future::pending()));
    let fields: Vec<_> = (0..10)
        .map(|i| json!({"name": format!("field{i}"), "type": "string"}))
        .collect();
    let schema = json!({"type": "record", "name": "Big", "fields": fields}).to_string();
    let response = reqwest::Client::new()
        .post(format!("{url}/subjects/big/versions"))
        .json(&json!({"schema": schema}))
        .send()
        .await
        .unwrap();
    let refused = answer(response).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.body,
        error(
            42201,
            &format!(
                "Invalid schema: the schema is {} bytes, more than the limit of 100 bytes",
                schema.len()
            )
        )
    );
    // A body far beyond any schema the limit allows is cut off before it is read whole.
    let huge = "x".repeat(200 * 1024);
    let response = reqwest::Client::new()
        .post(format!("{url}/subjects/big/versions"))
        .json(&json!({"schema": huge}))
        .send()
        .await
        .unwrap();
    let too_large = answer(response).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.body, error(413, "Request body too large"));
    server.abort();
}
