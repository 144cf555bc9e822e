//! The stages of a benchmark run, each next to its raw baseline.
pub mod consume;
pub mod freshness;
pub mod produce;
pub mod requests;
pub mod sdks;
pub mod sink;

use std::time::{Duration, Instant};

use anyhow::bail;

/// Polls `progress` every 20 ms until it reaches `target`, and returns the
/// time from when it first moved to when it got there (so start-up and group
/// joins are not counted, for the service and its baseline alike). Fails if
/// it stops moving for `stall`.
pub async fn time_progress<F, Fut>(
    what: &str,
    target: u64,
    stall: Duration,
    mut progress: F,
) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let mut first_moved: Option<Instant> = None;
    let mut last = 0;
    let mut last_change = Instant::now();
    loop {
        let now = progress().await?;
        if now != last {
            last = now;
            last_change = Instant::now();
        }
        if now > 0 && first_moved.is_none() {
            first_moved = Some(Instant::now());
        }
        if now >= target {
            return Ok(first_moved.map(|t| t.elapsed()).unwrap_or_default());
        }
        if last_change.elapsed() > stall {
            bail!("{what}: stuck at {now} of {target} for {stall:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
