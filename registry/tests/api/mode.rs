//! `/mode`: read-write, read-only and import modes.
use reqwest::StatusCode;
use serde_json::json;

use crate::client::{TestRegistry, error};

#[tokio::test]
async fn global_mode_defaults_to_readwrite_and_can_be_changed() {
    let registry = TestRegistry::start().await;
    assert_eq!(
        registry.get("/mode").await.body,
        json!({"mode": "READWRITE"})
    );
    let put = registry.put("/mode", json!({"mode": "READONLY"})).await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.body, json!({"mode": "READONLY"}));
    assert_eq!(
        registry.get("/mode").await.body,
        json!({"mode": "READONLY"})
    );
}

#[tokio::test]
async fn unknown_mode_is_42204() {
    let registry = TestRegistry::start().await;
    let answer = registry.put("/mode", json!({"mode": "WRITEONLY"})).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.body,
        error(
            42204,
            "Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE, and IMPORT"
        )
    );
}

#[tokio::test]
async fn read_only_subject_refuses_registration_with_42205() {
    let registry = TestRegistry::start().await;
    let put = registry
        .put("/mode/locked", json!({"mode": "READONLY"}))
        .await;
    assert_eq!(put.body, json!({"mode": "READONLY"}));
    let answer = registry
        .post("/subjects/locked/versions", json!({"schema": "\"string\""}))
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.body,
        error(42205, "Subject locked is in read-only mode")
    );
    // Other subjects still accept registrations.
    assert_eq!(
        registry
            .post("/subjects/open/versions", json!({"schema": "\"string\""}))
            .await
            .body,
        json!({"id": 1})
    );
}

#[tokio::test]
async fn subject_mode_is_40409_unless_set_or_default_to_global() {
    let registry = TestRegistry::start().await;
    let answer = registry.get("/mode/s").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.body,
        error(
            40409,
            "Subject 's' does not have subject-level mode configured"
        )
    );
    assert_eq!(
        registry.get("/mode/s?defaultToGlobal=true").await.body,
        json!({"mode": "READWRITE"})
    );
    registry.put("/mode/s", json!({"mode": "IMPORT"})).await;
    assert_eq!(
        registry.get("/mode/s").await.body,
        json!({"mode": "IMPORT"})
    );
    assert_eq!(
        registry.delete("/mode/s").await.body,
        json!({"mode": "IMPORT"})
    );
}

#[tokio::test]
async fn import_mode_skips_the_compatibility_check() {
    let registry = TestRegistry::start().await;
    registry.register("s", &json!("int")).await;
    registry.put("/mode/s", json!({"mode": "IMPORT"})).await;
    assert_eq!(
        registry
            .post("/subjects/s/versions", json!({"schema": "\"string\""}))
            .await
            .body,
        json!({"id": 2})
    );
}

#[tokio::test]
async fn global_read_only_mode_refuses_registration_and_deletion() {
    let registry = TestRegistry::start().await;
    registry.register("s", &json!("int")).await;
    registry.put("/mode", json!({"mode": "READONLY"})).await;
    let register = registry
        .post("/subjects/t/versions", json!({"schema": "\"string\""}))
        .await;
    assert_eq!(
        register.body,
        error(42205, "Subject t is in read-only mode")
    );
    assert_eq!(
        registry.delete("/subjects/s").await.body,
        error(42205, "Subject s is in read-only mode")
    );
    assert_eq!(
        registry.delete("/subjects/s/versions/1").await.body,
        error(42205, "Subject s is in read-only mode")
    );
    // Reads still work.
    assert_eq!(registry.get("/subjects").await.body, json!(["s"]));
}
