//! The fault schedule: which part of the pipeline fails, when (as a share
//! of the events acknowledged so far, so a schedule means the same on a fast
//! and a slow machine) and for how long, drawn from a seed so a failing run
//! can be replayed with `--seed`.
use std::{fmt, time::Duration};

use rand::{Rng as _, SeedableRng as _, seq::SliceRandom as _};
use rand_chacha::ChaCha8Rng;

/// What a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `tributary-server` (ingest and query): SIGKILL, restart on its ports.
    Ingest,
    /// `tributary-processor`: SIGKILL, restart as the same static member.
    Processor,
    /// `tributary-sink`: SIGKILL, restart as the same static member.
    Sink,
    /// `tributary-registry`: SIGKILL, restart on its port.
    Registry,
    /// The broker: SIGKILL, restart on its port with its durable storage.
    Broker,
    /// Postgres: immediate-mode stop (no checkpoint, connections cut), start.
    Postgres,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Ingest => "ingest",
            Target::Processor => "processor",
            Target::Sink => "sink",
            Target::Registry => "registry",
            Target::Broker => "broker",
            Target::Postgres => "postgres",
        })
    }
}

/// One fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// When: once this share (0..1) of the events is acknowledged.
    pub at: f64,
    /// What fails.
    pub target: Target,
    /// How long it stays down before it is started again.
    pub down: Duration,
    /// Killed again this long after the restart, while the replacement is
    /// still starting and joining its group, then restarted after `down`.
    pub again_after: Option<Duration>,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at {:>5.1}% {:<9} down {:>5}ms",
            self.at * 100.0,
            self.target,
            self.down.as_millis()
        )?;
        if let Some(again) = self.again_after {
            write!(
                f,
                ", killed again {}ms after its restart",
                again.as_millis()
            )?;
        }
        Ok(())
    }
}

/// Every kind of fault once: each target, plus the processor and the sink
/// killed again while their replacements join.
fn every_kind() -> Vec<(Target, bool)> {
    vec![
        (Target::Ingest, false),
        (Target::Processor, false),
        (Target::Sink, false),
        (Target::Registry, false),
        (Target::Broker, false),
        (Target::Postgres, false),
        (Target::Processor, true),
        (Target::Sink, true),
    ]
}

/// The number of faults that covers every kind once.
pub fn kinds() -> usize {
    every_kind().len()
}

/// `count` faults from `seed` (at least one of every kind when `count`
/// allows), spread between 5 % and 95 % of the events, in order; `targets`
/// limits what may fail.
pub fn generate(seed: u64, count: usize, allowed: impl Fn(Target) -> bool) -> Vec<Fault> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let kinds: Vec<(Target, bool)> = every_kind()
        .into_iter()
        .filter(|(t, _)| allowed(*t))
        .collect();
    if kinds.is_empty() {
        return Vec::new();
    }
    let mut picked: Vec<(Target, bool)> = kinds
        .iter()
        .copied()
        .cycle()
        .take(kinds.len().min(count))
        .collect();
    while picked.len() < count {
        picked.push(kinds[rng.random_range(0..kinds.len())]);
    }
    picked.shuffle(&mut rng);
    let mut at: Vec<f64> = (0..count).map(|_| rng.random_range(0.05..0.95)).collect();
    at.sort_by(f64::total_cmp);
    at.into_iter()
        .zip(picked)
        .map(|(at, (target, again))| Fault {
            at,
            target,
            // Back within the consumers' session, as a supervisor would.
            down: Duration::from_millis(rng.random_range(300..2000)),
            again_after: again.then(|| Duration::from_millis(rng.random_range(500..2500))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule_with_every_kind_in_order() {
        let faults = generate(7, 8, |_| true);
        assert_eq!(faults, generate(7, 8, |_| true), "replayable");
        assert_ne!(faults, generate(8, 8, |_| true));
        assert!(faults.windows(2).all(|w| w[0].at <= w[1].at));
        for (target, again) in every_kind() {
            assert!(
                faults
                    .iter()
                    .any(|f| f.target == target && f.again_after.is_some() == again),
                "{target} (again: {again}) missing from {faults:?}"
            );
        }
        assert!(faults.iter().all(|f| (0.05..0.95).contains(&f.at)));
    }

    #[test]
    fn excluded_targets_never_fail_and_more_faults_repeat_kinds() {
        let faults = generate(1, 20, |t| t != Target::Broker);
        assert_eq!(faults.len(), 20);
        assert!(faults.iter().all(|f| f.target != Target::Broker));
    }
}
