//! The whole pipeline on real parts: events submitted through ingest come out
//! of `GetAggregates` and `GetPriceAccuracy` (on ingest's address) with the
//! exact expected values, after the processor aggregated them and the sink
//! stored them.
use rstest::rstest;
use std::time::Duration;

use tributary_proto::v1::{
    AdClick, Aggregate, Event, GetAggregatesRequest, GetPriceAccuracyRequest, PriceTick,
    SubmitBatchRequest, event::Payload, event_result::Outcome,
    ingest_service_client::IngestServiceClient, query_service_client::QueryServiceClient,
};
use tributary_stack::{TestStack, broker::BrokerKind, ingest::RunningIngest, processor, sink};

const MINUTE: i64 = 60_000;

fn ts(ms: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

fn click(advertiser: &str, ip: &str, at: i64, id: &str) -> Event {
    Event {
        event_time: ts(at),
        idempotency_key: id.into(),
        payload: Some(Payload::AdClick(AdClick {
            ip_address: ip.into(),
            user_agent: "e2e".into(),
            referring_url: "https://example.com/".into(),
            advertiser_id: advertiser.into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn tick(source: &str, price: f64, at: i64, id: &str) -> Event {
    Event {
        event_time: ts(at),
        idempotency_key: id.into(),
        payload: Some(Payload::PriceTick(PriceTick {
            pair: "ETH-USD".into(),
            source: source.into(),
            price,
            volume: None,
        })),
        ..Default::default()
    }
}

/// (key, window start ms, count, distinct, min, max, sum, avg, last)
type Row = (
    String,
    i64,
    i64,
    Option<i64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

fn row(a: &Aggregate) -> Row {
    let start = a
        .window_start
        .as_ref()
        .map(|t| t.seconds * 1000)
        .unwrap_or_default();
    (
        a.key.clone(),
        start,
        a.count,
        a.distinct_count,
        a.min,
        a.max,
        a.sum,
        a.avg,
        a.last,
    )
}

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test]
async fn events_submitted_through_ingest_come_out_of_get_aggregates_exactly(
    #[case] broker: BrokerKind,
) -> anyhow::Result<()> {
    let stack = TestStack::start_on(broker).await?;
    let sink = sink::start(&stack, |_| {}).await?;
    let processor = processor::start(&stack, processor::quick_windows).await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;

    let now = chrono::Utc::now().timestamp_millis();
    let w = (now / MINUTE - 5) * MINUTE;
    let mut events = Vec::new();
    for i in 0..12 {
        events.push(click(
            "adv-1",
            &format!("10.9.0.{}", i % 4),
            w + i * 1000,
            &format!("c1-{i}"),
        ));
    }
    for i in 0..3 {
        events.push(click(
            "adv-2",
            "10.9.1.1",
            w + MINUTE + i * 1000,
            &format!("c2-{i}"),
        ));
    }
    events.push(click("adv-1", "10.9.0.0", w, "c1-0")); // a retry: counted once
    for (i, (source, price)) in [
        ("api-1", 100.0),
        ("api-1", 110.0),
        ("api-2", 102.0),
        ("contract", 99.0),
    ]
    .into_iter()
    .enumerate()
    {
        events.push(tick(
            source,
            price,
            w + 10_000 + i as i64 * 1000,
            &format!("t{i}"),
        ));
    }
    let mut client = IngestServiceClient::connect(ingest.grpc_url()).await?;
    let results = client
        .submit_batch(SubmitBatchRequest { events })
        .await?
        .into_inner()
        .results;
    assert!(
        results
            .iter()
            .all(|r| matches!(r.outcome, Some(Outcome::Ack(_)))),
        "{results:?}"
    );

    let mut query = QueryServiceClient::connect(ingest.grpc_url()).await?;
    let request = GetAggregatesRequest {
        event_type: "ad_click".into(),
        start_time: ts(w),
        end_time: ts(w + 2 * MINUTE),
        ..Default::default()
    };
    let expected: Vec<Row> = vec![
        ("adv-1".into(), w, 12, Some(4), None, None, None, None, None),
        (
            "adv-2".into(),
            w + MINUTE,
            3,
            Some(1),
            None,
            None,
            None,
            None,
            None,
        ),
    ];
    let mut got = Vec::new();
    for _ in 0..300 {
        got = query
            .get_aggregates(request.clone())
            .await?
            .into_inner()
            .aggregates
            .iter()
            .map(row)
            .collect();
        if got == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(got, expected);

    let ticks = query
        .get_aggregates(GetAggregatesRequest {
            event_type: "price_tick".into(),
            start_time: ts(w),
            end_time: ts(w + MINUTE),
            ..Default::default()
        })
        .await?
        .into_inner();
    let ticks: Vec<Row> = ticks.aggregates.iter().map(row).collect();
    assert_eq!(
        ticks,
        vec![
            (
                "ETH-USD/api-1".into(),
                w,
                2,
                None,
                Some(100.0),
                Some(110.0),
                Some(210.0),
                Some(105.0),
                Some(110.0)
            ),
            (
                "ETH-USD/api-2".into(),
                w,
                1,
                None,
                Some(102.0),
                Some(102.0),
                Some(102.0),
                Some(102.0),
                Some(102.0)
            ),
            (
                "ETH-USD/contract".into(),
                w,
                1,
                None,
                Some(99.0),
                Some(99.0),
                Some(99.0),
                Some(99.0),
                Some(99.0)
            ),
        ]
    );

    let accuracy = query
        .get_price_accuracy(GetPriceAccuracyRequest {
            pairs: vec!["ETH-USD".into()],
            start_time: ts(w),
            end_time: ts(w + MINUTE),
            ..Default::default()
        })
        .await?
        .into_inner()
        .accuracy;
    let contract = accuracy
        .iter()
        .find(|a| a.source == "contract")
        .expect("the contract's accuracy");
    // The other sources average 105 and 102: their mean is 103.5.
    assert_eq!(contract.others_mean, 103.5);
    assert!((contract.percent_difference - 100.0 * (99.0 - 103.5) / 103.5).abs() < 1e-9);
    assert_eq!(contract.source_avg, 99.0);

    // The services' metrics saw the same traffic (one process, one registry).
    let metrics = tributary_common::metrics::render();
    for line in [
        "tributary_ingest_events_received_total 20",
        "tributary_ingest_events_acked_total{event_type=\"ad_click\"} 16",
        "tributary_ingest_events_acked_total{event_type=\"price_tick\"} 4",
        "tributary_processor_records_total 20",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
    for family in [
        "tributary_processor_open_windows",
        "tributary_processor_state_bytes",
        "tributary_sink_rows_total",
        "tributary_sink_batch_seconds_bucket",
        "tributary_ingest_produce_seconds_bucket",
        "tributary_schema_cache_total{result=\"hit\"}",
    ] {
        assert!(metrics.contains(family), "no {family} in:\n{metrics}");
    }
    let mut lag_reported = false;
    for _ in 0..100 {
        if tributary_common::metrics::render().contains("tributary_consumer_lag{") {
            lag_reported = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(lag_reported, "no consumer lag from librdkafka's statistics");

    processor.shutdown().await?;
    sink.shutdown().await?;
    Ok(())
}
