//! A failing database is a 50001 store error, not a hang or a crash.
use reqwest::StatusCode;
use sqlx::{Connection as _, Executor as _, PgConnection};

use crate::client::{TestRegistry, error};

#[tokio::test]
async fn database_failure_is_reported_as_50001() {
    let registry = TestRegistry::start().await;
    let mut conn = PgConnection::connect(registry.database.url())
        .await
        .unwrap();
    conn.execute("ALTER TABLE registry_subject_versions RENAME TO gone")
        .await
        .unwrap();
    let answer = registry.get("/subjects").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.body, error(50001, "Error in the backend datastore"));
}
