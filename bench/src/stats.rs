//! Latency samples and throughput, summarised as percentiles and medians.
use std::time::Duration;

use serde::Serialize;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Samples the percentiles were taken from.
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl Latency {
    /// The percentiles of `samples` (nearest-rank).
    pub fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1].as_secs_f64() * 1e3
        };
        Self {
            samples: samples.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: at(1.0),
        }
    }

    /// The run whose p99 is the median of `runs` (so the reported p50/p99
    /// belong to one real run).
    pub fn median_run(runs: &[Latency]) -> Latency {
        let mut sorted = runs.to_vec();
        sorted.sort_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms));
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    }
}

/// The median of `values` (the lower middle for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n => sorted[(n - 1) / 2],
    }
}

/// `count` items over `elapsed`, per second.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        return 0.0;
    }
    count as f64 / elapsed.as_secs_f64()
}

/// `numerator / denominator`, or 0 when the denominator is 0.
pub fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let latency = Latency::of((1..=1000).map(ms).collect());
        assert_eq!(latency.samples, 1000);
        assert_eq!(latency.p50_ms, 500.0);
        assert_eq!(latency.p99_ms, 990.0);
        assert_eq!(latency.p999_ms, 999.0);
        assert_eq!(latency.max_ms, 1000.0);
    }

    #[test]
    fn empty_samples_are_zero() {
        assert_eq!(Latency::of(vec![]), Latency::default());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn median_run_keeps_one_runs_numbers() {
        let run = |p50, p99| Latency {
            samples: 1,
            p50_ms: p50,
            p99_ms: p99,
            p999_ms: p99,
            max_ms: p99,
        };
        let chosen = Latency::median_run(&[run(1.0, 9.0), run(2.0, 5.0), run(3.0, 7.0)]);
        assert_eq!((chosen.p50_ms, chosen.p99_ms), (3.0, 7.0));
    }

    #[test]
    fn rates_and_ratios() {
        assert_eq!(rate(500, Duration::from_millis(250)), 2000.0);
        assert_eq!(rate(5, Duration::ZERO), 0.0);
        assert_eq!(ratio(8.0, 10.0), 0.8);
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }
}
