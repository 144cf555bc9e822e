//! What keeping closed windows for the retention costs the processor's heap:
//! a day of one-minute windows (default 1,000 groups, one click each per
//! minute, each with its own idempotency key) through `PartitionWindows`,
//! emitting every minute, once with closed windows kept in the SQLite
//! closed-window store (what the processor does) and once kept on the heap
//! (the baseline: what retention in memory would cost). Each mode runs in a
//! child process of its own, so each peak RSS (VmHWM) is its own.
//!
//! ```sh
//! cargo run --release -p tributary-processor --example retention_memory -- [GROUPS] [HOURS]
//! ```
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use tributary_processor::{
    closed_store::ClosedStore,
    window::{ClosedWindows, Contribution, HeapClosedWindows, PartitionWindows, WindowSpec},
};

const MINUTE: i64 = 60_000;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 per second).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

/// Runs one mode and prints `peak_kib events cpu_seconds closed_rows`.
fn run(mode: &str, groups: usize, hours: i64) -> anyhow::Result<()> {
    let spec = WindowSpec::new(
        Duration::from_secs(60),
        Duration::from_secs(10),
        Duration::from_secs(10),
        Duration::from_secs(24 * 3600),
    );
    let store = ClosedStore::create(None)?;
    let closed: Box<dyn ClosedWindows> = match mode {
        "store" => Box::new(store.partition("bench", 0)),
        _ => Box::new(HeapClosedWindows::default()),
    };
    let mut windows = PartitionWindows::new(spec, closed);
    let base = 1_700_000_000_000_i64 / MINUTE * MINUTE;
    let mut offset = 0;
    for minute in 0..hours * 60 {
        for g in 0..groups {
            let at = base + minute * MINUTE + (g as i64 % 60) * 1000;
            windows.add(
                offset,
                &format!("adv-{g:05}"),
                at,
                at,
                &format!("{g}-{minute}-0123456789abcdef0123"),
                &Contribution::Click {
                    ip_address: format!("10.{}.{}.{}", g % 250, minute % 250, g % 7),
                },
                0,
            )?;
            offset += 1;
        }
        let _ = windows.pending();
        let closing = windows.closing();
        windows.emitted(&closing)?;
    }
    println!("{} {} {:.3}", peak_rss_kib(), offset, cpu_seconds());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, groups, hours] = args.as_slice()
        && (mode == "store" || mode == "heap")
    {
        return run(mode, groups.parse()?, hours.parse()?);
    }
    let groups: usize = args.first().map_or(Ok(1000), |a| a.parse())?;
    let hours: i64 = args.get(1).map_or(Ok(24), |a| a.parse())?;
    let me = std::env::current_exe()?;
    let mut results = BTreeMap::new();
    for mode in ["heap", "store"] {
        let started = Instant::now();
        let output = std::process::Command::new(&me)
            .args([mode, &groups.to_string(), &hours.to_string()])
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line = String::from_utf8(output.stdout)?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (peak, events, cpu): (u64, u64, f64) =
            (fields[0].parse()?, fields[1].parse()?, fields[2].parse()?);
        results.insert(mode, (peak, events, cpu, started.elapsed()));
    }
    println!("{groups} groups x {hours} h of one-minute windows, 24 h retention");
    println!("| closed windows kept | peak RSS (MiB) | CPU per event (us) | wall (s) |");
    println!("|---|---|---|---|");
    for (mode, label) in [
        ("heap", "on the heap (baseline)"),
        ("store", "in the SQLite store"),
    ] {
        let (peak, events, cpu, wall) = results[mode];
        println!(
            "| {label} | {:.1} | {:.2} | {:.1} |",
            peak as f64 / 1024.0,
            cpu * 1e6 / events.max(1) as f64,
            wall.as_secs_f64()
        );
    }
    let (heap, store) = (results["heap"].0 as f64, results["store"].0 as f64);
    println!("peak RSS, store / heap: {:.3}", store / heap.max(1.0));
    Ok(())
}
