//! `GET /v1/aggregates` and `GET /v1/price-accuracy`: the query API for HTTP
//! clients. The query string becomes the same protobuf request the gRPC
//! `QueryService` takes, and goes through the same [`QueryApi`], so both
//! speak one set of rules; only the parameter names differ where a repeated
//! field reads better singular (`key`, `pair`).
use axum::{
    Json, Router,
    extract::{FromRef, RawQuery, State},
    http::StatusCode,
    routing::get,
};
use chrono::DateTime;
use tributary_edge::{Access, authorized::Authorized, error::ApiError};
use tributary_proto::v1::{AggregateOrder, GetAggregatesRequest, GetPriceAccuracyRequest};

use crate::{AccuracyReport, AggregatesPage, QueryApi, QueryError};

/// What the query routes share.
#[derive(Clone)]
pub struct QueryState {
    /// The query API.
    pub api: QueryApi,
    /// API keys and rate limits.
    pub access: Access,
}

impl FromRef<QueryState> for Access {
    fn from_ref(state: &QueryState) -> Self {
        state.access.clone()
    }
}

/// The query routes.
pub fn router(state: QueryState) -> Router {
    Router::new()
        .route("/v1/aggregates", get(get_aggregates))
        .route("/v1/price-accuracy", get(get_price_accuracy))
        .with_state(state)
}

/// The response to a failed query; `rename` turns the protobuf field names
/// into the route's query parameters.
pub fn error_response(error: QueryError, rename: impl Fn(&str) -> String) -> ApiError {
    match error {
        QueryError::InvalidArgument { field, message } => ApiError::invalid(rename(field), message),
        QueryError::NotConfigured => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            error.to_string(),
        ),
        QueryError::Unavailable(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            error.to_string(),
        )
        .logged(),
        QueryError::Database(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
        )
        .logged(),
    }
}

/// Handles `GET /v1/aggregates`.
pub async fn get_aggregates(
    _: Authorized,
    State(state): State<QueryState>,
    RawQuery(query): RawQuery,
) -> Result<Json<AggregatesPage>, ApiError> {
    let mut request = GetAggregatesRequest::default();
    for (name, value) in params(query.as_deref(), &["key"])? {
        match name.as_str() {
            "event_type" => request.event_type = value,
            "key" => request.keys.push(value),
            "start_time" => request.start_time = Some(timestamp(&name, &value)?),
            "end_time" => request.end_time = Some(timestamp(&name, &value)?),
            "granularity" => request.granularity = Some(granularity(&value)?),
            "order" => request.order = order(&value)? as i32,
            "page_size" => {
                request.page_size = value.parse().map_err(|_| {
                    ApiError::invalid("page_size", format!("`{value}` is not an integer"))
                })?
            }
            "page_token" => request.page_token = value,
            _ => return Err(unknown(&name, AGGREGATES_PARAMS)),
        }
    }
    let page = state
        .api
        .aggregates(request)
        .await
        .map_err(|e| error_response(e, rename))?;
    Ok(Json(page))
}

/// Handles `GET /v1/price-accuracy`.
pub async fn get_price_accuracy(
    _: Authorized,
    State(state): State<QueryState>,
    RawQuery(query): RawQuery,
) -> Result<Json<AccuracyReport>, ApiError> {
    let mut request = GetPriceAccuracyRequest::default();
    for (name, value) in params(query.as_deref(), &["pair"])? {
        match name.as_str() {
            "pair" => request.pairs.push(value),
            "start_time" => request.start_time = Some(timestamp(&name, &value)?),
            "end_time" => request.end_time = Some(timestamp(&name, &value)?),
            "granularity" => request.granularity = Some(granularity(&value)?),
            _ => return Err(unknown(&name, ACCURACY_PARAMS)),
        }
    }
    let report = state
        .api
        .price_accuracy(request)
        .await
        .map_err(|e| error_response(e, rename))?;
    Ok(Json(report))
}

/// The parameters of `GET /v1/aggregates`.
pub const AGGREGATES_PARAMS: &[&str] = &[
    "event_type",
    "key",
    "start_time",
    "end_time",
    "granularity",
    "order",
    "page_size",
    "page_token",
];

/// The parameters of `GET /v1/price-accuracy`.
pub const ACCURACY_PARAMS: &[&str] = &["pair", "start_time", "end_time", "granularity"];

/// The protobuf field's name as a query parameter.
fn rename(field: &str) -> String {
    match field {
        "keys" => "key",
        "pairs" => "pair",
        other => other,
    }
    .to_string()
}

/// The decoded query string, with every parameter but `repeatable` ones
/// given at most once (a second value would silently win otherwise).
fn params(query: Option<&str>, repeatable: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    for (i, (name, _)) in params.iter().enumerate() {
        if !repeatable.contains(&name.as_str())
            && params[..i].iter().any(|(earlier, _)| earlier == name)
        {
            return Err(ApiError::invalid(name.clone(), "is given more than once"));
        }
    }
    Ok(params)
}

fn unknown(name: &str, known: &[&str]) -> ApiError {
    ApiError::invalid(
        name,
        format!("is not a parameter of this route; use {}", known.join(", ")),
    )
}

fn timestamp(name: &str, value: &str) -> Result<prost_types::Timestamp, ApiError> {
    // An unencoded `+` of an offset arrives as a space in a query string.
    let time = DateTime::parse_from_rfc3339(&value.replace(' ', "+")).map_err(|_| {
        ApiError::invalid(
            name,
            format!("`{value}` is not an RFC 3339 time such as 2026-01-01T00:00:00Z"),
        )
    })?;
    Ok(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    })
}

fn granularity(value: &str) -> Result<prost_types::Duration, ApiError> {
    let duration = humantime::parse_duration(value).map_err(|e| {
        ApiError::invalid(
            "granularity",
            format!("`{value}` is not a duration such as 1m, 1h or 1d: {e}"),
        )
    })?;
    prost_types::Duration::try_from(duration)
        .map_err(|_| ApiError::invalid("granularity", format!("`{value}` is too long")))
}

fn order(value: &str) -> Result<AggregateOrder, ApiError> {
    match value {
        "asc" | "window_asc" | "AGGREGATE_ORDER_WINDOW_ASC" => Ok(AggregateOrder::WindowAsc),
        "desc" | "window_desc" | "AGGREGATE_ORDER_WINDOW_DESC" => Ok(AggregateOrder::WindowDesc),
        _ => Err(ApiError::invalid(
            "order",
            format!("`{value}` is not an order; use asc or desc"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_collected_and_other_repeats_refused() {
        let decoded = params(Some("key=a&key=b%2Fc&event_type=x"), &["key"]).unwrap();
        assert_eq!(
            decoded,
            vec![
                ("key".to_string(), "a".to_string()),
                ("key".to_string(), "b/c".to_string()),
                ("event_type".to_string(), "x".to_string()),
            ]
        );
        let error = params(Some("order=asc&order=desc"), &["key"]).unwrap_err();
        assert_eq!(error.body.field, "order");
    }

    #[test]
    fn times_with_an_unencoded_plus_offset_are_read() {
        assert_eq!(
            timestamp("start_time", "2026-01-01T01:00:00 01:00").unwrap(),
            prost_types::Timestamp {
                seconds: 1_767_225_600,
                nanos: 0
            }
        );
        assert_eq!(
            timestamp("start_time", "yesterday").unwrap_err().body.field,
            "start_time"
        );
    }
}
