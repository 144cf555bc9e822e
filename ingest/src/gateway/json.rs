//! Reading request JSON into the proto types field by field, so a wrong type
//! or a missing field is refused with the field's path and a plain message
//! (`metadata: must be a JSON object, got a number`) rather than a serde
//! error about positions. JSON `null` counts as absent, as in the old Go API.
use serde_json::{Map, Value};
pub use tributary_proto::envelope::kind;
use tributary_proto::envelope::object_to_struct;

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
            Some(Value::Object(object)) => Ok(Some(object_to_struct(object.clone()))),
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
        assert_eq!(
            Value::Object(struct_to_json(object_to_struct(object.clone()), "o").unwrap()),
            value
        );
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
