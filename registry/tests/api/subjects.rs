//! Registering, looking up, listing and reading subject versions.
use reqwest::StatusCode;
use serde_json::json;

use crate::client::{TestRegistry, V1_JSON, error, record};

const USER_V1: &str =
    r#"{"type":"record","name":"User","fields":[{"type":"string","name":"name"}]}"#;

#[tokio::test]
async fn first_registration_gets_id_1_and_version_1() {
    let registry = TestRegistry::start().await;
    let answer = registry
        .post("/subjects/users-value/versions", json!({"schema": USER_V1}))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type, V1_JSON);
    assert_eq!(answer.body, json!({"id": 1}));

    let version = registry.get("/subjects/users-value/versions/1").await;
    assert_eq!(version.status, StatusCode::OK);
    assert_eq!(
        version.body,
        json!({"subject": "users-value", "version": 1, "id": 1, "schema": USER_V1})
    );
}

#[tokio::test]
async fn same_schema_with_other_whitespace_and_key_order_returns_the_existing_id_and_version() {
    let registry = TestRegistry::start().await;
    registry
        .post("/subjects/users-value/versions", json!({"schema": USER_V1}))
        .await;
    let reordered = "{ \"fields\": [ { \"name\": \"name\", \"type\": \"string\" } ],\n  \"name\": \"User\", \"type\": \"record\" }";
    let again = registry
        .post(
            "/subjects/users-value/versions",
            json!({"schema": reordered, "schemaType": "AVRO"}),
        )
        .await;
    assert_eq!(again.body, json!({"id": 1}));
    assert_eq!(
        registry.get("/subjects/users-value/versions").await.body,
        json!([1])
    );
}

#[tokio::test]
async fn same_schema_under_another_subject_gets_the_same_global_id() {
    let registry = TestRegistry::start().await;
    registry
        .post("/subjects/a/versions", json!({"schema": USER_V1}))
        .await;
    let other = registry
        .post("/subjects/b/versions", json!({"schema": USER_V1}))
        .await;
    assert_eq!(other.body, json!({"id": 1}));
    assert_eq!(
        registry.get("/subjects/b/versions/latest").await.body["version"],
        json!(1)
    );
    assert_eq!(
        registry.get("/schemas/ids/1/subjects").await.body,
        json!(["a", "b"])
    );
}

#[tokio::test]
async fn compatible_new_schema_gets_the_next_id_and_version() {
    let registry = TestRegistry::start().await;
    registry
        .register("users", &serde_json::from_str(USER_V1).unwrap())
        .await;
    let v2 = record(
        "User",
        &[("name", json!("string")), ("age", json!(["null", "int"]))],
    );
    let mut v2 = v2;
    v2["fields"][1]["default"] = json!(null);
    assert_eq!(registry.register("users", &v2).await, 2);
    assert_eq!(
        registry.get("/subjects/users/versions").await.body,
        json!([1, 2])
    );
    let latest = registry.get("/subjects/users/versions/latest").await;
    assert_eq!(latest.body["version"], json!(2));
    assert_eq!(latest.body["id"], json!(2));
    assert_eq!(
        registry.get("/subjects/users/versions/-1").await.body,
        latest.body
    );
}

#[tokio::test]
async fn version_schema_endpoint_returns_the_bare_schema() {
    let registry = TestRegistry::start().await;
    registry
        .post("/subjects/users/versions", json!({"schema": USER_V1}))
        .await;
    let answer = registry.get("/subjects/users/versions/1/schema").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.body,
        serde_json::from_str::<serde_json::Value>(USER_V1).unwrap()
    );
}

#[tokio::test]
async fn lookup_returns_subject_id_version_and_schema() {
    let registry = TestRegistry::start().await;
    registry
        .post("/subjects/users/versions", json!({"schema": USER_V1}))
        .await;
    let answer = registry
        .post("/subjects/users", json!({"schema": USER_V1}))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.body,
        json!({"subject": "users", "id": 1, "version": 1, "schema": USER_V1})
    );
}

#[tokio::test]
async fn lookup_of_an_unregistered_schema_is_40403_and_of_an_unknown_subject_40401() {
    let registry = TestRegistry::start().await;
    registry
        .post("/subjects/users/versions", json!({"schema": USER_V1}))
        .await;
    let missing = registry
        .post("/subjects/users", json!({"schema": "\"string\""}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body, error(40403, "Schema not found"));
    let unknown = registry
        .post("/subjects/nobody", json!({"schema": USER_V1}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body, error(40401, "Subject 'nobody' not found."));
}

#[tokio::test]
async fn normalize_makes_equivalent_spellings_one_schema() {
    let registry = TestRegistry::start().await;
    let short = r#"{"type":"record","name":"User","namespace":"acme","fields":[{"name":"id","type":"int"}]}"#;
    let long =
        r#"{"type":"record","name":"acme.User","fields":[{"name":"id","type":{"type":"int"}}]}"#;
    let first = registry
        .post(
            "/subjects/u/versions?normalize=true",
            json!({"schema": short}),
        )
        .await;
    let second = registry
        .post(
            "/subjects/u/versions?normalize=true",
            json!({"schema": long}),
        )
        .await;
    assert_eq!(first.body, json!({"id": 1}));
    assert_eq!(second.body, json!({"id": 1}));
    let stored = registry.get("/subjects/u/versions/1").await;
    assert_eq!(
        stored.body["schema"],
        json!(r#"{"type":"record","name":"acme.User","fields":[{"type":"int","name":"id"}]}"#)
    );
    // Without normalize the long spelling is a different text.
    let plain = registry
        .post("/subjects/u2/versions", json!({"schema": short}))
        .await;
    let other = registry
        .post("/subjects/u3/versions", json!({"schema": long}))
        .await;
    assert_ne!(plain.body, other.body);
}

#[tokio::test]
async fn subjects_are_listed_sorted_and_filtered_by_prefix() {
    let registry = TestRegistry::start().await;
    for subject in ["orders-value", "users-value", "orders-key"] {
        registry
            .post(
                &format!("/subjects/{subject}/versions"),
                json!({"schema": "\"string\""}),
            )
            .await;
    }
    assert_eq!(
        registry.get("/subjects").await.body,
        json!(["orders-key", "orders-value", "users-value"])
    );
    assert_eq!(
        registry.get("/subjects?subjectPrefix=orders").await.body,
        json!(["orders-key", "orders-value"])
    );
}

#[tokio::test]
async fn unknown_subject_and_version_are_40401_and_40402() {
    let registry = TestRegistry::start().await;
    let subject = registry.get("/subjects/x/versions").await;
    assert_eq!(subject.status, StatusCode::NOT_FOUND);
    assert_eq!(subject.body, error(40401, "Subject 'x' not found."));
    assert_eq!(
        registry.get("/subjects/x/versions/1").await.body,
        error(40401, "Subject 'x' not found.")
    );
    registry
        .post("/subjects/x/versions", json!({"schema": "\"string\""}))
        .await;
    let version = registry.get("/subjects/x/versions/9").await;
    assert_eq!(version.status, StatusCode::NOT_FOUND);
    assert_eq!(version.body, error(40402, "Version 9 not found."));
}

#[tokio::test]
async fn invalid_versions_are_42202() {
    let registry = TestRegistry::start().await;
    registry
        .post("/subjects/x/versions", json!({"schema": "\"string\""}))
        .await;
    for bad in ["0", "-2", "abc", "2147483648"] {
        let answer = registry.get(&format!("/subjects/x/versions/{bad}")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(
            answer.body,
            error(
                42202,
                &format!(
                    "The specified version '{bad}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
                )
            )
        );
    }
}

#[tokio::test]
async fn url_encoded_subject_names_round_trip() {
    let registry = TestRegistry::start().await;
    let answer = registry
        .post(
            "/subjects/team%2Fa%20b%3Fc/versions",
            json!({"schema": "\"string\""}),
        )
        .await;
    assert_eq!(answer.body, json!({"id": 1}));
    assert_eq!(registry.get("/subjects").await.body, json!(["team/a b?c"]));
    let version = registry.get("/subjects/team%2Fa%20b%3Fc/versions/1").await;
    assert_eq!(
        version.body,
        json!({"subject": "team/a b?c", "version": 1, "id": 1, "schema": "\"string\""})
    );
}

#[tokio::test]
async fn references_resolve_named_types_from_other_subjects() {
    let registry = TestRegistry::start().await;
    let address = r#"{"type":"record","name":"Address","namespace":"acme","fields":[{"type":"string","name":"city"}]}"#;
    registry
        .post("/subjects/address/versions", json!({"schema": address}))
        .await;
    let person = r#"{"type":"record","name":"Person","namespace":"acme","fields":[{"type":"acme.Address","name":"home"}]}"#;
    let references = json!([{"name": "acme.Address", "subject": "address", "version": 1}]);
    let answer = registry
        .post(
            "/subjects/person/versions",
            json!({"schema": person, "references": references}),
        )
        .await;
    assert_eq!(answer.body, json!({"id": 2}));
    let by_id = registry.get("/schemas/ids/2").await;
    assert_eq!(
        by_id.body,
        json!({"schema": person, "references": references})
    );
    let version = registry.get("/subjects/person/versions/1").await;
    assert_eq!(
        version.body,
        json!({"subject": "person", "version": 1, "id": 2, "references": references, "schema": person})
    );
}

#[tokio::test]
async fn referenced_version_lists_its_referrers_and_cannot_be_deleted() {
    let registry = TestRegistry::start().await;
    let address = r#"{"type":"record","name":"Address","namespace":"acme","fields":[{"type":"string","name":"city"}]}"#;
    registry
        .post("/subjects/address/versions", json!({"schema": address}))
        .await;
    let person = r#"{"type":"record","name":"Person","namespace":"acme","fields":[{"type":"acme.Address","name":"home"}]}"#;
    let references = json!([{"name": "acme.Address", "subject": "address", "version": 1}]);
    registry
        .post(
            "/subjects/person/versions",
            json!({"schema": person, "references": references}),
        )
        .await;
    assert_eq!(
        registry
            .get("/subjects/address/versions/1/referencedby")
            .await
            .body,
        json!([2])
    );
    let refused = registry.delete("/subjects/address/versions/1").await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = "One or more references exist to the schema {magic=1,keytype=SCHEMA,subject=address,version=1}.";
    assert_eq!(refused.body, error(42206, message));
    assert_eq!(
        registry.delete("/subjects/address").await.body,
        error(42206, message)
    );
    // Once the referrer is gone, the referenced schema can go too.
    registry.delete("/subjects/person").await;
    assert_eq!(
        registry
            .get("/subjects/address/versions/1/referencedby")
            .await
            .body,
        json!([])
    );
    assert_eq!(registry.delete("/subjects/address").await.body, json!([1]));
}

#[tokio::test]
async fn schemas_lists_every_version_or_only_the_latest() {
    let registry = TestRegistry::start().await;
    registry
        .post("/subjects/a/versions", json!({"schema": "\"string\""}))
        .await;
    registry
        .put("/config/a", json!({"compatibility": "NONE"}))
        .await;
    registry
        .post("/subjects/a/versions", json!({"schema": "\"int\""}))
        .await;
    registry
        .post("/subjects/b/versions", json!({"schema": "\"string\""}))
        .await;
    let all = registry.get("/schemas").await;
    assert_eq!(
        all.body,
        json!([
            {"subject": "a", "version": 1, "id": 1, "schema": "\"string\""},
            {"subject": "a", "version": 2, "id": 2, "schema": "\"int\""},
            {"subject": "b", "version": 1, "id": 1, "schema": "\"string\""}
        ])
    );
    let latest = registry
        .get("/schemas?latestOnly=true&subjectPrefix=a")
        .await;
    assert_eq!(
        latest.body,
        json!([{"subject": "a", "version": 2, "id": 2, "schema": "\"int\""}])
    );
}

#[tokio::test]
async fn global_ids_stay_dense_when_known_schemas_are_registered_under_new_subjects() {
    let registry = TestRegistry::start().await;
    registry
        .post("/subjects/a/versions", json!({"schema": "\"string\""}))
        .await;
    registry
        .post("/subjects/b/versions", json!({"schema": "\"string\""}))
        .await;
    let next = registry
        .post("/subjects/c/versions", json!({"schema": "\"int\""}))
        .await;
    assert_eq!(next.body, json!({"id": 2}));
}
