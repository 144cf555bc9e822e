//! Per-caller rate limits: a token bucket per API key (per peer address when
//! no keys are configured), refilled at `--rate-limit` tokens per second up
//! to `--rate-limit-burst`. An event costs one token, and so does a query
//! request.
//!
//! A request for more tokens than the burst (a batch of many events) is let
//! through when the bucket holds at least a full burst, and leaves it in
//! debt: the caller's next request waits until the debt is repaid, so the
//! long-run rate holds for every request size and no batch is refused forever.
//! This is the model of Kafka's client quotas (take the request, then
//! throttle the client for what it overdrew), and the reason the buckets are
//! not `governor`'s: its GCRA refuses a request larger than the burst outright
//! (`InsufficientCapacity`) and cannot carry debt.
//!
//! The buckets live in a concurrent map (`dashmap`, one lock per shard), so
//! callers charging at once do not queue behind one lock; only the sweep
//! takes a lock of its own, and only when one is due.
//!
//! Buckets of idle callers are dropped: a bucket that has refilled to the
//! burst is the same as no bucket, so dropping it forgets nothing, and the
//! map holds only callers seen within the last `burst / rate` seconds (plus
//! what arrived since the last sweep).
use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use dashmap::{DashMap, mapref::entry::Entry};

/// Who a token is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Caller {
    /// The SHA-256 digest of the caller's API key (the key itself is not kept).
    Key([u8; 32]),
    /// An anonymous caller's address: IPv4 as is, IPv6 by its /64 prefix (one
    /// host usually holds a whole /64).
    Peer(IpAddr),
    /// An anonymous caller whose address is not known (in-process use).
    Unknown,
}

impl Caller {
    /// An anonymous caller at `peer`.
    pub fn peer(peer: Option<SocketAddr>) -> Self {
        match peer.map(|p| p.ip().to_canonical()) {
            Some(IpAddr::V6(v6)) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Self::Peer(IpAddr::V6(prefix.into()))
            }
            Some(v4) => Self::Peer(v4),
            None => Self::Unknown,
        }
    }
}

/// The limit: a steady rate and the burst on top of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens a bucket holds (and a new caller starts with).
    pub burst: f64,
}

/// A caller over its limit, and how long it must wait before it has the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    /// When the request could be let through, from now.
    pub retry_after: Duration,
}

impl Exhausted {
    /// `retry_after` in whole seconds, rounded up and at least one, as the
    /// HTTP `Retry-After` header and the gRPC `retry-after` metadata carry it.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct Buckets {
    by_caller: DashMap<Caller, Bucket>,
    /// Buckets in the map, counted as they are added and recounted by sweeps.
    len: AtomicUsize,
    /// A sweep runs when the map grows past this many buckets...
    sweep_at_len: AtomicUsize,
    /// ...or [`SWEEP_INTERVAL`] has passed since the last one (nanoseconds
    /// after `origin`).
    last_sweep: AtomicU64,
    origin: Instant,
    /// Held by the one sweep running.
    sweeping: Mutex<()>,
}

/// Tokens a bucket may be short of and still pay (float rounding).
const TOLERANCE: f64 = 1e-9;

/// Sweeps run at least this often while calls arrive, so memory shrinks
/// after a crowd of callers leaves.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Below this many buckets, size alone does not trigger a sweep.
const MIN_SWEEP_LEN: usize = 1024;

/// The per-caller buckets, shared by every listener (clones share them).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limit: Limit,
    buckets: Arc<Buckets>,
}

impl RateLimiter {
    /// A limiter of `per_second` tokens per second with a burst of `burst`
    /// (at least one token); `None` when `per_second` is not positive.
    pub fn new(per_second: f64, burst: Option<f64>) -> Option<Self> {
        if per_second.is_nan() || per_second <= 0.0 || per_second.is_infinite() {
            return None;
        }
        let burst = burst.unwrap_or(per_second).max(1.0);
        Some(Self::with_limit(
            Limit { per_second, burst },
            Instant::now(),
        ))
    }

    fn with_limit(limit: Limit, now: Instant) -> Self {
        Self {
            limit,
            buckets: Arc::new(Buckets {
                by_caller: DashMap::new(),
                len: AtomicUsize::new(0),
                sweep_at_len: AtomicUsize::new(MIN_SWEEP_LEN),
                last_sweep: AtomicU64::new(0),
                origin: now,
                sweeping: Mutex::new(()),
            }),
        }
    }

    /// The configured limit.
    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// Takes `tokens` from `caller`'s bucket, or says how long to wait.
    pub fn acquire(&self, caller: &Caller, tokens: u64) -> Result<(), Exhausted> {
        self.acquire_at(caller, tokens, Instant::now())
    }

    /// [`Self::acquire`] at time `now` (tests drive the clock by hand).
    pub fn acquire_at(&self, caller: &Caller, tokens: u64, now: Instant) -> Result<(), Exhausted> {
        let Limit { per_second, burst } = self.limit;
        // Before taking the caller's entry: a sweep visits every shard.
        self.buckets.sweep_if_due(self.limit, now);
        let mut bucket = match self.buckets.by_caller.entry(*caller) {
            Entry::Occupied(occupied) => occupied.into_ref(),
            Entry::Vacant(vacant) => {
                self.buckets.len.fetch_add(1, Ordering::Relaxed);
                vacant.insert(Bucket {
                    tokens: burst,
                    updated: now,
                })
            }
        };
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.updated = bucket.updated.max(now);
        let wanted = tokens as f64;
        // A request larger than the burst needs a full bucket, then leaves it in debt.
        let needed = wanted.min(burst);
        // The tolerance absorbs float rounding, so that waiting exactly
        // `retry_after` is always enough.
        if bucket.tokens + TOLERANCE >= needed {
            bucket.tokens -= wanted;
            Ok(())
        } else {
            let missing = needed - bucket.tokens;
            // Rounded up to the microsecond.
            let micros = (missing / per_second * 1e6).ceil();
            Err(Exhausted {
                retry_after: Duration::from_micros(micros as u64),
            })
        }
    }

    /// How many callers have a bucket.
    pub fn tracked_callers(&self) -> usize {
        self.buckets.by_caller.len()
    }
}

impl Buckets {
    /// Drops the buckets that have refilled to the burst, when the map has
    /// doubled since the last sweep or [`SWEEP_INTERVAL`] has passed.
    /// Another caller's sweep in progress is enough: this one is skipped.
    fn sweep_if_due(&self, limit: Limit, now: Instant) {
        let since_origin =
            |at: Instant| at.saturating_duration_since(self.origin).as_nanos() as u64;
        let last = Duration::from_nanos(self.last_sweep.load(Ordering::Relaxed));
        let idle = Duration::from_nanos(since_origin(now)).saturating_sub(last);
        if self.len.load(Ordering::Relaxed) < self.sweep_at_len.load(Ordering::Relaxed)
            && idle < SWEEP_INTERVAL
        {
            return;
        }
        let Ok(_sweeping) = self.sweeping.try_lock() else {
            return;
        };
        self.by_caller.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens + elapsed * limit.per_second < limit.burst
        });
        let kept = self.by_caller.len();
        if self.by_caller.capacity() > 4 * kept.max(MIN_SWEEP_LEN) {
            self.by_caller.shrink_to_fit();
        }
        self.len.store(kept, Ordering::Relaxed);
        self.sweep_at_len
            .store((2 * kept).max(MIN_SWEEP_LEN), Ordering::Relaxed);
        self.last_sweep.store(since_origin(now), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Caller {
        Caller::Key([n; 32])
    }

    fn limiter(per_second: f64, burst: f64, start: Instant) -> RateLimiter {
        RateLimiter::with_limit(Limit { per_second, burst }, start)
    }

    #[test]
    fn a_new_caller_gets_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let limiter = limiter(2.0, 3.0, t0);
        for _ in 0..3 {
            assert_eq!(limiter.acquire_at(&key(1), 1, t0), Ok(()));
        }
        let refused = limiter.acquire_at(&key(1), 1, t0).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(500));
        assert_eq!(refused.retry_after_secs(), 1);
        // Half a second later one token has come back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(limiter.acquire_at(&key(1), 1, t1), Ok(()));
        assert!(limiter.acquire_at(&key(1), 1, t1).is_err());
    }

    #[test]
    fn callers_have_their_own_buckets() {
        let t0 = Instant::now();
        let limiter = limiter(1.0, 1.0, t0);
        assert_eq!(limiter.acquire_at(&key(1), 1, t0), Ok(()));
        assert!(limiter.acquire_at(&key(1), 1, t0).is_err());
        assert_eq!(limiter.acquire_at(&key(2), 1, t0), Ok(()));
    }

    #[test]
    fn the_bucket_never_holds_more_than_the_burst() {
        let t0 = Instant::now();
        let limiter = limiter(10.0, 5.0, t0);
        assert_eq!(limiter.acquire_at(&key(1), 1, t0), Ok(()));
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(limiter.acquire_at(&key(1), 5, later), Ok(()));
        assert!(limiter.acquire_at(&key(1), 1, later).is_err());
    }

    #[test]
    fn a_request_larger_than_the_burst_needs_a_full_bucket_and_leaves_debt() {
        let t0 = Instant::now();
        let limiter = limiter(10.0, 10.0, t0);
        assert_eq!(limiter.acquire_at(&key(1), 1, t0), Ok(()));
        // Not a full bucket: wait for the one missing token.
        let refused = limiter.acquire_at(&key(1), 25, t0).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(limiter.acquire_at(&key(1), 25, t1), Ok(()));
        // 15 tokens of debt: the next event waits 1.6 s.
        let refused = limiter.acquire_at(&key(1), 1, t1).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(1600));
        assert_eq!(refused.retry_after_secs(), 2);
        assert_eq!(
            limiter.acquire_at(&key(1), 1, t1 + Duration::from_millis(1600)),
            Ok(())
        );
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        let at = |ms| Exhausted {
            retry_after: Duration::from_millis(ms),
        };
        assert_eq!(at(1).retry_after_secs(), 1);
        assert_eq!(at(1000).retry_after_secs(), 1);
        assert_eq!(at(1001).retry_after_secs(), 2);
        assert_eq!(at(0).retry_after_secs(), 1);
    }

    #[test]
    fn waiting_retry_after_is_always_enough() {
        let t0 = Instant::now();
        let limiter = limiter(3.0, 1.0, t0);
        let mut now = t0;
        for _ in 0..50 {
            match limiter.acquire_at(&key(1), 1, now) {
                Ok(()) => {}
                Err(e) => {
                    now += e.retry_after;
                    assert_eq!(limiter.acquire_at(&key(1), 1, now), Ok(()));
                }
            }
        }
    }

    #[test]
    fn idle_callers_are_forgotten_and_busy_ones_kept() {
        let t0 = Instant::now();
        let limiter = limiter(1.0, 2.0, t0);
        for n in 0..MIN_SWEEP_LEN as u32 {
            let caller = Caller::Peer(IpAddr::from(n.to_be_bytes()));
            limiter.acquire_at(&caller, 1, t0).unwrap();
        }
        assert_eq!(limiter.tracked_callers(), MIN_SWEEP_LEN);
        // 0.5 s later: nobody has refilled yet, so a size-triggered sweep keeps all.
        let t1 = t0 + Duration::from_millis(500);
        limiter.acquire_at(&key(1), 2, t1).unwrap();
        assert_eq!(limiter.tracked_callers(), MIN_SWEEP_LEN + 1);
        // A sweep interval on, the crowd has refilled and the time-triggered
        // sweep drops it.
        let t2 = t1 + SWEEP_INTERVAL;
        limiter.acquire_at(&key(1), 2, t2).unwrap();
        limiter.acquire_at(&key(2), 2, t2).unwrap();
        assert_eq!(limiter.tracked_callers(), 2);
        assert!(limiter.acquire_at(&key(1), 1, t2).is_err());
        // A sweep keeps a caller whose bucket has not refilled.
        limiter
            .acquire_at(&key(3), 1, t2 + SWEEP_INTERVAL - Duration::from_millis(1))
            .unwrap();
        limiter.acquire_at(&key(4), 1, t2 + SWEEP_INTERVAL).unwrap();
        assert_eq!(limiter.tracked_callers(), 2, "key 3 (half full) and key 4");
    }

    #[test]
    fn a_swept_caller_starts_again_with_a_full_burst() {
        let t0 = Instant::now();
        let limiter = limiter(1.0, 3.0, t0);
        limiter.acquire_at(&key(1), 3, t0).unwrap();
        let later = t0 + SWEEP_INTERVAL;
        limiter.acquire_at(&key(2), 1, later).unwrap();
        assert_eq!(limiter.tracked_callers(), 1);
        assert_eq!(limiter.acquire_at(&key(1), 3, later), Ok(()));
    }

    #[test]
    fn ipv6_peers_share_a_bucket_per_64_prefix_and_v4_mapped_is_v4() {
        let a: SocketAddr = "[2001:db8::1]:1".parse().unwrap();
        let b: SocketAddr = "[2001:db8::ffff:2]:2".parse().unwrap();
        let c: SocketAddr = "[2001:db8:0:1::1]:3".parse().unwrap();
        assert_eq!(Caller::peer(Some(a)), Caller::peer(Some(b)));
        assert_ne!(Caller::peer(Some(a)), Caller::peer(Some(c)));
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:1".parse().unwrap();
        assert_eq!(
            Caller::peer(Some(mapped)),
            Caller::Peer("192.0.2.1".parse().unwrap())
        );
        assert_eq!(Caller::peer(None), Caller::Unknown);
    }

    #[test]
    fn no_limiter_without_a_positive_rate() {
        assert!(RateLimiter::new(0.0, None).is_none());
        assert!(RateLimiter::new(f64::NAN, None).is_none());
        let limiter = RateLimiter::new(0.5, None).unwrap();
        assert_eq!(limiter.limit().burst, 1.0);
    }
}
