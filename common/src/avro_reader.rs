//! Reading Confluent-framed Avro records by writer schema id: the writer
//! schema is fetched from the registry on the first record of an id and
//! cached, and one reader is prepared per (writer id, reader schema), so no
//! schema is fetched, parsed or resolved per record.
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use apache_avro::{Schema, reader::datum::GenericDatumReader, types::Value};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use thiserror::Error;

use crate::{registry_client, wire};

/// Why a record could not be read.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ReadError {
    /// Not Confluent-framed.
    #[error("{0}")]
    NotFramed(String),
    /// The registry has no schema with this id.
    #[error("schema id {0} is not in the registry")]
    UnknownSchema(u32),
    /// The writer schema cannot be resolved against the reader, or the bytes
    /// do not decode.
    #[error("{0}")]
    Undecodable(String),
    /// The registry could not be asked; the record is not at fault.
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
}

type Reader = GenericDatumReader<'static>;

/// Writer schemas by id and prepared readers.
pub struct ReaderCache {
    settings: SrSettings,
    writers: RwLock<HashMap<u32, &'static Schema>>,
    readers: RwLock<HashMap<(u32, usize), Arc<Reader>>>,
    fetching: tokio::sync::Mutex<()>,
}

impl ReaderCache {
    /// An empty cache over the registry in `settings`.
    pub fn new(settings: SrSettings) -> Self {
        Self {
            settings,
            writers: RwLock::default(),
            readers: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Decodes a framed record, resolved against `reader` (or read with its
    /// writer schema alone when `None`).
    pub async fn read(
        &self,
        framed: &[u8],
        reader: Option<&'static Schema>,
    ) -> Result<Value, ReadError> {
        let (id, mut body) =
            wire::unframe(framed).map_err(|e| ReadError::NotFramed(e.to_string()))?;
        let prepared = self.reader(id, reader).await?;
        let value = prepared
            .read_value(&mut body)
            .map_err(|e| ReadError::Undecodable(format!("schema id {id}: {e}")))?;
        if !body.is_empty() {
            return Err(ReadError::Undecodable(format!(
                "schema id {id}: {} bytes left after the record",
                body.len()
            )));
        }
        Ok(value)
    }

    async fn reader(
        &self,
        id: u32,
        reader: Option<&'static Schema>,
    ) -> Result<Arc<Reader>, ReadError> {
        // Reader schemas are 'static, so their address identifies them.
        let key = (id, reader.map_or(0, |r| r as *const Schema as usize));
        if let Some(prepared) = self.readers.read().expect("reader cache lock").get(&key) {
            return Ok(prepared.clone());
        }
        let writer = self.writer(id).await?;
        let builder = GenericDatumReader::builder(writer);
        let prepared = match reader {
            Some(reader) => builder.reader_schema(reader).build(),
            None => builder.build(),
        }
        .map_err(|e| {
            ReadError::Undecodable(format!(
                "schema id {id} cannot be read with the reader schema: {e}"
            ))
        })?;
        let prepared = Arc::new(prepared);
        self.readers
            .write()
            .expect("reader cache lock")
            .insert(key, prepared.clone());
        Ok(prepared)
    }

    /// The writer schema with `id`, from the cache or the registry.
    pub async fn writer(&self, id: u32) -> Result<&'static Schema, ReadError> {
        if let Some(schema) = self.writers.read().expect("writer cache lock").get(&id) {
            return Ok(schema);
        }
        // One lookup at a time: a burst of records of a new id costs one call.
        let _fetching = self.fetching.lock().await;
        if let Some(schema) = self.writers.read().expect("writer cache lock").get(&id) {
            return Ok(schema);
        }
        let registered = tokio::time::timeout(
            registry_client::REQUEST_TIMEOUT,
            registry_client::by_id(&self.settings, id),
        )
        .await
        .map_err(|_| ReadError::Unavailable(format!("no answer for schema id {id} in time")))?
        .map_err(|e| {
            if registry_client::is_not_found(&e) {
                ReadError::UnknownSchema(id)
            } else {
                ReadError::Unavailable(e.to_string())
            }
        })?;
        let schema = Schema::parse_str(&registered.schema).map_err(|e| {
            ReadError::Undecodable(format!("schema id {id} is not valid Avro: {e}"))
        })?;
        // Leaked once per schema id ever seen (immutable, few): prepared
        // readers borrow it for the life of the process.
        let schema: &'static Schema = Box::leak(Box::new(schema));
        self.writers
            .write()
            .expect("writer cache lock")
            .insert(id, schema);
        Ok(schema)
    }
}
