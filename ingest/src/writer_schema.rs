//! The writer schema of each event type: resolved through the registry once,
//! cached, and refreshed in the background of traffic, so the hot path makes
//! no registry call and parses no schema per event.
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use apache_avro::{Schema, schema::ResolvedSchema, writer::datum::GenericDatumWriter};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use tributary_common::{
    config::{KafkaArgs, RegistryArgs},
    registry_client::{self, ReaderProtection},
    schemas, wire,
};

use crate::{
    avro_json::Names,
    config::{SchemaArgs, SchemaPolicy},
    rejection::Rejection,
};

/// One registered schema, ready to encode with.
pub struct WriterSchema {
    /// The registry's global id, written into every record's header.
    pub id: u32,
    /// The parsed schema. Leaked on purpose: one per schema id ever used, so
    /// the prepared writer can borrow it for the life of the process.
    pub schema: &'static Schema,
    /// Named types, for references inside the schema.
    pub names: Names,
    writer: GenericDatumWriter<'static>,
}

impl WriterSchema {
    fn new(id: u32, schema_json: &str) -> Result<Self, String> {
        let schema: &'static Schema = Box::leak(Box::new(
            Schema::parse_str(schema_json)
                .map_err(|e| format!("schema {id} is not valid Avro: {e}"))?,
        ));
        let resolved = ResolvedSchema::try_from(schema).map_err(|e| format!("schema {id}: {e}"))?;
        let names = resolved
            .get_names()
            .iter()
            .map(|(name, schema)| (name.clone(), *schema))
            .collect();
        let writer = GenericDatumWriter::builder(schema)
            .resolved_schemata(resolved)
            .build()
            .map_err(|e| format!("schema {id}: {e}"))?;
        Ok(Self {
            id,
            schema,
            names,
            writer,
        })
    }

    /// Appends the Confluent-framed Avro encoding of `value` to `out`.
    pub fn encode_into(
        &self,
        value: apache_avro::types::Value,
        out: &mut Vec<u8>,
    ) -> Result<(), Rejection> {
        wire::frame_into(self.id, &[], out);
        self.writer.write_value(out, value).map(drop).map_err(|e| {
            Rejection::schema_mismatch(
                "payload",
                format!("does not encode with schema {}: {e}", self.id),
            )
        })
    }
}

struct Cached {
    schema: Arc<WriterSchema>,
    fetched: Instant,
    refreshes: bool,
}

/// Writer schemas by event type.
pub struct WriterSchemas {
    settings: SrSettings,
    protection: ReaderProtection,
    kafka: KafkaArgs,
    args: SchemaArgs,
    by_type: RwLock<HashMap<String, Cached>>,
    by_id: RwLock<HashMap<u32, Arc<WriterSchema>>>,
    fetching: tokio::sync::Mutex<()>,
}

impl WriterSchemas {
    /// An empty cache over the registry `registry` names.
    pub fn new(
        registry: &RegistryArgs,
        kafka: KafkaArgs,
        args: SchemaArgs,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            settings: registry_client::settings(registry)?,
            protection: ReaderProtection::new(registry)?,
            kafka,
            args,
            by_type: RwLock::default(),
            by_id: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// The schema to write `event_type` with.
    pub async fn get(&self, event_type: &str) -> Result<Arc<WriterSchema>, Rejection> {
        if let Some(fresh) = self.cached(event_type, false) {
            tributary_common::metrics::SCHEMA_CACHE
                .with_label_values(&["hit"])
                .inc();
            return Ok(fresh);
        }
        tributary_common::metrics::SCHEMA_CACHE
            .with_label_values(&["miss"])
            .inc();
        // One fetch at a time: a burst of first events costs one registry call.
        let _fetching = self.fetching.lock().await;
        if let Some(fresh) = self.cached(event_type, false) {
            return Ok(fresh);
        }
        match self.fetch(event_type).await {
            Ok((schema, refreshes)) => {
                self.by_type.write().expect("schema cache lock").insert(
                    event_type.to_string(),
                    Cached {
                        schema: schema.clone(),
                        fetched: Instant::now(),
                        refreshes,
                    },
                );
                Ok(schema)
            }
            // A registry hiccup must not stop traffic that already has a schema.
            Err(e) if e.code == tributary_proto::v1::EventErrorCode::Unavailable => {
                self.cached(event_type, true).ok_or(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Which schema `event_type` is written with and when the registry will
    /// be asked again, for a refusal's message: e.g. `(written with schema
    /// id 7, the subject's latest version 12 s ago; the registry is asked
    /// again within 18 s (--schema-refresh 30s))`.
    pub fn provenance(&self, event_type: &str) -> String {
        let by_type = self.by_type.read().expect("schema cache lock");
        let Some(cached) = by_type.get(event_type) else {
            return String::new();
        };
        let id = cached.schema.id;
        if !cached.refreshes {
            return format!(
                "(written with schema id {id}, fixed by --schema-id or --schema-policy auto-register)"
            );
        }
        let age = cached.fetched.elapsed();
        let left = self.args.refresh.saturating_sub(age);
        format!(
            "(written with schema id {id}, the subject's latest version {} s ago; the registry is asked again within {} s (--schema-refresh {}))",
            age.as_secs(),
            left.as_secs().max(1),
            humantime::format_duration(self.args.refresh)
        )
    }

    fn cached(&self, event_type: &str, accept_stale: bool) -> Option<Arc<WriterSchema>> {
        let by_type = self.by_type.read().expect("schema cache lock");
        let cached = by_type.get(event_type)?;
        let fresh = !cached.refreshes || cached.fetched.elapsed() < self.args.refresh;
        (fresh || accept_stale).then(|| cached.schema.clone())
    }

    /// Resolves the schema id by policy; returns whether it must be refreshed.
    async fn fetch(&self, event_type: &str) -> Result<(Arc<WriterSchema>, bool), Rejection> {
        let subject = schemas::value_subject(&self.kafka.event_topic(event_type));
        let registry_error = |e: schema_registry_converter::error::SRCError| {
            if registry_client::is_not_found(&e) {
                Rejection::unknown_type(event_type, format!("subject `{subject}` has no schema"))
            } else {
                Rejection::unavailable(format!("schema registry: {e}"))
            }
        };
        if let Some((_, id)) = self.args.pinned.iter().find(|(t, _)| t == event_type) {
            return Ok((self.by_id(*id).await?, false));
        }
        let builtin = schemas::latest(event_type).filter(|s| s.name != schemas::AGGREGATE);
        match (self.args.policy, builtin) {
            (SchemaPolicy::AutoRegister, Some(builtin)) => {
                // The processor reads this subject with its built-in reader:
                // declare the level that keeps every version readable first.
                self.protection
                    .protect(&subject)
                    .await
                    .map_err(|e| Rejection::unavailable(format!("schema registry: {e:#}")))?;
                let id = registry_client::register_avro(&self.settings, &subject, builtin.json).await.map_err(|e| {
                    if e.error.contains("409") {
                        Rejection::unavailable(format!("the registry refused built-in schema {}/v{} as incompatible with `{subject}`: {e}", builtin.name, builtin.version))
                    } else {
                        registry_error(e)
                    }
                })?;
                Ok((self.insert(id, builtin.json)?, false))
            }
            _ => {
                let latest = registry_client::latest(&self.settings, &subject)
                    .await
                    .map_err(registry_error)?;
                Ok((self.insert(latest.id, &latest.schema)?, true))
            }
        }
    }

    async fn by_id(&self, id: u32) -> Result<Arc<WriterSchema>, Rejection> {
        if let Some(schema) = self.by_id.read().expect("schema cache lock").get(&id) {
            return Ok(schema.clone());
        }
        let registered = registry_client::by_id(&self.settings, id)
            .await
            .map_err(|e| {
                if registry_client::is_not_found(&e) {
                    Rejection::internal(format!(
                        "pinned schema id {id} does not exist in the registry"
                    ))
                } else {
                    Rejection::unavailable(format!("schema registry: {e}"))
                }
            })?;
        self.insert(id, &registered.schema)
    }

    fn insert(&self, id: u32, schema_json: &str) -> Result<Arc<WriterSchema>, Rejection> {
        let mut by_id = self.by_id.write().expect("schema cache lock");
        if let Some(existing) = by_id.get(&id) {
            return Ok(existing.clone());
        }
        let schema = Arc::new(WriterSchema::new(id, schema_json).map_err(Rejection::internal)?);
        by_id.insert(id, schema.clone());
        Ok(schema)
    }

    /// How long a latest-version lookup is trusted.
    pub fn refresh_interval(&self) -> Duration {
        self.args.refresh
    }
}
