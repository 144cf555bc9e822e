//! Prometheus metrics: every service registers its metrics in the default
//! registry and serves them, with the process's own (resident memory, CPU,
//! open files), as text on `GET /metrics` at `--metrics-addr`.
use std::{future::Future, net::SocketAddr};

use axum::{Router, http::header, response::IntoResponse, routing::get};
use prometheus::{Encoder as _, TextEncoder};

/// Lookups of writer schemas in a service's schema cache, by result (`hit`,
/// `miss`): ingest's writer schemas and the consumers' readers.
pub static SCHEMA_CACHE: std::sync::LazyLock<prometheus::IntCounterVec> =
    std::sync::LazyLock::new(|| {
        prometheus::register_int_counter_vec!(
            "tributary_schema_cache_total",
            "Schema cache lookups, by result (hit, miss).",
            &["result"]
        )
        .expect("metric registers once")
    });

/// The text exposition of every registered metric.
pub fn render() -> String {
    let mut out = Vec::new();
    let families = prometheus::gather();
    // Encoding into a Vec cannot fail for well-formed families.
    let _ = TextEncoder::new().encode(&families, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], render())
}

/// Binds `addr` (port 0 picks a free port), registers the process collector
/// once, and serves `GET /metrics` until `shutdown`. Returns the bound
/// address; the server runs in a background task.
pub async fn serve(
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    register_process_collector();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new().route("/metrics", get(metrics));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "metrics server failed");
        }
    });
    tracing::info!(addr = %bound, "metrics listening");
    Ok(bound)
}

/// Serves metrics at `args.metrics_addr`, if set, until the process exits.
pub async fn serve_configured(
    args: &crate::config::TelemetryArgs,
) -> std::io::Result<Option<SocketAddr>> {
    match args.metrics_addr {
        Some(addr) => serve(addr, std::future::pending()).await.map(Some),
        None => Ok(None),
    }
}

fn register_process_collector() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = prometheus::register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_endpoint_serves_registered_metrics_and_the_process_rss() {
        let counter =
            prometheus::register_int_counter!("tributary_test_things_total", "Things, for a test.")
                .unwrap();
        counter.inc_by(3);
        let addr = serve(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            std::future::pending(),
        )
        .await
        .unwrap();
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.contains("tributary_test_things_total 3"),
            "{response}"
        );
        assert!(
            response.contains("process_resident_memory_bytes"),
            "{response}"
        );
    }
}
