//! A registry on a fresh database, and an HTTP client that returns status and JSON body.
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tributary_testkit::{postgres::TestDatabase, registry::RunningRegistry};

/// The media type Confluent clients send and the registry answers with.
pub const V1_JSON: &str = "application/vnd.schemaregistry.v1+json";

/// A running registry with its own database; both go away when it is dropped.
pub struct TestRegistry {
    // Field order matters: the registry stops before its database is dropped.
    pub registry: RunningRegistry,
    pub database: TestDatabase,
    http: reqwest::Client,
}

/// A response: status, `Content-Type` and the body as JSON.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

impl TestRegistry {
    /// A registry over a new, empty database.
    pub async fn start() -> Self {
        let database = TestDatabase::create()
            .await
            .expect("create a test database");
        let registry = RunningRegistry::start(database.url())
            .await
            .expect("start the registry");
        Self {
            registry,
            database,
            http: reqwest::Client::new(),
        }
    }

    /// Another registry instance on the same database.
    pub async fn second_instance(&self) -> RunningRegistry {
        RunningRegistry::start(self.database.url())
            .await
            .expect("start a second registry")
    }

    /// The registry's base URL.
    pub fn url(&self) -> String {
        self.registry.url()
    }

    /// Sends `method path` with an optional JSON body (as Confluent clients do).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url()))
            .header("Accept", V1_JSON);
        if let Some(body) = body {
            request = request
                .header("Content-Type", V1_JSON)
                .body(body.to_string());
        }
        answer(request.send().await.expect("the registry answers")).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` with `body`.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `PUT path` with `body`.
    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// A raw request, for content-type and malformed-body cases.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url()))
    }

    /// Registers `schema` under `subject`, expecting success; returns the id.
    pub async fn register(&self, subject: &str, schema: &Value) -> i64 {
        let answer = self
            .post(
                &format!("/subjects/{subject}/versions"),
                serde_json::json!({"schema": schema.to_string()}),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "registering under {subject}: {:?}",
            answer.body
        );
        answer.body["id"].as_i64().expect("an id")
    }
}

/// Reads a response into an [`Answer`]; a non-JSON body becomes a JSON string.
pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        content_type,
        body,
    }
}

/// A record schema named `name` with these `(field, type)` pairs.
pub fn record(name: &str, fields: &[(&str, Value)]) -> Value {
    let fields: Vec<Value> = fields
        .iter()
        .map(|(field, kind)| serde_json::json!({"name": field, "type": kind}))
        .collect();
    serde_json::json!({"type": "record", "name": name, "fields": fields})
}

/// The error body Confluent sends.
pub fn error(code: u32, message: &str) -> Value {
    serde_json::json!({"error_code": code, "message": message})
}
