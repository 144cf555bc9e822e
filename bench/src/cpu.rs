//! CPU time per operation: user + system time of each process that does a
//! stage's work, read from `/proc/<pid>/stat` before and after a run and
//! divided by the operations the run completed. A stage bound by the
//! broker is judged by these figures rather than by its rate.
//!
//! Beside it, the time each process's threads spent ready to run but waiting
//! for a CPU (the kernel's run-queue delay, `/proc/<pid>/task/*/schedstat`),
//! and the machine's steal time (`/proc/stat`: time the hypervisor gave this
//! machine's CPUs to others): where latency goes when the cores are busy.
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
    waited_at_start: Vec<Option<f64>>,
    steal_at_start: Option<f64>,
}

/// The key of the machine's steal time in [`Reading::waited_per_operation`].
pub const STEAL: &str = "steal (machine)";

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
            waited_at_start: self
                .processes
                .iter()
                .map(|(_, pid)| waited_seconds(*pid))
                .collect(),
            steal_at_start: steal_seconds(),
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

    /// Microseconds per operation since [`Meter::start`], over `operations`,
    /// that each process's threads spent ready to run but waiting for a CPU,
    /// and under [`STEAL`] the machine's steal time (empty when there were no
    /// operations). A thread that ended during the run takes its waits with
    /// it, so a process's figure is at least what it shows.
    pub fn waited_per_operation(&self, operations: u64) -> BTreeMap<String, f64> {
        if operations == 0 {
            return BTreeMap::new();
        }
        let per_op = |seconds: f64| seconds * 1e6 / operations as f64;
        let mut waited: BTreeMap<String, f64> = self
            .meter
            .processes
            .iter()
            .zip(&self.waited_at_start)
            .filter_map(|((name, pid), start)| {
                Some((name.clone(), per_op(waited_seconds(*pid)? - (*start)?)))
            })
            .collect();
        if let (Some(now), Some(start)) = (steal_seconds(), self.steal_at_start) {
            waited.insert(STEAL.to_string(), per_op(now - start));
        }
        waited
    }
}

/// Seconds the threads of process `pid` now running have spent ready to run
/// but waiting for a CPU (`None` once it has exited or where the kernel
/// keeps no scheduler statistics).
pub fn waited_seconds(pid: u32) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut nanos = 0u64;
    for task in tasks.flatten() {
        // "time on a CPU, time waiting for one (ns), timeslices"; a thread
        // that ended since the listing is skipped.
        if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
            nanos += stat.split_whitespace().nth(1)?.parse::<u64>().ok()?;
        }
    }
    Some(nanos as f64 / 1e9)
}

/// The machine's steal time so far, seconds summed over its CPUs (`None`
/// where `/proc/stat` does not tell).
pub fn steal_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    // "cpu user nice system idle iowait irq softirq steal ..." in clock ticks.
    let ticks: u64 = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .nth(7)?
        .parse()
        .ok()?;
    Some(ticks as f64 / clock_ticks_per_second() as f64)
}

fn clock_ticks_per_second() -> i64 {
    // SAFETY: sysconf only reads a configuration value.
    match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        ticks if ticks > 0 => ticks,
        _ => 100,
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
    Some(total as f64 / clock_ticks_per_second() as f64)
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
                at_start: vec![],
                waited_at_start: vec![],
                steal_at_start: None,
            }
            .per_operation(5)
            .is_empty()
        );
        assert!(cpu_seconds(u32::MAX).is_none());
    }

    #[test]
    fn two_threads_sharing_one_cpu_wait_for_it() {
        let reading = Meter::new().with_self("bench").start();
        // Two threads on the same CPU, each busy for 300 ms of wall time:
        // each is ready to run the whole time and runs about half of it.
        let (done, wait_for_reading) = std::sync::mpsc::channel::<()>();
        let wait_for_reading = std::sync::Arc::new(std::sync::Mutex::new(wait_for_reading));
        let (busy_done, all_busy_done) = std::sync::mpsc::channel();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (busy_done, wait_for_reading) = (busy_done.clone(), wait_for_reading.clone());
                std::thread::spawn(move || {
                    // SAFETY: a zeroed cpu_set_t is an empty set; this pins
                    // only the calling thread.
                    unsafe {
                        let mut set: libc::cpu_set_t = std::mem::zeroed();
                        libc::CPU_SET(0, &mut set);
                        assert_eq!(
                            libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set),
                            0
                        );
                    }
                    let started = std::time::Instant::now();
                    let mut x = 0u64;
                    while started.elapsed() < std::time::Duration::from_millis(300) {
                        x = x.wrapping_mul(31).wrapping_add(7);
                    }
                    std::hint::black_box(x);
                    busy_done.send(()).unwrap();
                    // Alive until read: an ended thread takes its waits along.
                    let _ = wait_for_reading.lock().unwrap().recv();
                })
            })
            .collect();
        all_busy_done.recv().unwrap();
        all_busy_done.recv().unwrap();
        let waited = reading.waited_per_operation(1000);
        drop(done);
        threads.into_iter().for_each(|t| t.join().unwrap());
        // About 300 ms of waiting between them over 1000 operations: ~300 µs
        // each; more when other work shares the CPU.
        assert!(waited["bench"] >= 100.0, "{waited:?}");
        assert!(waited.contains_key(STEAL), "{waited:?}");
        assert!(reading.waited_per_operation(0).is_empty());
        assert!(waited_seconds(u32::MAX).is_none());
    }
}
