//! Writer schemas by registry id and the readers prepared from them.
//!
//! A record names its writer schema by id; the first record of an id costs one
//! registry lookup, every later one is a map lookup. Building a reader
//! resolves the writer against the processor's reader schema, so one reader is
//! prepared per (schema id, event kind) and reused: no schema is parsed or
//! resolved per record. Both maps grow only with the number of schema ids ever
//! seen, which the registry bounds.
use std::{
    collections::HashMap,
    sync::{
        Arc, LazyLock, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use apache_avro::{
    Schema, reader::datum::GenericDatumReader, schema_compatibility::SchemaCompatibility,
};
use schema_registry_converter::{
    async_impl::schema_registry::SrSettings, schema_registry_common::SchemaType,
};
use tributary_common::{registry_client, schemas};

use super::{
    DecodeError, ReaderVersion,
    poison::{Poison, PoisonReason},
};

/// What a record is read as, chosen by its event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// `ad_click`, read with the built-in reader schema.
    AdClick,
    /// `price_tick`, read with the built-in reader schema.
    PriceTick,
    /// Any other type, read with its writer schema alone.
    Generic,
}

impl Kind {
    /// The kind of records of `event_type`.
    pub(crate) fn of(event_type: &str) -> Self {
        match event_type {
            schemas::AD_CLICK => Self::AdClick,
            schemas::PRICE_TICK => Self::PriceTick,
            _ => Self::Generic,
        }
    }
}

/// A reader ready to decode bodies of one writer schema id as one kind.
pub(crate) type Reader = GenericDatumReader<'static>;

/// A prepared reader, or why the writer cannot be read as the kind.
type Prepared = Result<Arc<Reader>, Poison>;

/// Writer schemas fetched from the registry and readers prepared from them.
pub(crate) struct SchemaCache {
    settings: SrSettings,
    ad_click: &'static Schema,
    price_tick: &'static Schema,
    /// A schema id's content never changes, so a schema that cannot be used
    /// (not Avro, not parseable) is remembered as such rather than re-fetched.
    writers: RwLock<HashMap<u32, Result<&'static Schema, Poison>>>,
    /// Likewise a writer that cannot be resolved against the reader schema.
    readers: RwLock<HashMap<(u32, Kind), Prepared>>,
    /// One registry lookup at a time: a burst of records of a new schema id costs one call.
    fetching: tokio::sync::Mutex<()>,
    lookups: AtomicU64,
}

impl SchemaCache {
    /// An empty cache over the registry in `settings`, reading the built-in
    /// types with the reader schemas of `version`.
    pub(crate) fn new(settings: SrSettings, version: ReaderVersion) -> Self {
        Self {
            settings,
            ad_click: builtin_reader(schemas::AD_CLICK, version),
            price_tick: builtin_reader(schemas::PRICE_TICK, version),
            writers: RwLock::default(),
            readers: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
            lookups: AtomicU64::new(0),
        }
    }

    /// The reader for bodies written with schema `id`, to be read as `kind`.
    pub(crate) async fn reader(&self, id: u32, kind: Kind) -> Result<Arc<Reader>, DecodeError> {
        if let Some(prepared) = self
            .readers
            .read()
            .expect("reader cache lock")
            .get(&(id, kind))
        {
            return Ok(prepared.clone()?);
        }
        let writer = self.writer(id).await?;
        let prepared = self.prepare(id, writer, kind);
        let mut readers = self.readers.write().expect("reader cache lock");
        Ok(readers.entry((id, kind)).or_insert(prepared).clone()?)
    }

    /// How many times the registry has been asked for a schema.
    pub(crate) fn registry_lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    fn prepare(&self, id: u32, writer: &'static Schema, kind: Kind) -> Prepared {
        let reader = match kind {
            Kind::AdClick => Some(self.ad_click),
            Kind::PriceTick => Some(self.price_tick),
            Kind::Generic => None,
        };
        let unusable = |e: &dyn std::fmt::Display| {
            Poison::new(
                PoisonReason::Undecodable,
                format!("writer schema {id} cannot be read as {kind:?}: {e}"),
            )
        };
        let built = match reader {
            Some(reader) => {
                // The datum reader resolves per value and would only fail on
                // some records; checking up front refuses every record of an
                // unreadable writer with the same, complete reason.
                SchemaCompatibility::can_read(writer, reader).map_err(|e| unusable(&e))?;
                GenericDatumReader::builder(writer)
                    .reader_schema(reader)
                    .build()
            }
            None => GenericDatumReader::builder(writer).build(),
        };
        built.map(Arc::new).map_err(|e| unusable(&e))
    }

    async fn writer(&self, id: u32) -> Result<&'static Schema, DecodeError> {
        if let Some(known) = self.cached_writer(id) {
            return Ok(known?);
        }
        let _fetching = self.fetching.lock().await;
        if let Some(known) = self.cached_writer(id) {
            return Ok(known?);
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let lookup = tokio::time::timeout(
            registry_client::REQUEST_TIMEOUT,
            registry_client::by_id(&self.settings, id),
        )
        .await;
        let registered = match lookup {
            Err(_) => {
                return Err(DecodeError::Unavailable(format!(
                    "the schema registry did not answer the lookup of schema id {id} within {:?}",
                    registry_client::REQUEST_TIMEOUT
                )));
            }
            // Not remembered: a schema registered later must be found.
            Ok(Err(e)) if registry_client::is_not_found(&e) => {
                return Err(Poison::new(
                    PoisonReason::UnknownSchema,
                    format!("schema id {id} is not in the registry"),
                )
                .into());
            }
            Ok(Err(e)) => {
                return Err(DecodeError::Unavailable(format!(
                    "schema registry lookup of schema id {id}: {e}"
                )));
            }
            Ok(Ok(registered)) => registered,
        };
        let parsed = if registered.schema_type == SchemaType::Avro {
            parse_writer(id, &registered.schema)
        } else {
            Err(Poison::new(
                PoisonReason::Undecodable,
                format!(
                    "schema id {id} is a {:?} schema, not Avro",
                    registered.schema_type
                ),
            ))
        };
        let mut writers = self.writers.write().expect("writer cache lock");
        Ok(writers.entry(id).or_insert(parsed).clone()?)
    }

    fn cached_writer(&self, id: u32) -> Option<Result<&'static Schema, Poison>> {
        self.writers
            .read()
            .expect("writer cache lock")
            .get(&id)
            .cloned()
    }

    /// Caches `json` as the writer schema of `id`, as if fetched from the registry.
    #[cfg(test)]
    pub(crate) fn insert_writer(&self, id: u32, json: &str) {
        self.writers
            .write()
            .expect("writer cache lock")
            .insert(id, parse_writer(id, json));
    }
}

/// Parses a writer schema and leaks it on purpose: one per schema id ever
/// seen, so that prepared readers can borrow it for the life of the process.
fn parse_writer(id: u32, json: &str) -> Result<&'static Schema, Poison> {
    let schema = Schema::parse_str(json).map_err(|e| {
        Poison::new(
            PoisonReason::Undecodable,
            format!("schema id {id} is not valid Avro: {e}"),
        )
    })?;
    Ok(Box::leak(Box::new(schema)))
}

/// The built-in reader schema of `name` in `version`, parsed once per process.
fn builtin_reader(name: &str, version: ReaderVersion) -> &'static Schema {
    static PARSED: LazyLock<Vec<(&'static schemas::BuiltinSchema, Schema)>> =
        LazyLock::new(|| schemas::BUILTIN.iter().map(|s| (s, s.parse())).collect());
    let version = match version {
        ReaderVersion::V1 => 1,
        ReaderVersion::V2 => 2,
        ReaderVersion::Latest => {
            schemas::latest(name)
                .unwrap_or_else(|| panic!("{name} is not a built-in schema"))
                .version
        }
    };
    PARSED
        .iter()
        .find(|(s, _)| s.name == name && s.version == version)
        .map(|(_, schema)| schema)
        .unwrap_or_else(|| panic!("schemas/{name}/v{version}.avsc is not built in"))
}
