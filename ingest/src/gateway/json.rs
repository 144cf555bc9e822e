//! Reading request JSON into the proto types field by field, so a wrong type
//! or a missing field is refused with the field's path and a plain message
//! (`metadata: must be a JSON object, got a number`) rather than a serde
//! error about positions. JSON `null` counts as absent, as in the old Go API.
use serde_json::{Map, Value};

use crate::rejection::Rejection;

/// The fields of one JSON object, named under a path prefix such as
/// `ad_click.`.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    /// Reads `value` as an object; `what` names it when it is not one.
    pub fn of(value: &'a Value, what: &str, prefix: &'a str) -> Result<Self, Rejection> {
        match value {
            Value::Object(object) => Ok(Self { object, prefix }),
            other => Err(Rejection::invalid(
                what,
                format!("must be a JSON object, got {}", kind(other)),
            )),
        }
    }

    /// Refuses fields outside `known`, so a misspelt optional field is not
    /// silently dropped.
    pub fn only(&self, known: &[&str]) -> Result<(), Rejection> {
        match self.object.keys().find(|k| !known.contains(&k.as_str())) {
            Some(unknown) => Err(Rejection::invalid(
                self.path(unknown),
                format!("is not a known field; expected one of {}", known.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// Whether `name` is present and not null.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The raw value of `name`, when present and not null.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|v| !v.is_null())
    }

    /// An optional string.
    pub fn string(&self, name: &str) -> Result<Option<String>, Rejection> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong_type(name, "a string", other)),
        }
    }

    /// A string that must be present.
    pub fn required_string(&self, name: &str) -> Result<String, Rejection> {
        self.string(name)?
            .ok_or_else(|| Rejection::invalid(self.path(name), "is required"))
    }

    /// An optional number.
    pub fn number(&self, name: &str) -> Result<Option<f64>, Rejection> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(self.wrong_type(name, "a number", other)),
        }
    }

    /// An optional JSON object, as a protobuf `Struct`.
    pub fn object(&self, name: &str) -> Result<Option<prost_types::Struct>, Rejection> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(object)) => Ok(Some(json_to_struct(object))),
            Some(other) => Err(self.wrong_type(name, "a JSON object", other)),
        }
    }

    /// The path of `name`, e.g. `ad_click.ip_address`.
    pub fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn wrong_type(&self, name: &str, expected: &str, got: &Value) -> Rejection {
        Rejection::invalid(
            self.path(name),
            format!("must be {expected}, got {}", kind(got)),
        )
    }
}

/// What a JSON value is, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object as a protobuf `Struct` (the reverse of
/// [`crate::event::struct_to_json`]). Struct numbers are doubles, so integers
/// beyond 2^53 lose precision, as they do in JavaScript clients.
pub fn json_to_struct(object: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: object
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
    }
}

fn json_to_value(value: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        Value::Null => Kind::NullValue(prost_types::NullValue::NullValue as i32),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        Value::Object(object) => Kind::StructValue(json_to_struct(object)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::struct_to_json;

    #[test]
    fn json_objects_survive_the_trip_through_struct() {
        let value = json!({"a": 1, "b": [true, null, "x"], "c": {"d": 2.5}});
        let Value::Object(object) = &value else {
            unreachable!()
        };
        assert_eq!(Value::Object(struct_to_json(json_to_struct(object))), value);
    }

    #[test]
    fn wrong_types_and_missing_fields_are_named_with_their_path() {
        let value = json!({"price": "1", "pair": null});
        let fields = Fields::of(&value, "price_tick", "price_tick.").unwrap();
        assert_eq!(
            fields.number("price").unwrap_err().describe(),
            "price_tick.price: must be a number, got a string"
        );
        assert_eq!(
            fields.required_string("pair").unwrap_err().describe(),
            "price_tick.pair: is required"
        );
        assert_eq!(
            fields.only(&["pair"]).unwrap_err().describe(),
            "price_tick.price: is not a known field; expected one of pair"
        );
    }
}
