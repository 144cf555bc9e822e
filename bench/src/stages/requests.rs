//! One event per request: unary gRPC `SubmitEvent` and `POST /submit`, each
//! with a fixed number of concurrent callers.
use std::{sync::Arc, time::Duration};

use anyhow::ensure;
use tributary_client::{Client, proto::SubmitEventRequest};

use crate::{
    drive::{self, RunResult},
    workload,
};

/// Unary `SubmitEvent` calls from `workers` callers for `duration`.
pub async fn unary_grpc(client: &Client, workers: usize, duration: Duration) -> RunResult {
    let client = client.clone();
    drive::concurrent(workers, duration, move |i| {
        let mut ingest = client.ingest();
        async move {
            ingest
                .submit_event(SubmitEventRequest {
                    event: Some(workload::ad_click(i)),
                })
                .await?;
            Ok(())
        }
    })
    .await
}

/// `POST /submit` from `workers` callers for `duration`, over keep-alive
/// connections.
pub async fn http_submit(http_addr: &str, workers: usize, duration: Duration) -> RunResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(workers)
        .build()
        .expect("plain HTTP client");
    let url: Arc<str> = format!("http://{http_addr}/submit").into();
    drive::concurrent(workers, duration, move |i| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client
                .post(&*url)
                .header("content-type", "application/json")
                .body(workload::ad_click_json(i))
                .send()
                .await?;
            let status = response.status();
            ensure!(status.as_u16() == 204, "POST /submit answered {status}");
            Ok(())
        }
    })
    .await
}
