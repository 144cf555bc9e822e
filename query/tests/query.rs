//! The query API against a real Postgres: rows are inserted as the sink
//! stores them (one row per processor window of one minute), then read back
//! through `QueryApi` and the gRPC `QueryService`.
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tonic::{Code, Request};
use tributary_proto::v1::{
    AggregateOrder, GetAggregatesRequest, GetPriceAccuracyRequest,
    query_service_server::QueryService as _,
};
use tributary_query::{AggregatesPage, BucketAggregate, QueryApi, QueryGrpc};
use tributary_testkit::postgres::TestDatabase;

const MINUTE: Duration = Duration::from_secs(60);

/// A fresh, migrated database and the API over it (window: 1 minute).
struct Db {
    pool: PgPool,
    api: QueryApi,
    _database: TestDatabase,
}

impl Db {
    async fn start() -> anyhow::Result<Self> {
        let database = TestDatabase::create().await?;
        let pool = PgPool::connect(database.url()).await?;
        tributary_store::migrate(&pool).await?;
        Ok(Self {
            api: QueryApi::new(pool.clone(), MINUTE),
            pool,
            _database: database,
        })
    }

    async fn insert(&self, rows: &[Window]) -> anyhow::Result<()> {
        for w in rows {
            let start = time(w.start);
            sqlx::query(
                "INSERT INTO aggregates (event_type, group_key, window_start, window_end, count,
                    distinct_count, min, max, sum, last, last_event_time, is_final, emitted_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, true, now())",
            )
            .bind(w.event_type)
            .bind(w.key)
            .bind(start)
            .bind(start + chrono::Duration::minutes(1))
            .bind(w.count)
            .bind(w.distinct)
            .bind(w.min)
            .bind(w.max)
            .bind(w.sum)
            .bind(w.last)
            .bind(w.last_event_time.map(time))
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    fn grpc(&self) -> QueryGrpc {
        QueryGrpc::new(self.api.clone())
    }
}

/// One stored window.
struct Window {
    event_type: &'static str,
    key: &'static str,
    start: &'static str,
    count: i64,
    distinct: Option<i64>,
    min: Option<f64>,
    max: Option<f64>,
    sum: Option<f64>,
    last: Option<f64>,
    last_event_time: Option<&'static str>,
}

fn click(key: &'static str, start: &'static str, count: i64, distinct: i64) -> Window {
    Window {
        event_type: "ad_click",
        key,
        start,
        count,
        distinct: Some(distinct),
        min: None,
        max: None,
        sum: None,
        last: None,
        last_event_time: None,
    }
}

/// A price_tick window: count, min, max, sum, last and the last event's time.
fn tick(
    key: &'static str,
    start: &'static str,
    count: i64,
    [min, max, sum, last]: [f64; 4],
    last_event_time: &'static str,
) -> Window {
    Window {
        event_type: "price_tick",
        key,
        start,
        count,
        distinct: None,
        min: Some(min),
        max: Some(max),
        sum: Some(sum),
        last: Some(last),
        last_event_time: Some(last_event_time),
    }
}

fn generic(event_type: &'static str, key: &'static str, start: &'static str, count: i64) -> Window {
    Window {
        distinct: None,
        event_type,
        ..click(key, start, count, 0)
    }
}

fn time(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("test time")
        .with_timezone(&Utc)
}

fn ts(rfc3339: &str) -> Option<prost_types::Timestamp> {
    let t = time(rfc3339);
    Some(prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    })
}

fn duration(seconds: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds, nanos: 0 })
}

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// A request for `event_type` over `[start, end)` with every other parameter
/// at its default.
fn request(event_type: &str, start: &str, end: &str) -> GetAggregatesRequest {
    GetAggregatesRequest {
        event_type: event_type.into(),
        start_time: ts(start),
        end_time: ts(end),
        ..Default::default()
    }
}

/// (window start, key) of each aggregate, for order assertions.
fn positions(page: &AggregatesPage) -> Vec<(String, String)> {
    page.aggregates
        .iter()
        .map(|a| (a.window_start.to_rfc3339(), a.key.clone()))
        .collect()
}

fn at(rfc3339: &str, key: &str) -> (String, String) {
    (time(rfc3339).to_rfc3339(), key.to_string())
}

fn price_windows() -> Vec<Window> {
    let k = "ETH-USD/api-1";
    vec![
        tick(
            k,
            "2026-01-01T00:00:00Z",
            2,
            [10.0, 20.0, 30.0, 20.0],
            "2026-01-01T00:00:50Z",
        ),
        tick(
            k,
            "2026-01-01T00:01:00Z",
            3,
            [5.0, 25.0, 45.0, 15.0],
            "2026-01-01T00:01:30Z",
        ),
        tick(
            k,
            "2026-01-01T00:59:00Z",
            1,
            [12.0, 12.0, 12.0, 12.0],
            "2026-01-01T00:59:10Z",
        ),
        tick(
            k,
            "2026-01-01T01:00:00Z",
            4,
            [1.0, 2.0, 6.0, 1.5],
            "2026-01-01T01:00:20Z",
        ),
    ]
}

#[tokio::test]
async fn minute_windows_are_returned_as_stored_at_the_default_granularity() -> anyhow::Result<()> {
    let db = Db::start().await?;
    db.insert(&price_windows()).await?;
    let page = db
        .api
        .aggregates(request(
            "price_tick",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:02:00Z",
        ))
        .await?;
    assert_eq!(
        page.aggregates,
        vec![
            BucketAggregate {
                event_type: "price_tick".into(),
                key: "ETH-USD/api-1".into(),
                window_start: time("2026-01-01T00:00:00Z"),
                window_end: time("2026-01-01T00:01:00Z"),
                count: 2,
                distinct_count: None,
                min: Some(10.0),
                max: Some(20.0),
                sum: Some(30.0),
                avg: Some(15.0),
                last: Some(20.0),
                revisions: 0,
            },
            BucketAggregate {
                event_type: "price_tick".into(),
                key: "ETH-USD/api-1".into(),
                window_start: time("2026-01-01T00:01:00Z"),
                window_end: time("2026-01-01T00:02:00Z"),
                count: 3,
                distinct_count: None,
                min: Some(5.0),
                max: Some(25.0),
                sum: Some(45.0),
                avg: Some(15.0),
                last: Some(15.0),
                revisions: 0,
            },
        ]
    );
    assert_eq!(page.next_page_token, "");
    Ok(())
}

#[tokio::test]
async fn minute_windows_roll_up_to_hours_in_sql() -> anyhow::Result<()> {
    let db = Db::start().await?;
    db.insert(&price_windows()).await?;
    let page = db
        .api
        .aggregates(GetAggregatesRequest {
            granularity: duration(HOUR),
            ..request("price_tick", "2026-01-01T00:00:00Z", "2026-01-01T02:00:00Z")
        })
        .await?;
    assert_eq!(
        page.aggregates,
        vec![
            BucketAggregate {
                event_type: "price_tick".into(),
                key: "ETH-USD/api-1".into(),
                window_start: time("2026-01-01T00:00:00Z"),
                window_end: time("2026-01-01T01:00:00Z"),
                count: 6,
                distinct_count: None,
                min: Some(5.0),
                max: Some(25.0),
                sum: Some(87.0),
                avg: Some(87.0 / 6.0),
                // The 00:59 window holds the latest event of the hour.
                last: Some(12.0),
                revisions: 0,
            },
            BucketAggregate {
                event_type: "price_tick".into(),
                key: "ETH-USD/api-1".into(),
                window_start: time("2026-01-01T01:00:00Z"),
                window_end: time("2026-01-01T02:00:00Z"),
                count: 4,
                distinct_count: None,
                min: Some(1.0),
                max: Some(2.0),
                sum: Some(6.0),
                avg: Some(1.5),
                last: Some(1.5),
                revisions: 0,
            },
        ]
    );
    Ok(())
}

#[tokio::test]
async fn minute_windows_roll_up_to_utc_days() -> anyhow::Result<()> {
    let db = Db::start().await?;
    let mut windows = price_windows();
    windows.push(tick(
        "ETH-USD/api-1",
        "2026-01-02T00:00:00Z",
        1,
        [100.0, 100.0, 100.0, 100.0],
        "2026-01-02T00:00:01Z",
    ));
    db.insert(&windows).await?;
    let page = db
        .api
        .aggregates(GetAggregatesRequest {
            granularity: duration(DAY),
            ..request("price_tick", "2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z")
        })
        .await?;
    assert_eq!(
        page.aggregates,
        vec![
            BucketAggregate {
                event_type: "price_tick".into(),
                key: "ETH-USD/api-1".into(),
                window_start: time("2026-01-01T00:00:00Z"),
                window_end: time("2026-01-02T00:00:00Z"),
                count: 10,
                distinct_count: None,
                min: Some(1.0),
                max: Some(25.0),
                sum: Some(93.0),
                avg: Some(9.3),
                last: Some(1.5),
                revisions: 0,
            },
            BucketAggregate {
                event_type: "price_tick".into(),
                key: "ETH-USD/api-1".into(),
                window_start: time("2026-01-02T00:00:00Z"),
                window_end: time("2026-01-03T00:00:00Z"),
                count: 1,
                distinct_count: None,
                min: Some(100.0),
                max: Some(100.0),
                sum: Some(100.0),
                avg: Some(100.0),
                last: Some(100.0),
                revisions: 0,
            },
        ]
    );
    Ok(())
}

#[tokio::test]
async fn distinct_count_is_exact_per_window_and_the_largest_window_count_when_rolled_up()
-> anyhow::Result<()> {
    let db = Db::start().await?;
    db.insert(&[
        click("adv-1", "2026-01-01T00:00:00Z", 4, 3),
        click("adv-1", "2026-01-01T00:01:00Z", 9, 5),
        click("adv-1", "2026-01-01T00:02:00Z", 2, 2),
    ])
    .await?;
    let range = ("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z");
    let minutes = db
        .api
        .aggregates(request("ad_click", range.0, range.1))
        .await?;
    let per_minute: Vec<_> = minutes
        .aggregates
        .iter()
        .map(|a| (a.count, a.distinct_count))
        .collect();
    assert_eq!(per_minute, vec![(4, Some(3)), (9, Some(5)), (2, Some(2))]);

    let hour = db
        .api
        .aggregates(GetAggregatesRequest {
            granularity: duration(HOUR),
            ..request("ad_click", range.0, range.1)
        })
        .await?;
    assert_eq!(
        hour.aggregates,
        vec![BucketAggregate {
            event_type: "ad_click".into(),
            key: "adv-1".into(),
            window_start: time("2026-01-01T00:00:00Z"),
            window_end: time("2026-01-01T01:00:00Z"),
            count: 15,
            // A lower bound: the windows' sets may overlap, so only the
            // largest one is certain.
            distinct_count: Some(5),
            min: None,
            max: None,
            sum: None,
            avg: None,
            last: None,
            revisions: 0,
        }]
    );
    Ok(())
}

#[tokio::test]
async fn keys_filter_returns_only_the_listed_keys() -> anyhow::Result<()> {
    let db = Db::start().await?;
    db.insert(&[
        click("adv-1", "2026-01-01T00:00:00Z", 1, 1),
        click("adv-2", "2026-01-01T00:00:00Z", 2, 1),
        click("adv-3", "2026-01-01T00:00:00Z", 3, 1),
    ])
    .await?;
    let page = db
        .api
        .aggregates(GetAggregatesRequest {
            keys: vec!["adv-3".into(), "adv-1".into(), "adv-9".into()],
            ..request("ad_click", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z")
        })
        .await?;
    assert_eq!(
        positions(&page),
        vec![
            at("2026-01-01T00:00:00Z", "adv-1"),
            at("2026-01-01T00:00:00Z", "adv-3")
        ]
    );
    Ok(())
}

#[tokio::test]
async fn time_range_includes_its_start_and_excludes_its_end() -> anyhow::Result<()> {
    let db = Db::start().await?;
    db.insert(&[
        click("adv-1", "2026-01-01T00:00:00Z", 1, 1),
        click("adv-1", "2026-01-01T00:01:00Z", 2, 1),
        click("adv-1", "2026-01-01T00:02:00Z", 3, 1),
    ])
    .await?;
    let page = db
        .api
        .aggregates(request(
            "ad_click",
            "2026-01-01T00:01:00Z",
            "2026-01-01T00:02:00Z",
        ))
        .await?;
    assert_eq!(positions(&page), vec![at("2026-01-01T00:01:00Z", "adv-1")]);
    assert_eq!(page.aggregates[0].count, 2);
    Ok(())
}

fn grid() -> Vec<Window> {
    vec![
        click("b", "2026-01-01T00:00:00Z", 1, 1),
        click("a", "2026-01-01T00:00:00Z", 1, 1),
        click("b", "2026-01-01T00:01:00Z", 1, 1),
        click("a", "2026-01-01T00:01:00Z", 1, 1),
    ]
}

#[tokio::test]
async fn ascending_order_is_oldest_window_first_then_key() -> anyhow::Result<()> {
    let db = Db::start().await?;
    db.insert(&grid()).await?;
    let page = db
        .api
        .aggregates(GetAggregatesRequest {
            order: AggregateOrder::WindowAsc as i32,
            ..request("ad_click", "2026-01-01T00:00:00Z", "2026-01-01T00:02:00Z")
        })
        .await?;
    assert_eq!(
        positions(&page),
        vec![
            at("2026-01-01T00:00:00Z", "a"),
            at("2026-01-01T00:00:00Z", "b"),
            at("2026-01-01T00:01:00Z", "a"),
            at("2026-01-01T00:01:00Z", "b"),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn descending_order_is_newest_window_first_then_key_ascending() -> anyhow::Result<()> {
    let db = Db::start().await?;
    db.insert(&grid()).await?;
    let page = db
        .api
        .aggregates(GetAggregatesRequest {
            order: AggregateOrder::WindowDesc as i32,
            ..request("ad_click", "2026-01-01T00:00:00Z", "2026-01-01T00:02:00Z")
        })
        .await?;
    assert_eq!(
        positions(&page),
        vec![
            at("2026-01-01T00:01:00Z", "a"),
            at("2026-01-01T00:01:00Z", "b"),
            at("2026-01-01T00:00:00Z", "a"),
            at("2026-01-01T00:00:00Z", "b"),
        ]
    );
    Ok(())
}

/// 5 keys in each of 7 minutes: 35 aggregates.
async fn many(db: &Db) -> anyhow::Result<()> {
    const KEYS: [&str; 5] = ["k1", "k2", "k3", "k4", "k5"];
    const MINUTES: [&str; 7] = [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:01:00Z",
        "2026-01-01T00:02:00Z",
        "2026-01-01T00:03:00Z",
        "2026-01-01T00:04:00Z",
        "2026-01-01T00:05:00Z",
        "2026-01-01T00:06:00Z",
    ];
    let windows: Vec<Window> = MINUTES
        .iter()
        .flat_map(|m| KEYS.iter().map(|k| click(k, m, 1, 1)))
        .collect();
    db.insert(&windows).await
}

/// Follows next_page_token to the end; returns every position and the number
/// of pages.
async fn every_page(
    db: &Db,
    first: GetAggregatesRequest,
) -> anyhow::Result<(Vec<(String, String)>, usize)> {
    let mut all = Vec::new();
    let mut pages = 0;
    let mut token = String::new();
    loop {
        let page = db
            .api
            .aggregates(GetAggregatesRequest {
                page_token: token,
                ..first.clone()
            })
            .await?;
        pages += 1;
        all.extend(positions(&page));
        if page.next_page_token.is_empty() {
            return Ok((all, pages));
        }
        token = page.next_page_token;
    }
}

#[tokio::test]
async fn ascending_pages_return_every_aggregate_exactly_once_in_order() -> anyhow::Result<()> {
    let db = Db::start().await?;
    many(&db).await?;
    let (all, pages) = every_page(
        &db,
        GetAggregatesRequest {
            page_size: 4,
            ..request("ad_click", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z")
        },
    )
    .await?;
    let whole = db
        .api
        .aggregates(request(
            "ad_click",
            "2026-01-01T00:00:00Z",
            "2026-01-01T01:00:00Z",
        ))
        .await?;
    assert_eq!(pages, 9);
    assert_eq!(all.len(), 35);
    assert_eq!(all, positions(&whole));
    assert_eq!(all[0], at("2026-01-01T00:00:00Z", "k1"));
    assert_eq!(all[5], at("2026-01-01T00:01:00Z", "k1"));
    Ok(())
}

#[tokio::test]
async fn descending_pages_return_every_aggregate_exactly_once_in_order() -> anyhow::Result<()> {
    let db = Db::start().await?;
    many(&db).await?;
    let first = GetAggregatesRequest {
        order: AggregateOrder::WindowDesc as i32,
        ..request("ad_click", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z")
    };
    let (all, pages) = every_page(
        &db,
        GetAggregatesRequest {
            page_size: 3,
            ..first.clone()
        },
    )
    .await?;
    let whole = db.api.aggregates(first).await?;
    assert_eq!(pages, 12);
    assert_eq!(all.len(), 35);
    assert_eq!(all, positions(&whole));
    assert_eq!(all[0], at("2026-01-01T00:06:00Z", "k1"));
    assert_eq!(all[34], at("2026-01-01T00:00:00Z", "k5"));
    Ok(())
}

#[tokio::test]
async fn a_page_exactly_as_large_as_the_rest_is_the_last_page() -> anyhow::Result<()> {
    let db = Db::start().await?;
    db.insert(&grid()).await?;
    let page = db
        .api
        .aggregates(GetAggregatesRequest {
            page_size: 4,
            ..request("ad_click", "2026-01-01T00:00:00Z", "2026-01-01T00:02:00Z")
        })
        .await?;
    assert_eq!(page.aggregates.len(), 4);
    assert_eq!(page.next_page_token, "");
    Ok(())
}

#[tokio::test]
async fn rolled_up_pages_continue_after_the_last_bucket() -> anyhow::Result<()> {
    let db = Db::start().await?;
    many(&db).await?;
    for order in [AggregateOrder::WindowAsc, AggregateOrder::WindowDesc] {
        let first = GetAggregatesRequest {
            granularity: duration(120),
            order: order as i32,
            ..request("ad_click", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z")
        };
        let (all, pages) = every_page(
            &db,
            GetAggregatesRequest {
                page_size: 2,
                ..first.clone()
            },
        )
        .await?;
        let whole = db.api.aggregates(first).await?;
        // 4 two-minute buckets of 5 keys.
        assert_eq!(whole.aggregates.len(), 20);
        assert_eq!(pages, 10);
        assert_eq!(all, positions(&whole));
    }
    Ok(())
}

#[tokio::test]
async fn a_schema_driven_type_with_stored_rows_is_known_even_when_the_range_is_empty()
-> anyhow::Result<()> {
    let db = Db::start().await?;
    db.insert(&[generic("page_view", "home", "2026-01-01T00:00:00Z", 7)])
        .await?;
    let found = db
        .api
        .aggregates(request(
            "page_view",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:01:00Z",
        ))
        .await?;
    assert_eq!(positions(&found), vec![at("2026-01-01T00:00:00Z", "home")]);
    assert_eq!(found.aggregates[0].count, 7);
    let empty = db
        .api
        .aggregates(request(
            "page_view",
            "2026-02-01T00:00:00Z",
            "2026-02-02T00:00:00Z",
        ))
        .await?;
    assert_eq!(empty.aggregates, vec![]);
    Ok(())
}

#[tokio::test]
async fn a_built_in_type_without_rows_is_known_and_empty() -> anyhow::Result<()> {
    let db = Db::start().await?;
    let page = db
        .api
        .aggregates(request(
            "price_tick",
            "2026-01-01T00:00:00Z",
            "2026-01-02T00:00:00Z",
        ))
        .await?;
    assert_eq!(page.aggregates, vec![]);
    assert_eq!(page.next_page_token, "");
    Ok(())
}

fn accuracy_windows() -> Vec<Window> {
    let t = "2026-01-01T00:00:30Z";
    vec![
        // 00:00: api-1 averages 2000, api-2 2010.
        tick(
            "ETH-USD/api-1",
            "2026-01-01T00:00:00Z",
            2,
            [1990.0, 2010.0, 4000.0, 2010.0],
            t,
        ),
        tick(
            "ETH-USD/api-2",
            "2026-01-01T00:00:00Z",
            3,
            [2000.0, 2020.0, 6030.0, 2010.0],
            t,
        ),
        // 00:01: api-1 averages 2200, contract 1990.
        tick(
            "ETH-USD/api-1",
            "2026-01-01T00:01:00Z",
            2,
            [2100.0, 2300.0, 4400.0, 2300.0],
            t,
        ),
        tick(
            "ETH-USD/contract",
            "2026-01-01T00:01:00Z",
            1,
            [1990.0, 1990.0, 1990.0, 1990.0],
            t,
        ),
        // A pair with a single source has nothing to compare with.
        tick(
            "BTC-USD/api-1",
            "2026-01-01T00:00:00Z",
            1,
            [90000.0, 90000.0, 90000.0, 90000.0],
            t,
        ),
    ]
}

/// (pair, source, window start, source avg, others mean, percent difference).
type Row = (String, String, String, f64, f64, f64);

fn row(pair: &str, source: &str, start: &str, avg: f64, others: f64) -> Row {
    (
        pair.into(),
        source.into(),
        time(start).to_rfc3339(),
        avg,
        others,
        100.0 * (avg - others) / others,
    )
}

async fn accuracy(db: &Db, request: GetPriceAccuracyRequest) -> anyhow::Result<Vec<Row>> {
    Ok(db
        .api
        .price_accuracy(request)
        .await?
        .accuracy
        .into_iter()
        .map(|a| {
            (
                a.pair,
                a.source,
                a.window_start.to_rfc3339(),
                a.source_avg,
                a.others_mean,
                a.percent_difference,
            )
        })
        .collect())
}

#[tokio::test]
async fn accuracy_compares_each_source_with_the_others_per_window() -> anyhow::Result<()> {
    let db = Db::start().await?;
    db.insert(&accuracy_windows()).await?;
    let rows = accuracy(
        &db,
        GetPriceAccuracyRequest {
            start_time: ts("2026-01-01T00:00:00Z"),
            end_time: ts("2026-01-01T01:00:00Z"),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(
        rows,
        vec![
            row("ETH-USD", "api-1", "2026-01-01T00:00:00Z", 2000.0, 2010.0),
            row("ETH-USD", "api-2", "2026-01-01T00:00:00Z", 2010.0, 2000.0),
            row("ETH-USD", "api-1", "2026-01-01T00:01:00Z", 2200.0, 1990.0),
            row(
                "ETH-USD",
                "contract",
                "2026-01-01T00:01:00Z",
                1990.0,
                2200.0
            ),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn accuracy_of_three_sources_uses_the_mean_of_the_other_two() -> anyhow::Result<()> {
    let db = Db::start().await?;
    db.insert(&accuracy_windows()).await?;
    let rows = accuracy(
        &db,
        GetPriceAccuracyRequest {
            pairs: vec!["ETH-USD".into()],
            start_time: ts("2026-01-01T00:00:00Z"),
            end_time: ts("2026-01-01T01:00:00Z"),
            granularity: duration(HOUR),
        },
    )
    .await?;
    // Over the hour: api-1 averages 8400 / 4 = 2100, api-2 2010, contract 1990.
    assert_eq!(
        rows,
        vec![
            row("ETH-USD", "api-1", "2026-01-01T00:00:00Z", 2100.0, 2000.0),
            row("ETH-USD", "api-2", "2026-01-01T00:00:00Z", 2010.0, 2045.0),
            row(
                "ETH-USD",
                "contract",
                "2026-01-01T00:00:00Z",
                1990.0,
                2055.0
            ),
        ]
    );
    assert_eq!(rows[0].5, 5.0);
    Ok(())
}

/// The status of a GetAggregates call through gRPC.
async fn aggregates_status(db: &Db, request: GetAggregatesRequest) -> (Code, String) {
    match db.grpc().get_aggregates(Request::new(request)).await {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_string()),
    }
}

#[tokio::test]
async fn every_bad_aggregates_parameter_is_invalid_argument_naming_it() -> anyhow::Result<()> {
    let db = Db::start().await?;
    db.insert(&grid()).await?;
    let good = GetAggregatesRequest {
        page_size: 1,
        ..request("ad_click", "2026-01-01T00:00:00Z", "2026-01-01T00:02:00Z")
    };
    let token = db.api.aggregates(good.clone()).await?.next_page_token;
    assert_ne!(token, "");

    let cases: Vec<(&str, GetAggregatesRequest)> = vec![
        (
            "event_type",
            GetAggregatesRequest {
                event_type: String::new(),
                ..good.clone()
            },
        ),
        (
            "event_type",
            GetAggregatesRequest {
                event_type: "Ad-Click".into(),
                ..good.clone()
            },
        ),
        (
            "event_type",
            GetAggregatesRequest {
                event_type: "page_view".into(),
                ..good.clone()
            },
        ),
        (
            "keys",
            GetAggregatesRequest {
                keys: vec!["a".into(), String::new()],
                ..good.clone()
            },
        ),
        (
            "start_time",
            GetAggregatesRequest {
                start_time: None,
                ..good.clone()
            },
        ),
        (
            "end_time",
            GetAggregatesRequest {
                end_time: None,
                ..good.clone()
            },
        ),
        (
            "end_time",
            GetAggregatesRequest {
                end_time: good.start_time,
                ..good.clone()
            },
        ),
        (
            "end_time",
            GetAggregatesRequest {
                start_time: good.end_time,
                end_time: good.start_time,
                ..good.clone()
            },
        ),
        (
            "start_time",
            GetAggregatesRequest {
                start_time: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..good.clone()
            },
        ),
        (
            "granularity",
            GetAggregatesRequest {
                granularity: duration(i64::MAX),
                ..good.clone()
            },
        ),
        (
            "granularity",
            GetAggregatesRequest {
                granularity: duration(90),
                ..good.clone()
            },
        ),
        (
            "granularity",
            GetAggregatesRequest {
                granularity: duration(0),
                ..good.clone()
            },
        ),
        (
            "granularity",
            GetAggregatesRequest {
                granularity: duration(-60),
                ..good.clone()
            },
        ),
        (
            "granularity",
            GetAggregatesRequest {
                granularity: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 1,
                }),
                ..good.clone()
            },
        ),
        (
            "order",
            GetAggregatesRequest {
                order: 7,
                ..good.clone()
            },
        ),
        (
            "page_size",
            GetAggregatesRequest {
                page_size: 10_001,
                ..good.clone()
            },
        ),
        (
            "page_size",
            GetAggregatesRequest {
                page_size: -1,
                ..good.clone()
            },
        ),
        (
            "page_token",
            GetAggregatesRequest {
                page_token: "garbage".into(),
                ..good.clone()
            },
        ),
        (
            "page_token",
            GetAggregatesRequest {
                page_token: "76310a".into(),
                ..good.clone()
            },
        ),
        (
            "page_token",
            GetAggregatesRequest {
                page_token: token.clone(),
                keys: vec!["a".into()],
                ..good.clone()
            },
        ),
        (
            "page_token",
            GetAggregatesRequest {
                page_token: token.clone(),
                order: AggregateOrder::WindowDesc as i32,
                ..good.clone()
            },
        ),
        (
            "page_token",
            GetAggregatesRequest {
                page_token: token.clone(),
                granularity: duration(HOUR),
                ..good.clone()
            },
        ),
        (
            "page_token",
            GetAggregatesRequest {
                page_token: token.clone(),
                end_time: ts("2026-01-01T00:03:00Z"),
                ..good.clone()
            },
        ),
    ];
    for (field, request) in cases {
        let (code, message) = aggregates_status(&db, request.clone()).await;
        assert_eq!(
            code,
            Code::InvalidArgument,
            "{field}: {request:?} gave {message}"
        );
        assert!(
            message.starts_with(&format!("{field}: ")),
            "expected a message about {field}, got `{message}`"
        );
    }
    // The page size may change between pages.
    let (code, message) = aggregates_status(
        &db,
        GetAggregatesRequest {
            page_token: token,
            page_size: 50,
            ..good.clone()
        },
    )
    .await;
    assert_eq!((code, message.as_str()), (Code::Ok, ""));
    Ok(())
}

#[tokio::test]
async fn bad_parameter_messages_say_what_is_wrong() -> anyhow::Result<()> {
    let db = Db::start().await?;
    let good = request("ad_click", "2026-01-01T00:00:00Z", "2026-01-01T00:02:00Z");
    let cases = [
        (
            GetAggregatesRequest {
                event_type: "page_view".into(),
                ..good.clone()
            },
            "event_type: unknown event type `page_view`: it is not built in and has no stored aggregates",
        ),
        (
            GetAggregatesRequest {
                page_size: 20_000,
                ..good.clone()
            },
            "page_size: 20000 is larger than the maximum, 10000",
        ),
        (
            GetAggregatesRequest {
                granularity: duration(90),
                ..good.clone()
            },
            "granularity: 90s is not a multiple of the processor's window (1m); use a multiple such as 1h",
        ),
        (
            GetAggregatesRequest {
                end_time: good.start_time,
                ..good.clone()
            },
            "end_time: must be after start_time (2026-01-01T00:00:00Z is not before 2026-01-01T00:00:00Z)",
        ),
        (
            GetAggregatesRequest {
                page_token: "zz".into(),
                ..good.clone()
            },
            "page_token: is not a page token issued by this API",
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(
            aggregates_status(&db, request).await,
            (Code::InvalidArgument, expected.to_string())
        );
    }
    Ok(())
}

#[tokio::test]
async fn every_bad_accuracy_parameter_is_invalid_argument_naming_it() -> anyhow::Result<()> {
    let db = Db::start().await?;
    let good = GetPriceAccuracyRequest {
        pairs: vec![],
        start_time: ts("2026-01-01T00:00:00Z"),
        end_time: ts("2026-01-01T01:00:00Z"),
        granularity: None,
    };
    let cases = [
        (
            "pairs",
            GetPriceAccuracyRequest {
                pairs: vec![String::new()],
                ..good.clone()
            },
        ),
        (
            "start_time",
            GetPriceAccuracyRequest {
                start_time: None,
                ..good.clone()
            },
        ),
        (
            "end_time",
            GetPriceAccuracyRequest {
                end_time: None,
                ..good.clone()
            },
        ),
        (
            "end_time",
            GetPriceAccuracyRequest {
                end_time: good.start_time,
                ..good.clone()
            },
        ),
        (
            "granularity",
            GetPriceAccuracyRequest {
                granularity: duration(30),
                ..good.clone()
            },
        ),
    ];
    for (field, request) in cases {
        let status = db
            .grpc()
            .get_price_accuracy(Request::new(request))
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert!(
            status.message().starts_with(&format!("{field}: ")),
            "expected a message about {field}, got `{}`",
            status.message()
        );
    }
    Ok(())
}

#[tokio::test]
async fn without_a_database_every_query_is_unavailable() {
    let grpc = QueryGrpc::new(QueryApi::not_configured());
    let status = grpc
        .get_aggregates(Request::new(request(
            "ad_click",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:02:00Z",
        )))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.message(),
        "the query API is not configured: start ingest with --database-url (DATABASE_URL) pointing at the sink's Postgres database"
    );
    let status = grpc
        .get_price_accuracy(Request::new(GetPriceAccuracyRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable() -> anyhow::Result<()> {
    // Port 1 on loopback: nothing listens there.
    let api = QueryApi::connect_lazy("postgres://postgres@127.0.0.1:1/absent", MINUTE)?;
    let status = QueryGrpc::new(api)
        .get_aggregates(Request::new(request(
            "ad_click",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:02:00Z",
        )))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status
            .message()
            .starts_with("the aggregates database is unavailable: "),
        "{}",
        status.message()
    );
    Ok(())
}

#[tokio::test]
async fn revisions_say_how_often_late_events_corrected_a_bucket() -> anyhow::Result<()> {
    let db = Db::start().await?;
    db.insert(&price_windows()).await?;
    // Late events corrected the 00:00 window twice and the 00:01 window once.
    for (start, revision) in [("2026-01-01T00:00:00Z", 2), ("2026-01-01T00:01:00Z", 1)] {
        sqlx::query("UPDATE aggregates SET revision = $1 WHERE window_start = $2")
            .bind(revision)
            .bind(time(start))
            .execute(&db.pool)
            .await?;
    }
    let revisions = |page: AggregatesPage| -> Vec<(String, i64)> {
        page.aggregates
            .into_iter()
            .map(|a| (a.window_start.to_rfc3339(), a.revisions))
            .collect()
    };
    let minutes = db
        .api
        .aggregates(request(
            "price_tick",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:03:00Z",
        ))
        .await?;
    assert_eq!(
        revisions(minutes),
        [
            ("2026-01-01T00:00:00+00:00".to_string(), 2),
            ("2026-01-01T00:01:00+00:00".to_string(), 1),
        ]
    );
    let hours = db
        .api
        .aggregates(GetAggregatesRequest {
            granularity: duration(HOUR),
            ..request("price_tick", "2026-01-01T00:00:00Z", "2026-01-01T02:00:00Z")
        })
        .await?;
    assert_eq!(
        revisions(hours),
        [
            ("2026-01-01T00:00:00+00:00".to_string(), 3),
            ("2026-01-01T01:00:00+00:00".to_string(), 0),
        ]
    );
    Ok(())
}
