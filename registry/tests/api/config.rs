//! `/config`: global and per-subject compatibility levels.
use reqwest::StatusCode;
use serde_json::json;

use crate::client::{TestRegistry, error};

const INVALID_LEVEL: &str = "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive";

#[tokio::test]
async fn global_level_defaults_to_backward_and_can_be_changed_and_reset() {
    let registry = TestRegistry::start().await;
    let answer = registry.get("/config").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, json!({"compatibilityLevel": "BACKWARD"}));
    let put = registry
        .put("/config", json!({"compatibility": "FULL_TRANSITIVE"}))
        .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.body, json!({"compatibility": "FULL_TRANSITIVE"}));
    assert_eq!(
        registry.get("/config").await.body,
        json!({"compatibilityLevel": "FULL_TRANSITIVE"})
    );
    let reset = registry.delete("/config").await;
    assert_eq!(reset.body, json!({"compatibilityLevel": "FULL_TRANSITIVE"}));
    assert_eq!(
        registry.get("/config").await.body,
        json!({"compatibilityLevel": "BACKWARD"})
    );
}

#[tokio::test]
async fn every_level_is_accepted_in_any_case() {
    let registry = TestRegistry::start().await;
    for level in [
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    ] {
        let put = registry
            .put("/config/s", json!({"compatibility": level.to_lowercase()}))
            .await;
        assert_eq!(put.body, json!({"compatibility": level}));
        assert_eq!(
            registry.get("/config/s").await.body,
            json!({"compatibilityLevel": level})
        );
    }
}

#[tokio::test]
async fn unknown_or_missing_level_is_42203() {
    let registry = TestRegistry::start().await;
    let answer = registry
        .put("/config", json!({"compatibility": "SIDEWAYS"}))
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.body, error(42203, INVALID_LEVEL));
    assert_eq!(
        registry.put("/config/s", json!({})).await.body,
        error(42203, INVALID_LEVEL)
    );
}

#[tokio::test]
async fn subject_without_its_own_level_is_40408_unless_default_to_global() {
    let registry = TestRegistry::start().await;
    let answer = registry.get("/config/orders").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.body,
        error(
            40408,
            "Subject 'orders' does not have subject-level compatibility configured"
        )
    );
    registry
        .put("/config", json!({"compatibility": "NONE"}))
        .await;
    let fallback = registry.get("/config/orders?defaultToGlobal=true").await;
    assert_eq!(fallback.body, json!({"compatibilityLevel": "NONE"}));
}

#[tokio::test]
async fn deleting_a_subject_level_returns_it_and_falls_back_to_global() {
    let registry = TestRegistry::start().await;
    registry
        .put("/config/orders", json!({"compatibility": "FORWARD"}))
        .await;
    let answer = registry.delete("/config/orders").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, json!({"compatibilityLevel": "FORWARD"}));
    assert_eq!(
        registry.get("/config/orders").await.body["error_code"],
        json!(40408)
    );
    assert_eq!(
        registry.delete("/config/orders").await.body,
        error(40401, "Subject 'orders' not found.")
    );
}

#[tokio::test]
async fn subject_level_overrides_global_level_for_registration() {
    let registry = TestRegistry::start().await;
    registry.register("s", &json!("int")).await;
    registry
        .put("/config/s", json!({"compatibility": "NONE"}))
        .await;
    // int -> string is incompatible under the global BACKWARD but allowed under NONE.
    let answer = registry
        .post("/subjects/s/versions", json!({"schema": "\"string\""}))
        .await;
    assert_eq!(answer.body, json!({"id": 2}));
}
