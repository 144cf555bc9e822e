//! Several registrations at once, and several instances on one database.
use std::collections::BTreeSet;

use futures::future::join_all;
use serde_json::json;

use crate::client::{TestRegistry, record};

#[tokio::test]
async fn concurrent_registrations_of_one_schema_get_one_id_and_one_version() {
    let registry = TestRegistry::start().await;
    let schema = record("Same", &[("a", json!("int"))]);
    let ids = join_all((0..24).map(|_| registry.register("same", &schema))).await;
    assert_eq!(
        ids.into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([1])
    );
    assert_eq!(
        registry.get("/subjects/same/versions").await.body,
        json!([1])
    );
}

#[tokio::test]
async fn concurrent_registrations_under_many_subjects_share_one_global_id() {
    let registry = TestRegistry::start().await;
    let schema = record("Shared", &[("a", json!("int"))]);
    let subjects: Vec<String> = (0..16).map(|i| format!("s{i}")).collect();
    let ids = join_all(subjects.iter().map(|s| registry.register(s, &schema))).await;
    assert_eq!(
        ids.into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([1])
    );
}

#[tokio::test]
async fn two_instances_on_one_database_stay_consistent() {
    let registry = TestRegistry::start().await;
    let second = registry.second_instance().await;
    let http = reqwest::Client::new();
    // Distinct schemas registered alternately on both instances, concurrently.
    let requests = (0..20).map(|i| {
        let base = if i % 2 == 0 {
            registry.url()
        } else {
            second.url()
        };
        let schema = record(&format!("T{i}"), &[("a", json!("int"))]).to_string();
        let http = http.clone();
        async move {
            let response = http
                .post(format!("{base}/subjects/t{i}/versions"))
                .json(&json!({"schema": schema}))
                .send()
                .await
                .unwrap();
            response.json::<serde_json::Value>().await.unwrap()["id"]
                .as_i64()
                .unwrap()
        }
    });
    let ids: BTreeSet<i64> = join_all(requests).await.into_iter().collect();
    assert_eq!(ids.len(), 20, "ids are unique across instances");
    // Each instance sees what the other registered, including the same id for the same schema.
    let same = record("T0", &[("a", json!("int"))]).to_string();
    let from_second = http
        .post(format!("{}/subjects/other/versions", second.url()))
        .json(&json!({"schema": same}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let t0 = registry.get("/subjects/t0/versions/1").await.body["id"].clone();
    assert_eq!(from_second["id"], t0);
    let listed_on_second = http
        .get(format!("{}/subjects", second.url()))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(listed_on_second, registry.get("/subjects").await.body);
}
