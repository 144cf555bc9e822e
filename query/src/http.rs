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
use tributary_edge::{
    Access,
    authorized::Authorized,
    error::{ApiError, ErrorBody},
    openapi,
};
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

/// The query parameters of `GET /v1/aggregates`: `GetAggregatesRequest`'s
/// fields, with `key` for the repeated `keys`.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AggregatesParams {
    /// ad_click, price_tick, or a schema-driven type with stored aggregates.
    #[param(required = true, pattern = "^[a-z][a-z0-9_]{0,99}$")]
    pub event_type: String,
    /// Only these keys (repeat the parameter); all keys when absent.
    #[param(style = Form, explode, schema_with = non_empty_strings)]
    pub key: Vec<String>,
    /// Inclusive start of the range of window starts (RFC 3339).
    #[param(required = true, value_type = String, format = DateTime)]
    pub start_time: Option<prost_types::Timestamp>,
    /// Exclusive end of the range (RFC 3339); after start_time.
    #[param(required = true, value_type = String, format = DateTime)]
    pub end_time: Option<prost_types::Timestamp>,
    /// Bucket size as a number and a unit (ms, s, m, h, d), a positive
    /// multiple of the processor's window (`--window`, default 1m); defaults
    /// to the window. Buckets are aligned to the Unix epoch (`1d` is a UTC
    /// day).
    #[param(value_type = String, required = false, example = "1h")]
    pub granularity: Option<prost_types::Duration>,
    /// Bucket order; keys ascend within a bucket.
    #[param(inline, value_type = OrderParam, required = false)]
    pub order: AggregateOrder,
    /// Most aggregates in the page.
    #[param(value_type = i32, required = false, minimum = 0, maximum = 10000, default = 100)]
    pub page_size: i32,
    /// `next_page_token` of the previous page.
    #[param(value_type = String, required = false)]
    pub page_token: String,
}

/// The query parameters of `GET /v1/price-accuracy`:
/// `GetPriceAccuracyRequest`'s fields, with `pair` for the repeated `pairs`.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccuracyParams {
    /// Only these pairs (repeat the parameter); all when absent.
    #[param(style = Form, explode, schema_with = non_empty_strings)]
    pub pair: Vec<String>,
    /// Inclusive start of the range of window starts (RFC 3339).
    #[param(required = true, value_type = String, format = DateTime)]
    pub start_time: Option<prost_types::Timestamp>,
    /// Exclusive end of the range (RFC 3339); after start_time.
    #[param(required = true, value_type = String, format = DateTime)]
    pub end_time: Option<prost_types::Timestamp>,
    /// Bucket size as a number and a unit (ms, s, m, h, d), a positive
    /// multiple of the processor's window (`--window`, default 1m); defaults
    /// to the window. Buckets are aligned to the Unix epoch (`1d` is a UTC
    /// day).
    #[param(value_type = String, required = false, example = "1h")]
    pub granularity: Option<prost_types::Duration>,
}

/// The order of buckets, as `GET /v1/aggregates` names it (the route also
/// takes the protobuf names).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase", default = "asc")]
pub enum OrderParam {
    /// Oldest bucket first.
    Asc,
    /// Newest bucket first.
    Desc,
}

/// An array of non-empty strings.
fn non_empty_strings() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new()
        .items(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .min_length(Some(1)),
        )
        .build()
}

impl AggregatesParams {
    /// Reads the query string; a parameter is checked here only as far as
    /// its type goes, the rest is the query API's.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut params = Self::default();
        for (name, value) in pairs::<Self>(query, &["key"])? {
            match name.as_str() {
                "event_type" => params.event_type = value,
                "key" => params.key.push(value),
                "start_time" => params.start_time = Some(timestamp(&name, &value)?),
                "end_time" => params.end_time = Some(timestamp(&name, &value)?),
                "granularity" => params.granularity = Some(granularity(&value)?),
                "order" => params.order = order(&value)?,
                "page_size" => {
                    params.page_size = value.parse().map_err(|_| {
                        ApiError::invalid("page_size", format!("`{value}` is not an integer"))
                    })?
                }
                "page_token" => params.page_token = value,
                _ => unreachable!("pairs() refuses unknown parameters"),
            }
        }
        Ok(params)
    }

    /// The gRPC request the parameters stand for.
    pub fn into_request(self) -> GetAggregatesRequest {
        GetAggregatesRequest {
            event_type: self.event_type,
            keys: self.key,
            start_time: self.start_time,
            end_time: self.end_time,
            granularity: self.granularity,
            order: self.order as i32,
            page_size: self.page_size,
            page_token: self.page_token,
        }
    }
}

impl AccuracyParams {
    /// Reads the query string, as [`AggregatesParams::parse`] does.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut params = Self::default();
        for (name, value) in pairs::<Self>(query, &["pair"])? {
            match name.as_str() {
                "pair" => params.pair.push(value),
                "start_time" => params.start_time = Some(timestamp(&name, &value)?),
                "end_time" => params.end_time = Some(timestamp(&name, &value)?),
                "granularity" => params.granularity = Some(granularity(&value)?),
                _ => unreachable!("pairs() refuses unknown parameters"),
            }
        }
        Ok(params)
    }

    /// The gRPC request the parameters stand for.
    pub fn into_request(self) -> GetPriceAccuracyRequest {
        GetPriceAccuracyRequest {
            pairs: self.pair,
            start_time: self.start_time,
            end_time: self.end_time,
            granularity: self.granularity,
        }
    }
}

/// Handles `GET /v1/aggregates`.
#[utoipa::path(
    get,
    tag = "query",
    path = "/v1/aggregates",
    summary = "List aggregates of one event type, rolled up to a granularity, one page at a time.",
    description = "The same request and rules as gRPC `QueryService.GetAggregates`.",
    params(AggregatesParams),
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "One page.", body = AggregatesPage),
        (status = 400, description = "A missing or invalid parameter, an unknown event type or a page token issued for other parameters; `field` names the parameter.", body = ErrorBody),
        (status = 401, description = openapi::UNAUTHORIZED, body = ErrorBody),
        (status = 500, description = QUERY_FAILED, body = ErrorBody),
        (status = 503, description = QUERY_UNAVAILABLE, body = ErrorBody),
    )
)]
pub async fn get_aggregates(
    _: Authorized,
    State(state): State<QueryState>,
    RawQuery(query): RawQuery,
) -> Result<Json<AggregatesPage>, ApiError> {
    let request = AggregatesParams::parse(query.as_deref())?.into_request();
    let page = state
        .api
        .aggregates(request)
        .await
        .map_err(|e| error_response(e, rename))?;
    Ok(Json(page))
}

/// Handles `GET /v1/price-accuracy`.
#[utoipa::path(
    get,
    tag = "query",
    path = "/v1/price-accuracy",
    summary = "How far each price source is from the mean of the other sources, per pair and bucket.",
    description = "The same request and rules as gRPC `QueryService.GetPriceAccuracy`.",
    params(AccuracyParams),
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "Every source that has another source to compare with.", body = AccuracyReport),
        (status = 400, description = "A missing or invalid parameter; `field` names it.", body = ErrorBody),
        (status = 401, description = openapi::UNAUTHORIZED, body = ErrorBody),
        (status = 500, description = QUERY_FAILED, body = ErrorBody),
        (status = 503, description = QUERY_UNAVAILABLE, body = ErrorBody),
    )
)]
pub async fn get_price_accuracy(
    _: Authorized,
    State(state): State<QueryState>,
    RawQuery(query): RawQuery,
) -> Result<Json<AccuracyReport>, ApiError> {
    let request = AccuracyParams::parse(query.as_deref())?.into_request();
    let report = state
        .api
        .price_accuracy(request)
        .await
        .map_err(|e| error_response(e, rename))?;
    Ok(Json(report))
}

const QUERY_FAILED: &str =
    "The query failed unexpectedly. The body and `x-request-id` carry the id it was logged under.";
const QUERY_UNAVAILABLE: &str = "The database is unreachable; the request may be retried.";

/// The query routes' OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(get_aggregates, get_price_accuracy))]
pub struct QueryRoutes;

/// The protobuf field's name as a query parameter.
fn rename(field: &str) -> String {
    match field {
        "keys" => "key",
        "pairs" => "pair",
        other => other,
    }
    .to_string()
}

/// The decoded query string, with every parameter one of `P`'s and all but
/// `repeatable` ones given at most once (a second value would silently win
/// otherwise).
fn pairs<P: utoipa::IntoParams>(
    query: Option<&str>,
    repeatable: &[&str],
) -> Result<Vec<(String, String)>, ApiError> {
    let known: Vec<String> = P::into_params(|| None)
        .into_iter()
        .map(|p| p.name)
        .collect();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    for (i, (name, _)) in params.iter().enumerate() {
        if !known.contains(name) {
            return Err(ApiError::invalid(
                name.clone(),
                format!("is not a parameter of this route; use {}", known.join(", ")),
            ));
        }
        if !repeatable.contains(&name.as_str())
            && params[..i].iter().any(|(earlier, _)| earlier == name)
        {
            return Err(ApiError::invalid(name.clone(), "is given more than once"));
        }
    }
    Ok(params)
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
        let decoded =
            pairs::<AggregatesParams>(Some("key=a&key=b%2Fc&event_type=x"), &["key"]).unwrap();
        assert_eq!(
            decoded,
            vec![
                ("key".to_string(), "a".to_string()),
                ("key".to_string(), "b/c".to_string()),
                ("event_type".to_string(), "x".to_string()),
            ]
        );
        let error = pairs::<AggregatesParams>(Some("order=asc&order=desc"), &["key"]).unwrap_err();
        assert_eq!(error.body.field, "order");
        let error = pairs::<AccuracyParams>(Some("key=a"), &["pair"]).unwrap_err();
        assert_eq!(error.body.field, "key");
        assert_eq!(
            error.body.message,
            "is not a parameter of this route; use pair, start_time, end_time, granularity"
        );
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
