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
    /// Microseconds per successful operation each process's threads were
    /// ready to run but waited for a CPU, and the machine's steal time (see
    /// [`crate::cpu::Reading::waited_per_operation`]).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub waited_us_per_op: std::collections::BTreeMap<String, f64>,
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
            waited_us_per_op: Default::default(),
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
    let (cpu, waited) = reading
        .map(|r| (r.per_operation(tally.ok), r.waited_per_operation(tally.ok)))
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
    result.waited_us_per_op = waited;
    result
}

/// What an open-loop run did besides its operations' results: how well the
/// driver kept to the schedule, and whether the answers kept up with it.
#[derive(Debug, Clone, Default)]
pub struct OpenLoop {
    /// The operations' results, each latency measured from when it was due.
    pub result: RunResult,
    /// The offered rate, operations/s.
    pub rate: u64,
    /// How late the driver started the operations after they were due (its
    /// timer fires on Tokio's millisecond ticks, so up to about 1 ms when
    /// the process is not starved of CPU); part of every latency above.
    pub start_lag: Latency,
    /// How long after the last operation was due its last answer came.
    pub drain: Duration,
    /// The most operations unanswered at once.
    pub max_in_flight: usize,
    /// The latency each successful operation would have had had it been
    /// answered only once every operation started with it (in the same
    /// wake-up of the driver) was: what answering a batch at once costs, as
    /// ingest answers a message of events when all of them are stored. For
    /// the raw producer, which answers each record alone, the difference
    /// from its own latency is the price of that alone.
    pub answered_together: Latency,
}

impl OpenLoop {
    /// Whether the system kept up with the offered rate: every operation
    /// succeeded, the driver kept to its schedule (started nothing more than
    /// `bound` late: otherwise the offered load was not what was asked for),
    /// and the answers did not fall behind (the last one came within `bound`
    /// of when it was due, and the p99 latency is within `bound`).
    pub fn kept_up(&self, bound: Duration) -> bool {
        let ms = bound.as_secs_f64() * 1e3;
        self.result.errors == 0
            && self.start_lag.max_ms <= ms
            && self.drain <= bound
            && self.result.latency.p99_ms <= ms
    }

    /// One line for the progress log.
    pub fn summary(&self) -> String {
        let l = &self.result.latency;
        format!(
            "{}/s: {} ok, {} failed; latency p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms; \
             started late p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; last answer {:.1} ms after its due \
             time; at most {} in flight; answered with those started together p50 {:.2} ms, \
             p99 {:.2} ms",
            self.rate,
            self.result.ok,
            self.result.errors,
            l.p50_ms,
            l.p99_ms,
            l.max_ms,
            self.start_lag.p50_ms,
            self.start_lag.p99_ms,
            self.start_lag.max_ms,
            self.drain.as_secs_f64() * 1e3,
            self.max_in_flight,
            self.answered_together.p50_ms,
            self.answered_together.p99_ms
        )
    }
}

/// Starts operation `i` at `start + i / rate` for `duration` (whatever the
/// earlier ones' answers do) and measures each from when it was due, not
/// from when it was started: latency without coordinated omission. See
/// [`open_loop_run`].
pub async fn open_loop<F, Fut>(rate_per_s: u64, duration: Duration, op: F) -> RunResult
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    open_loop_run(rate_per_s, duration, op).await.result
}

/// Starts operation `i` at `start + i / rate` for `duration`, whatever the
/// earlier ones' answers do, and measures each from when it was due.
///
/// Each operation runs on a task of its own, spawned when it is due: the
/// driver sleeps only when the next operation is not yet due (Tokio's timer
/// has millisecond ticks, so at high rates the operations due within a tick
/// start together at its end, each still timed from its own due time), and
/// when it wakes late it starts everything due at once rather than shifting
/// the schedule; the lateness is in every latency and in
/// [`OpenLoop::start_lag`]. The driver's own CPU is 1.2–2.0 µs per
/// operation at 60,000/s (`examples/open_loop_driver_cost.rs`; the upper end
/// with operations answered by another task, as the SDK's are). It runs in
/// the bench process, so it is part of the "SDK client" (and "raw producer")
/// CPU of an open-loop run: about a quarter of the SDK client's 6–9 µs per
/// event there, a tenth of the 20 µs an event costs client, ingest and
/// broker together.
pub async fn open_loop_run<F, Fut>(rate_per_s: u64, duration: Duration, mut op: F) -> OpenLoop
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let rate = rate_per_s.max(1);
    let count = (rate as f64 * duration.as_secs_f64()) as usize;
    let started = tokio::time::Instant::now();
    let due = |i: usize| {
        started + Duration::from_nanos((i as u128 * 1_000_000_000 / rate as u128) as u64)
    };
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut max_in_flight = 0;
    let mut lags = Vec::with_capacity(count);
    let mut handles = Vec::with_capacity(count);
    let mut now = started;
    for i in 0..count {
        let at = due(i);
        if at > now {
            now = tokio::time::Instant::now();
            if at > now {
                tokio::time::sleep_until(at).await;
                now = tokio::time::Instant::now();
            }
        }
        lags.push(now - at);
        let fut = op(i);
        let in_flight = in_flight.clone();
        max_in_flight =
            max_in_flight.max(in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
        let start = now;
        handles.push(tokio::spawn(async move {
            let outcome = fut.await;
            let answered = tokio::time::Instant::now();
            in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            (outcome, start, at, answered)
        }));
    }
    let mut tally = Tally::new(count);
    let mut last_answer = started;
    // (started, due, answered) of each successful operation, in order.
    let mut answers = Vec::with_capacity(count);
    for handle in handles {
        match handle.await {
            Ok((outcome, start, at, answered)) => {
                if outcome.is_ok() {
                    answers.push((start, at, answered));
                }
                tally.record(outcome, answered - at);
                last_answer = last_answer.max(answered);
            }
            Err(e) => tally.record(Err(e.into()), Duration::ZERO),
        }
    }
    let last_due = if count > 0 { due(count - 1) } else { started };
    OpenLoop {
        // Throughput of an open-loop run is the offered rate when it keeps
        // up; measured over the schedule, not the stragglers.
        result: tally.finish(duration),
        rate,
        start_lag: Latency::of(lags),
        drain: last_answer.saturating_duration_since(last_due),
        max_in_flight,
        answered_together: answered_together(&answers),
    }
}

/// The latency of each of `answers` (started, due, answered; in the order
/// started) had it been answered when the last of those started with it
/// was. Operations started together are consecutive.
fn answered_together(
    answers: &[(
        tokio::time::Instant,
        tokio::time::Instant,
        tokio::time::Instant,
    )],
) -> Latency {
    let mut latencies = Vec::with_capacity(answers.len());
    for group in answers.chunk_by(|a, b| a.0 == b.0) {
        let last = group.iter().map(|(_, _, answered)| *answered).max();
        if let Some(last) = last {
            latencies.extend(group.iter().map(|(_, due, _)| last - *due));
        }
    }
    Latency::of(latencies)
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

    #[test]
    fn operations_started_together_are_answered_with_the_last_of_them() {
        let t0 = tokio::time::Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // Two started together at 1 (due at 0 and 1), answered at 3 and 9;
        // one started alone at 2, answered at 4.
        let answers = [
            (ms(1), ms(0), ms(3)),
            (ms(1), ms(1), ms(9)),
            (ms(2), ms(2), ms(4)),
        ];
        let together = answered_together(&answers);
        // Latencies 9, 8 and 2 ms.
        assert_eq!(together.max_ms, 9.0);
        assert_eq!(together.p50_ms, 8.0);
        assert_eq!(answered_together(&[]), Latency::default());
    }

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

    #[tokio::test(start_paused = true)]
    async fn a_late_driver_starts_what_is_due_at_once_and_counts_its_lateness() {
        // 1,000/s for 1 s; 100 ms in, the clock jumps 50 ms, as if the
        // process had had no CPU: the 50 operations due meanwhile start
        // together, each timed from its own due time, and the schedule is
        // not shifted (still 1,000 operations, the later ones on time).
        let (run, ()) = tokio::join!(
            open_loop_run(1_000, Duration::from_secs(1), |_| async { Ok(()) }),
            async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                tokio::time::advance(Duration::from_millis(50)).await;
            }
        );
        assert_eq!(run.result.ok, 1_000);
        assert!((run.start_lag.max_ms - 50.0).abs() < 2.0, "{run:?}");
        assert!(run.result.latency.max_ms >= run.start_lag.max_ms, "{run:?}");
        assert!(run.start_lag.p50_ms < 1.0, "{run:?}");
        assert!(run.kept_up(Duration::from_millis(100)), "{run:?}");
        assert!(!run.kept_up(Duration::from_millis(10)), "{run:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_beyond_capacity_falls_behind() {
        // One operation at a time, 10 ms each: 100/s at most.
        let capacity = Arc::new(tokio::sync::Semaphore::new(1));
        let run_at = |rate| {
            let capacity = capacity.clone();
            open_loop_run(rate, Duration::from_secs(2), move |_| {
                let capacity = capacity.clone();
                async move {
                    let _one = capacity.acquire().await?;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Ok(())
                }
            })
        };
        let within = run_at(50).await;
        assert!(within.kept_up(Duration::from_millis(100)), "{within:?}");
        assert!(within.drain <= Duration::from_millis(11), "{within:?}");
        // At 125/s a quarter more arrives than can be served: after 2 s
        // the last operation waits for the 50 before it, about 0.4 s.
        let beyond = run_at(125).await;
        assert!(!beyond.kept_up(Duration::from_millis(100)), "{beyond:?}");
        assert!(beyond.drain >= Duration::from_millis(350), "{beyond:?}");
        assert_eq!(beyond.result.ok, 250);
        assert!(beyond.max_in_flight >= 45, "{beyond:?}");
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
