//! One trace follows an event across Kafka. The test process records spans
//! into the OpenTelemetry SDK's in-memory exporter (a subscriber is global,
//! hence this test binary of its own), runs ingest, the processor and the
//! sink in-process, sends one event over gRPC with the client SDK under a
//! known `traceparent`, waits for its aggregate row in Postgres, and checks
//! the spans' parents and links:
//!
//! caller → `SubmitEvent` → `ingest.produce` ─(record header)→ `processor.event`
//! `processor.aggregate` (new trace, linked to `ingest.produce`) →
//! `processor.produce` ─(record header)→ `sink.write`
use rstest::rstest;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{Consumer as _, StreamConsumer},
};
use tonic::Request;
use tributary_client::{Client, event, proto::SubmitEventRequest};
use tributary_common::{config::TelemetryArgs, kafka, telemetry, trace_context};
use tributary_stack::{TestStack, broker::BrokerKind, ingest::RunningIngest, processor, sink};

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn child_of<'a>(spans: &'a [SpanData], name: &str, parent: &SpanData) -> Option<&'a SpanData> {
    spans.iter().find(|s| {
        s.name == name
            && s.parent_span_id == parent.span_context.span_id()
            && s.span_context.trace_id() == parent.span_context.trace_id()
    })
}

fn links_to(span: &SpanData, target: &SpanData) -> bool {
    span.links.links.iter().any(|link| {
        link.span_context.trace_id() == target.span_context.trace_id()
            && link.span_context.span_id() == target.span_context.span_id()
    })
}

/// The `traceparent` header of the record at `partition`/`offset` of `topic`.
async fn traceparent_at(
    kafka_args: &tributary_common::config::KafkaArgs,
    topic: &str,
    partition: i32,
    offset: i64,
) -> anyhow::Result<String> {
    let consumer: StreamConsumer = kafka::consumer_config(kafka_args, "tracing-test").create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    consumer.assign(&assignment)?;
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .context("the event record did not arrive")??;
    trace_context::header_of(&message)
        .map(String::from)
        .context("the event record has no traceparent header")
}

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_an_event_from_the_grpc_call_to_the_sink_write(
    #[case] broker: BrokerKind,
) -> anyhow::Result<()> {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let _telemetry = telemetry::init_with_tracer_provider(&TelemetryArgs::default(), provider);
    assert!(
        telemetry::exporting(),
        "the test's provider was not installed"
    );

    let stack = TestStack::start_on(broker).await?;
    let sink = sink::start(&stack, |_| {}).await?;
    let processor = processor::start(&stack, processor::quick_windows).await?;
    let ingest = RunningIngest::start(&stack, |_| {}).await?;

    let advertiser = "adv-traced";
    let five_minutes_ago = chrono::Utc::now() - chrono::Duration::minutes(5);
    let click = event::ad_click(
        advertiser,
        "10.1.2.3",
        "tracing-test",
        "https://example.com/",
    )
    .event_time(five_minutes_ago)
    .idempotency_key("traced-1")
    .build();
    let mut request = Request::new(SubmitEventRequest { event: Some(click) });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01").parse()?,
    );
    let ack = Client::new(ingest.grpc_url())?
        .ingest()
        .submit_event(request)
        .await?
        .into_inner()
        .ack
        .context("no ack")?;

    // The aggregate reaches Postgres through the processor and the sink.
    let pool = sqlx::PgPool::connect(stack.database.url()).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let count: Option<i64> =
            sqlx::query_scalar("SELECT count FROM aggregates WHERE group_key = $1")
                .bind(advertiser)
                .fetch_optional(&pool)
                .await?;
        if count == Some(1) {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the aggregate row did not arrive (count {count:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The row is visible once the sink's transaction commits, a moment
    // before its span ends: wait for the whole chain to be exported.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let spans = loop {
        let spans = exporter.get_finished_spans()?;
        let complete = named(&spans, "ingest.produce").iter().any(|produce| {
            named(&spans, "processor.aggregate")
                .into_iter()
                .filter(|aggregate| links_to(aggregate, produce))
                .filter_map(|aggregate| child_of(&spans, "processor.produce", aggregate))
                .any(|emit| child_of(&spans, "sink.write", emit).is_some())
        });
        if complete || tokio::time::Instant::now() >= deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();

    // The gRPC call continues the caller's trace.
    let call = named(&spans, "tributary.v1.IngestService/SubmitEvent");
    let [call] = call.as_slice() else {
        panic!("one SubmitEvent span expected: {names:?}");
    };
    assert_eq!(
        call.span_context.trace_id(),
        TraceId::from_hex(CALLER_TRACE)?
    );
    assert_eq!(call.parent_span_id, SpanId::from_hex(CALLER_SPAN)?);
    assert!(call.parent_span_is_remote);

    // The produce span is the call's child, and the record carries its context.
    let produce = child_of(&spans, "ingest.produce", call)
        .with_context(|| format!("no ingest.produce under the call: {names:?}"))?;
    let header = traceparent_at(&stack.kafka(), &ack.topic, ack.partition, ack.offset).await?;
    assert_eq!(header, trace_context::format(&produce.span_context));

    // The processor handles the record as a child of that header...
    let handled = child_of(&spans, "processor.event", produce)
        .with_context(|| format!("no processor.event under ingest.produce: {names:?}"))?;
    assert!(handled.parent_span_is_remote);

    // ...and emits the aggregate in a new trace that links back to it.
    let aggregate = named(&spans, "processor.aggregate")
        .into_iter()
        .find(|a| links_to(a, produce))
        .with_context(|| format!("no processor.aggregate links to the event: {names:?}"))?;
    assert_eq!(aggregate.parent_span_id, SpanId::INVALID, "a new root");
    assert_ne!(
        aggregate.span_context.trace_id(),
        produce.span_context.trace_id()
    );
    let emit = child_of(&spans, "processor.produce", aggregate)
        .with_context(|| format!("no processor.produce under the aggregate: {names:?}"))?;

    // The sink's write continues the aggregate's trace from its record header.
    let write = child_of(&spans, "sink.write", emit)
        .with_context(|| format!("no sink.write under processor.produce: {names:?}"))?;
    assert!(write.parent_span_is_remote);
    assert_eq!(
        write.span_context.trace_id(),
        aggregate.span_context.trace_id()
    );

    ingest.shutdown().await?;
    processor.shutdown().await?;
    sink.shutdown().await?;
    Ok(())
}
