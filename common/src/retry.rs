//! The services' one retry policy: exponential backoff with jitter from
//! 100 ms doubling to 5 s, retrying until shutdown. The sink uses it while
//! Postgres fails, the processor while the registry is unreachable; the SDK
//! builds the same `backon` policy from its `SenderOptions`.
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBackoff, ExponentialBuilder};

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

#[cfg(test)]
mod tests {
    use super::*;

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
