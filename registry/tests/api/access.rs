//! Access control: HTTP basic authentication with read, write and admin
//! roles, TLS with a private CA, and Confluent's Python client using both.
use std::{net::SocketAddr, process::Command};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tributary_edge::config::TlsArgs;
use tributary_registry::{access::hash_password, config::RegistryConfig};
use tributary_testkit::{
    certs::TestCertificates, postgres::TestDatabase, registry::RunningRegistry,
};

use crate::client::{Answer, V1_JSON, answer};

const SCHEMA: &str = r#"{"type":"record","name":"Beat","namespace":"tributary.test","fields":[{"name":"n","type":"long"}]}"#;

/// A registry with a reader, a writer and an admin (each user's password is
/// its name reversed), optionally behind TLS.
struct GuardedRegistry {
    registry: RunningRegistry,
    _database: TestDatabase,
    http: reqwest::Client,
}

impl GuardedRegistry {
    async fn start(tls: Option<&TestCertificates>) -> Self {
        let database = TestDatabase::create().await.expect("a test database");
        let mut config = RegistryConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), database.url());
        config.users.users = [("reader", "read"), ("writer", "write"), ("admin", "admin")]
            .iter()
            .map(|(name, role)| {
                format!("{name}:{role}:{}", hash_password(&password(name)).unwrap())
            })
            .collect();
        let mut http = reqwest::Client::builder();
        if let Some(certs) = tls {
            config.tls = TlsArgs::files(certs.cert(), certs.key());
            http = http.tls_certs_only([
                reqwest::Certificate::from_pem(&certs.ca_pem().unwrap()).unwrap()
            ]);
        }
        let registry = RunningRegistry::start_with(config)
            .await
            .expect("start the registry");
        Self {
            registry,
            _database: database,
            http: http.build().unwrap(),
        }
    }

    /// `method path` as `user` (none: no credentials).
    async fn call(
        &self,
        user: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.registry.url()))
            .header("accept", V1_JSON);
        if let Some(user) = user {
            request = request.basic_auth(user, Some(password(user)));
        }
        if let Some(body) = body {
            request = request
                .header("content-type", V1_JSON)
                .body(body.to_string());
        }
        answer(request.send().await.expect("the registry answers")).await
    }
}

fn password(user: &str) -> String {
    user.chars().rev().collect()
}

fn schema() -> Value {
    json!({ "schema": SCHEMA })
}

#[track_caller]
fn assert_refused(answer: &Answer, status: StatusCode, code: i64) {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    assert_eq!(answer.body["error_code"], json!(code), "{:?}", answer.body);
}

#[tokio::test]
async fn roles_decide_who_reads_writes_and_deletes() {
    let registry = GuardedRegistry::start(None).await;
    let versions = "/subjects/beats-value/versions";

    // No credentials, unknown users and wrong passwords: 401 in Confluent's shape.
    let anonymous = registry.call(None, Method::GET, "/subjects", None).await;
    assert_refused(&anonymous, StatusCode::UNAUTHORIZED, 40101);
    let response = registry
        .http
        .get(format!("{}/subjects", registry.registry.url()))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm="),
        "a 401 names the Basic scheme"
    );
    let intruder = registry
        .http
        .get(format!("{}/subjects", registry.registry.url()))
        .basic_auth("reader", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_refused(&answer(intruder).await, StatusCode::UNAUTHORIZED, 40101);
    let stranger = registry
        .call(Some("nobody"), Method::GET, "/subjects", None)
        .await;
    assert_refused(&stranger, StatusCode::UNAUTHORIZED, 40101);

    // A reader reads and checks, but cannot register, configure or delete.
    let read = registry
        .call(Some("reader"), Method::GET, "/subjects", None)
        .await;
    assert_eq!((read.status, read.body), (StatusCode::OK, json!([])));
    let refused = registry
        .call(Some("reader"), Method::POST, versions, Some(schema()))
        .await;
    assert_refused(&refused, StatusCode::FORBIDDEN, 40301);
    let message = refused.body["message"].as_str().unwrap();
    assert!(
        message.contains("'reader'") && message.contains("write role"),
        "the refusal names the user and the role needed: {message}"
    );
    let refused = registry
        .call(
            Some("reader"),
            Method::PUT,
            "/config",
            Some(json!({"compatibility": "NONE"})),
        )
        .await;
    assert_refused(&refused, StatusCode::FORBIDDEN, 40301);

    // A writer registers and configures, but cannot delete or import.
    let registered = registry
        .call(Some("writer"), Method::POST, versions, Some(schema()))
        .await;
    assert_eq!(registered.status, StatusCode::OK, "{:?}", registered.body);
    let configured = registry
        .call(
            Some("writer"),
            Method::PUT,
            "/config/beats-value",
            Some(json!({"compatibility": "FULL_TRANSITIVE"})),
        )
        .await;
    assert_eq!(configured.status, StatusCode::OK, "{:?}", configured.body);
    let refused = registry
        .call(
            Some("writer"),
            Method::DELETE,
            "/subjects/beats-value",
            None,
        )
        .await;
    assert_refused(&refused, StatusCode::FORBIDDEN, 40301);
    let refused = registry
        .call(
            Some("writer"),
            Method::PUT,
            "/mode",
            Some(json!({"mode": "IMPORT"})),
        )
        .await;
    assert_refused(&refused, StatusCode::FORBIDDEN, 40301);
    assert!(refused.body["message"].as_str().unwrap().contains("IMPORT"));

    // The reader sees the writer's version; lookups and compatibility checks are reads.
    let lookup = registry
        .call(
            Some("reader"),
            Method::POST,
            "/subjects/beats-value",
            Some(schema()),
        )
        .await;
    assert_eq!(lookup.status, StatusCode::OK, "{:?}", lookup.body);
    let check = registry
        .call(
            Some("reader"),
            Method::POST,
            "/compatibility/subjects/beats-value/versions/latest",
            Some(schema()),
        )
        .await;
    assert_eq!(check.body["is_compatible"], json!(true), "{:?}", check.body);

    // Only the admin deletes, soft then permanently, and may import.
    let soft = registry
        .call(Some("admin"), Method::DELETE, "/subjects/beats-value", None)
        .await;
    assert_eq!((soft.status, soft.body), (StatusCode::OK, json!([1])));
    let hard = registry
        .call(
            Some("admin"),
            Method::DELETE,
            "/subjects/beats-value?permanent=true",
            None,
        )
        .await;
    assert_eq!((hard.status, hard.body), (StatusCode::OK, json!([1])));
    let import = registry
        .call(
            Some("admin"),
            Method::PUT,
            "/mode",
            Some(json!({"mode": "IMPORT"})),
        )
        .await;
    assert_eq!(import.status, StatusCode::OK, "{:?}", import.body);
}

#[tokio::test]
async fn serves_tls_with_a_private_ca_and_refuses_plain_http() {
    let certs = TestCertificates::generate().unwrap();
    let registry = GuardedRegistry::start(Some(&certs)).await;
    assert!(registry.registry.url().starts_with("https://"));
    let read = registry
        .call(Some("reader"), Method::GET, "/subjects", None)
        .await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);

    // A client that does not trust the private CA fails the handshake.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only(Vec::<reqwest::Certificate>::new())
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!("{}/subjects", registry.registry.url()))
            .send()
            .await
            .is_err()
    );
    // Plain HTTP gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/subjects", registry.registry.addr()))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP must not be served: {plain:?}");
}

#[tokio::test]
async fn confluent_python_client_authenticates_over_tls() {
    let certs = TestCertificates::generate().unwrap();
    let registry = GuardedRegistry::start(Some(&certs)).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/confluent_auth.py"
    );
    let requirements = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/requirements.txt"
    );
    let url = registry.registry.url();
    let ca = certs.ca();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(url)
            .arg(ca)
            .arg(format!("writer:{}", password("writer")))
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("cannot run python3 ({e}); `pip install -r {requirements}`"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("authenticated ok"),
        "confluent_auth.py failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let subjects = registry
        .call(Some("reader"), Method::GET, "/subjects", None)
        .await;
    assert_eq!(subjects.body, json!(["beats-value"]));
}
