//! What a client submits (a candidate schema with its references) and what the
//! registry keeps (a stored schema under its global id).
use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::ParsedSchema;

/// A reference from a schema to a named type registered under another subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SchemaReference {
    /// The name the referencing schema uses (for Avro, the type's full name).
    pub name: String,
    /// The subject holding the referenced schema.
    pub subject: String,
    /// The version of the referenced schema (`-1` for the latest).
    pub version: i32,
}

/// A parsed, canonicalised schema that is about to be registered, looked up or checked.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The schema in canonical form.
    pub parsed: ParsedSchema,
    /// Its references, as submitted.
    pub references: Vec<SchemaReference>,
    /// Its identity (see [`ParsedSchema::fingerprint`]).
    pub fingerprint: String,
}

impl Candidate {
    /// A candidate from a parsed schema and its references.
    pub fn new(parsed: ParsedSchema, references: Vec<SchemaReference>) -> Self {
        let refs_json = serde_json::to_value(&references).unwrap_or(Value::Null);
        let fingerprint = parsed.fingerprint(&refs_json);
        Self {
            parsed,
            references,
            fingerprint,
        }
    }
}

/// A schema as stored under its global id; immutable once written.
#[derive(Debug, Clone)]
pub struct StoredSchema {
    /// The global id.
    pub id: i32,
    /// The canonical schema text.
    pub text: String,
    /// Its references.
    pub references: Vec<SchemaReference>,
    /// The `GET /schemas/ids/{id}` body, rendered once because ids are hot and immutable.
    pub by_id_body: Bytes,
}

/// The `GET /schemas/ids/{id}` body: `schemaType` is left out for Avro, as Confluent does.
#[derive(Serialize)]
struct ByIdBody<'a> {
    schema: &'a str,
    #[serde(skip_serializing_if = "<[SchemaReference]>::is_empty")]
    references: &'a [SchemaReference],
}

impl StoredSchema {
    /// A stored schema, with its response body rendered.
    pub fn new(id: i32, text: String, references: Vec<SchemaReference>) -> Self {
        let body = serde_json::to_vec(&ByIdBody {
            schema: &text,
            references: &references,
        })
        .expect("a string and references always serialise");
        Self {
            id,
            text,
            references,
            by_id_body: Bytes::from(body),
        }
    }
}
