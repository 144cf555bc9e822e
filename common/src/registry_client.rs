//! Access to a Confluent-compatible Schema Registry over its REST API, through
//! `schema_registry_converter`, so any Confluent-compatible registry works.
use schema_registry_converter::{
    async_impl::schema_registry::{SrSettings, post_schema},
    error::SRCError,
    schema_registry_common::{SchemaType, SuppliedSchema},
};

use crate::config::RegistryArgs;

/// Client settings for the registry at `args.url`.
pub fn settings(args: &RegistryArgs) -> SrSettings {
    SrSettings::new(args.url.trim_end_matches('/').to_string())
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
