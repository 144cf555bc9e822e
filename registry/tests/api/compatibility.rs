//! Compatibility levels applied to registration and to `/compatibility` checks.
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::client::{TestRegistry, error, record};

fn v1() -> Value {
    record("R", &[("a", json!("int"))])
}

fn with_optional_b() -> Value {
    let mut schema = record("R", &[("a", json!("int")), ("b", json!("string"))]);
    schema["fields"][1]["default"] = json!("x");
    schema
}

fn with_required_b() -> Value {
    record("R", &[("a", json!("int")), ("b", json!("string"))])
}

fn without_a() -> Value {
    record("R", &[])
}

fn a_as_string() -> Value {
    record("R", &[("a", json!("string"))])
}

/// Registers `history` under `subject` at level NONE, then sets `level` and
/// asks whether `candidate` would be accepted, and checks registration agrees.
async fn accepted(
    registry: &TestRegistry,
    subject: &str,
    level: &str,
    history: &[Value],
    candidate: &Value,
) -> bool {
    registry
        .put(
            &format!("/config/{subject}"),
            json!({"compatibility": "NONE"}),
        )
        .await;
    for schema in history {
        registry.register(subject, schema).await;
    }
    registry
        .put(
            &format!("/config/{subject}"),
            json!({"compatibility": level}),
        )
        .await;
    let check = registry
        .post(
            &format!("/compatibility/subjects/{subject}/versions"),
            json!({"schema": candidate.to_string()}),
        )
        .await;
    assert_eq!(check.status, StatusCode::OK, "{:?}", check.body);
    let compatible = check.body["is_compatible"]
        .as_bool()
        .expect("is_compatible");
    let registration = registry
        .post(
            &format!("/subjects/{subject}/versions"),
            json!({"schema": candidate.to_string()}),
        )
        .await;
    let expected_status = if compatible {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    assert_eq!(
        registration.status, expected_status,
        "{subject}: {:?}",
        registration.body
    );
    compatible
}

#[tokio::test]
async fn each_level_accepts_exactly_the_changes_it_allows_against_the_latest_version() {
    let registry = TestRegistry::start().await;
    // (level, [optional field added, required field added, field removed, type changed])
    let matrix = [
        ("NONE", [true, true, true, true]),
        ("BACKWARD", [true, false, true, false]),
        ("FORWARD", [true, true, false, false]),
        ("FULL", [true, false, false, false]),
        ("BACKWARD_TRANSITIVE", [true, false, true, false]),
        ("FORWARD_TRANSITIVE", [true, true, false, false]),
        ("FULL_TRANSITIVE", [true, false, false, false]),
    ];
    let candidates = [
        with_optional_b(),
        with_required_b(),
        without_a(),
        a_as_string(),
    ];
    for (level, expected) in matrix {
        for (i, (candidate, expected)) in candidates.iter().zip(expected).enumerate() {
            let subject = format!("{level}-{i}");
            let got = accepted(&registry, &subject, level, &[v1()], candidate).await;
            assert_eq!(got, expected, "level {level}, candidate {i}");
        }
    }
}

#[tokio::test]
async fn transitive_levels_check_every_live_version_and_plain_levels_only_the_latest() {
    let registry = TestRegistry::start().await;
    // Backward: v3 drops b's default; fine against v2 (which writes b), not against v1.
    let backward_history = [v1(), with_optional_b()];
    assert!(
        accepted(
            &registry,
            "b",
            "BACKWARD",
            &backward_history,
            &with_required_b()
        )
        .await
    );
    assert!(
        !accepted(
            &registry,
            "bt",
            "BACKWARD_TRANSITIVE",
            &backward_history,
            &with_required_b()
        )
        .await
    );
    // Forward: v3 drops b; v2 (b has a default) reads it, v1 (b required) does not.
    let forward_history = [with_required_b(), with_optional_b()];
    assert!(accepted(&registry, "f", "FORWARD", &forward_history, &v1()).await);
    assert!(
        !accepted(
            &registry,
            "ft",
            "FORWARD_TRANSITIVE",
            &forward_history,
            &v1()
        )
        .await
    );
    assert!(accepted(&registry, "fu", "FULL", &forward_history, &v1()).await);
    assert!(!accepted(&registry, "fut", "FULL_TRANSITIVE", &forward_history, &v1()).await);
}

#[tokio::test]
async fn incompatible_schema_is_refused_with_409_naming_the_incompatibility() {
    let registry = TestRegistry::start().await;
    registry.register("users", &v1()).await;
    let answer = registry
        .post(
            "/subjects/users/versions",
            json!({"schema": with_required_b().to_string()}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(answer.body["error_code"], json!(409));
    let message = answer.body["message"].as_str().unwrap();
    assert_eq!(
        message,
        "Schema being registered is incompatible with an earlier schema for subject \"users\", details: \
         [Incompatibility{type:READER_FIELD_MISSING_DEFAULT_VALUE, location:/fields/1, message:b, \
         reader:{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"string\"}]}, \
         writer:{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}}, \
         {oldSchemaVersion: 1}, \
         {oldSchema: '{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"type\":\"int\",\"name\":\"a\"}]}'}, \
         {compatibility: 'BACKWARD'}]"
    );
}

#[tokio::test]
async fn compatibility_check_against_a_version_answers_is_compatible() {
    let registry = TestRegistry::start().await;
    registry.register("users", &v1()).await;
    let ok = registry
        .post(
            "/compatibility/subjects/users/versions/latest",
            json!({"schema": with_optional_b().to_string()}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body, json!({"is_compatible": true}));
    let bad = registry
        .post(
            "/compatibility/subjects/users/versions/1",
            json!({"schema": a_as_string().to_string()}),
        )
        .await;
    assert_eq!(bad.body, json!({"is_compatible": false}));
}

#[tokio::test]
async fn verbose_compatibility_check_lists_the_reasons() {
    let registry = TestRegistry::start().await;
    registry.register("users", &v1()).await;
    let answer = registry
        .post(
            "/compatibility/subjects/users/versions/1?verbose=true",
            json!({"schema": a_as_string().to_string()}),
        )
        .await;
    assert_eq!(
        answer.body,
        json!({"is_compatible": false, "messages": [
            "Incompatibility{type:TYPE_MISMATCH, location:/fields/0/type, message:reader type: STRING not compatible with writer type: INT, reader:\"string\", writer:\"int\"}",
            "{oldSchemaVersion: 1}",
            "{oldSchema: '{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"type\":\"int\",\"name\":\"a\"}]}'}",
            "{compatibility: 'BACKWARD'}"
        ]})
    );
    let fine = registry
        .post(
            "/compatibility/subjects/users/versions/1?verbose=true",
            json!({"schema": with_optional_b().to_string()}),
        )
        .await;
    assert_eq!(fine.body, json!({"is_compatible": true, "messages": []}));
}

#[tokio::test]
async fn compatibility_check_errors_name_the_missing_subject_version_or_bad_version() {
    let registry = TestRegistry::start().await;
    let schema = json!({"schema": v1().to_string()});
    let empty = registry
        .post(
            "/compatibility/subjects/none/versions/latest",
            schema.clone(),
        )
        .await;
    assert_eq!(empty.body, json!({"is_compatible": true}));
    let missing = registry
        .post("/compatibility/subjects/none/versions/1", schema.clone())
        .await;
    assert_eq!(missing.body, error(40401, "Subject 'none' not found."));
    registry.register("users", &v1()).await;
    let version = registry
        .post("/compatibility/subjects/users/versions/5", schema.clone())
        .await;
    assert_eq!(version.body, error(40402, "Version 5 not found."));
    let invalid = registry
        .post("/compatibility/subjects/users/versions/zero", schema)
        .await;
    assert_eq!(invalid.body["error_code"], json!(42202));
}
