//! Typed access to the fields of a decoded Avro record. Values have already
//! been resolved against a reader schema, so a missing or mistyped field means
//! the record does not match that schema: it is undecodable, not invalid.
use apache_avro::types::Value;

use super::poison::{Poison, PoisonReason};

/// The fields of one decoded record, taken out one by one.
pub(crate) struct Record {
    fields: Vec<(String, Value)>,
}

impl Record {
    /// The fields of `value`, which must be a record.
    pub(crate) fn new(value: Value) -> Result<Self, Poison> {
        match value {
            Value::Record(fields) => Ok(Self { fields }),
            other => Err(undecodable(format!(
                "expected a record, decoded {:?}",
                apache_avro::schema::SchemaKind::from(&other)
            ))),
        }
    }

    /// Removes and returns the field `name`, if the record has one.
    pub(crate) fn take(&mut self, name: &str) -> Option<Value> {
        let index = self.fields.iter().position(|(n, _)| n == name)?;
        Some(self.fields.swap_remove(index).1)
    }

    /// The required string field `name`.
    pub(crate) fn string(&mut self, name: &str) -> Result<String, Poison> {
        match self.take(name) {
            Some(Value::String(s)) => Ok(s),
            other => Err(mistyped(name, "a string", other)),
        }
    }

    /// The required double field `name`.
    pub(crate) fn double(&mut self, name: &str) -> Result<f64, Poison> {
        match self.take(name) {
            Some(Value::Double(d)) => Ok(d),
            other => Err(mistyped(name, "a double", other)),
        }
    }

    /// The required timestamp-millis (or plain long) field `name`, in epoch ms.
    pub(crate) fn timestamp_millis(&mut self, name: &str) -> Result<i64, Poison> {
        match self.take(name) {
            Some(Value::TimestampMillis(ms) | Value::Long(ms)) => Ok(ms),
            other => Err(mistyped(name, "a timestamp-millis", other)),
        }
    }

    /// The optional (`["null", "string"]`) field `name`; absent when the reader
    /// schema has no such field.
    pub(crate) fn optional_string(&mut self, name: &str) -> Result<Option<String>, Poison> {
        match self.take(name).map(unwrap_union) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            other => Err(mistyped(name, "a nullable string", other)),
        }
    }

    /// The optional (`["null", "double"]`) field `name`; absent when the reader
    /// schema has no such field.
    pub(crate) fn optional_double(&mut self, name: &str) -> Result<Option<f64>, Poison> {
        match self.take(name).map(unwrap_union) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Double(d)) => Ok(Some(d)),
            other => Err(mistyped(name, "a nullable double", other)),
        }
    }
}

/// The epoch milliseconds of a time-typed value (any timestamp logical type
/// or a plain long, possibly inside a union); `None` for null or other types.
pub(crate) fn epoch_millis(value: &Value) -> Option<i64> {
    match value {
        Value::TimestampMillis(ms) | Value::LocalTimestampMillis(ms) | Value::Long(ms) => Some(*ms),
        Value::TimestampMicros(us) | Value::LocalTimestampMicros(us) => Some(us.div_euclid(1_000)),
        Value::TimestampNanos(ns) | Value::LocalTimestampNanos(ns) => {
            Some(ns.div_euclid(1_000_000))
        }
        Value::Union(_, inner) => epoch_millis(inner),
        _ => None,
    }
}

fn unwrap_union(value: Value) -> Value {
    match value {
        Value::Union(_, inner) => *inner,
        other => other,
    }
}

fn undecodable(detail: String) -> Poison {
    Poison::new(PoisonReason::Undecodable, detail)
}

fn mistyped(name: &str, expected: &str, found: Option<Value>) -> Poison {
    match found {
        None => undecodable(format!("field `{name}` is missing after schema resolution")),
        Some(value) => undecodable(format!(
            "field `{name}` should be {expected}, decoded {:?}",
            apache_avro::schema::SchemaKind::from(&value)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_millis_accepts_every_timestamp_precision_and_nullable_unions() {
        assert_eq!(epoch_millis(&Value::TimestampMillis(1_234)), Some(1_234));
        assert_eq!(epoch_millis(&Value::Long(1_234)), Some(1_234));
        assert_eq!(
            epoch_millis(&Value::TimestampMicros(1_234_567)),
            Some(1_234)
        );
        assert_eq!(
            epoch_millis(&Value::TimestampNanos(1_234_567_890)),
            Some(1_234)
        );
        assert_eq!(epoch_millis(&Value::TimestampMicros(-1)), Some(-1));
        assert_eq!(
            epoch_millis(&Value::Union(1, Box::new(Value::TimestampMillis(7)))),
            Some(7)
        );
        assert_eq!(epoch_millis(&Value::Union(0, Box::new(Value::Null))), None);
        assert_eq!(epoch_millis(&Value::String("7".into())), None);
    }

    #[test]
    fn a_missing_required_field_is_undecodable_and_named() {
        let mut record = Record::new(Value::Record(vec![])).unwrap();
        assert_eq!(
            record.string("pair"),
            Err(Poison::new(
                PoisonReason::Undecodable,
                "field `pair` is missing after schema resolution"
            ))
        );
    }

    #[test]
    fn a_mistyped_field_is_undecodable_and_named() {
        let mut record =
            Record::new(Value::Record(vec![("price".into(), Value::Long(3))])).unwrap();
        assert_eq!(
            record.double("price"),
            Err(Poison::new(
                PoisonReason::Undecodable,
                "field `price` should be a double, decoded Long"
            ))
        );
    }

    #[test]
    fn an_absent_optional_field_is_none() {
        let mut record = Record::new(Value::Record(vec![(
            "volume".into(),
            Value::Union(0, Box::new(Value::Null)),
        )]))
        .unwrap();
        assert_eq!(record.optional_double("volume"), Ok(None));
        assert_eq!(record.optional_string("campaign_id"), Ok(None));
    }
}
