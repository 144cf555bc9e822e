//! The Avro schema-resolution rules as a matrix: our checker against the
//! expected answer, apache-avro 0.22's checker beside it to record where it
//! is wrong for a registry (the reason the registry has its own), and the
//! consumers' up-front check (`avro_reader::readable_as`), which must give
//! the registry's verdict on every case.
use apache_avro::{
    Schema,
    schema_compatibility::{Compatibility, SchemaCompatibility},
};
use tributary_registry::{
    canonical::ParsedSchema,
    compatibility::{IncompatibilityKind, can_read},
};

/// What apache-avro's `SchemaCompatibility::can_read` answers.
#[derive(Debug, PartialEq)]
enum ApacheAvro {
    Full,
    Partial,
    Error,
}

struct Case {
    rule: &'static str,
    writer: &'static str,
    reader: &'static str,
    /// `None` when the reader can read the writer's data, else the first incompatibility.
    expected: Option<IncompatibilityKind>,
    apache_avro: ApacheAvro,
}

use ApacheAvro::{Error, Full, Partial};
use IncompatibilityKind::*;

const CASES: &[Case] = &[
    Case {
        rule: "added field with default",
        writer: r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
        reader: r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}"#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "added field without default",
        writer: r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
        reader: r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}"#,
        expected: Some(ReaderFieldMissingDefaultValue),
        apache_avro: Error,
    },
    Case {
        rule: "removed field",
        writer: r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}"#,
        reader: r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "renamed field with alias",
        writer: r#"{"type":"record","name":"R","fields":[{"name":"old","type":"int"}]}"#,
        reader: r#"{"type":"record","name":"R","fields":[{"name":"new","type":"int","aliases":["old"]}]}"#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "int promotes to long",
        writer: r#""int""#,
        reader: r#""long""#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "int promotes to float",
        writer: r#""int""#,
        reader: r#""float""#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "int promotes to double",
        writer: r#""int""#,
        reader: r#""double""#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "long promotes to float",
        writer: r#""long""#,
        reader: r#""float""#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "long promotes to double",
        writer: r#""long""#,
        reader: r#""double""#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "float promotes to double",
        writer: r#""float""#,
        reader: r#""double""#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "long does not narrow to int",
        writer: r#""long""#,
        reader: r#""int""#,
        expected: Some(TypeMismatch),
        apache_avro: Error,
    },
    Case {
        rule: "double does not narrow to float",
        writer: r#""double""#,
        reader: r#""float""#,
        expected: Some(TypeMismatch),
        apache_avro: Error,
    },
    Case {
        rule: "float does not become long",
        writer: r#""float""#,
        reader: r#""long""#,
        expected: Some(TypeMismatch),
        apache_avro: Error,
    },
    Case {
        rule: "int does not become string",
        writer: r#""int""#,
        reader: r#""string""#,
        expected: Some(TypeMismatch),
        apache_avro: Error,
    },
    Case {
        rule: "boolean does not become int",
        writer: r#""boolean""#,
        reader: r#""int""#,
        expected: Some(TypeMismatch),
        apache_avro: Error,
    },
    Case {
        rule: "string reads as bytes",
        writer: r#""string""#,
        reader: r#""bytes""#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "bytes read as string",
        writer: r#""bytes""#,
        reader: r#""string""#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "enum symbol added",
        writer: r#"{"type":"enum","name":"E","symbols":["A","B"]}"#,
        reader: r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#,
        expected: None,
        apache_avro: Full,
    },
    // apache-avro: Ok(Partial), which a registry must read as a refusal.
    Case {
        rule: "enum symbol removed without enum default",
        writer: r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#,
        reader: r#"{"type":"enum","name":"E","symbols":["A","B"]}"#,
        expected: Some(MissingEnumSymbols),
        apache_avro: Partial,
    },
    Case {
        rule: "enum symbol removed with enum default",
        writer: r#"{"type":"enum","name":"E","symbols":["A","B","C"]}"#,
        reader: r#"{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}"#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "union widened",
        writer: r#"["null","int"]"#,
        reader: r#"["null","int","string"]"#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "type widened into a union",
        writer: r#""int""#,
        reader: r#"["null","int"]"#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "union branch promoted",
        writer: r#"["null","int"]"#,
        reader: r#"["null","long"]"#,
        expected: None,
        apache_avro: Full,
    },
    // apache-avro: Ok(Partial) for both narrowings.
    Case {
        rule: "union narrowed",
        writer: r#"["null","int","string"]"#,
        reader: r#"["null","int"]"#,
        expected: Some(MissingUnionBranch),
        apache_avro: Partial,
    },
    Case {
        rule: "union narrowed to one type",
        writer: r#"["null","int"]"#,
        reader: r#""int""#,
        expected: Some(TypeMismatch),
        apache_avro: Partial,
    },
    Case {
        rule: "type missing from reader union",
        writer: r#""string""#,
        reader: r#"["null","int"]"#,
        expected: Some(MissingUnionBranch),
        apache_avro: Error,
    },
    Case {
        rule: "record renamed",
        writer: r#"{"type":"record","name":"A","fields":[]}"#,
        reader: r#"{"type":"record","name":"B","fields":[]}"#,
        expected: Some(NameMismatch),
        apache_avro: Error,
    },
    // apache-avro ignores reader aliases of named types.
    Case {
        rule: "record renamed with alias",
        writer: r#"{"type":"record","name":"A","namespace":"n","fields":[]}"#,
        reader: r#"{"type":"record","name":"B","namespace":"n","aliases":["A"],"fields":[]}"#,
        expected: None,
        apache_avro: Error,
    },
    Case {
        rule: "enum renamed with alias",
        writer: r#"{"type":"enum","name":"A","symbols":["X"]}"#,
        reader: r#"{"type":"enum","name":"B","aliases":["A"],"symbols":["X"]}"#,
        expected: None,
        apache_avro: Error,
    },
    Case {
        rule: "fixed renamed",
        writer: r#"{"type":"fixed","name":"A","size":4}"#,
        reader: r#"{"type":"fixed","name":"B","size":4}"#,
        expected: Some(NameMismatch),
        apache_avro: Error,
    },
    Case {
        rule: "fixed renamed with alias",
        writer: r#"{"type":"fixed","name":"A","size":4}"#,
        reader: r#"{"type":"fixed","name":"B","aliases":["A"],"size":4}"#,
        expected: None,
        apache_avro: Error,
    },
    Case {
        rule: "fixed size changed",
        writer: r#"{"type":"fixed","name":"F","size":4}"#,
        reader: r#"{"type":"fixed","name":"F","size":8}"#,
        expected: Some(FixedSizeMismatch),
        apache_avro: Error,
    },
    Case {
        rule: "nested record field added with default",
        writer: r#"{"type":"record","name":"O","fields":[{"name":"i","type":{"type":"record","name":"I","fields":[{"name":"a","type":"int"}]}}]}"#,
        reader: r#"{"type":"record","name":"O","fields":[{"name":"i","type":{"type":"record","name":"I","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":""}]}}]}"#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "nested record field added without default",
        writer: r#"{"type":"record","name":"O","fields":[{"name":"i","type":{"type":"record","name":"I","fields":[{"name":"a","type":"int"}]}}]}"#,
        reader: r#"{"type":"record","name":"O","fields":[{"name":"i","type":{"type":"record","name":"I","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}}]}"#,
        expected: Some(ReaderFieldMissingDefaultValue),
        apache_avro: Error,
    },
    Case {
        rule: "array items promoted",
        writer: r#"{"type":"array","items":"int"}"#,
        reader: r#"{"type":"array","items":"long"}"#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "array items narrowed",
        writer: r#"{"type":"array","items":"long"}"#,
        reader: r#"{"type":"array","items":"int"}"#,
        expected: Some(TypeMismatch),
        apache_avro: Error,
    },
    Case {
        rule: "map values promoted",
        writer: r#"{"type":"map","values":"int"}"#,
        reader: r#"{"type":"map","values":"double"}"#,
        expected: None,
        apache_avro: Full,
    },
    Case {
        rule: "map values changed type",
        writer: r#"{"type":"map","values":"string"}"#,
        reader: r#"{"type":"map","values":"int"}"#,
        expected: Some(TypeMismatch),
        apache_avro: Error,
    },
    Case {
        rule: "array does not become map",
        writer: r#"{"type":"array","items":"int"}"#,
        reader: r#"{"type":"map","values":"int"}"#,
        expected: Some(TypeMismatch),
        apache_avro: Error,
    },
    // A named type defined in one schema's field and referenced by name in the
    // other's: apache-avro compares `Schema::Ref` with the definition and fails.
    Case {
        rule: "named type referenced where the other schema defines it",
        writer: r#"{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"record","name":"I","fields":[{"name":"x","type":"int"}]}},{"name":"b","type":"I"}]}"#,
        reader: r#"{"type":"record","name":"R","fields":[{"name":"pre","type":["null",{"type":"record","name":"I","fields":[{"name":"x","type":"int"}]}],"default":null},{"name":"a","type":"I"},{"name":"b","type":"I"}]}"#,
        expected: None,
        apache_avro: Error,
    },
    Case {
        rule: "recursive record gains a field with default",
        writer: r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}"#,
        reader: r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]},{"name":"w","type":"int","default":0}]}"#,
        expected: None,
        apache_avro: Full,
    },
    // Resolution ignores logical types (Java Avro, and so Confluent); apache-avro refuses.
    Case {
        rule: "decimal precision changed",
        writer: r#"{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}"#,
        reader: r#"{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}"#,
        expected: None,
        apache_avro: Error,
    },
    Case {
        rule: "timestamp-millis reads plain long",
        writer: r#""long""#,
        reader: r#"{"type":"long","logicalType":"timestamp-millis"}"#,
        expected: None,
        apache_avro: Full,
    },
];

fn parse(text: &str) -> ParsedSchema {
    ParsedSchema::parse(text, &[], false).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn our_checker_follows_every_avro_resolution_rule() {
    let mut wrong = Vec::new();
    for case in CASES {
        let found = can_read(&parse(case.writer), &parse(case.reader));
        let got = found.first().map(|i| i.kind);
        if got != case.expected {
            wrong.push(format!(
                "{}: expected {:?}, got {:?}",
                case.rule, case.expected, found
            ));
        }
    }
    assert!(wrong.is_empty(), "rules broken:\n{}", wrong.join("\n"));
}

#[test]
fn apache_avro_checker_answers_as_recorded_including_its_mistakes() {
    let mut differs = Vec::new();
    for case in CASES {
        let writer = Schema::parse_str(case.writer).unwrap();
        let reader = Schema::parse_str(case.reader).unwrap();
        let got = match SchemaCompatibility::can_read(&writer, &reader) {
            Ok(Compatibility::Full) => Full,
            Ok(Compatibility::Partial) => Partial,
            Err(_) => Error,
        };
        if got != case.apache_avro {
            differs.push(format!(
                "{}: recorded {:?}, got {:?}",
                case.rule, case.apache_avro, got
            ));
        }
    }
    assert!(
        differs.is_empty(),
        "apache-avro changed; revisit compatibility.rs:\n{}",
        differs.join("\n")
    );
}

#[test]
fn apache_avro_is_wrong_exactly_where_the_recorded_answer_disagrees_with_the_rule() {
    let mistakes: Vec<&str> = CASES
        .iter()
        // `can_read(..).is_ok()` is how a caller would read it: `Partial` counts as accepted.
        .filter(|case| (case.apache_avro != Error) != case.expected.is_none())
        .map(|case| case.rule)
        .collect();
    assert_eq!(
        mistakes,
        [
            "enum symbol removed without enum default",
            "union narrowed",
            "union narrowed to one type",
            "record renamed with alias",
            "enum renamed with alias",
            "fixed renamed with alias",
            "named type referenced where the other schema defines it",
            "decimal precision changed",
        ]
    );
}

#[test]
fn consumers_give_the_registrys_verdict_on_every_case() {
    for case in CASES {
        let registry = can_read(&parse(case.writer), &parse(case.reader)).is_empty();
        let writer = Schema::parse_str(case.writer).unwrap();
        let reader = Schema::parse_str(case.reader).unwrap();
        let consumer = tributary_common::avro_reader::readable_as(&writer, &reader);
        assert_eq!(
            consumer.is_ok(),
            registry,
            "{}: registry says {registry}, consumer says {consumer:?}",
            case.rule
        );
    }
}

#[test]
fn the_cases_where_apache_avro_disagreed_are_in_the_matrix() {
    for rule in ["decimal precision", "enum symbol", "union", "alias"] {
        assert!(
            CASES.iter().any(|c| c.rule.contains(rule)),
            "no case about {rule}"
        );
    }
}
