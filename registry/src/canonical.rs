//! Turns submitted schema text into the registry's canonical form: the text
//! that is stored and returned, and the fingerprint that decides whether two
//! submissions are "the same schema".
//!
//! Identity ignores whitespace and JSON key order: the text is re-serialised
//! compactly with keys in a fixed order (Avro's conventional order first, the
//! rest sorted), so two submissions that differ only in layout get the same
//! text and therefore the same id. `?normalize=true` goes further, like
//! Confluent's `normalize` (`AvroSchemaUtils.toNormalizedString`): names
//! become fully qualified and `namespace` is dropped, aliases are sorted,
//! `{"type": "int"}` becomes `"int"` and a decimal's `"scale": 0` is dropped,
//! while docs, defaults, logical types and other properties are kept.
use std::collections::HashMap;

use apache_avro::Schema;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use tributary_common::avro_resolution::{Resolvable, collect_names};

use crate::error::{RegistryError, RegistryResult};

/// The only schema type this registry stores.
pub const AVRO: &str = "AVRO";

/// Keys written first, in this order, so stored text reads like Avro's own rendering.
const KEY_ORDER: &[&str] = &[
    "type",
    "name",
    "namespace",
    "doc",
    "aliases",
    "fields",
    "symbols",
    "items",
    "values",
    "size",
    "default",
    "order",
    "logicalType",
    "precision",
    "scale",
];

const PRIMITIVES: &[&str] = &[
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// Values of `type` that are not type names, so never namespace-qualified.
const COMPLEX: &[&str] = &["record", "error", "enum", "fixed", "array", "map"];

/// A validated Avro schema in canonical form.
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    /// The canonical text: what is stored and returned to clients.
    pub text: String,
    /// The parsed schema.
    pub schema: Schema,
    /// Every named type visible to the schema (its own and its references'), by full name.
    pub names: HashMap<String, Schema>,
}

impl ParsedSchema {
    /// The schema with its named types, for the resolution judge.
    pub fn resolvable(&self) -> Resolvable<'_> {
        Resolvable {
            schema: &self.schema,
            names: &self.names,
        }
    }

    /// Parses `text` (whose references' texts are `references`, dependencies first),
    /// canonicalising it, and further normalising it when `normalize` is set.
    pub fn parse(text: &str, references: &[String], normalize: bool) -> RegistryResult<Self> {
        let json: Value = serde_json::from_str(text).map_err(|e| {
            RegistryError::InvalidSchema(format!("the schema is not valid JSON: {e}"))
        })?;
        let json = if normalize {
            normalized(&json, None)
        } else {
            json
        };
        let text = canonical_text(&json);
        let (schema, dependencies) = if references.is_empty() {
            (Schema::parse(&json).map_err(invalid)?, Vec::new())
        } else {
            Schema::parse_str_with_list(&text, references).map_err(invalid)?
        };
        let mut names = HashMap::new();
        for dependency in &dependencies {
            collect_names(dependency, &mut names);
        }
        collect_names(&schema, &mut names);
        Ok(Self {
            text,
            schema,
            names,
        })
    }

    /// The identity of this schema with these references: equal fingerprints mean one global id.
    pub fn fingerprint(&self, references: &Value) -> String {
        let mut hasher = Sha256::new();
        hasher.update(AVRO.as_bytes());
        hasher.update([0]);
        hasher.update(self.text.as_bytes());
        hasher.update([0]);
        hasher.update(canonical_text(references).as_bytes());
        hex::encode(hasher.finalize())
    }
}

fn invalid(error: apache_avro::Error) -> RegistryError {
    let text = error.to_string();
    // Our error already says "Invalid schema: "; apache-avro sometimes does too.
    RegistryError::InvalidSchema(
        text.strip_prefix("Invalid schema: ")
            .unwrap_or(&text)
            .to_owned(),
    )
}

/// Compact JSON with object keys in the registry's fixed order.
pub fn canonical_text(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|key| {
                let rank = KEY_ORDER
                    .iter()
                    .position(|k| k == key)
                    .unwrap_or(KEY_ORDER.len());
                (rank, key.as_str())
            });
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// `value` with fully qualified names, no `namespace`/`doc`, and bare primitives.
fn normalized(value: &Value, namespace: Option<&str>) -> Value {
    match value {
        Value::String(name) => Value::String(qualify(name, namespace)),
        Value::Array(branches) => {
            Value::Array(branches.iter().map(|b| normalized(b, namespace)).collect())
        }
        Value::Object(map) => normalized_object(map, namespace),
        other => other.clone(),
    }
}

fn normalized_object(map: &Map<String, Value>, namespace: Option<&str>) -> Value {
    let kind = map.get("type");
    if let Some(Value::String(kind)) = kind
        && PRIMITIVES.contains(&kind.as_str())
        && map.len() == 1
    {
        return Value::String(kind.clone());
    }
    let named = matches!(
        kind.and_then(Value::as_str),
        Some("record" | "error" | "enum" | "fixed")
    );
    let own_namespace = map.get("namespace").and_then(Value::as_str).or(namespace);
    let full_name = map
        .get("name")
        .and_then(Value::as_str)
        .map(|name| qualify(name, own_namespace));
    let inner_namespace: Option<String> = if named {
        full_name
            .as_deref()
            .and_then(|n| n.rsplit_once('.'))
            .map(|(ns, _)| ns.to_owned())
    } else {
        namespace.map(str::to_owned)
    };
    let inner = inner_namespace.as_deref();
    let mut out = Map::new();
    for (key, value) in map {
        let value = match key.as_str() {
            "namespace" if named => continue,
            "scale"
                if map.get("logicalType").and_then(Value::as_str) == Some("decimal")
                    && value == &Value::from(0) =>
            {
                continue;
            }
            "name" if named => Value::String(full_name.clone().unwrap_or_default()),
            "aliases" if named => sorted_aliases(value, own_namespace),
            "fields" => match value {
                Value::Array(fields) => {
                    Value::Array(fields.iter().map(|f| normalized_field(f, inner)).collect())
                }
                other => other.clone(),
            },
            "type" | "items" | "values" => normalized(value, inner),
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

fn normalized_field(field: &Value, namespace: Option<&str>) -> Value {
    let Value::Object(map) = field else {
        return field.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let value = match key.as_str() {
            "type" => normalized(value, namespace),
            "aliases" => sorted_aliases(value, None),
            _ => value.clone(),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

/// Aliases qualified with `namespace` (named types only; field aliases are plain names) and sorted.
fn sorted_aliases(value: &Value, namespace: Option<&str>) -> Value {
    let Value::Array(aliases) = value else {
        return value.clone();
    };
    let mut names: Vec<Value> = aliases
        .iter()
        .map(|a| {
            a.as_str()
                .map_or(a.clone(), |a| Value::String(qualify(a, namespace)))
        })
        .collect();
    names.sort_by_key(|a| a.to_string());
    Value::Array(names)
}

fn qualify(name: &str, namespace: Option<&str>) -> String {
    if PRIMITIVES.contains(&name) || COMPLEX.contains(&name) || name.contains('.') {
        return name.to_owned();
    }
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_owned(),
    }
}

/// Records every named type in `schema` under its full name.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_key_order_do_not_change_the_canonical_text() {
        let a = ParsedSchema::parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
            &[],
            false,
        )
        .unwrap();
        let b = ParsedSchema::parse(
            "{ \"fields\" : [ {\"type\":\"int\", \"name\":\"a\"} ],\n \"name\": \"R\", \"type\": \"record\" }",
            &[],
            false,
        )
        .unwrap();
        assert_eq!(
            a.text,
            r#"{"type":"record","name":"R","fields":[{"type":"int","name":"a"}]}"#
        );
        assert_eq!(a.text, b.text);
    }

    #[test]
    fn normalize_qualifies_names_sorts_aliases_and_keeps_docs_defaults_and_logical_types() {
        let parsed = ParsedSchema::parse(
            r#"{"type":"record","name":"R","namespace":"com.acme","doc":"d","aliases":["Z","B"],"fields":[
                {"name":"a","type":{"type":"int"},"doc":"x","default":1,"aliases":["y","b"]},
                {"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}},
                {"name":"m","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":0}},
                {"name":"e","type":{"type":"enum","name":"E","symbols":["A"]}},
                {"name":"e2","type":"E"}]}"#,
            &[],
            true,
        )
        .unwrap();
        assert_eq!(
            parsed.text,
            r#"{"type":"record","name":"com.acme.R","doc":"d","aliases":["com.acme.B","com.acme.Z"],"fields":[{"type":"int","name":"a","doc":"x","aliases":["b","y"],"default":1},{"type":{"type":"long","logicalType":"timestamp-millis"},"name":"t"},{"type":{"type":"bytes","logicalType":"decimal","precision":4},"name":"m"},{"type":{"type":"enum","name":"com.acme.E","symbols":["A"]},"name":"e"},{"type":"com.acme.E","name":"e2"}]}"#
        );
    }
}
