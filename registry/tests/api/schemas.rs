//! Schemas by global id, and schema types.
use reqwest::StatusCode;
use serde_json::json;

use crate::client::{TestRegistry, error};

const EVENT: &str = r#"{"type":"record","name":"Event","fields":[{"type":"long","name":"at"}]}"#;

#[tokio::test]
async fn schema_by_id_returns_only_the_schema_for_avro() {
    let registry = TestRegistry::start().await;
    registry
        .post("/subjects/events/versions", json!({"schema": EVENT}))
        .await;
    let answer = registry.get("/schemas/ids/1").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, json!({"schema": EVENT}));
    let bare = registry.get("/schemas/ids/1/schema").await;
    assert_eq!(
        bare.body,
        serde_json::from_str::<serde_json::Value>(EVENT).unwrap()
    );
}

#[tokio::test]
async fn unknown_and_non_numeric_ids_are_40403() {
    let registry = TestRegistry::start().await;
    let answer = registry.get("/schemas/ids/99").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.body, error(40403, "Schema 99 not found"));
    assert_eq!(
        registry.get("/schemas/ids/abc").await.body,
        error(40403, "Schema abc not found")
    );
    assert_eq!(
        registry.get("/schemas/ids/99/subjects").await.body,
        error(40403, "Schema 99 not found")
    );
    assert_eq!(
        registry.get("/schemas/ids/99/versions").await.body,
        error(40403, "Schema 99 not found")
    );
    assert_eq!(
        registry.get("/schemas/ids/99/schema").await.body,
        error(40403, "Schema 99 not found")
    );
}

#[tokio::test]
async fn subjects_and_versions_of_an_id_list_every_use() {
    let registry = TestRegistry::start().await;
    registry
        .post("/subjects/b/versions", json!({"schema": EVENT}))
        .await;
    registry
        .post("/subjects/a/versions", json!({"schema": EVENT}))
        .await;
    assert_eq!(
        registry.get("/schemas/ids/1/subjects").await.body,
        json!(["a", "b"])
    );
    assert_eq!(
        registry.get("/schemas/ids/1/versions").await.body,
        json!([{"subject": "a", "version": 1}, {"subject": "b", "version": 1}])
    );
    registry.delete("/subjects/b").await;
    assert_eq!(
        registry.get("/schemas/ids/1/subjects").await.body,
        json!(["a"])
    );
    assert_eq!(
        registry
            .get("/schemas/ids/1/subjects?deleted=true")
            .await
            .body,
        json!(["a", "b"])
    );
}

#[tokio::test]
async fn schema_types_lists_avro() {
    let registry = TestRegistry::start().await;
    let answer = registry.get("/schemas/types").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, json!(["AVRO"]));
}
