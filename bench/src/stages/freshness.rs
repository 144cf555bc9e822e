//! End-to-end freshness: with the whole pipeline running and background
//! events offered at a fixed rate (open loop), probe events of keys of
//! their own are sent on a schedule, and each is timed from when it was due
//! to when `GetAggregates` first shows it.
use std::{sync::Arc, time::Duration};

use anyhow::bail;
use chrono::Utc;
use tributary_client::{Client, Outcome, Sender, event::timestamp, proto::GetAggregatesRequest};
use tributary_common::schemas;

use crate::{
    drive::{self, RunResult},
    workload,
};

/// How long one probe may take to become visible before it counts as lost.
const GIVE_UP: Duration = Duration::from_secs(60);

async fn probe(client: Client, sender: Arc<Sender>, key: String, i: usize) -> anyhow::Result<()> {
    match sender.send(workload::ad_click_for(&key, i)).await?.await? {
        Outcome::Acked(_) => {}
        Outcome::Rejected(error) => bail!("probe rejected: {}", error.message),
    }
    let started = tokio::time::Instant::now();
    let now = Utc::now();
    let request = GetAggregatesRequest {
        event_type: schemas::AD_CLICK.into(),
        keys: vec![key.clone()],
        start_time: Some(timestamp(now - chrono::Duration::minutes(10))),
        end_time: Some(timestamp(now + chrono::Duration::minutes(10))),
        ..Default::default()
    };
    let mut query = client.query();
    loop {
        let page = query.get_aggregates(request.clone()).await?.into_inner();
        if page.aggregates.iter().any(|a| a.count >= 1) {
            return Ok(());
        }
        if started.elapsed() > GIVE_UP {
            bail!("probe {key} not visible after {GIVE_UP:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Background events at `rate`/s and probes at `probe_rate`/s, both for
/// `duration`; returns the probes' submit-to-visible latency.
pub async fn run(
    client: &Client,
    sender: Arc<Sender>,
    rate: u64,
    probe_rate: u64,
    duration: Duration,
    run: usize,
) -> anyhow::Result<(RunResult, RunResult)> {
    let background = {
        let sender = sender.clone();
        drive::open_loop(rate, duration, move |i| {
            let sender = sender.clone();
            let event = workload::ad_click(i);
            async move {
                match sender.send(event).await?.await? {
                    Outcome::Acked(_) => Ok(()),
                    Outcome::Rejected(error) => bail!("rejected: {}", error.message),
                }
            }
        })
    };
    let probes = {
        let client = client.clone();
        drive::open_loop(probe_rate, duration, move |i| {
            let key = format!("probe-{run}-{i}-{}", uuid::Uuid::new_v4().simple());
            probe(client.clone(), sender.clone(), key, i)
        })
    };
    Ok(tokio::join!(probes, background))
}
