//! Reading Confluent-framed Avro records by writer schema id, for every
//! consumer of Tributary's topics.
//!
//! A record names its writer schema by id: the first record of an id costs
//! one registry lookup (one at a time, so a burst of a new id costs one
//! call), every later one a map lookup. One reader is prepared per (writer
//! id, reader schema) and reused, so no schema is parsed or resolved per
//! record. A schema id's content never changes, so an unusable writer (not
//! Avro, not parseable, not readable as the reader) is remembered as such;
//! an id the registry does not know is not, so a schema registered later is
//! found. Both maps grow only with the number of schema ids ever seen.
use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use apache_avro::{Schema, reader::datum::GenericDatumReader, types::Value};
use prometheus::IntCounter;
use schema_registry_converter::{
    async_impl::schema_registry::SrSettings, schema_registry_common::SchemaType,
};
use thiserror::Error;

use crate::{
    avro_resolution::{self, Resolvable, named_types},
    registry_client, wire,
};

/// Why a record could not be read.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ReadError {
    /// Not Confluent-framed.
    #[error("{0}")]
    NotFramed(String),
    /// The registry has no schema with this id.
    #[error("{0}")]
    UnknownSchema(String),
    /// The writer schema is unusable or cannot be read as the reader schema,
    /// or the bytes do not decode.
    #[error("{0}")]
    Undecodable(String),
    /// The registry could not be asked: the record is not at fault; retry it.
    #[error("{0}")]
    Unavailable(String),
}

type Reader = GenericDatumReader<'static>;

/// A prepared reader, or why the writer cannot be read as the reader schema.
type Prepared = Result<Arc<Reader>, ReadError>;

/// Writer schemas by id, and readers prepared from them.
pub struct ReaderCache {
    settings: SrSettings,
    writers: RwLock<HashMap<u32, Result<&'static Schema, ReadError>>>,
    /// By (writer id, address of the 'static reader schema; 0 for none).
    readers: RwLock<HashMap<(u32, usize), Prepared>>,
    fetching: tokio::sync::Mutex<()>,
    lookups: AtomicU64,
    /// The `SCHEMA_CACHE` counters, looked up once rather than per record.
    hits: IntCounter,
    misses: IntCounter,
}

impl ReaderCache {
    /// An empty cache over the registry in `settings`.
    pub fn new(settings: SrSettings) -> Self {
        Self {
            settings,
            writers: RwLock::default(),
            readers: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
            lookups: AtomicU64::new(0),
            hits: crate::metrics::SCHEMA_CACHE.with_label_values(&["hit"]),
            misses: crate::metrics::SCHEMA_CACHE.with_label_values(&["miss"]),
        }
    }

    /// Decodes a framed record, resolved against `reader` (or with its
    /// writer schema alone when `None`).
    pub async fn read(
        &self,
        framed: &[u8],
        reader: Option<&'static Schema>,
    ) -> Result<Value, ReadError> {
        let (id, body) = wire::unframe(framed).map_err(|e| ReadError::NotFramed(e.to_string()))?;
        let prepared = self.reader(id, reader).await?;
        let mut rest = body;
        let value = prepared.read_value(&mut rest).map_err(|e| {
            ReadError::Undecodable(format!("the body does not decode with schema id {id}: {e}"))
        })?;
        if !rest.is_empty() {
            return Err(ReadError::Undecodable(format!(
                "{} bytes left over after decoding a record with schema id {id}",
                rest.len()
            )));
        }
        Ok(value)
    }

    /// How many times the registry has been asked for a schema.
    pub fn registry_lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// Adds the writer schema of `id` without asking the registry, e.g. a
    /// schema known in advance.
    pub fn insert_writer(&self, id: u32, json: &str) {
        self.writers
            .write()
            .expect("writer cache lock")
            .insert(id, parse_writer(id, json));
    }

    async fn reader(
        &self,
        id: u32,
        reader: Option<&'static Schema>,
    ) -> Result<Arc<Reader>, ReadError> {
        // Reader schemas are 'static, so their address identifies them.
        let key = (id, reader.map_or(0, |r| std::ptr::from_ref(r) as usize));
        if let Some(prepared) = self.readers.read().expect("reader cache lock").get(&key) {
            self.hits.inc();
            return prepared.clone();
        }
        self.misses.inc();
        let writer = self.writer(id).await?;
        let prepared = prepare(id, writer, reader);
        self.readers
            .write()
            .expect("reader cache lock")
            .entry(key)
            .or_insert(prepared)
            .clone()
    }

    /// The writer schema of `id`: from the cache, or else fetched from the
    /// registry once (as [`ReaderCache::read`] does) and kept.
    pub async fn writer(&self, id: u32) -> Result<&'static Schema, ReadError> {
        if let Some(known) = self.cached_writer(id) {
            return known;
        }
        let _fetching = self.fetching.lock().await;
        if let Some(known) = self.cached_writer(id) {
            return known;
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let lookup = tokio::time::timeout(
            registry_client::REQUEST_TIMEOUT,
            registry_client::by_id(&self.settings, id),
        )
        .await;
        let registered = match lookup {
            Err(_) => {
                return Err(ReadError::Unavailable(format!(
                    "the schema registry did not answer the lookup of schema id {id} within {:?}",
                    registry_client::REQUEST_TIMEOUT
                )));
            }
            Ok(Err(e)) if registry_client::is_not_found(&e) => {
                return Err(ReadError::UnknownSchema(format!(
                    "schema id {id} is not in the registry"
                )));
            }
            Ok(Err(e)) => {
                return Err(ReadError::Unavailable(format!(
                    "schema registry lookup of schema id {id}: {e}"
                )));
            }
            Ok(Ok(registered)) => registered,
        };
        let parsed = if registered.schema_type == SchemaType::Avro {
            parse_writer(id, &registered.schema)
        } else {
            Err(ReadError::Undecodable(format!(
                "schema id {id} is a {:?} schema, not Avro",
                registered.schema_type
            )))
        };
        self.writers
            .write()
            .expect("writer cache lock")
            .entry(id)
            .or_insert(parsed)
            .clone()
    }

    fn cached_writer(&self, id: u32) -> Option<Result<&'static Schema, ReadError>> {
        self.writers
            .read()
            .expect("writer cache lock")
            .get(&id)
            .cloned()
    }
}

fn prepare(
    id: u32,
    writer: &'static Schema,
    reader: Option<&'static Schema>,
) -> Result<Arc<Reader>, ReadError> {
    let name = match reader {
        Some(Schema::Record(record)) => record.name.name().to_string(),
        Some(other) => format!("{other:?}"),
        None => "its own schema".to_string(),
    };
    let unusable = |e: &dyn std::fmt::Display| {
        ReadError::Undecodable(format!("writer schema {id} cannot be read as {name}: {e}"))
    };
    let built = match reader {
        Some(reader) => {
            // The datum reader resolves per value and would only fail on some
            // records; checking up front refuses every record of an
            // unreadable writer with the same, complete reason, and with the
            // registry's own judge, so what it accepts is read here.
            readable_as(writer, reader).map_err(|e| unusable(&e))?;
            GenericDatumReader::builder(writer)
                .reader_schema(reader)
                .build()
        }
        None => GenericDatumReader::builder(writer).build(),
    };
    built.map(Arc::new).map_err(|e| unusable(&e))
}

/// Whether data written with `writer` can be read as `reader`, by the same
/// judge the registry's compatibility checks use; the error lists every
/// reason, with Java Avro's names.
pub fn readable_as(writer: &Schema, reader: &Schema) -> Result<(), String> {
    let (writer_names, reader_names) = (named_types(writer), named_types(reader));
    let incompatibilities = avro_resolution::can_read(
        Resolvable {
            schema: writer,
            names: &writer_names,
        },
        Resolvable {
            schema: reader,
            names: &reader_names,
        },
    );
    if incompatibilities.is_empty() {
        return Ok(());
    }
    let reasons: Vec<String> = incompatibilities
        .iter()
        .map(|i| format!("{} at {}: {}", i.kind.as_str(), i.location, i.message))
        .collect();
    Err(reasons.join("; "))
}

/// Parses a writer schema and leaks it on purpose: one per schema id ever
/// seen, so prepared readers can borrow it for the life of the process.
fn parse_writer(id: u32, json: &str) -> Result<&'static Schema, ReadError> {
    let schema = Schema::parse_str(json)
        .map_err(|e| ReadError::Undecodable(format!("schema id {id} is not valid Avro: {e}")))?;
    Ok(Box::leak(Box::new(schema)))
}
