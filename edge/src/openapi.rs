//! The OpenAPI document of `GET /openapi.json`, generated with `utoipa` from
//! the handlers and the types they read and answer: a base (the info, the API
//! key scheme, the one error shape and the probes every process serves), into
//! which each service merges the document of its own routes
//! ([`crate::Edge::document`]). `stack/tests/openapi_conformance.rs` checks
//! with Schemathesis that the routes accept and answer what it says.
use utoipa::{
    Modify, OpenApi as _,
    openapi::{
        OpenApi,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use crate::error::ErrorBody;

/// The name of the API key security scheme, as operations require it:
/// `security(("apiKey" = []))`.
pub const API_KEY: &str = "apiKey";

/// The description of the 401 of every route protected by API keys (and
/// removed, with the requirement, when no keys are configured).
pub const UNAUTHORIZED: &str = "API keys are configured and `Authorization: Bearer <key>` is missing or not accepted; nothing was done.";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tributary JSON API",
        description = "The JSON API of Tributary: the legacy event routes of ingest (events take the same path as over gRPC: validated, encoded as Avro with a registered schema and produced to Kafka; a success is only answered once the broker has stored the event) and the query routes over the aggregates in Postgres, as served by this process.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(crate::server::openapi_json, crate::server::healthz, crate::server::readyz),
    components(schemas(ErrorBody)),
    modifiers(&ApiKeyScheme)
)]
struct Base;

struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        scheme.description = Some("Required when the service is started with API keys.".into());
        components.add_security_scheme(API_KEY, SecurityScheme::Http(scheme));
    }
}

/// The document before any service's routes.
pub fn base() -> OpenApi {
    Base::openapi()
}

/// Removes the API key scheme and every operation's `security` requirement
/// and 401: a process started without API keys lets every call in, and its
/// document must say so.
pub fn without_security(document: &mut OpenApi) {
    if let Some(components) = document.components.as_mut() {
        components.security_schemes.clear();
    }
    document.security = None;
    for item in document.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            operation.security = None;
            operation.responses.responses.remove("401");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A protected route, as a service declares one.
    #[utoipa::path(
        get,
        path = "/v1/things",
        security(("apiKey" = [])),
        responses(
            (status = 200, description = "ok"),
            (status = 401, description = UNAUTHORIZED, body = ErrorBody),
        )
    )]
    #[allow(dead_code)]
    async fn things() {}

    #[derive(utoipa::OpenApi)]
    #[openapi(paths(things))]
    struct Things;

    fn merged() -> OpenApi {
        let mut document = base();
        document.merge(Things::openapi());
        document
    }

    #[test]
    fn merged_documents_add_paths_and_keep_the_base() {
        let document = serde_json::to_value(merged()).unwrap();
        assert!(document["paths"]["/v1/things"]["get"].is_object());
        assert!(document["paths"]["/readyz"]["get"].is_object());
        assert_eq!(
            document["components"]["schemas"]["Error"]["required"],
            json!(["error", "message"])
        );
        assert_eq!(
            document["components"]["securitySchemes"]["apiKey"]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn without_keys_no_operation_asks_for_one() {
        let mut document = merged();
        without_security(&mut document);
        let document = serde_json::to_value(document).unwrap();
        let operation = &document["paths"]["/v1/things"]["get"];
        assert!(operation.get("security").is_none());
        assert!(operation["responses"].get("401").is_none());
        assert!(operation["responses"].get("200").is_some());
        assert!(
            document["components"]
                .get("securitySchemes")
                .is_none_or(|s| s.as_object().is_some_and(|s| s.is_empty()))
        );
    }
}
