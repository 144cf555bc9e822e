//! The OpenAPI 3.0 document of `GET /openapi.json`: a base (the info, the
//! API key scheme, the one error shape and the probes every process serves),
//! into which each service merges the paths and schemas of its own routes.
use serde_json::{Value, json};

/// A response whose body is the edge's JSON error shape.
pub fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The 401 of every route protected by API keys.
pub fn unauthorized() -> Value {
    error_response(
        "API keys are configured and `Authorization: Bearer <key>` is missing or not accepted; nothing was done.",
    )
}

/// The document before any service's routes.
pub fn base() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Tributary JSON API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The JSON API of Tributary: the legacy event routes of ingest (events take the same path as over gRPC: validated, encoded as Avro with a registered schema and produced to Kafka; a success is only answered once the broker has stored the event) and the query routes over the aggregates in Postgres, as served by this process."
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "Required when the service is started with API keys."}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string", "description": "The class of the error.", "enum": [
                            "invalid_argument", "schema_mismatch", "unknown_event_type", "too_large", "unsupported_media_type",
                            "unauthenticated", "not_found", "method_not_allowed", "unavailable", "internal"
                        ]},
                        "field": {"type": "string", "description": "The offending field, when the error is about one."},
                        "message": {"type": "string"},
                        "request_id": {"type": "string", "description": "On 5xx: the id the failure was logged under (also the `x-request-id` header)."}
                    }
                }
            }
        },
        "paths": {
            "/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "responses": {"200": {"description": "OpenAPI 3.0.", "content": {"application/json": {"schema": {"type": "object"}}}}}
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness.", "responses": {"204": {"description": "The process is running."}}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness.",
                    "responses": {
                        "204": {"description": "Every service in this process can reach what it needs (ingest: the broker and the registry; the query API: the database)."},
                        "503": {"description": "Some dependency is unreachable."}
                    }
                }
            }
        }
    })
}

/// Removes the API key scheme and every operation's `security` requirement:
/// a process started without API keys lets every call in, and its document
/// must say so.
pub fn without_security(document: &mut Value) {
    if let Some(components) = document["components"].as_object_mut() {
        components.remove("securitySchemes");
    }
    if let Some(paths) = document["paths"].as_object_mut() {
        for item in paths.values_mut() {
            if let Some(operations) = item.as_object_mut() {
                for operation in operations.values_mut() {
                    if let Some(operation) = operation.as_object_mut() {
                        operation.remove("security");
                        if let Some(responses) = operation
                            .get_mut("responses")
                            .and_then(Value::as_object_mut)
                        {
                            responses.remove("401");
                        }
                    }
                }
            }
        }
    }
}

/// Adds a service's `paths` and `components.schemas` to `document`.
pub fn merge(document: &mut Value, fragment: Value) {
    for section in ["paths", "components"] {
        let Some(Value::Object(entries)) = fragment.get(section).cloned() else {
            continue;
        };
        if section == "components" {
            if let Some(Value::Object(schemas)) = entries.get("schemas") {
                let target = &mut document["components"]["schemas"];
                for (name, schema) in schemas {
                    target[name] = schema.clone();
                }
            }
        } else {
            for (path, item) in entries {
                document["paths"][path] = item;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_fragments_add_paths_and_schemas() {
        let mut document = base();
        merge(
            &mut document,
            json!({
                "components": {"schemas": {"Thing": {"type": "object"}}},
                "paths": {"/v1/things": {"get": {"responses": {"401": unauthorized()}}}}
            }),
        );
        assert_eq!(document["components"]["schemas"]["Thing"]["type"], "object");
        assert!(document["components"]["schemas"]["Error"].is_object());
        assert!(document["paths"]["/v1/things"]["get"].is_object());
        assert!(document["paths"]["/readyz"]["get"].is_object());
    }

    #[test]
    fn without_keys_no_operation_asks_for_one() {
        let mut document = base();
        merge(
            &mut document,
            json!({"paths": {"/v1/things": {"get": {
                "security": [{"apiKey": []}],
                "responses": {"200": {"description": "ok"}, "401": unauthorized()}
            }}}}),
        );
        without_security(&mut document);
        let operation = &document["paths"]["/v1/things"]["get"];
        assert!(operation.get("security").is_none());
        assert!(operation["responses"].get("401").is_none());
        assert!(operation["responses"].get("200").is_some());
        assert!(document["components"].get("securitySchemes").is_none());
    }
}
