//! Access to a Confluent-compatible Schema Registry over its REST API, through
//! `schema_registry_converter`, so any Confluent-compatible registry works.
use std::time::Duration;

use schema_registry_converter::{
    async_impl::schema_registry::{
        SrSettings, get_schema_by_id, get_schema_by_subject, post_schema,
    },
    error::SRCError,
    schema_registry_common::{RegisteredSchema, SchemaType, SubjectNameStrategy, SuppliedSchema},
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

/// The schema with global id `id`.
pub async fn by_id(settings: &SrSettings, id: u32) -> Result<RegisteredSchema, SRCError> {
    get_schema_by_id(id, settings).await
}

/// Whether `error` says the subject, version or schema does not exist (as
/// opposed to the registry being unreachable or failing).
pub fn is_not_found(error: &SRCError) -> bool {
    let text = format!("{} {}", error.error, error.cause.as_deref().unwrap_or(""));
    text.contains("404")
        || text.contains("40401")
        || text.contains("40402")
        || text.contains("40403")
}
