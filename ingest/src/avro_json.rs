//! JSON to Avro, checked against a writer schema, naming the first field that
//! does not fit. Typed events are converted through the same path, so a v1
//! or v2 writer schema both work: fields the schema does not have are left
//! out, and fields the event does not have take the schema's default.
use std::collections::HashMap;

use apache_avro::{
    Schema,
    schema::{Name, RecordSchema, UnionSchema},
    types::Value,
};
use serde_json::Value as Json;

use crate::rejection::Rejection;

/// Named types of a schema, for resolving `Schema::Ref`.
pub type Names = HashMap<Name, &'static Schema>;

/// Converts `json` to an Avro value of `schema`. `path` is the field path used
/// in errors, e.g. `generic`.
pub fn to_avro(
    schema: &Schema,
    names: &Names,
    json: &Json,
    path: &str,
) -> Result<Value, Rejection> {
    let mismatch = |expected: &str| {
        Rejection::schema_mismatch(path, format!("expected {expected}, got {}", describe(json)))
    };
    Ok(match schema {
        Schema::Null => match json {
            Json::Null => Value::Null,
            _ => return Err(mismatch("null")),
        },
        Schema::Boolean => Value::Boolean(json.as_bool().ok_or_else(|| mismatch("a boolean"))?),
        Schema::Int => {
            let n = json.as_i64().ok_or_else(|| mismatch("an integer"))?;
            Value::Int(i32::try_from(n).map_err(|_| mismatch("a 32-bit integer"))?)
        }
        Schema::Long => Value::Long(json.as_i64().ok_or_else(|| mismatch("an integer"))?),
        Schema::Float => Value::Float(json.as_f64().ok_or_else(|| mismatch("a number"))? as f32),
        Schema::Double => Value::Double(json.as_f64().ok_or_else(|| mismatch("a number"))?),
        Schema::String => Value::String(
            json.as_str()
                .ok_or_else(|| mismatch("a string"))?
                .to_string(),
        ),
        Schema::Bytes => Value::Bytes(
            json.as_str()
                .ok_or_else(|| mismatch("a string"))?
                .as_bytes()
                .to_vec(),
        ),
        Schema::Uuid(_) => {
            let text = json.as_str().ok_or_else(|| mismatch("a UUID string"))?;
            Value::Uuid(text.parse().map_err(|_| mismatch("a UUID string"))?)
        }
        Schema::TimestampMillis => Value::TimestampMillis(
            timestamp_millis(json)
                .ok_or_else(|| mismatch("milliseconds since the epoch or an RFC 3339 time"))?,
        ),
        Schema::TimestampMicros => Value::TimestampMicros(
            timestamp_millis(json)
                .ok_or_else(|| mismatch("milliseconds since the epoch or an RFC 3339 time"))?
                * 1000,
        ),
        Schema::Date => Value::Date(
            i32::try_from(
                json.as_i64()
                    .ok_or_else(|| mismatch("days since the epoch"))?,
            )
            .map_err(|_| mismatch("days since the epoch"))?,
        ),
        Schema::Enum(e) => {
            let symbol = json.as_str().ok_or_else(|| mismatch("an enum symbol"))?;
            let index = e.symbols.iter().position(|s| s == symbol).ok_or_else(|| {
                Rejection::schema_mismatch(
                    path,
                    format!("`{symbol}` is not one of {}", e.symbols.join(", ")),
                )
            })?;
            Value::Enum(index as u32, symbol.to_string())
        }
        Schema::Array(array) => {
            let items = json.as_array().ok_or_else(|| mismatch("an array"))?;
            Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| to_avro(&array.items, names, item, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        }
        Schema::Map(map) => {
            let object = json.as_object().ok_or_else(|| mismatch("an object"))?;
            Value::Map(
                object
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            to_avro(&map.types, names, v, &format!("{path}.{k}"))?,
                        ))
                    })
                    .collect::<Result<_, Rejection>>()?,
            )
        }
        Schema::Union(union) => union_value(union, names, json, path)?,
        Schema::Record(record) => {
            let object = json.as_object().ok_or_else(|| mismatch("an object"))?;
            record_value(record, names, object, path)?
        }
        Schema::Fixed(fixed) => {
            let bytes = json
                .as_str()
                .ok_or_else(|| mismatch("a string"))?
                .as_bytes()
                .to_vec();
            if bytes.len() != fixed.size {
                return Err(Rejection::schema_mismatch(
                    path,
                    format!("expected {} bytes, got {}", fixed.size, bytes.len()),
                ));
            }
            Value::Fixed(fixed.size, bytes)
        }
        Schema::Ref { name } => {
            let target = names.get(name).ok_or_else(|| {
                Rejection::internal(format!("schema reference {name} is not defined"))
            })?;
            to_avro(target, names, json, path)?
        }
        other => {
            return Err(Rejection::schema_mismatch(
                path,
                format!("Avro type {other:?} is not supported in JSON events"),
            ));
        }
    })
}

/// A record from a JSON object: every schema field takes the object's value
/// or, when absent, the field's default.
pub fn record_value(
    record: &RecordSchema,
    names: &Names,
    object: &serde_json::Map<String, Json>,
    path: &str,
) -> Result<Value, Rejection> {
    let mut fields = Vec::with_capacity(record.fields.len());
    for field in &record.fields {
        let field_path = if path.is_empty() {
            field.name.clone()
        } else {
            format!("{path}.{}", field.name)
        };
        let value = match (object.get(&field.name), &field.default) {
            (Some(json), _) => to_avro(&field.schema, names, json, &field_path)?,
            (None, Some(default)) => default_value(&field.schema, names, default, &field_path)?,
            (None, None) => {
                return Err(Rejection::schema_mismatch(
                    field_path,
                    "is required by the schema and has no default",
                ));
            }
        };
        fields.push((field.name.clone(), value));
    }
    if let Some(unknown) = object
        .keys()
        .find(|k| !record.fields.iter().any(|f| &f.name == *k))
    {
        let field_path = if path.is_empty() {
            unknown.clone()
        } else {
            format!("{path}.{unknown}")
        };
        return Err(Rejection::schema_mismatch(
            field_path,
            format!("is not a field of {}", record.name),
        ));
    }
    Ok(Value::Record(fields))
}

/// A default is written in JSON for the union's first branch (Avro spec).
fn default_value(
    schema: &Schema,
    names: &Names,
    default: &Json,
    path: &str,
) -> Result<Value, Rejection> {
    match schema {
        Schema::Union(union) => {
            let first = union
                .variants()
                .first()
                .ok_or_else(|| Rejection::internal("empty union"))?;
            Ok(Value::Union(
                0,
                Box::new(to_avro(first, names, default, path)?),
            ))
        }
        other => to_avro(other, names, default, path),
    }
}

/// JSON null picks the null branch; anything else the first branch it fits.
fn union_value(
    union: &UnionSchema,
    names: &Names,
    json: &Json,
    path: &str,
) -> Result<Value, Rejection> {
    let mut first_error = None;
    for (index, branch) in union.variants().iter().enumerate() {
        if matches!(branch, Schema::Null) != json.is_null() {
            continue;
        }
        match to_avro(branch, names, json, path) {
            Ok(value) => return Ok(Value::Union(index as u32, Box::new(value))),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| {
        Rejection::schema_mismatch(
            path,
            format!("{} fits no branch of the union", describe(json)),
        )
    }))
}

fn timestamp_millis(json: &Json) -> Option<i64> {
    match json {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        _ => None,
    }
}

fn describe(json: &Json) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("boolean {b}"),
        Json::Number(n) => format!("number {n}"),
        Json::String(s) if s.len() > 40 => format!("a string of {} bytes", s.len()),
        Json::String(s) => format!("string \"{s}\""),
        Json::Array(_) => "an array".into(),
        Json::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(text: &str) -> Schema {
        Schema::parse_str(text).unwrap()
    }

    const PAGE_VIEW: &str = r#"{"type":"record","name":"PageView","fields":[
        {"name":"url","type":"string"},
        {"name":"ms","type":"long"},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]}},
        {"name":"referrer","type":["null","string"],"default":null},
        {"name":"event_time","type":{"type":"long","logicalType":"timestamp-millis"}}
    ]}"#;

    fn convert(json: Json) -> Result<Value, Rejection> {
        let s = schema(PAGE_VIEW);
        let Schema::Record(record) = &s else {
            unreachable!()
        };
        record_value(record, &Names::new(), json.as_object().unwrap(), "generic")
    }

    #[test]
    fn a_matching_object_converts_and_missing_optional_fields_take_their_default() {
        let value = convert(
            json!({"url":"/a","ms":5,"tags":["x"],"kind":"B","event_time":"2026-01-01T00:00:00Z"}),
        )
        .unwrap();
        let Value::Record(fields) = value else {
            panic!()
        };
        assert_eq!(fields[1], ("ms".into(), Value::Long(5)));
        assert_eq!(fields[3], ("kind".into(), Value::Enum(1, "B".into())));
        assert_eq!(
            fields[4],
            ("referrer".into(), Value::Union(0, Box::new(Value::Null)))
        );
        assert_eq!(
            fields[5],
            (
                "event_time".into(),
                Value::TimestampMillis(1_767_225_600_000)
            )
        );
    }

    #[test]
    fn the_first_field_that_does_not_fit_is_named() {
        let base = json!({"url":"/a","ms":5,"tags":["x"],"kind":"B","event_time":1});
        let cases = [
            (
                "ms",
                json!("five"),
                "generic.ms: expected an integer, got string \"five\"",
            ),
            (
                "tags",
                json!(["x", 3]),
                "generic.tags[1]: expected a string, got number 3",
            ),
            ("kind", json!("C"), "generic.kind: `C` is not one of A, B"),
            (
                "referrer",
                json!(7),
                "generic.referrer: expected a string, got number 7",
            ),
        ];
        for (field, bad, message) in cases {
            let mut object = base.clone();
            object[field] = bad;
            assert_eq!(convert(object).unwrap_err().describe(), message);
        }
    }

    #[test]
    fn missing_required_and_unknown_fields_are_named() {
        assert_eq!(
            convert(json!({"url":"/a","tags":[],"kind":"A","event_time":1}))
                .unwrap_err()
                .describe(),
            "generic.ms: is required by the schema and has no default"
        );
        assert_eq!(
            convert(json!({"url":"/a","ms":1,"tags":[],"kind":"A","event_time":1,"extra":1}))
                .unwrap_err()
                .describe(),
            "generic.extra: is not a field of PageView"
        );
    }

    #[test]
    fn an_int_field_refuses_a_value_beyond_32_bits() {
        let s = schema(r#""int""#);
        assert_eq!(
            to_avro(&s, &Names::new(), &json!(3_000_000_000_i64), "n")
                .unwrap_err()
                .describe(),
            "n: expected a 32-bit integer, got number 3000000000"
        );
    }
}
