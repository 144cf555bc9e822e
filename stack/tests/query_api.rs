//! The query API beside ingest, as `tributary-server` composes them: gRPC
//! `QueryService` on the same address as `IngestService`, and
//! `GET /v1/aggregates` / `GET /v1/price-accuracy` on the same HTTP address, over rows stored in the
//! stack's Postgres database. Detailed rollup semantics are specified by the
//! query crate's `tests/query.rs`; these tests pin the wiring, the wire formats and
//! the errors.
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;
use tonic::{Code, Request, metadata::MetadataValue};
use tributary_proto::v1::{
    Aggregate, GetAggregatesRequest, GetPriceAccuracyRequest,
    query_service_client::QueryServiceClient,
};
use tributary_server::ServerConfig;
use tributary_stack::{TestStack, ingest::RunningIngest};

/// A stack whose database holds a few aggregates, and ingest serving them.
struct Served {
    ingest: RunningIngest,
    _stack: TestStack,
    http: reqwest::Client,
}

impl Served {
    /// Stores the rows, then starts ingest and the query API over them
    /// (changed by `configure`).
    async fn start(configure: impl FnOnce(&mut ServerConfig)) -> anyhow::Result<Self> {
        let stack = TestStack::start().await?;
        let pool = PgPool::connect(stack.database.url()).await?;
        tributary_store::migrate(&pool).await?;
        store_rows(&pool).await?;
        let ingest = RunningIngest::start(&stack, configure).await?;
        Ok(Self {
            ingest,
            _stack: stack,
            http: reqwest::Client::new(),
        })
    }

    async fn get(&self, path_and_query: &str) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .get(format!("{}{path_and_query}", self.ingest.http_url()))
            .send()
            .await?;
        Ok((response.status().as_u16(), response.json().await?))
    }
}

fn time(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn ts(rfc3339: &str) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: time(rfc3339).timestamp(),
        nanos: 0,
    })
}

/// (event type, key, window start, count, distinct count, sum of prices).
type StoredWindow = (
    &'static str,
    &'static str,
    &'static str,
    i64,
    Option<i64>,
    Option<f64>,
);

/// adv-1 and adv-2 clicks in the first two minutes of 2026, and two ETH-USD
/// sources in the first minute.
async fn store_rows(pool: &PgPool) -> anyhow::Result<()> {
    let rows: [StoredWindow; 6] = [
        (
            "ad_click",
            "adv-1",
            "2026-01-01T00:00:00Z",
            4,
            Some(3),
            None,
        ),
        (
            "ad_click",
            "adv-1",
            "2026-01-01T00:01:00Z",
            6,
            Some(5),
            None,
        ),
        (
            "ad_click",
            "adv-2",
            "2026-01-01T00:00:00Z",
            1,
            Some(1),
            None,
        ),
        (
            "ad_click",
            "adv-2",
            "2026-01-01T00:01:00Z",
            2,
            Some(2),
            None,
        ),
        (
            "price_tick",
            "ETH-USD/api-1",
            "2026-01-01T00:00:00Z",
            2,
            None,
            Some(4000.0),
        ),
        (
            "price_tick",
            "ETH-USD/api-2",
            "2026-01-01T00:00:00Z",
            2,
            None,
            Some(4200.0),
        ),
    ];
    for (event_type, key, start, count, distinct, sum) in rows {
        let start = time(start);
        sqlx::query(
            "INSERT INTO aggregates (event_type, group_key, window_start, window_end, count,
                distinct_count, min, max, sum, last, last_event_time, is_final, emitted_at)
             VALUES ($1, $2, $3, $3 + INTERVAL '1 minute', $4, $5, $6 / $4, $6 / $4, $6, $6 / $4,
                     $3 + INTERVAL '30 seconds', true, now())",
        )
        .bind(event_type)
        .bind(key)
        .bind(start)
        .bind(count)
        .bind(distinct)
        .bind(sum)
        .execute(pool)
        .await?;
    }
    Ok(())
}

fn adv_1_hour() -> GetAggregatesRequest {
    GetAggregatesRequest {
        event_type: "ad_click".into(),
        keys: vec!["adv-1".into()],
        start_time: ts("2026-01-01T00:00:00Z"),
        end_time: ts("2026-01-01T01:00:00Z"),
        granularity: Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn query_service_answers_on_ingests_grpc_address() -> anyhow::Result<()> {
    let served = Served::start(|_| {}).await?;
    let mut client = QueryServiceClient::connect(served.ingest.grpc_url()).await?;
    let response = client.get_aggregates(adv_1_hour()).await?.into_inner();
    assert_eq!(
        response.aggregates,
        vec![Aggregate {
            event_type: "ad_click".into(),
            key: "adv-1".into(),
            window_start: ts("2026-01-01T00:00:00Z"),
            window_end: ts("2026-01-01T01:00:00Z"),
            count: 10,
            distinct_count: Some(5),
            min: None,
            max: None,
            sum: None,
            avg: None,
            last: None,
            revisions: 0,
        }]
    );
    assert_eq!(response.next_page_token, "");

    let accuracy = client
        .get_price_accuracy(GetPriceAccuracyRequest {
            pairs: vec!["ETH-USD".into()],
            start_time: ts("2026-01-01T00:00:00Z"),
            end_time: ts("2026-01-01T00:01:00Z"),
            granularity: None,
        })
        .await?
        .into_inner();
    let rows: Vec<_> = accuracy
        .accuracy
        .iter()
        .map(|a| {
            (
                a.source.as_str(),
                a.source_avg,
                a.others_mean,
                a.percent_difference,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("api-1", 2000.0, 2100.0, 100.0 * (2000.0 - 2100.0) / 2100.0),
            ("api-2", 2100.0, 2000.0, 5.0),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn query_service_refuses_a_bad_parameter_with_invalid_argument() -> anyhow::Result<()> {
    let served = Served::start(|_| {}).await?;
    let mut client = QueryServiceClient::connect(served.ingest.grpc_url()).await?;
    let status = client
        .get_aggregates(GetAggregatesRequest {
            page_size: 10_001,
            ..adv_1_hour()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "page_size: 10001 is larger than the maximum, 10000"
    );
    Ok(())
}

#[tokio::test]
async fn get_aggregates_serves_json_pages_with_rfc3339_times() -> anyhow::Result<()> {
    let served = Served::start(|_| {}).await?;
    let base = "/v1/aggregates?event_type=ad_click&key=adv-2&key=adv-1\
                &start_time=2026-01-01T00:00:00Z&end_time=2026-01-01T00:02:00Z\
                &order=desc&page_size=3";
    let (status, first) = served.get(base).await?;
    assert_eq!(status, 200, "{first}");
    let token = first["next_page_token"].as_str().unwrap().to_string();
    assert_ne!(token, "");
    assert_eq!(
        first["aggregates"],
        json!([
            {"event_type": "ad_click", "key": "adv-1", "window_start": "2026-01-01T00:01:00Z", "window_end": "2026-01-01T00:02:00Z", "count": 6, "distinct_count": 5, "revisions": 0},
            {"event_type": "ad_click", "key": "adv-2", "window_start": "2026-01-01T00:01:00Z", "window_end": "2026-01-01T00:02:00Z", "count": 2, "distinct_count": 2, "revisions": 0},
            {"event_type": "ad_click", "key": "adv-1", "window_start": "2026-01-01T00:00:00Z", "window_end": "2026-01-01T00:01:00Z", "count": 4, "distinct_count": 3, "revisions": 0},
        ])
    );
    let (status, second) = served.get(&format!("{base}&page_token={token}")).await?;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second,
        json!({
            "aggregates": [
                {"event_type": "ad_click", "key": "adv-2", "window_start": "2026-01-01T00:00:00Z", "window_end": "2026-01-01T00:01:00Z", "count": 1, "distinct_count": 1, "revisions": 0},
            ],
            "next_page_token": ""
        })
    );
    Ok(())
}

#[tokio::test]
async fn get_aggregates_rolls_up_price_ticks_to_the_requested_granularity() -> anyhow::Result<()> {
    let served = Served::start(|_| {}).await?;
    let (status, body) = served
        .get(
            "/v1/aggregates?event_type=price_tick&key=ETH-USD%2Fapi-2\
             &start_time=2026-01-01T00:00:00Z&end_time=2026-01-02T00:00:00Z&granularity=1d",
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "aggregates": [{
                "event_type": "price_tick", "key": "ETH-USD/api-2",
                "window_start": "2026-01-01T00:00:00Z", "window_end": "2026-01-02T00:00:00Z",
                "count": 2, "min": 2100.0, "max": 2100.0, "sum": 4200.0, "avg": 2100.0, "last": 2100.0, "revisions": 0
            }],
            "next_page_token": ""
        })
    );
    let (status, body) = served
        .get("/v1/price-accuracy?pair=ETH-USD&start_time=2026-01-01T00:00:00Z&end_time=2026-01-01T00:01:00Z")
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accuracy"][1]["source"], "api-2");
    assert_eq!(body["accuracy"][1]["percent_difference"], 5.0);
    Ok(())
}

#[tokio::test]
async fn get_aggregates_refuses_each_bad_parameter_with_400_naming_it() -> anyhow::Result<()> {
    let served = Served::start(|_| {}).await?;
    let range = "start_time=2026-01-01T00:00:00Z&end_time=2026-01-01T01:00:00Z";
    let cases = [
        (
            format!("event_type=ad_click&{range}&page_size=20000"),
            "page_size",
            "20000 is larger than the maximum, 10000",
        ),
        (
            format!("event_type=ad_click&{range}&page_size=-1"),
            "page_size",
            "-1 is negative",
        ),
        (
            format!("event_type=ad_click&{range}&page_size=many"),
            "page_size",
            "`many` is not an integer",
        ),
        (
            format!("event_type=page_view&{range}"),
            "event_type",
            "unknown event type `page_view`: it is not built in and has no stored aggregates",
        ),
        (range.to_string(), "event_type", "is required"),
        (
            "event_type=ad_click&end_time=2026-01-01T01:00:00Z".to_string(),
            "start_time",
            "is required",
        ),
        (
            "event_type=ad_click&start_time=2026-01-01T01:00:00Z&end_time=2026-01-01T00:00:00Z"
                .to_string(),
            "end_time",
            "must be after start_time (2026-01-01T01:00:00Z is not before 2026-01-01T00:00:00Z)",
        ),
        (
            "event_type=ad_click&start_time=yesterday&end_time=2026-01-01T00:00:00Z".to_string(),
            "start_time",
            "`yesterday` is not an RFC 3339 time such as 2026-01-01T00:00:00Z",
        ),
        (
            format!("event_type=ad_click&{range}&granularity=90s"),
            "granularity",
            "90s is not a multiple of the processor's window (1m); use a multiple such as 1h",
        ),
        (
            format!("event_type=ad_click&{range}&granularity=1x"),
            "granularity",
            "`1x` is not a duration such as 1m, 1h or 1d: unknown time unit \"x\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)",
        ),
        (
            format!("event_type=ad_click&{range}&order=sideways"),
            "order",
            "`sideways` is not an order; use asc or desc",
        ),
        (
            format!("event_type=ad_click&{range}&page_token=garbage"),
            "page_token",
            "is not a page token issued by this API",
        ),
        (
            format!("event_type=ad_click&{range}&key="),
            "key",
            "must not contain an empty value",
        ),
        (
            format!("event_type=ad_click&{range}&keys=adv-1"),
            "keys",
            "is not a parameter of this route; use event_type, key, start_time, end_time, granularity, order, page_size, page_token",
        ),
        (
            format!("event_type=ad_click&{range}&order=asc&order=desc"),
            "order",
            "is given more than once",
        ),
    ];
    for (query, field, message) in cases {
        let (status, body) = served.get(&format!("/v1/aggregates?{query}")).await?;
        assert_eq!(
            (status, body),
            (
                400,
                json!({"error": "invalid_argument", "field": field, "message": message})
            ),
            "{query}"
        );
    }
    let (status, body) = served
        .get(&format!("/v1/price-accuracy?{range}&pair="))
        .await?;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "invalid_argument", "field": "pair", "message": "must not contain an empty value"})
        )
    );
    Ok(())
}

#[tokio::test]
async fn with_the_database_unreachable_queries_are_unavailable() -> anyhow::Result<()> {
    let stack = TestStack::start().await?;
    let ingest = RunningIngest::start(&stack, |c| {
        c.query.database_url = "postgres://postgres@127.0.0.1:1/nowhere".into();
    })
    .await?;

    let mut client = QueryServiceClient::connect(ingest.grpc_url()).await?;
    let status = client.get_aggregates(adv_1_hour()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let response = reqwest::get(format!(
        "{}/v1/aggregates?event_type=ad_click&start_time=2026-01-01T00:00:00Z&end_time=2026-01-01T01:00:00Z",
        ingest.http_url()
    ))
    .await?;
    assert_eq!(response.status().as_u16(), 503);
    let body = response.json::<Value>().await?;
    assert_eq!(body["error"], "unavailable");
    assert!(body["request_id"].is_string(), "{body}");
    Ok(())
}

#[tokio::test]
async fn queries_need_an_api_key_when_keys_are_configured() -> anyhow::Result<()> {
    let served = Served::start(|c| c.ingest.edge.auth.api_keys = vec!["secret".into()]).await?;
    let mut client = QueryServiceClient::connect(served.ingest.grpc_url()).await?;
    let status = client.get_aggregates(adv_1_hour()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut request = Request::new(adv_1_hour());
    request
        .metadata_mut()
        .insert("authorization", MetadataValue::from_static("Bearer secret"));
    assert_eq!(
        client
            .get_aggregates(request)
            .await?
            .into_inner()
            .aggregates
            .len(),
        1
    );

    let query = "/v1/aggregates?event_type=ad_click&start_time=2026-01-01T00:00:00Z&end_time=2026-01-01T01:00:00Z";
    let (status, body) = served.get(query).await?;
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("unauthenticated"))
    );
    let response = served
        .http
        .get(format!("{}{query}", served.ingest.http_url()))
        .bearer_auth("secret")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    Ok(())
}
