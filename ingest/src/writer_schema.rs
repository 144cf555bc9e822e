//! The writer schemas of each event type: the subject's registered versions
//! (an event is written with the newest one it fits), listed through the
//! registry, cached, refreshed every `--schema-refresh` and at once (at most
//! every [`RECHECK_INTERVAL`]) when an event fits none of them, so the hot
//! path makes no registry call and parses no schema per event.
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, LazyLock, RwLock},
    time::{Duration, Instant},
};

use apache_avro::{Schema, schema::ResolvedSchema, writer::datum::GenericDatumWriter};
use schema_registry_converter::{
    async_impl::schema_registry::SrSettings, schema_registry_common::SchemaType,
};
use tributary_common::{
    avro_reader,
    config::{KafkaArgs, RegistryArgs},
    registry_client::{self, ReaderProtection},
    schemas, wire,
};

use crate::{
    avro_json::Names,
    config::{SchemaArgs, SchemaPolicy},
    encode::TypedPlan,
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
    /// The schema compiled for typed events (`None` when not a record).
    pub plan: Option<TypedPlan>,
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
        let plan = match schema {
            Schema::Record(record) => Some(TypedPlan::compile(record, &names)),
            _ => None,
        };
        Ok(Self {
            id,
            schema,
            names,
            plan,
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
    /// Whether the one candidate is pinned by `--schema-id`.
    pub fn pinned(&self) -> bool {
        self.fetched.is_none()
    }

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

    /// The one schema `--schema-id` pins, as if pinned (id 100).
    #[cfg(test)]
    pub(crate) fn pinned_to(subject: &str, json: &str) -> Self {
        let schema = WriterSchema::new(100, json).expect("valid schema");
        Self {
            subject: subject.into(),
            schemas: vec![(None, Arc::new(schema))],
            fetched: None,
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
    /// When an event that fit no version last made ingest list again.
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
    /// The built-in types whose schema this process registered.
    registered: RwLock<HashSet<String>>,
    fetching: tokio::sync::Mutex<()>,
}

/// The least time between two on-demand re-checks of one subject, so a
/// stream of events with an unknown field costs the registry one listing a
/// second, not one per event. (An event that needs a re-listing within a
/// second of the last one waits for the next.)
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
            registered: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// The cached schemas of `event_type` when they need no registry call
    /// (counted as a cache hit); otherwise [`Self::get`] asks the registry.
    pub fn fresh(&self, event_type: &str) -> Option<Arc<WriterCandidates>> {
        let fresh = self.cached(event_type, false)?;
        // Looked up once: a labelled lookup hashes the label every time.
        static HIT: LazyLock<prometheus::IntCounter> =
            LazyLock::new(|| tributary_common::metrics::SCHEMA_CACHE.with_label_values(&["hit"]));
        HIT.inc();
        Some(fresh)
    }

    /// The schemas to write `event_type` with, newest first.
    pub async fn get(&self, event_type: &str) -> Result<Arc<WriterCandidates>, Rejection> {
        if let Some(fresh) = self.fresh(event_type) {
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

    /// Asks the registry again for `event_type`'s versions when an event that
    /// arrived at `arrived` fit none of `tried` (a version registered since
    /// the last listing may have its field), so that a refusal is always
    /// based on a listing made after the event arrived. One re-listing per
    /// subject per [`RECHECK_INTERVAL`]: events that need one meanwhile wait
    /// for the next (a stream of events with a misspelt field costs the
    /// registry one listing a second). Returns the new candidates when they
    /// differ from `tried`.
    pub async fn recheck(
        &self,
        event_type: &str,
        tried: &WriterCandidates,
        arrived: Instant,
    ) -> Result<Option<Arc<WriterCandidates>>, Rejection> {
        if tried.fetched.is_none() {
            return Ok(None); // pinned by --schema-id
        }
        let differs = |candidates: Arc<WriterCandidates>| {
            let ids =
                |c: &WriterCandidates| c.schemas.iter().map(|(_, s)| s.id).collect::<Vec<_>>();
            (ids(&candidates) != ids(tried)).then_some(candidates)
        };
        loop {
            if let Some(listed) = self.listed_since(event_type, arrived) {
                return Ok(differs(listed));
            }
            let wait = self.until_next_recheck(event_type);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
                continue;
            }
            let _fetching = self.fetching.lock().await;
            if self.listed_since(event_type, arrived).is_some()
                || !self.until_next_recheck(event_type).is_zero()
            {
                continue;
            }
            if let Some(cached) = self
                .by_type
                .write()
                .expect("schema cache lock")
                .get_mut(event_type)
            {
                cached.rechecked = Some(Instant::now());
            }
            return self.fetch_and_cache(event_type).await.map(differs);
        }
    }

    /// The cached candidates of `event_type` when they were listed at or
    /// after `instant`.
    fn listed_since(&self, event_type: &str, instant: Instant) -> Option<Arc<WriterCandidates>> {
        let by_type = self.by_type.read().expect("schema cache lock");
        let cached = by_type.get(event_type)?;
        cached
            .candidates
            .fetched
            .is_some_and(|listed| listed >= instant)
            .then(|| cached.candidates.clone())
    }

    /// How long until `event_type` may be re-listed on demand.
    fn until_next_recheck(&self, event_type: &str) -> Duration {
        let by_type = self.by_type.read().expect("schema cache lock");
        by_type
            .get(event_type)
            .and_then(|c| c.rechecked)
            .map_or(Duration::ZERO, |at| {
                RECHECK_INTERVAL.saturating_sub(at.elapsed())
            })
    }

    async fn fetch_and_cache(&self, event_type: &str) -> Result<Arc<WriterCandidates>, Rejection> {
        match self.fetch(event_type).await {
            Ok((candidates, refreshes)) => {
                let mut by_type = self.by_type.write().expect("schema cache lock");
                let rechecked = by_type.get(event_type).and_then(|c| c.rechecked);
                by_type.insert(
                    event_type.to_string(),
                    Cached {
                        candidates: candidates.clone(),
                        fetched: Instant::now(),
                        refreshes,
                        rechecked,
                    },
                );
                Ok(candidates)
            }
            // A registry hiccup must not stop traffic that already has a
            // schema: keep writing with the versions listed last, and ask
            // again after another --schema-refresh rather than on every event.
            Err(e) if e.code == tributary_proto::v1::EventErrorCode::Unavailable => {
                let mut by_type = self.by_type.write().expect("schema cache lock");
                let cached = by_type.get_mut(event_type).ok_or(e.clone())?;
                tracing::warn!(%event_type, error = %e.message, "the registry did not answer; writing with the versions listed before");
                cached.fetched = Instant::now();
                Ok(cached.candidates.clone())
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
        let registered = || {
            self.registered
                .read()
                .expect("schema cache lock")
                .contains(event_type)
        };
        if let (SchemaPolicy::AutoRegister, Some(builtin)) = (self.args.policy, builtin)
            && !registered()
        {
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
            self.registered
                .write()
                .expect("schema cache lock")
                .insert(event_type.to_string());
        }
        let fetched = Instant::now();
        let mut versions = registry_client::versions(&self.settings, &subject)
            .await
            .map_err(registry_error)?;
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let mut schemas: Vec<(Option<u32>, Arc<WriterSchema>)> = Vec::with_capacity(versions.len());
        for version in versions {
            let Some(schema) = self.version(&subject, version).await? else {
                continue;
            };
            // An older version is a candidate only when the newest reads its
            // data: a subject under a level weaker than FULL may have added a
            // required field, which events must then carry.
            if let Some((_, newest)) = schemas.first()
                && let Err(why) = avro_reader::readable_as(schema.schema, newest.schema)
            {
                tracing::debug!(%subject, version, %why, "not writing with a version the newest cannot read");
                continue;
            }
            schemas.push((Some(version), schema));
        }
        if schemas.is_empty() {
            return Err(Rejection::unknown_type(
                event_type,
                format!("subject `{subject}` has no usable Avro record schema"),
            ));
        }
        let candidates = WriterCandidates {
            subject,
            schemas,
            fetched: Some(fetched),
        };
        Ok((Arc::new(candidates), true))
    }

    /// Version `version` of `subject`, or `None` when it cannot be written
    /// with: not an Avro record, not parsable here, or deleted since the
    /// listing (logged; the other versions stay usable).
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
        let registered = match registry_client::version(&self.settings, subject, version).await {
            Ok(registered) => registered,
            Err(e) if registry_client::is_not_found(&e) => return Ok(None),
            Err(e) => return Err(Rejection::unavailable(format!("schema registry: {e}"))),
        };
        if registered.schema_type != SchemaType::Avro {
            return Ok(None);
        }
        let schema = match self.insert(registered.id, &registered.schema) {
            Ok(schema) if matches!(schema.schema, Schema::Record(_)) => schema,
            Ok(_) => return Ok(None),
            Err(e) => {
                tracing::warn!(%subject, version, error = %e.message, "ingest cannot write with this version; it is skipped");
                return Ok(None);
            }
        };
        self.version_ids
            .write()
            .expect("schema cache lock")
            .insert(key, registered.id);
        Ok(Some(schema))
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
