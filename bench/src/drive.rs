//! Load generators: closed loop (a fixed number in flight, for a fixed
//! number of operations or, for throughput, a fixed time after a warm-up) and open loop (operations started on a
//! fixed schedule whatever the responses do: latency without coordinated
//! omission, each measured from when it was due, not when it was sent).
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt as _, stream::FuturesUnordered};
use serde::Serialize;

use crate::stats::{Latency, rate};

/// What a load run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunResult {
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Successful operations per second over the run.
    pub per_second: f64,
    /// Latency of the successful operations.
    pub latency: Latency,
    /// The first error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// CPU microseconds per successful operation, by process (see [`crate::cpu`]).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub cpu_us_per_op: std::collections::BTreeMap<String, f64>,
}

struct Tally {
    ok: u64,
    errors: u64,
    samples: Vec<Duration>,
    first_error: Option<String>,
}

impl Tally {
    fn new(capacity: usize) -> Self {
        Self {
            ok: 0,
            errors: 0,
            samples: Vec::with_capacity(capacity),
            first_error: None,
        }
    }

    fn record(&mut self, outcome: anyhow::Result<()>, latency: Duration) {
        match outcome {
            Ok(()) => {
                self.ok += 1;
                self.samples.push(latency);
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }

    fn finish(self, elapsed: Duration) -> RunResult {
        RunResult {
            ok: self.ok,
            errors: self.errors,
            per_second: rate(self.ok, elapsed),
            latency: Latency::of(self.samples),
            first_error: self.first_error,
            cpu_us_per_op: Default::default(),
        }
    }
}

/// Runs `count` operations, at most `in_flight` at a time, as fast as they
/// complete.
pub async fn closed_loop<F, Fut>(count: usize, in_flight: usize, mut op: F) -> RunResult
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut tally = Tally::new(count);
    let mut running = FuturesUnordered::new();
    let started = Instant::now();
    let mut next = 0;
    while next < count || !running.is_empty() {
        while next < count && running.len() < in_flight {
            let fut = op(next);
            running.push(async move {
                let at = Instant::now();
                let outcome = fut.await;
                (outcome, at.elapsed())
            });
            next += 1;
        }
        if let Some((outcome, latency)) = running.next().await {
            tally.record(outcome, latency);
        }
    }
    tally.finish(started.elapsed())
}

/// Runs operations 0, 1, 2, … with at most `in_flight` at a time, as fast as
/// they complete, for `warm_up` and then `duration`: the result counts the
/// operations that completed within `duration` (after the warm-up), their
/// latency and rate, and the CPU `meter` read over exactly that part; errors
/// count whenever they happen. Operations still running at the end are
/// awaited but not counted.
pub async fn closed_loop_for<F, Fut>(
    warm_up: Duration,
    duration: Duration,
    in_flight: usize,
    meter: &crate::cpu::Meter,
    mut op: F,
) -> RunResult
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut tally = Tally::new(0);
    let mut warm_errors = Tally::new(0);
    let mut running = FuturesUnordered::new();
    let started = tokio::time::Instant::now();
    let (timed_from, timed_until) = (started + warm_up, started + warm_up + duration);
    let mut reading = None;
    let mut next = 0;
    loop {
        let now = tokio::time::Instant::now();
        if now >= timed_from && reading.is_none() {
            reading = Some(meter.start());
        }
        if now >= timed_until {
            break;
        }
        while running.len() < in_flight {
            let fut = op(next);
            running.push(async move {
                let at = tokio::time::Instant::now();
                let outcome = fut.await;
                (outcome, at, at.elapsed())
            });
            next += 1;
        }
        // Wake at the phase boundaries even when nothing completes.
        let boundary = if now < timed_from {
            timed_from
        } else {
            timed_until
        };
        tokio::select! {
            done = running.next() => if let Some((outcome, at, latency)) = done {
                let end = at + latency;
                if end >= timed_from && end < timed_until {
                    tally.record(outcome, latency);
                } else {
                    warm_errors.record(outcome, latency);
                }
            },
            () = tokio::time::sleep_until(boundary) => {}
        }
    }
    let cpu = reading
        .map(|r| r.per_operation(tally.ok))
        .unwrap_or_default();
    while let Some((outcome, _, latency)) = running.next().await {
        warm_errors.record(outcome, latency);
    }
    tally.errors += warm_errors.errors;
    if tally.first_error.is_none() {
        tally.first_error = warm_errors.first_error;
    }
    let mut result = tally.finish(duration);
    result.cpu_us_per_op = cpu;
    result
}

/// Starts operation `i` at `start + i / rate` for `duration`, each on its
/// own task, and measures each from when it was due.
pub async fn open_loop<F, Fut>(rate_per_s: u64, duration: Duration, op: F) -> RunResult
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let count = (rate_per_s as f64 * duration.as_secs_f64()) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate_per_s.max(1) as f64);
    let started = tokio::time::Instant::now();
    let mut handles = Vec::with_capacity(count);
    for i in 0..count {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let fut = op(i);
        let handle = tokio::spawn(async move {
            let outcome = fut.await;
            (outcome, due.elapsed())
        });
        handles.push(handle);
    }
    let mut tally = Tally::new(count);
    for handle in handles {
        match handle.await {
            Ok((outcome, latency)) => tally.record(outcome, latency),
            Err(e) => tally.record(Err(e.into()), Duration::ZERO),
        }
    }
    // Throughput of an open-loop run is the offered rate when it keeps up;
    // measured over the schedule, not the stragglers.
    tally.finish(duration)
}

/// Runs `workers` callers, each calling `op` back to back, for `duration`.
pub async fn concurrent<F, Fut>(workers: usize, duration: Duration, op: F) -> RunResult
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let deadline = started + duration;
    let mut handles = Vec::with_capacity(workers);
    for worker in 0..workers {
        let op = op.clone();
        handles.push(tokio::spawn(async move {
            let mut tally = Tally::new(4096);
            let mut i = worker;
            while Instant::now() < deadline {
                let at = Instant::now();
                let outcome = op(i).await;
                tally.record(outcome, at.elapsed());
                i += workers;
            }
            tally
        }));
    }
    let mut total = Tally::new(0);
    for handle in handles {
        match handle.await {
            Ok(tally) => {
                total.ok += tally.ok;
                total.errors += tally.errors;
                total.samples.extend(tally.samples);
                if total.first_error.is_none() {
                    total.first_error = tally.first_error;
                }
            }
            Err(e) => total.record(Err(e.into()), Duration::ZERO),
        }
    }
    total.finish(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closed_loop_counts_successes_and_failures() {
        let result = closed_loop(10, 3, |i| async move {
            anyhow::ensure!(i % 5 != 0, "op {i} failed");
            Ok(())
        })
        .await;
        assert_eq!((result.ok, result.errors), (8, 2));
        assert_eq!(result.first_error.as_deref(), Some("op 0 failed"));
        assert_eq!(result.latency.samples, 8);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timed_closed_loop_counts_only_what_completes_after_the_warm_up() {
        // 4 in flight, 10 ms each: 4 completions every 10 ms; those at
        // 100..1100 ms are timed (100 instants), the warm-up's and the
        // drained ones are not.
        let result = closed_loop_for(
            Duration::from_millis(100),
            Duration::from_secs(1),
            4,
            &crate::cpu::Meter::new(),
            |i| async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                anyhow::ensure!(i != 3, "op {i} failed");
                Ok(())
            },
        )
        .await;
        assert_eq!((result.ok, result.errors), (400, 1), "{result:?}");
        assert_eq!(result.per_second, 400.0);
        assert_eq!(result.first_error.as_deref(), Some("op 3 failed"));
        assert!((result.latency.p50_ms - 10.0).abs() < 1.0, "{result:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_measures_from_the_schedule() {
        // Every op takes 100 ms; at 100/s for 1 s that is 100 ops, each
        // 100 ms late, however the ops overlap.
        let result = open_loop(100, Duration::from_secs(1), |_| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        })
        .await;
        assert_eq!(result.ok, 100);
        assert!((result.latency.p50_ms - 100.0).abs() < 1.0, "{result:?}");
        assert_eq!(result.per_second, 100.0);
    }

    #[tokio::test]
    async fn concurrent_workers_share_the_index_space() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        let result = concurrent(4, Duration::from_millis(50), move |i| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(())
            }
        })
        .await;
        let mut seen = seen.lock().unwrap().clone();
        let total = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), total, "an index was used twice");
        assert_eq!(result.ok as usize, total);
    }
}
