//! Reading Avro binary straight from a record's bytes, for the typed
//! decoders of the processor and the sink (`processor/src/decode/plan.rs`,
//! `sink/src/plan.rs`): how a writer's field is encoded ([`Encoding`]) and a
//! cursor that reads or skips values of it ([`Bytes`]), answering `None` for
//! anything it cannot read whole and exactly (the caller then takes the
//! general path, which words the rejection).
use apache_avro::Schema;

use crate::avro_resolution::Kind;

/// How a value of the writer is encoded (a plain type, or a union of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoding {
    Null,
    Boolean,
    /// `int` and the logical types on it: a varint that must fit 32 bits.
    Int,
    /// `long` and the logical types on it: a varint.
    Long,
    Float,
    Double,
    Bytes,
    String,
    /// A union of the above (never of unions).
    Union(Vec<Encoding>),
}

impl Encoding {
    pub fn of(schema: &Schema) -> Option<Self> {
        Some(match schema {
            Schema::Union(union) => Self::Union(
                union
                    .variants()
                    .iter()
                    .map(Self::plain)
                    .collect::<Option<_>>()?,
            ),
            other => Self::plain(other)?,
        })
    }

    pub fn plain(schema: &Schema) -> Option<Self> {
        Some(match schema {
            Schema::Null => Self::Null,
            Schema::Boolean => Self::Boolean,
            Schema::Float => Self::Float,
            Schema::Double => Self::Double,
            Schema::Bytes => Self::Bytes,
            Schema::String => Self::String,
            // `int`, `long` and the logical types on them, as resolution
            // lists them; not the logical types on bytes, string or fixed.
            other => match Kind::of(other) {
                Kind::Int => Self::Int,
                Kind::Long => Self::Long,
                _ => return None,
            },
        })
    }
}

/// The unread rest of a record.
pub struct Bytes<'a> {
    /// What is left to read.
    pub rest: &'a [u8],
    /// The longest string or bytes value read; longer ones are left to the
    /// general path (`None`).
    max_len: usize,
}

impl<'a> Bytes<'a> {
    /// A cursor over `body` reading strings and bytes of up to `max_len`.
    pub fn new(body: &'a [u8], max_len: usize) -> Self {
        Self {
            rest: body,
            max_len,
        }
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(taken)
    }

    /// A zigzag varint of at most 10 bytes, as apache-avro reads it.
    pub fn long(&mut self) -> Option<i64> {
        let mut z = 0u64;
        for j in 0..10 {
            let (&byte, rest) = self.rest.split_first()?;
            self.rest = rest;
            z |= u64::from(byte & 0x7F) << (j * 7);
            if byte >> 7 == 0 {
                return Some(if z & 1 == 0 {
                    (z >> 1) as i64
                } else {
                    !(z >> 1) as i64
                });
            }
        }
        None
    }

    pub fn length(&mut self) -> Option<usize> {
        let len = usize::try_from(self.long()?).ok()?;
        (len <= self.max_len).then_some(len)
    }

    pub fn string(&mut self) -> Option<&'a str> {
        let len = self.length()?;
        std::str::from_utf8(self.take(len)?).ok()
    }

    pub fn double(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub fn boolean(&mut self) -> Option<bool> {
        match *self.take(1)?.first()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    /// The branch of a union value (or the plain encoding itself).
    pub fn branch<'e>(&mut self, encoding: &'e Encoding) -> Option<&'e Encoding> {
        match encoding {
            Encoding::Union(variants) => variants.get(usize::try_from(self.long()?).ok()?),
            plain => Some(plain),
        }
    }

    /// Whether a nullable value is there (its branch is not `null`).
    pub fn present(&mut self, encoding: &Encoding) -> Option<bool> {
        Some(*self.branch(encoding)? != Encoding::Null)
    }

    pub fn skip(&mut self, encoding: &Encoding) -> Option<()> {
        match encoding {
            Encoding::Null => {}
            Encoding::Boolean => {
                self.boolean()?;
            }
            Encoding::Int => {
                i32::try_from(self.long()?).ok()?;
            }
            Encoding::Long => {
                self.long()?;
            }
            Encoding::Float => {
                self.take(4)?;
            }
            Encoding::Double => {
                self.take(8)?;
            }
            Encoding::Bytes => {
                let len = self.length()?;
                self.take(len)?;
            }
            Encoding::String => {
                self.string()?;
            }
            Encoding::Union(_) => {
                let branch = self.branch(encoding)?;
                self.skip(branch)?;
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::Schema;

    use super::Encoding;

    fn plain(json: &str) -> Option<Encoding> {
        Encoding::plain(&Schema::parse_str(json).unwrap())
    }

    #[test]
    fn logical_types_on_int_and_long_are_read_as_them_and_others_not_at_all() {
        for json in [
            r#""int""#,
            r#"{"type": "int", "logicalType": "date"}"#,
            r#"{"type": "int", "logicalType": "time-millis"}"#,
        ] {
            assert_eq!(plain(json), Some(Encoding::Int), "{json}");
        }
        for json in [
            r#""long""#,
            r#"{"type": "long", "logicalType": "time-micros"}"#,
            r#"{"type": "long", "logicalType": "timestamp-millis"}"#,
            r#"{"type": "long", "logicalType": "timestamp-micros"}"#,
            r#"{"type": "long", "logicalType": "timestamp-nanos"}"#,
            r#"{"type": "long", "logicalType": "local-timestamp-millis"}"#,
            r#"{"type": "long", "logicalType": "local-timestamp-micros"}"#,
            r#"{"type": "long", "logicalType": "local-timestamp-nanos"}"#,
        ] {
            assert_eq!(plain(json), Some(Encoding::Long), "{json}");
        }
        assert_eq!(plain(r#""string""#), Some(Encoding::String));
        assert_eq!(plain(r#""bytes""#), Some(Encoding::Bytes));
        for json in [
            r#"{"type": "string", "logicalType": "uuid"}"#,
            r#"{"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2}"#,
            r#"{"type": "fixed", "name": "F", "size": 2}"#,
            r#"{"type": "array", "items": "long"}"#,
            r#"["null", "long"]"#,
        ] {
            assert_eq!(plain(json), None, "{json}");
        }
    }
}
