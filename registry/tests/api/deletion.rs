//! Soft and hard deletion of subjects and versions, and their sequencing errors.
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{TestRegistry, error, record};

fn version(n: usize) -> Value {
    // Each version adds an optional field, so all are backward compatible.
    let mut fields: Vec<(String, Value)> = vec![("id".to_owned(), json!("long"))];
    for i in 1..n {
        fields.push((format!("f{i}"), json!(["null", "string"])));
    }
    let refs: Vec<(&str, Value)> = fields
        .iter()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect();
    let mut schema = record("Item", &refs);
    for i in 1..n {
        schema["fields"][i]["default"] = Value::Null;
    }
    schema
}

async fn with_versions(n: usize) -> TestRegistry {
    let registry = TestRegistry::start().await;
    for i in 1..=n {
        registry.register("items", &version(i)).await;
    }
    registry
}

#[tokio::test]
async fn soft_deleting_a_subject_returns_its_versions_and_hides_it() {
    let registry = with_versions(2).await;
    let answer = registry.delete("/subjects/items").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, json!([1, 2]));
    assert_eq!(registry.get("/subjects").await.body, json!([]));
    assert_eq!(
        registry.get("/subjects?deleted=true").await.body,
        json!(["items"])
    );
    assert_eq!(
        registry.get("/subjects/items/versions").await.body,
        error(40401, "Subject 'items' not found.")
    );
    assert_eq!(
        registry
            .get("/subjects/items/versions?deleted=true")
            .await
            .body,
        json!([1, 2])
    );
    assert_eq!(
        registry
            .get("/subjects/items/versions/1?deleted=true")
            .await
            .body["version"],
        json!(1)
    );
}

#[tokio::test]
async fn soft_deleting_a_soft_deleted_subject_is_40404() {
    let registry = with_versions(1).await;
    registry.delete("/subjects/items").await;
    let again = registry.delete("/subjects/items").await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(
        again.body,
        error(
            40404,
            "Subject 'items' was soft deleted.Set permanent=true to delete permanently"
        )
    );
}

#[tokio::test]
async fn hard_deleting_a_subject_before_soft_deleting_it_is_40405() {
    let registry = with_versions(1).await;
    let answer = registry.delete("/subjects/items?permanent=true").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.body,
        error(
            40405,
            "Subject 'items' was not deleted first before being permanently deleted"
        )
    );
}

#[tokio::test]
async fn hard_delete_after_soft_delete_removes_the_subject_for_good() {
    let registry = with_versions(2).await;
    registry.delete("/subjects/items").await;
    let answer = registry.delete("/subjects/items?permanent=true").await;
    assert_eq!(answer.body, json!([1, 2]));
    assert_eq!(registry.get("/subjects?deleted=true").await.body, json!([]));
    assert_eq!(
        registry.delete("/subjects/items").await.body,
        error(40401, "Subject 'items' not found.")
    );
}

#[tokio::test]
async fn deleting_an_unknown_subject_is_40401() {
    let registry = TestRegistry::start().await;
    assert_eq!(
        registry.delete("/subjects/none").await.body,
        error(40401, "Subject 'none' not found.")
    );
    assert_eq!(
        registry.delete("/subjects/none/versions/1").await.body,
        error(40401, "Subject 'none' not found.")
    );
}

#[tokio::test]
async fn soft_deleted_version_is_excluded_from_listing_but_visible_with_deleted() {
    let registry = with_versions(2).await;
    let answer = registry.delete("/subjects/items/versions/1").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, json!(1));
    assert_eq!(
        registry.get("/subjects/items/versions").await.body,
        json!([2])
    );
    assert_eq!(
        registry
            .get("/subjects/items/versions?deleted=true")
            .await
            .body,
        json!([1, 2])
    );
    assert_eq!(
        registry.get("/subjects/items/versions/1").await.body,
        error(40402, "Version 1 not found.")
    );
}

#[tokio::test]
async fn soft_deleting_a_soft_deleted_version_is_40406() {
    let registry = with_versions(2).await;
    registry.delete("/subjects/items/versions/1").await;
    let again = registry.delete("/subjects/items/versions/1").await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(
        again.body,
        error(
            40406,
            "Subject 'items' Version 1 was soft deleted.Set permanent=true to delete permanently"
        )
    );
}

#[tokio::test]
async fn hard_deleting_a_version_before_soft_deleting_it_is_40407() {
    let registry = with_versions(2).await;
    let answer = registry
        .delete("/subjects/items/versions/2?permanent=true")
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.body,
        error(
            40407,
            "Subject 'items' Version 2 was not deleted first before being permanently deleted"
        )
    );
}

#[tokio::test]
async fn deleting_an_unknown_or_invalid_version_is_40402_or_42202() {
    let registry = with_versions(1).await;
    assert_eq!(
        registry.delete("/subjects/items/versions/7").await.body,
        error(40402, "Version 7 not found.")
    );
    assert_eq!(
        registry.delete("/subjects/items/versions/0").await.body["error_code"],
        json!(42202)
    );
}

#[tokio::test]
async fn deleting_latest_deletes_the_highest_live_version() {
    let registry = with_versions(3).await;
    assert_eq!(
        registry
            .delete("/subjects/items/versions/latest")
            .await
            .body,
        json!(3)
    );
    assert_eq!(
        registry
            .delete("/subjects/items/versions/latest")
            .await
            .body,
        json!(2)
    );
    assert_eq!(
        registry.get("/subjects/items/versions").await.body,
        json!([1])
    );
}

#[tokio::test]
async fn versions_continue_after_soft_delete() {
    let registry = with_versions(2).await;
    registry.delete("/subjects/items/versions/2").await;
    registry.register("items", &version(3)).await;
    assert_eq!(
        registry.get("/subjects/items/versions").await.body,
        json!([1, 3])
    );
}

#[tokio::test]
async fn re_registering_a_soft_deleted_schema_creates_a_new_version_with_the_same_id() {
    let registry = with_versions(1).await;
    registry.delete("/subjects/items").await;
    let id = registry.register("items", &version(1)).await;
    assert_eq!(id, 1);
    assert_eq!(
        registry.get("/subjects/items/versions").await.body,
        json!([2])
    );
}

#[tokio::test]
async fn after_a_hard_delete_re_registering_the_same_schema_returns_the_same_id() {
    let registry = with_versions(2).await;
    registry.delete("/subjects/items").await;
    registry.delete("/subjects/items?permanent=true").await;
    assert_eq!(registry.register("items", &version(2)).await, 2);
    assert_eq!(
        registry.get("/subjects/items/versions/latest").await.body["version"],
        json!(1)
    );
    // The id still resolves for data written before the delete.
    assert_eq!(registry.get("/schemas/ids/1").await.status, StatusCode::OK);
}

#[tokio::test]
async fn soft_deleted_versions_are_not_compared_for_compatibility() {
    let registry = TestRegistry::start().await;
    registry
        .register("s", &record("R", &[("a", json!("int"))]))
        .await;
    registry.delete("/subjects/s/versions/1").await;
    // Would be incompatible with version 1 (new field without default).
    let id = registry
        .register("s", &record("R", &[("b", json!("string"))]))
        .await;
    assert_eq!(id, 2);
}

#[tokio::test]
async fn lookup_and_read_find_soft_deleted_versions_only_with_deleted_true() {
    let registry = with_versions(2).await;
    registry.delete("/subjects/items/versions/1").await;
    let schema = json!({"schema": version(1).to_string()});
    assert_eq!(
        registry.post("/subjects/items", schema.clone()).await.body,
        error(40403, "Schema not found")
    );
    let found = registry.post("/subjects/items?deleted=true", schema).await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.body["version"], json!(1));
    assert_eq!(found.body["id"], json!(1));
    let read = registry
        .get("/subjects/items/versions/1?deleted=true")
        .await;
    assert_eq!(read.body["version"], json!(1));
}
