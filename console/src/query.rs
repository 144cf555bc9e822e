//! Aggregates and price accuracy, from the query API over gRPC (the Rust
//! SDK): `GET /api/aggregates` (every page followed), its CSV download, and
//! `GET /api/price-accuracy` as one series per pair and source.
use std::{collections::BTreeMap, time::Duration};

use axum::{
    Json,
    extract::{RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tributary_client::proto::{
    Aggregate, AggregateOrder, GetAggregatesRequest, GetPriceAccuracyRequest,
};
use tributary_edge::error::ApiError;

use crate::{params::Params, server::AppState};

/// The most rows one request returns (the rest is cut, `truncated` says so).
pub const MAX_ROWS: usize = 100_000;

/// The granularities the page offers: the processor's window, or a
/// multiple of it (`1m`, `1h`, `1d`; any duration the query API accepts).
pub const GRANULARITIES: &[&str] = &["window", "1m", "1h", "1d"];

/// One aggregate as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The event type.
    pub event_type: String,
    /// The group key.
    pub key: String,
    /// Bucket start (RFC 3339).
    pub window_start: String,
    /// Bucket end (RFC 3339).
    pub window_end: String,
    /// Bucket start, Unix milliseconds (for charts).
    pub t: i64,
    /// Events.
    pub count: i64,
    /// Distinct client IPs (ad_click).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_count: Option<i64>,
    /// Smallest value (price_tick).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Sum of values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    /// Mean value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avg: Option<f64>,
    /// Latest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<f64>,
    /// Corrections by late events.
    pub revisions: i64,
}

/// `GET /api/aggregates`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregates {
    /// The rows, bucket ascending then key.
    pub rows: Vec<Row>,
    /// More rows matched than [`MAX_ROWS`].
    pub truncated: bool,
}

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

fn time_of(ts: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    ts.and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .unwrap_or_default()
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The time range of a request: `from` (default an hour ago) to `to`
/// (default a minute from now, so the open window is in).
fn range(params: &Params) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let now = Utc::now();
    let from = params.time("from", now - chrono::Duration::hours(1))?;
    let to = params.time("to", now + chrono::Duration::minutes(1))?;
    if from >= to {
        return Err(ApiError::invalid("from", "`from` must be before `to`"));
    }
    Ok((from, to))
}

fn granularity(params: &Params) -> Result<Option<prost_types::Duration>, ApiError> {
    match params.one("granularity") {
        None | Some("window") => Ok(None),
        Some(text) => {
            let d = humantime::parse_duration(text).map_err(|e| {
                ApiError::invalid(
                    "granularity",
                    format!("`{text}` is not a duration such as 1m, 1h, 1d ({e})"),
                )
            })?;
            Ok(Some(prost_types::Duration {
                seconds: d.as_secs() as i64,
                nanos: d.subsec_nanos() as i32,
            }))
        }
    }
}

/// A refusal or failure of the query API as the console's answer.
pub fn status_error(status: &tonic::Status) -> ApiError {
    use tonic::Code;
    let message = status.message().to_string();
    match status.code() {
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
            let (field, reason) = message
                .split_once(": ")
                .filter(|(f, _)| !f.contains(' '))
                .map_or((String::new(), message.clone()), |(f, r)| {
                    (f.to_string(), r.to_string())
                });
            ApiError::with_field(StatusCode::BAD_REQUEST, "invalid_argument", field, reason)
        }
        Code::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
        Code::DeadlineExceeded => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "deadline_exceeded",
            format!("the query API did not answer in time: {message}"),
        )
        .logged(),
        Code::Unauthenticated | Code::PermissionDenied => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "unavailable",
            format!("the query API refused the console ({message}); check --query-api-key"),
        )
        .logged(),
        Code::ResourceExhausted => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "resource_exhausted",
            format!("the query API is rate limiting the console: {message}"),
        ),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the query API did not answer: {}: {message}", status.code()),
        )
        .logged(),
    }
}

/// How long a call to the query API (every page of one request) may take.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// `call` unless it takes longer than `limit`: then 504 saying so.
pub async fn within<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
        Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "deadline_exceeded",
            format!(
                "the query API did not answer within {} s; try a shorter range or a coarser granularity",
                limit.as_secs_f64()
            ),
        )
        .logged())
    })
}

fn sdk_error(error: tributary_client::Error) -> ApiError {
    match error {
        tributary_client::Error::Status(status) => status_error(&status),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            other.to_string(),
        )
        .logged(),
    }
}

impl From<&Aggregate> for Row {
    fn from(a: &Aggregate) -> Self {
        let start = time_of(a.window_start.as_ref());
        Self {
            event_type: a.event_type.clone(),
            key: a.key.clone(),
            window_start: rfc3339(start),
            window_end: rfc3339(time_of(a.window_end.as_ref())),
            t: start.timestamp_millis(),
            count: a.count,
            distinct_count: a.distinct_count,
            min: a.min,
            max: a.max,
            sum: a.sum,
            avg: a.avg,
            last: a.last,
            revisions: a.revisions,
        }
    }
}

/// Every page of `GetAggregates` for the request in `params`.
pub async fn fetch_aggregates(state: &AppState, params: &Params) -> Result<Aggregates, ApiError> {
    let event_type = params
        .one("event_type")
        .ok_or_else(|| ApiError::invalid("event_type", "an event type is required, e.g. ad_click"))?
        .to_string();
    let (from, to) = range(params)?;
    let request = GetAggregatesRequest {
        event_type,
        keys: params.all("key"),
        start_time: Some(timestamp(from)),
        end_time: Some(timestamp(to)),
        granularity: granularity(params)?,
        order: AggregateOrder::WindowAsc as i32,
        page_size: 10_000,
        page_token: String::new(),
    };
    within(QUERY_TIMEOUT, async {
        let mut pages = state.query().aggregates(request);
        let mut rows = Vec::new();
        let mut truncated = false;
        while let Some(page) = pages.next_page().await.map_err(sdk_error)? {
            rows.extend(page.iter().map(Row::from));
            if rows.len() > MAX_ROWS {
                rows.truncate(MAX_ROWS);
                truncated = true;
                break;
            }
        }
        Ok(Aggregates { rows, truncated })
    })
    .await
}

/// `GET /api/aggregates?event_type=&key=…&from=&to=&granularity=`.
pub async fn aggregates(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Aggregates>, ApiError> {
    let params = Params::parse(query.as_deref());
    Ok(Json(fetch_aggregates(&state, &params).await?))
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "event_type",
    "key",
    "window_start",
    "window_end",
    "count",
    "distinct_count",
    "min",
    "max",
    "sum",
    "avg",
    "last",
    "revisions",
];

/// A text cell made safe for spreadsheets (OWASP's CSV injection advice): a
/// cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
/// leading `'`, so it is not taken as a formula. Only text columns go
/// through this; numbers stay numbers.
pub fn text_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// `rows` as CSV with a header line ([`CSV_COLUMNS`]); absent values empty;
/// text cells (event type, key, window times) through [`text_cell`].
pub fn to_csv(rows: &[Row]) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_COLUMNS)?;
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        writer.write_record([
            text_cell(&r.event_type),
            text_cell(&r.key),
            text_cell(&r.window_start),
            text_cell(&r.window_end),
            r.count.to_string(),
            r.distinct_count.map(|v| v.to_string()).unwrap_or_default(),
            opt(r.min),
            opt(r.max),
            opt(r.sum),
            opt(r.avg),
            opt(r.last),
            r.revisions.to_string(),
        ])?;
    }
    Ok(writer.into_inner()?)
}

/// `GET /api/aggregates.csv?…`: the same rows as a CSV download.
pub async fn aggregates_csv(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref());
    let aggregates = fetch_aggregates(&state, &params).await?;
    let body = to_csv(&aggregates.rows).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()).logged()
    })?;
    let event_type: String = params
        .one("event_type")
        .unwrap_or("aggregates")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect();
    let disposition = format!("attachment; filename=\"aggregates-{event_type}.csv\"");
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// One point of a source's accuracy series.
#[derive(Debug, Clone, Serialize)]
pub struct AccuracyPoint {
    /// Bucket start, Unix milliseconds.
    pub t: i64,
    /// Bucket start (RFC 3339).
    pub window_start: String,
    /// 100 × (source average − mean of the others) / mean of the others.
    pub percent_difference: f64,
    /// The source's average price.
    pub source_avg: f64,
    /// The mean of the other sources' averages.
    pub others_mean: f64,
}

/// One source of a pair.
#[derive(Debug, Clone, Serialize)]
pub struct AccuracySource {
    /// The source.
    pub source: String,
    /// Its points, oldest first.
    pub points: Vec<AccuracyPoint>,
}

/// One pair.
#[derive(Debug, Clone, Serialize)]
pub struct AccuracyPair {
    /// The pair, e.g. `ETH-USD`.
    pub pair: String,
    /// Its sources, by name.
    pub sources: Vec<AccuracySource>,
}

/// `GET /api/price-accuracy`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct Accuracy {
    /// Every pair with at least two sources in a bucket, by name.
    pub pairs: Vec<AccuracyPair>,
}

/// `GET /api/price-accuracy?pair=…&from=&to=&granularity=`: per pair, each
/// source's percent difference from the mean of the others over time.
pub async fn price_accuracy(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Accuracy>, ApiError> {
    let params = Params::parse(query.as_deref());
    let (from, to) = range(&params)?;
    let request = GetPriceAccuracyRequest {
        pairs: params.all("pair"),
        start_time: Some(timestamp(from)),
        end_time: Some(timestamp(to)),
        granularity: granularity(&params)?,
    };
    let response = within(QUERY_TIMEOUT, async {
        state
            .query()
            .query()
            .get_price_accuracy(request)
            .await
            .map_err(|s| status_error(&s))
    })
    .await?
    .into_inner();
    let mut pairs: BTreeMap<String, BTreeMap<String, Vec<AccuracyPoint>>> = BTreeMap::new();
    for a in response.accuracy {
        let start = time_of(a.window_start.as_ref());
        pairs
            .entry(a.pair)
            .or_default()
            .entry(a.source)
            .or_default()
            .push(AccuracyPoint {
                t: start.timestamp_millis(),
                window_start: rfc3339(start),
                percent_difference: a.percent_difference,
                source_avg: a.source_avg,
                others_mean: a.others_mean,
            });
    }
    Ok(Json(Accuracy {
        pairs: pairs
            .into_iter()
            .map(|(pair, sources)| AccuracyPair {
                pair,
                sources: sources
                    .into_iter()
                    .map(|(source, mut points)| {
                        points.sort_by_key(|p| p.t);
                        AccuracySource { source, points }
                    })
                    .collect(),
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_header_and_empty_cells_for_absent_values() {
        let row = Row {
            event_type: "ad_click".into(),
            key: "adv,\"1\"".into(),
            window_start: "2026-01-01T00:00:00Z".into(),
            window_end: "2026-01-01T00:01:00Z".into(),
            t: 0,
            count: 3,
            distinct_count: Some(2),
            min: None,
            max: None,
            sum: None,
            avg: None,
            last: None,
            revisions: 0,
        };
        let text = String::from_utf8(to_csv(&[row]).unwrap()).unwrap();
        assert_eq!(
            text,
            "event_type,key,window_start,window_end,count,distinct_count,min,max,sum,avg,last,revisions\n\
             ad_click,\"adv,\"\"1\"\"\",2026-01-01T00:00:00Z,2026-01-01T00:01:00Z,3,2,,,,,,0\n"
        );
    }

    #[test]
    fn csv_text_cells_cannot_be_formulas_but_numbers_stay_numbers() {
        let row = |key: &str| Row {
            event_type: "price_tick".into(),
            key: key.into(),
            window_start: "2026-01-01T00:00:00Z".into(),
            window_end: "2026-01-01T00:01:00Z".into(),
            t: 0,
            count: 1,
            distinct_count: None,
            min: Some(-1.5),
            max: None,
            sum: None,
            avg: None,
            last: Some(-2.0),
            revisions: 0,
        };
        for (key, cell) in [
            ("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            ("BTC-USD", "BTC-USD"),
        ] {
            let text = String::from_utf8(to_csv(&[row(key)]).unwrap()).unwrap();
            let line = text.lines().skip(1).collect::<Vec<_>>().join("\n");
            assert_eq!(
                line,
                format!(
                    "price_tick,{cell},2026-01-01T00:00:00Z,2026-01-01T00:01:00Z,1,,-1.5,,,,-2,0"
                ),
                "{key:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_query_api_call_that_takes_too_long_is_a_504() {
        let slow = within(Duration::from_millis(20), async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, ApiError>(())
        });
        let error = slow.await.unwrap_err();
        let response = axum::response::IntoResponse::into_response(error);
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("did not answer within"), "{text}");
        assert!(
            within(Duration::from_secs(1), async { Ok::<_, ApiError>(1) })
                .await
                .is_ok()
        );
    }

    #[test]
    fn query_api_refusals_name_the_field() {
        let error = status_error(&tonic::Status::invalid_argument(
            "granularity: must be a multiple of 1m",
        ));
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.body.field, "granularity");
        assert_eq!(error.body.message, "must be a multiple of 1m");
        let error = status_error(&tonic::Status::unavailable("database down"));
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
