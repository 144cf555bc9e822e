//! Access to a Confluent-compatible Schema Registry over its REST API, through
//! `schema_registry_converter`, so any Confluent-compatible registry works.
use std::time::Duration;

use schema_registry_converter::{
    async_impl::schema_registry::{
        SrSettings, get_all_versions, get_schema_by_id, get_schema_by_subject,
        get_schema_by_subject_and_version, post_schema,
    },
    error::SRCError,
    schema_registry_common::{
        RawError, RegisteredSchema, SchemaType, SubjectNameStrategy, SuppliedSchema,
    },
};

use crate::config::RegistryArgs;

/// How long one registry request may take: a registry that does not answer
/// must turn into an error, never a hang.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Client settings for the registry of `args`: its URL, credentials and CA.
pub fn settings(args: &RegistryArgs) -> anyhow::Result<SrSettings> {
    let mut builder = SrSettings::new_builder(args.base_url()?);
    builder.set_timeout(REQUEST_TIMEOUT);
    if let Some((user, password)) = args.credentials()? {
        builder.set_basic_authorization(&user, Some(&password));
    }
    builder
        .build_with(args.http_client_builder()?)
        .map_err(|e| anyhow::anyhow!("cannot build the registry client: {e}"))
}

/// Registers an Avro schema under `subject` (or finds it if already there)
/// and returns its global id.
pub async fn register_avro(
    settings: &SrSettings,
    subject: &str,
    schema_json: &str,
) -> Result<u32, SRCError> {
    let schema = SuppliedSchema::new(None, SchemaType::Avro, schema_json.to_string());
    let registered = post_schema(settings, subject.to_string(), schema).await?;
    Ok(registered.id)
}

/// The latest version registered under `subject`.
pub async fn latest(settings: &SrSettings, subject: &str) -> Result<RegisteredSchema, SRCError> {
    // TopicNameStrategy appends "-value"; strip it so the subject is used as given.
    let topic = subject.strip_suffix("-value").unwrap_or(subject);
    let strategy = SubjectNameStrategy::TopicNameStrategy(topic.to_string(), false);
    get_schema_by_subject(settings, &strategy).await
}

/// The versions registered under `subject` (soft-deleted ones left out).
pub async fn versions(settings: &SrSettings, subject: &str) -> Result<Vec<u32>, SRCError> {
    get_all_versions(settings, subject.to_string()).await
}

/// Version `version` of `subject`.
pub async fn version(
    settings: &SrSettings,
    subject: &str,
    version: u32,
) -> Result<RegisteredSchema, SRCError> {
    get_schema_by_subject_and_version(settings, subject, Some(version)).await
}

/// The schema with global id `id`.
pub async fn by_id(settings: &SrSettings, id: u32) -> Result<RegisteredSchema, SRCError> {
    get_schema_by_id(id, settings).await
}

/// Confluent's error codes for "not found": subject (40401), version
/// (40402), schema (40403).
const NOT_FOUND_CODES: [u32; 3] = [40401, 40402, 40403];

/// Whether `error` says the subject, version or schema does not exist (as
/// opposed to the registry being unreachable or failing).
///
/// Only the registry's own answer says so: its error body's `error_code`.
/// No message text is read. A request that got no answer names its URL,
/// whose port may contain "404" (a registry on port 40401 made every
/// refused connection read as an unknown schema, and the processor
/// dead-lettered acknowledged events), and a 404 without a registry error
/// body comes from something else at that address (a proxy, a wrong path),
/// which is a misconfiguration to report, not an answer about a schema.
pub fn is_not_found(error: &SRCError) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<RawError>())
        .is_some_and(|answer| NOT_FOUND_CODES.contains(&answer.error_code))
}

/// The registry could not be reached or answered that it is unavailable
/// (502, 503, 504): worth retrying, unlike a refusal.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// Whether `error` (from this module, with any context added) says the
/// registry is unavailable rather than refusing: an [`Unavailable`], or a
/// `schema_registry_converter` error it marks retriable (no answer, 502,
/// 503).
pub fn is_unavailable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<Unavailable>().is_some()
            || cause
                .downcast_ref::<SRCError>()
                .is_some_and(|e| e.retriable)
    })
}

/// The compatibility level Tributary declares on the subjects it reads with
/// built-in reader schemas: every version must be readable by every other,
/// so no version can be registered that the processor's (or the sink's)
/// reader schema cannot read, and Confluent consumers reading with any
/// version keep working. Works with any Confluent-compatible registry.
pub const READER_SAFE_LEVEL: &str = "FULL_TRANSITIVE";

/// What [`ReaderProtection::protect`] found on a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protection {
    /// The subject had no level of its own; it now has [`READER_SAFE_LEVEL`].
    Declared,
    /// The subject has a level of its own, which is kept (an operator's choice).
    Kept(String),
}

/// Declares [`READER_SAFE_LEVEL`] on subjects Tributary reads with built-in
/// reader schemas, unless an operator set a level of their own.
#[derive(Clone)]
pub struct ReaderProtection {
    http: reqwest::Client,
    base: String,
}

impl ReaderProtection {
    /// Talks to the registry `args` names (its credentials and CA).
    pub fn new(args: &RegistryArgs) -> anyhow::Result<Self> {
        Ok(Self {
            http: args.http_client(REQUEST_TIMEOUT)?,
            base: args.base_url()?,
        })
    }

    /// Gives `subject` [`READER_SAFE_LEVEL`] when it has no level of its own.
    pub async fn protect(&self, subject: &str) -> anyhow::Result<Protection> {
        let mut url = url::Url::parse(&self.base)?;
        url.path_segments_mut()
            .map_err(|_| anyhow::anyhow!("the registry URL {} cannot have a path", self.base))?
            .pop_if_empty()
            .extend(["config", subject]);
        let own = self
            .http
            .get(url.clone())
            .header("accept", "application/vnd.schemaregistry.v1+json")
            .send()
            .await
            .map_err(|e| Unavailable(format!("schema registry: GET {url}: {e}")))?;
        match own.status() {
            status if status.is_success() => {
                let body: serde_json::Value = own.json().await?;
                let level = body["compatibilityLevel"]
                    .as_str()
                    .or_else(|| body["compatibility"].as_str())
                    .unwrap_or("?")
                    .to_string();
                if !level.eq_ignore_ascii_case(READER_SAFE_LEVEL) {
                    tracing::warn!(
                        %subject, %level,
                        "the subject keeps its own compatibility level; below {READER_SAFE_LEVEL}, the registry may accept versions Tributary's reader schemas cannot read (their records would be dead-lettered)"
                    );
                }
                Ok(Protection::Kept(level))
            }
            // Confluent 7.x answers 40408 (no subject-level config), older
            // registries 40401; either way the subject has no level of its own.
            reqwest::StatusCode::NOT_FOUND => {
                let set = self
                    .http
                    .put(url.clone())
                    .header("content-type", "application/vnd.schemaregistry.v1+json")
                    .body(serde_json::json!({ "compatibility": READER_SAFE_LEVEL }).to_string())
                    .send()
                    .await
                    .map_err(|e| Unavailable(format!("schema registry: PUT {url}: {e}")))?;
                let status = set.status();
                if is_unavailable_status(status) {
                    return Err(Unavailable(format!(
                        "schema registry: PUT {url} answered {status}: {}",
                        set.text().await.unwrap_or_default()
                    ))
                    .into());
                }
                anyhow::ensure!(
                    status.is_success(),
                    "the registry refused to set {subject}'s compatibility to {READER_SAFE_LEVEL}: {status} {}",
                    set.text().await.unwrap_or_default()
                );
                tracing::info!(%subject, level = READER_SAFE_LEVEL, "declared the subject's compatibility level, protecting Tributary's reader schemas");
                Ok(Protection::Declared)
            }
            status if is_unavailable_status(status) => Err(Unavailable(format!(
                "schema registry: GET {url} answered {status}: {}",
                own.text().await.unwrap_or_default()
            ))
            .into()),
            status => anyhow::bail!(
                "schema registry: GET {url} answered {status}: {}",
                own.text().await.unwrap_or_default()
            ),
        }
    }
}

/// Statuses that say the registry (or a proxy before it) cannot answer now.
fn is_unavailable_status(status: reqwest::StatusCode) -> bool {
    matches!(
        status,
        reqwest::StatusCode::BAD_GATEWAY
            | reqwest::StatusCode::SERVICE_UNAVAILABLE
            | reqwest::StatusCode::GATEWAY_TIMEOUT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every request on a loopback port with `status` and `body`
    /// (of `content_type`); returns the registry URL.
    async fn answering(status: &str, content_type: &str, body: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = conn.read(&mut request).await;
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        url
    }

    /// What looking up schema id 2 at `url` gives.
    async fn lookup(url: String) -> SRCError {
        by_id(&settings(&RegistryArgs::at(url)).unwrap(), 2)
            .await
            .expect_err("the lookup must fail")
    }

    const REGISTRY_JSON: &str = "application/vnd.schemaregistry.v1+json";

    #[tokio::test]
    async fn only_the_registry_s_error_code_says_not_found() {
        let not_found = lookup(
            answering(
                "404 Not Found",
                REGISTRY_JSON,
                r#"{"error_code":40403,"message":"Schema 2 not found"}"#,
            )
            .await,
        )
        .await;
        assert!(is_not_found(&not_found), "{not_found:?}");

        // A 404 without a registry's error body: something else answers there.
        let proxy = lookup(answering("404 Not Found", "text/html", "not found").await).await;
        assert!(!is_not_found(&proxy), "{proxy:?}");

        // A failure whose message mentions 40401 is still a failure.
        let failing = lookup(
            answering(
                "500 Internal Server Error",
                REGISTRY_JSON,
                r#"{"error_code":50001,"message":"store 40401 unreadable"}"#,
            )
            .await,
        )
        .await;
        assert!(!is_not_found(&failing), "{failing:?}");
    }

    #[tokio::test]
    async fn no_answer_is_not_not_found_whatever_the_port() {
        // Find a free port whose number contains "404" (40400-40499).
        let port = (40400..40500)
            .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
            .expect("a free port in 40400-40499");
        let refused = lookup(format!("http://127.0.0.1:{port}")).await;
        assert!(refused.to_string().contains("404"), "{refused}");
        assert!(
            !is_not_found(&refused),
            "no answer is not a 404: {refused:?}"
        );
    }

    /// A loopback URL where nothing listens.
    fn nothing_listening() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        url
    }

    #[tokio::test]
    async fn a_registry_that_does_not_answer_is_unavailable_not_refusing() {
        let args = RegistryArgs::at(nothing_listening());
        let protected = ReaderProtection::new(&args)
            .unwrap()
            .protect("tributary.events.ad_click-value")
            .await
            .unwrap_err()
            .context("cannot declare the compatibility level");
        assert!(is_unavailable(&protected), "{protected:#}");
        let registered = register_avro(&settings(&args).unwrap(), "s-value", "\"string\"")
            .await
            .map_err(anyhow::Error::new)
            .unwrap_err()
            .context("cannot register");
        assert!(is_unavailable(&registered), "{registered:#}");
        // A refusal is not unavailability.
        assert!(!is_unavailable(&anyhow::anyhow!(
            "the registry refused to set the compatibility"
        )));
    }
}
