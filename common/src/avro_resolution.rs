//! The one Avro schema-resolution judge: can a reader schema read data
//! written with a writer schema, and if not, every reason why. The registry
//! answers compatibility checks with it, and every consumer checks "can my
//! reader read this writer" with it before decoding, so a version the
//! registry accepts is one the consumers accept, and the reverse.
//!
//! It follows the Avro specification's resolution rules the way Java Avro's
//! `SchemaCompatibility` (which Confluent uses) applies them, and reports
//! each difference with Java's incompatibility names. It is our own rather
//! than `apache_avro::schema_compatibility` because that checker (0.22) is
//! wrong in four places (the registry's `tests/avro_resolution.rs` pins
//! each): a missing enum symbol without a default and a narrowed union come
//! back as `Ok(Partial)`; reader aliases are ignored; named types referenced
//! by name are never resolved; a decimal precision change is refused.
use std::{
    collections::{HashMap, HashSet},
    fmt,
};

use apache_avro::{
    Schema,
    schema::{DecimalSchema, FixedSchema, InnerDecimalSchema, Name, UuidSchema},
};

/// A schema and every named type visible to it, by full name, so references
/// by name resolve.
#[derive(Debug, Clone, Copy)]
pub struct Resolvable<'a> {
    /// The schema.
    pub schema: &'a Schema,
    /// Its named types (its own and its references'), by full name.
    pub names: &'a HashMap<String, Schema>,
}

/// Every named type defined in `schema` (records, enums, fixed), by full name.
pub fn named_types(schema: &Schema) -> HashMap<String, Schema> {
    let mut names = HashMap::new();
    collect_names(schema, &mut names);
    names
}

/// Adds every named type defined in `schema` to `names`.
pub fn collect_names(schema: &Schema, names: &mut HashMap<String, Schema>) {
    match schema {
        Schema::Record(record) => {
            names.insert(record.name.fullname(None), schema.clone());
            for field in &record.fields {
                collect_names(&field.schema, names);
            }
        }
        Schema::Enum(e) => {
            names.insert(e.name.fullname(None), schema.clone());
        }
        Schema::Fixed(f) | Schema::Duration(f) => {
            names.insert(f.name.fullname(None), Schema::Fixed(f.clone()));
        }
        Schema::Decimal(DecimalSchema {
            inner: InnerDecimalSchema::Fixed(f),
            ..
        })
        | Schema::Uuid(UuidSchema::Fixed(f)) => {
            names.insert(f.name.fullname(None), Schema::Fixed(f.clone()));
        }
        Schema::Array(array) => collect_names(&array.items, names),
        Schema::Map(map) => collect_names(&map.types, names),
        Schema::Union(union) => {
            for variant in union.variants() {
                collect_names(variant, names);
            }
        }
        _ => {}
    }
}

/// Java Avro's names for the ways a reader cannot read a writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncompatibilityKind {
    /// Named types whose names differ and no reader alias matches.
    NameMismatch,
    /// Fixed types of different sizes.
    FixedSizeMismatch,
    /// Writer enum symbols the reader lacks, and the reader has no enum default.
    MissingEnumSymbols,
    /// A reader field absent from the writer and without a default.
    ReaderFieldMissingDefaultValue,
    /// Types that do not resolve (no promotion applies).
    TypeMismatch,
    /// A writer type (or union branch) that no reader union branch accepts.
    MissingUnionBranch,
}

impl IncompatibilityKind {
    /// Java Avro's constant name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NameMismatch => "NAME_MISMATCH",
            Self::FixedSizeMismatch => "FIXED_SIZE_MISMATCH",
            Self::MissingEnumSymbols => "MISSING_ENUM_SYMBOLS",
            Self::ReaderFieldMissingDefaultValue => "READER_FIELD_MISSING_DEFAULT_VALUE",
            Self::TypeMismatch => "TYPE_MISMATCH",
            Self::MissingUnionBranch => "MISSING_UNION_BRANCH",
        }
    }
}

/// One reason a reader schema cannot read data written with a writer schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// What kind of difference.
    pub kind: IncompatibilityKind,
    /// JSON-pointer-like path in the reader schema, e.g. `/fields/1/type`.
    pub location: String,
    /// The detail (a field name, the missing symbols, the expected name...).
    pub message: String,
    /// The reader's (sub)schema.
    pub reader: String,
    /// The writer's (sub)schema.
    pub writer: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Incompatibility{{type:{}, location:{}, message:{}, reader:{}, writer:{}}}",
            self.kind.as_str(),
            self.location,
            self.message,
            self.reader,
            self.writer
        )
    }
}

/// Every reason `reader` cannot read data written with `writer` (empty when it can).
pub fn can_read(writer: Resolvable<'_>, reader: Resolvable<'_>) -> Vec<Incompatibility> {
    let mut checker = Checker {
        writer,
        reader,
        in_progress: HashSet::new(),
        found: Vec::new(),
    };
    checker.check(writer.schema, reader.schema, &mut vec![String::new()]);
    checker.found
}

/// The resolution-relevant shape of a schema: logical types are read as their
/// underlying type, as Avro resolution ignores them. [`Kind::of`] is the one
/// list of which logical type sits on which type (`avro_bytes` reads the
/// `int` and `long` ones by it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Array,
    Map,
    Union,
    Record,
    Enum,
    Fixed,
}

impl Kind {
    /// The type `schema` is, or is encoded as.
    pub(crate) fn of(schema: &Schema) -> Self {
        match schema {
            Schema::Null => Self::Null,
            Schema::Boolean => Self::Boolean,
            Schema::Int | Schema::Date | Schema::TimeMillis => Self::Int,
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Self::Long,
            Schema::Float => Self::Float,
            Schema::Double => Self::Double,
            Schema::Bytes
            | Schema::BigDecimal
            | Schema::Uuid(UuidSchema::Bytes)
            | Schema::Decimal(DecimalSchema {
                inner: InnerDecimalSchema::Bytes,
                ..
            }) => Self::Bytes,
            Schema::String | Schema::Uuid(UuidSchema::String) => Self::String,
            Schema::Array(_) => Self::Array,
            Schema::Map(_) => Self::Map,
            Schema::Union(_) => Self::Union,
            Schema::Record(_) => Self::Record,
            Schema::Enum(_) => Self::Enum,
            Schema::Fixed(_)
            | Schema::Duration(_)
            | Schema::Uuid(UuidSchema::Fixed(_))
            | Schema::Decimal(DecimalSchema {
                inner: InnerDecimalSchema::Fixed(_),
                ..
            }) => Self::Fixed,
            // References are resolved before asking for a kind.
            Schema::Ref { .. } => Self::Record,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Null => "NULL",
            Self::Boolean => "BOOLEAN",
            Self::Int => "INT",
            Self::Long => "LONG",
            Self::Float => "FLOAT",
            Self::Double => "DOUBLE",
            Self::Bytes => "BYTES",
            Self::String => "STRING",
            Self::Array => "ARRAY",
            Self::Map => "MAP",
            Self::Union => "UNION",
            Self::Record => "RECORD",
            Self::Enum => "ENUM",
            Self::Fixed => "FIXED",
        }
    }
}

fn fixed_of(schema: &Schema) -> Option<&FixedSchema> {
    match schema {
        Schema::Fixed(f)
        | Schema::Duration(f)
        | Schema::Uuid(UuidSchema::Fixed(f))
        | Schema::Decimal(DecimalSchema {
            inner: InnerDecimalSchema::Fixed(f),
            ..
        }) => Some(f),
        _ => None,
    }
}

struct Checker<'a> {
    writer: Resolvable<'a>,
    reader: Resolvable<'a>,
    /// Record pairs being checked further up the stack: recursive types meet
    /// themselves again and are assumed compatible there, as in Java Avro.
    in_progress: HashSet<(String, String)>,
    found: Vec<Incompatibility>,
}

impl<'a> Checker<'a> {
    fn resolve(table: Resolvable<'a>, schema: &'a Schema) -> &'a Schema {
        match schema {
            Schema::Ref { name } => table.names.get(&name.fullname(None)).unwrap_or(schema),
            other => other,
        }
    }

    /// Checks without recording: used to try union branches.
    fn compatible(&mut self, writer: &'a Schema, reader: &'a Schema) -> bool {
        let saved = std::mem::take(&mut self.found);
        self.check(writer, reader, &mut vec![String::new()]);
        let ok = self.found.is_empty();
        self.found = saved;
        ok
    }

    fn report(
        &mut self,
        kind: IncompatibilityKind,
        path: &[String],
        message: String,
        writer: &Schema,
        reader: &Schema,
    ) {
        let location = if path.len() <= 1 {
            "/".to_owned()
        } else {
            path.join("/")
        };
        self.found.push(Incompatibility {
            kind,
            location,
            message,
            reader: render(reader),
            writer: render(writer),
        });
    }

    fn check(&mut self, writer: &'a Schema, reader: &'a Schema, path: &mut Vec<String>) {
        let writer = Self::resolve(self.writer, writer);
        let reader = Self::resolve(self.reader, reader);
        let (w_kind, r_kind) = (Kind::of(writer), Kind::of(reader));
        if w_kind == r_kind {
            self.check_same_kind(writer, reader, w_kind, path);
            return;
        }
        if let Schema::Union(union) = writer {
            for (i, branch) in union.variants().iter().enumerate() {
                path.push(i.to_string());
                self.check(branch, reader, path);
                path.pop();
            }
            return;
        }
        let promotable = match r_kind {
            Kind::Long => w_kind == Kind::Int,
            Kind::Float => matches!(w_kind, Kind::Int | Kind::Long),
            Kind::Double => matches!(w_kind, Kind::Int | Kind::Long | Kind::Float),
            Kind::Bytes => w_kind == Kind::String,
            Kind::String => w_kind == Kind::Bytes,
            _ => false,
        };
        if promotable {
            return;
        }
        if let Schema::Union(union) = reader {
            if union
                .variants()
                .iter()
                .any(|branch| self.compatible(writer, branch))
            {
                return;
            }
            let message = format!("reader union lacking writer type: {}", w_kind.as_str());
            self.report(
                IncompatibilityKind::MissingUnionBranch,
                path,
                message,
                writer,
                reader,
            );
            return;
        }
        let message = format!(
            "reader type: {} not compatible with writer type: {}",
            r_kind.as_str(),
            w_kind.as_str()
        );
        self.report(
            IncompatibilityKind::TypeMismatch,
            path,
            message,
            writer,
            reader,
        );
    }

    fn check_same_kind(
        &mut self,
        writer: &'a Schema,
        reader: &'a Schema,
        kind: Kind,
        path: &mut Vec<String>,
    ) {
        match (kind, writer, reader) {
            (Kind::Array, Schema::Array(w), Schema::Array(r)) => {
                path.push("items".into());
                self.check(&w.items, &r.items, path);
                path.pop();
            }
            (Kind::Map, Schema::Map(w), Schema::Map(r)) => {
                path.push("values".into());
                self.check(&w.types, &r.types, path);
                path.pop();
            }
            (Kind::Union, Schema::Union(w), Schema::Union(_)) => {
                for (i, branch) in w.variants().iter().enumerate() {
                    if !self.compatible(branch, reader) {
                        path.push(i.to_string());
                        let message = format!(
                            "reader union lacking writer type: {}",
                            Kind::of(Self::resolve(self.writer, branch)).as_str()
                        );
                        self.report(
                            IncompatibilityKind::MissingUnionBranch,
                            path,
                            message,
                            branch,
                            reader,
                        );
                        path.pop();
                    }
                }
            }
            (Kind::Fixed, _, _) => {
                let (Some(w), Some(r)) = (fixed_of(writer), fixed_of(reader)) else {
                    return;
                };
                if !names_match(&w.name, &r.name, r.aliases.as_deref()) {
                    self.name_mismatch(&w.name, writer, reader, path);
                }
                if w.size != r.size {
                    path.push("size".into());
                    let message = format!("expected: {}, found: {}", w.size, r.size);
                    self.report(
                        IncompatibilityKind::FixedSizeMismatch,
                        path,
                        message,
                        writer,
                        reader,
                    );
                    path.pop();
                }
            }
            (Kind::Enum, Schema::Enum(w), Schema::Enum(r)) => {
                if !names_match(&w.name, &r.name, r.aliases.as_deref()) {
                    self.name_mismatch(&w.name, writer, reader, path);
                }
                let missing: Vec<&str> = w
                    .symbols
                    .iter()
                    .filter(|s| !r.symbols.contains(s))
                    .map(String::as_str)
                    .collect();
                let has_default = r.default.as_ref().is_some_and(|d| r.symbols.contains(d));
                if !missing.is_empty() && !has_default {
                    path.push("symbols".into());
                    let message = format!("[{}]", missing.join(", "));
                    self.report(
                        IncompatibilityKind::MissingEnumSymbols,
                        path,
                        message,
                        writer,
                        reader,
                    );
                    path.pop();
                }
            }
            (Kind::Record, Schema::Record(w), Schema::Record(r)) => {
                if !names_match(&w.name, &r.name, r.aliases.as_deref()) {
                    self.name_mismatch(&w.name, writer, reader, path);
                }
                let key = (w.name.fullname(None), r.name.fullname(None));
                if !self.in_progress.insert(key.clone()) {
                    return;
                }
                for (i, r_field) in r.fields.iter().enumerate() {
                    let w_field = std::iter::once(&r_field.name)
                        .chain(r_field.aliases.iter())
                        .find_map(|name| w.fields.iter().find(|f| &f.name == name));
                    path.push("fields".into());
                    path.push(i.to_string());
                    match w_field {
                        Some(w_field) => {
                            path.push("type".into());
                            self.check(&w_field.schema, &r_field.schema, path);
                            path.pop();
                        }
                        None if r_field.default.is_none() => {
                            let message = r_field.name.clone();
                            self.report(
                                IncompatibilityKind::ReaderFieldMissingDefaultValue,
                                path,
                                message,
                                writer,
                                reader,
                            );
                        }
                        None => {}
                    }
                    path.pop();
                    path.pop();
                }
                self.in_progress.remove(&key);
            }
            // Primitives of one kind always resolve.
            _ => {}
        }
    }

    fn name_mismatch(
        &mut self,
        writer_name: &Name,
        writer: &Schema,
        reader: &Schema,
        path: &mut Vec<String>,
    ) {
        path.push("name".into());
        let message = format!("expected: {}", writer_name.fullname(None));
        self.report(
            IncompatibilityKind::NameMismatch,
            path,
            message,
            writer,
            reader,
        );
        path.pop();
    }
}

/// Java Avro's rule: same unqualified name, or a reader alias naming the writer.
fn names_match(
    writer: &Name,
    reader: &Name,
    reader_aliases: Option<&[apache_avro::schema::Alias]>,
) -> bool {
    if writer.name() == reader.name() {
        return true;
    }
    let writer_full = writer.fullname(None);
    reader_aliases.unwrap_or_default().iter().any(|alias| {
        alias
            .fully_qualified_name(reader.namespace())
            .fullname(None)
            == writer_full
            || alias.name() == writer.name()
    })
}

fn render(schema: &Schema) -> String {
    serde_json::to_string(schema).unwrap_or_else(|_| format!("{schema:?}"))
}
