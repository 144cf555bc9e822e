//! Span export over OTLP/gRPC, the way the services run it: the batch
//! exporter of `telemetry::otlp_provider` sends to an in-process collector
//! (the OTLP trace service), and `Telemetry::shutdown` flushes what is still
//! buffered. Its own test binary: the subscriber is global.
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};
use tributary_common::{config::TelemetryArgs, telemetry, trace_context};

struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let _ = self.0.send(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_and_are_flushed_at_shutdown() -> anyhow::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let provider = telemetry::otlp_provider(&endpoint, "tributary-otlp-test")?;
    let guard = telemetry::init_with_tracer_provider(&TelemetryArgs::default(), provider);
    assert!(telemetry::exporting());
    let caller = trace_context::from_traceparent(Some(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ));
    let span = tracing::info_span!("ingest.produce", otel.kind = "producer");
    trace_context::set_parent(&span, caller);
    let header = trace_context::traceparent_of(&span, &trace_context::Context::new());
    drop(span);
    // The batch exporter holds the span until its delay (5 s) or shutdown;
    // waiting less than that shows shutdown flushed it.
    guard.shutdown().await;
    assert!(!telemetry::exporting());

    let request = tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await?
        .expect("the collector got an export");
    let resource_spans = &request.resource_spans[0];
    let service = resource_spans
        .resource
        .as_ref()
        .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
        .and_then(|a| a.value.as_ref())
        .map(|v| format!("{:?}", v.value));
    assert_eq!(
        service.as_deref(),
        Some("Some(StringValue(\"tributary-otlp-test\"))")
    );
    let span = &resource_spans.scope_spans[0].spans[0];
    assert_eq!(span.name, "ingest.produce");
    assert_eq!(hex(&span.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(
        header,
        format!("00-{}-{}-01", hex(&span.trace_id), hex(&span.span_id))
    );
    Ok(())
}
