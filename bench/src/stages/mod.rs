//! The stages of a benchmark run, each next to its raw baseline.
pub mod consume;
pub mod freshness;
pub mod produce;
pub mod requests;
pub mod sdks;
pub mod sink;

use std::time::{Duration, Instant};

use anyhow::bail;

/// The shortest wait between two polls of a service's counter: how late the
/// end of a run may be seen.
pub const POLL_MIN: Duration = Duration::from_millis(20);
/// The longest wait between two polls of a service's counter.
pub const POLL_MAX: Duration = Duration::from_millis(500);

/// How long to wait before polling again a counter that went from `from` to
/// `now` (of `target`) in `elapsed`: half the time the rest would take at
/// that rate, within [`POLL_MIN`] and [`POLL_MAX`]. Every scrape of a
/// service's metrics costs it CPU (its process collector reads `/proc`),
/// which a baseline counting in its own loop is not charged: polled every
/// 20 ms, the sink spent about a tenth of its CPU answering. So a run is
/// polled a few times a second while far from done and every 20 ms near its
/// end, which is seen within 20 ms unless the rate more than doubles.
pub fn next_poll(from: u64, now: u64, target: u64, elapsed: Duration) -> Duration {
    let done = now.saturating_sub(from);
    if done == 0 || elapsed.is_zero() {
        return POLL_MIN;
    }
    let rest = target.saturating_sub(now) as f64 * elapsed.as_secs_f64() / done as f64;
    Duration::from_secs_f64(rest / 2.0).clamp(POLL_MIN, POLL_MAX)
}

/// Polls `progress` (every [`next_poll`]) until it reaches `target`, and
/// returns the time from when it first moved to when it got there (so
/// start-up and group joins are not counted, for the service and its
/// baseline alike). Fails if it stops moving for `stall`.
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
    let mut first_moved: Option<(Instant, u64)> = None;
    let mut last = 0;
    let mut last_change = Instant::now();
    loop {
        let now = progress().await?;
        if now != last {
            last = now;
            last_change = Instant::now();
        }
        if now > 0 && first_moved.is_none() {
            first_moved = Some((Instant::now(), now));
        }
        if now >= target {
            return Ok(first_moved.map(|(t, _)| t.elapsed()).unwrap_or_default());
        }
        if last_change.elapsed() > stall {
            bail!("{what}: stuck at {now} of {target} for {stall:?}");
        }
        let wait = first_moved.map_or(POLL_MIN, |(t, from)| {
            next_poll(from, now, target, t.elapsed())
        });
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_are_rare_far_from_the_end_and_frequent_near_it() {
        let second = Duration::from_secs(1);
        // Nothing moved yet: no rate to go by.
        assert_eq!(next_poll(0, 0, 1_000, second), POLL_MIN);
        assert_eq!(next_poll(10, 10, 1_000, second), POLL_MIN);
        assert_eq!(next_poll(0, 10, 1_000, Duration::ZERO), POLL_MIN);
        // 100/s with 900 to go: 9 s left, waits the longest.
        assert_eq!(next_poll(0, 100, 1_000, second), POLL_MAX);
        // 100/s with 40 to go: 0.4 s left, waits half of it.
        assert_eq!(
            next_poll(0, 960, 1_000, 9600 * Duration::from_millis(1)),
            Duration::from_millis(200)
        );
        // Almost there, or there: the shortest.
        assert_eq!(next_poll(0, 999, 1_000, second), POLL_MIN);
        assert_eq!(next_poll(0, 1_000, 1_000, second), POLL_MIN);
        // Counted from where the counter first moved.
        assert_eq!(next_poll(500, 600, 700, second), POLL_MAX);
        assert_eq!(next_poll(500, 600, 620, second), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_run_polled_this_way_is_timed_to_its_end_with_few_polls() {
        // A counter that moves 1,000 per second to 1,500.
        let started = Instant::now();
        let polls = std::sync::atomic::AtomicU32::new(0);
        let elapsed = time_progress("test", 1_500, Duration::from_secs(5), || {
            polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let now = (started.elapsed().as_secs_f64() * 1_000.0) as u64;
            async move { Ok(now.min(1_500)) }
        })
        .await
        .unwrap();
        // First moved at the first poll, done 1.5 s later: seen within 20 ms
        // (and the timer's slack), with far fewer than the 75 polls of every
        // 20 ms.
        let polls = polls.into_inner();
        assert!(
            elapsed >= Duration::from_millis(1_450) && elapsed <= Duration::from_millis(1_560),
            "{elapsed:?}"
        );
        assert!(polls < 30, "{polls} polls");
    }
}
