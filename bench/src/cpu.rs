//! CPU time per operation: user + system time of each process that does a
//! stage's work, read from `/proc/<pid>/stat` before and after a run and
//! divided by the operations the run completed. A stage bound by the
//! broker is judged by these figures rather than by its rate.
use std::collections::BTreeMap;

/// The processes whose CPU a run is charged with, by name.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    processes: Vec<(String, u32)>,
}

/// CPU seconds of each metered process at the start of a run.
pub struct Reading {
    meter: Meter,
    at_start: Vec<Option<f64>>,
}

impl Meter {
    /// No process yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also meters process `pid` under `name` (nothing when `None`).
    pub fn with(mut self, name: &str, pid: Option<u32>) -> Self {
        if let Some(pid) = pid {
            self.processes.push((name.to_string(), pid));
        }
        self
    }

    /// Also meters the benchmark's own process (the client or the baseline).
    pub fn with_self(self, name: &str) -> Self {
        self.with(name, Some(std::process::id()))
    }

    /// Reads every process's CPU time now.
    pub fn start(&self) -> Reading {
        Reading {
            meter: self.clone(),
            at_start: self
                .processes
                .iter()
                .map(|(_, pid)| cpu_seconds(*pid))
                .collect(),
        }
    }
}

impl Reading {
    /// CPU microseconds per operation of each process since [`Meter::start`],
    /// over `operations` (empty when there were none).
    pub fn per_operation(&self, operations: u64) -> BTreeMap<String, f64> {
        if operations == 0 {
            return BTreeMap::new();
        }
        self.meter
            .processes
            .iter()
            .zip(&self.at_start)
            .filter_map(|((name, pid), start)| {
                let used = cpu_seconds(*pid)? - (*start)?;
                Some((name.clone(), used * 1e6 / operations as f64))
            })
            .collect()
    }
}

/// User + system CPU seconds of process `pid` so far (`None` once it has
/// exited or where `/proc` does not tell).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: the
    // fields after the last `)` start at field 3 (state); utime and stime
    // are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3)?.parse::<u64>().ok();
    let total = ticks(14)? + ticks(15)?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        ticks if ticks > 0 => ticks,
        _ => 100,
    };
    Some(total as f64 / per_second as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_loop_is_charged_to_this_process() {
        let reading = Meter::new().with_self("bench").start();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let per_op = reading.per_operation(1000);
        // ~300 ms of CPU over 1000 operations: ~300 µs each (tick-rounded).
        let bench = per_op["bench"];
        assert!((100.0..=600.0).contains(&bench), "{per_op:?}");
        assert!(
            Reading {
                meter: Meter::new(),
                at_start: vec![]
            }
            .per_operation(5)
            .is_empty()
        );
        assert!(cpu_seconds(u32::MAX).is_none());
    }
}
