//! Measures the per-caller rate limiter under concurrent callers against a
//! raw baseline in the same run: the same token-bucket arithmetic behind one
//! global `Mutex<HashMap>` (the limiter's previous design).
//!
//! `cargo run --release -p tributary-edge --example rate_limit_bench -- [threads] [acquires per thread] [rounds]`
//! prints, per round, nanoseconds per acquire of each and their ratio, then
//! the medians.
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tributary_edge::rate_limit::{Caller, RateLimiter};

/// The baseline: one lock around every bucket.
struct GlobalLock {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<Caller, (f64, Instant)>>,
}

impl GlobalLock {
    fn acquire(&self, caller: &Caller, tokens: f64) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap();
        let bucket = buckets.entry(*caller).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(bucket.1).as_secs_f64();
        bucket.0 = (bucket.0 + elapsed * self.per_second).min(self.burst);
        bucket.1 = now;
        if bucket.0 >= tokens {
            bucket.0 -= tokens;
            true
        } else {
            false
        }
    }
}

/// Runs `acquire` `per_thread` times on each of `threads` threads (each its
/// own caller) and returns nanoseconds per acquire.
fn run(threads: usize, per_thread: usize, acquire: Arc<dyn Fn(&Caller) + Send + Sync>) -> f64 {
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let acquire = acquire.clone();
            std::thread::spawn(move || {
                let caller = Caller::Peer(IpAddr::V4(Ipv4Addr::new(10, 0, 0, t as u8)));
                for _ in 0..per_thread {
                    acquire(&caller);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    started.elapsed().as_nanos() as f64 / (threads * per_thread) as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let per_thread: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    // A rate no caller reaches, so every acquire takes the full path.
    let (per_second, burst) = (1e12, 1e12);
    let (mut ours, mut baseline) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let limiter = RateLimiter::new(per_second, Some(burst)).unwrap();
        let dashmap = run(
            threads,
            per_thread,
            Arc::new(move |c: &Caller| {
                let _ = limiter.acquire(c, 1);
            }),
        );
        let global = Arc::new(GlobalLock {
            per_second,
            burst,
            buckets: Mutex::default(),
        });
        let locked = run(
            threads,
            per_thread,
            Arc::new(move |c: &Caller| {
                let _ = global.acquire(c, 1.0);
            }),
        );
        println!(
            "round {round}: limiter {dashmap:.0} ns/acquire, global-mutex baseline {locked:.0} ns/acquire, ratio {:.2}",
            locked / dashmap
        );
        ours.push(dashmap);
        baseline.push(locked);
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ours, baseline) = (median(ours), median(baseline));
    println!(
        "median of {rounds}: limiter {ours:.0} ns/acquire, baseline {baseline:.0} ns/acquire, baseline/limiter {:.2} ({threads} threads, {per_thread} acquires each)",
        baseline / ours
    );
}
