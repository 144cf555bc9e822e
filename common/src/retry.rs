//! The services' one retry policy: exponential backoff with jitter from
//! 100 ms doubling to 5 s, retrying until shutdown, and the one loop that
//! applies it ([`until_stopped`]). The sink uses it while Postgres fails or
//! the registry is unreachable, the processor while the registry is
//! unreachable (also at start-up, [`while_transient`]) and while a partition's
//! changelog cannot be restored yet; the SDK builds the same `backon` policy
//! from its `SenderOptions`.
use std::{fmt::Display, future::Future, time::Duration};

use backon::{BackoffBuilder as _, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

/// The first pause after a failure.
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest pause between attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// The pauses between attempts, for as long as the caller keeps trying.
pub fn delays() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(FIRST_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Runs `attempt` until it succeeds or fails with an error `transient` does
/// not accept, pausing by [`delays`] between attempts and logging each retry
/// as `what` (with the error in its alternate form, so an `anyhow` error
/// shows its causes); `None` when `stop` is cancelled during a pause.
pub async fn until_stopped<T, E: Display, Fut: Future<Output = Result<T, E>>>(
    what: &str,
    stop: &CancellationToken,
    transient: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> Fut,
) -> Option<Result<T, E>> {
    let mut delays = delays();
    loop {
        match attempt().await {
            Err(error) if transient(&error) => {
                let backoff = delays.next().unwrap_or(MAX_DELAY);
                tracing::warn!(error = %format_args!("{error:#}"), retry_in_ms = backoff.as_millis() as u64, "{what}; retrying");
                tokio::select! {
                    () = stop.cancelled() => return None,
                    () = tokio::time::sleep(backoff) => {}
                }
            }
            done => return Some(done),
        }
    }
}

/// [`until_stopped`] without a stop: the caller stops it by dropping the
/// future (a service's start-up is raced against its shutdown).
pub async fn while_transient<T, E: Display, Fut: Future<Output = Result<T, E>>>(
    what: &str,
    transient: impl Fn(&E) -> bool,
    attempt: impl FnMut() -> Fut,
) -> Result<T, E> {
    let never = CancellationToken::new();
    until_stopped(what, &never, transient, attempt)
        .await
        .expect("a token no one else holds is never cancelled")
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[tokio::test]
    async fn transient_failures_are_retried_and_others_returned_at_once() {
        let calls = Cell::new(0);
        let result: Result<u32, String> = while_transient(
            "flaky",
            |e: &String| e == "unavailable",
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 3 {
                        Err("unavailable".to_string())
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(calls.get(), 3);

        calls.set(0);
        let result: Result<u32, String> = while_transient(
            "refused",
            |e: &String| e == "unavailable",
            || {
                calls.set(calls.get() + 1);
                async { Err("refused".to_string()) }
            },
        )
        .await;
        assert_eq!(result, Err("refused".to_string()));
        assert_eq!(calls.get(), 1, "a refusal is not retried");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_during_a_pause_ends_the_retries() {
        let stop = CancellationToken::new();
        let calls = Cell::new(0);
        let cancel = {
            let stop = stop.clone();
            async move {
                // Into the first pause (at least FIRST_DELAY long).
                tokio::time::sleep(FIRST_DELAY / 2).await;
                stop.cancel();
            }
        };
        let started = tokio::time::Instant::now();
        let (retried, ()) = tokio::join!(
            until_stopped(
                "unavailable",
                &stop,
                |_: &String| true,
                || {
                    calls.set(calls.get() + 1);
                    async { Err::<(), _>("unavailable".to_string()) }
                },
            ),
            cancel
        );
        assert_eq!(retried, None);
        assert_eq!(calls.get(), 1, "no attempt after the stop");
        assert_eq!(
            started.elapsed(),
            FIRST_DELAY / 2,
            "the pause ends when the stop comes, not when it would have"
        );
    }

    #[test]
    fn delays_grow_to_the_maximum_and_never_end() {
        let delays: Vec<Duration> = delays().take(20).collect();
        assert_eq!(delays.len(), 20);
        assert!(delays[0] >= FIRST_DELAY && delays[0] < 2 * FIRST_DELAY);
        // With jitter a delay is at most twice its base, and the base stops at MAX_DELAY.
        assert!(delays.iter().all(|d| *d <= 2 * MAX_DELAY));
        assert!(delays[19] >= MAX_DELAY);
    }
}
