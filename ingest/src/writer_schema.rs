//! The writer schemas of each event type: the subject's registered versions
//! (an event is written with the newest one it fits), listed through the
//! registry, cached, refreshed every `--schema-refresh` and at once (at most
//! every [`RECHECK_INTERVAL`]) when an event fits none of them, so the hot
//! path makes no registry call and parses no schema per event.
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use apache_avro::{Schema, schema::ResolvedSchema, writer::datum::GenericDatumWriter};
use schema_registry_converter::{
    async_impl::schema_registry::SrSettings, schema_registry_common::SchemaType,
};
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

/// The schemas an event type may be written with, newest first: the
/// subject's registered versions, or the one schema `--schema-id` pins.
pub struct WriterCandidates {
    /// The subject, e.g. `tributary.events.ad_click-value`.
    pub subject: String,
    /// (subject version, schema), newest first; never empty. The version is
    /// `None` for a pinned schema id.
    pub schemas: Vec<(Option<u32>, Arc<WriterSchema>)>,
    /// When the registry was asked; `None` when the id is pinned.
    fetched: Option<Instant>,
}

impl WriterCandidates {
    /// The newest candidate.
    pub fn newest(&self) -> &Arc<WriterSchema> {
        &self.schemas[0].1
    }

    /// Candidates of `subject` from `(version, schema JSON)`, newest first,
    /// as if just listed by the registry (ids are 100 + version).
    #[cfg(test)]
    pub(crate) fn listed(subject: &str, versions: &[(u32, &str)]) -> Self {
        Self {
            subject: subject.into(),
            schemas: versions
                .iter()
                .map(|(version, json)| {
                    let schema = WriterSchema::new(100 + version, json).expect("valid schema");
                    (Some(*version), Arc::new(schema))
                })
                .collect(),
            fetched: Some(Instant::now()),
        }
    }

    /// Which versions the candidates are, e.g. `versions 3, 2, 1`.
    fn versions(&self) -> String {
        let versions: Vec<String> = self
            .schemas
            .iter()
            .filter_map(|(version, _)| version.map(|v| v.to_string()))
            .collect();
        match versions.len() {
            0 => format!("schema id {}", self.newest().id),
            1 => format!("version {}", versions[0]),
            _ => format!("versions {}", versions.join(", ")),
        }
    }
}

struct Cached {
    candidates: Arc<WriterCandidates>,
    fetched: Instant,
    refreshes: bool,
    /// When an event that fit no version last made ingest ask again.
    rechecked: Option<Instant>,
}

/// Writer schemas by event type.
pub struct WriterSchemas {
    settings: SrSettings,
    protection: ReaderProtection,
    kafka: KafkaArgs,
    args: SchemaArgs,
    by_type: RwLock<HashMap<String, Cached>>,
    by_id: RwLock<HashMap<u32, Arc<WriterSchema>>>,
    /// (subject, version) → schema id: a registered version never changes.
    version_ids: RwLock<HashMap<(String, u32), u32>>,
    fetching: tokio::sync::Mutex<()>,
}

/// The least time between two on-demand re-checks of one subject, so a
/// stream of events with an unknown field costs the registry one listing a
/// second, not one per event. (An event refused within a second of the last
/// re-check is checked against that re-check's listing.)
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

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
            version_ids: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// The schemas to write `event_type` with, newest first.
    pub async fn get(&self, event_type: &str) -> Result<Arc<WriterCandidates>, Rejection> {
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
        self.fetch_and_cache(event_type).await
    }

    /// Asks the registry again for `event_type`'s versions when an event fit
    /// none of `tried` (a version registered since the last refresh may have
    /// the field), at most once per [`RECHECK_INTERVAL`]. Returns the new
    /// candidates when they differ from `tried`.
    pub async fn recheck(
        &self,
        event_type: &str,
        tried: &WriterCandidates,
    ) -> Result<Option<Arc<WriterCandidates>>, Rejection> {
        if tried.fetched.is_none() {
            return Ok(None); // pinned by --schema-id
        }
        let _fetching = self.fetching.lock().await;
        let recent = {
            let by_type = self.by_type.read().expect("schema cache lock");
            by_type
                .get(event_type)
                .filter(|c| {
                    c.rechecked
                        .is_some_and(|at| at.elapsed() < RECHECK_INTERVAL)
                })
                .map(|c| c.candidates.clone())
        };
        let candidates = match recent {
            Some(candidates) => candidates,
            None => {
                let candidates = self.fetch_and_cache(event_type).await?;
                if let Some(cached) = self
                    .by_type
                    .write()
                    .expect("schema cache lock")
                    .get_mut(event_type)
                {
                    cached.rechecked = Some(Instant::now());
                }
                candidates
            }
        };
        let ids = |c: &WriterCandidates| c.schemas.iter().map(|(_, s)| s.id).collect::<Vec<_>>();
        Ok((ids(&candidates) != ids(tried)).then_some(candidates))
    }

    async fn fetch_and_cache(&self, event_type: &str) -> Result<Arc<WriterCandidates>, Rejection> {
        match self.fetch(event_type).await {
            Ok((candidates, refreshes)) => {
                self.by_type.write().expect("schema cache lock").insert(
                    event_type.to_string(),
                    Cached {
                        candidates: candidates.clone(),
                        fetched: Instant::now(),
                        refreshes,
                        rechecked: None,
                    },
                );
                Ok(candidates)
            }
            // A registry hiccup must not stop traffic that already has a schema.
            Err(e) if e.code == tributary_proto::v1::EventErrorCode::Unavailable => {
                self.cached(event_type, true).ok_or(e)
            }
            Err(e) => Err(e),
        }
    }

    /// What an event was checked against and when the registry is asked
    /// again, for a refusal's message: e.g. `(checked against versions 2, 1
    /// of `tributary.events.page_view-value`, newest schema id 7, listed by
    /// the registry 12 s ago; asked again every 30s (--schema-refresh) and at
    /// once for an unknown field)`.
    pub fn provenance(&self, candidates: &WriterCandidates) -> String {
        let subject = &candidates.subject;
        let Some(fetched) = candidates.fetched else {
            return format!(
                "(checked against schema id {}, pinned by --schema-id for `{subject}`)",
                candidates.newest().id
            );
        };
        format!(
            "(checked against {} of `{subject}`, newest schema id {}, listed by the registry {} s ago; asked again every {} (--schema-refresh) and at once for an unknown field)",
            candidates.versions(),
            candidates.newest().id,
            fetched.elapsed().as_secs(),
            humantime::format_duration(self.args.refresh)
        )
    }

    fn cached(&self, event_type: &str, accept_stale: bool) -> Option<Arc<WriterCandidates>> {
        let by_type = self.by_type.read().expect("schema cache lock");
        let cached = by_type.get(event_type)?;
        let fresh = !cached.refreshes || cached.fetched.elapsed() < self.args.refresh;
        (fresh || accept_stale).then(|| cached.candidates.clone())
    }

    /// Resolves the candidates by policy; returns whether they must be
    /// refreshed.
    async fn fetch(&self, event_type: &str) -> Result<(Arc<WriterCandidates>, bool), Rejection> {
        let subject = schemas::value_subject(&self.kafka.event_topic(event_type));
        let registry_error = |e: schema_registry_converter::error::SRCError| {
            if registry_client::is_not_found(&e) {
                Rejection::unknown_type(event_type, format!("subject `{subject}` has no schema"))
            } else {
                Rejection::unavailable(format!("schema registry: {e}"))
            }
        };
        if let Some((_, id)) = self.args.pinned.iter().find(|(t, _)| t == event_type) {
            let pinned = WriterCandidates {
                subject,
                schemas: vec![(None, self.by_id(*id).await?)],
                fetched: None,
            };
            return Ok((Arc::new(pinned), false));
        }
        let builtin = schemas::latest(event_type).filter(|s| s.name != schemas::AGGREGATE);
        if let (SchemaPolicy::AutoRegister, Some(builtin)) = (self.args.policy, builtin) {
            // The processor reads this subject with its built-in reader:
            // declare the level that keeps every version readable first.
            self.protection
                .protect(&subject)
                .await
                .map_err(|e| Rejection::unavailable(format!("schema registry: {e:#}")))?;
            registry_client::register_avro(&self.settings, &subject, builtin.json).await.map_err(|e| {
                if e.error.contains("409") {
                    Rejection::unavailable(format!("the registry refused built-in schema {}/v{} as incompatible with `{subject}`: {e}", builtin.name, builtin.version))
                } else {
                    registry_error(e)
                }
            })?;
        }
        let fetched = Instant::now();
        let mut versions = registry_client::versions(&self.settings, &subject)
            .await
            .map_err(registry_error)?;
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let mut schemas = Vec::with_capacity(versions.len());
        for version in versions {
            if let Some(schema) = self.version(&subject, version).await? {
                schemas.push((Some(version), schema));
            }
        }
        if schemas.is_empty() {
            return Err(Rejection::unknown_type(
                event_type,
                format!("subject `{subject}` has no Avro schema"),
            ));
        }
        let candidates = WriterCandidates {
            subject,
            schemas,
            fetched: Some(fetched),
        };
        Ok((Arc::new(candidates), true))
    }

    /// Version `version` of `subject`, or `None` when it is not Avro.
    async fn version(
        &self,
        subject: &str,
        version: u32,
    ) -> Result<Option<Arc<WriterSchema>>, Rejection> {
        let key = (subject.to_string(), version);
        let known = self
            .version_ids
            .read()
            .expect("schema cache lock")
            .get(&key)
            .copied();
        if let Some(id) = known {
            return self.by_id(id).await.map(Some);
        }
        let registered = registry_client::version(&self.settings, subject, version)
            .await
            .map_err(|e| Rejection::unavailable(format!("schema registry: {e}")))?;
        if registered.schema_type != SchemaType::Avro {
            return Ok(None);
        }
        self.version_ids
            .write()
            .expect("schema cache lock")
            .insert(key, registered.id);
        self.insert(registered.id, &registered.schema).map(Some)
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

    /// How long a version listing is trusted.
    pub fn refresh_interval(&self) -> Duration {
        self.args.refresh
    }
}
