//! Event-time tumbling windows of one partition: what each group key has
//! accumulated in each open window, the partition's watermark, and which
//! windows changed or closed since the last emission.
//!
//! Partitions are aggregated independently: ingest keys events by their
//! group key (advertiser, pair, event key), so a group lives in one partition
//! and no two processors ever hold the same group.
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::Duration,
};

use tributary_common::trace_context::{MAX_LINKS, SpanContext};

/// Window geometry and time limits.
#[derive(Debug, Clone, Copy)]
pub struct WindowSpec {
    /// Window size in milliseconds.
    pub size_ms: i64,
    /// How far behind the watermark an event may be and still count.
    pub allowed_lateness_ms: i64,
    /// After this long without records, the watermark follows the wall clock,
    /// so windows close even when traffic stops.
    pub idle_advance_ms: i64,
}

impl WindowSpec {
    /// From durations.
    pub fn new(size: Duration, allowed_lateness: Duration, idle_advance: Duration) -> Self {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self {
            size_ms: ms(size).max(1),
            allowed_lateness_ms: ms(allowed_lateness),
            idle_advance_ms: ms(idle_advance),
        }
    }

    /// Start of the window holding `event_time_ms`.
    pub fn window_start(&self, event_time_ms: i64) -> i64 {
        event_time_ms.div_euclid(self.size_ms) * self.size_ms
    }
}

/// What one event adds to its group.
#[derive(Debug, Clone, PartialEq)]
pub enum Contribution {
    /// An ad click from this client address.
    Click {
        /// The client's IP address, for the distinct count.
        ip_address: String,
    },
    /// A price observation.
    Price {
        /// The price.
        price: f64,
    },
    /// An event that is only counted.
    Count,
}

/// The running totals of one group in one window.
#[derive(Debug, Clone, PartialEq)]
pub enum Totals {
    /// ad_click: count and the exact set of distinct client addresses.
    Clicks {
        /// Events.
        count: i64,
        /// Distinct `ip_address` values.
        ips: HashSet<String>,
    },
    /// price_tick: count, min, max, sum and the latest price by event time.
    Prices {
        /// Events.
        count: i64,
        /// Smallest price.
        min: f64,
        /// Largest price.
        max: f64,
        /// Sum of prices.
        sum: f64,
        /// Price of the latest event by event time (ties: the later record).
        last: f64,
        /// Event time of `last`.
        last_time_ms: i64,
    },
    /// Schema-driven types: the count.
    Count {
        /// Events.
        count: i64,
    },
}

impl Totals {
    fn new(first: &Contribution, event_time_ms: i64) -> Self {
        match first {
            Contribution::Click { ip_address } => Totals::Clicks {
                count: 1,
                ips: HashSet::from([ip_address.clone()]),
            },
            Contribution::Price { price } => Totals::Prices {
                count: 1,
                min: *price,
                max: *price,
                sum: *price,
                last: *price,
                last_time_ms: event_time_ms,
            },
            Contribution::Count => Totals::Count { count: 1 },
        }
    }

    fn add(&mut self, contribution: &Contribution, event_time_ms: i64) {
        match (self, contribution) {
            (Totals::Clicks { count, ips }, Contribution::Click { ip_address }) => {
                *count += 1;
                if !ips.contains(ip_address) {
                    ips.insert(ip_address.clone());
                }
            }
            (
                Totals::Prices {
                    count,
                    min,
                    max,
                    sum,
                    last,
                    last_time_ms,
                },
                Contribution::Price { price },
            ) => {
                *count += 1;
                *min = min.min(*price);
                *max = max.max(*price);
                *sum += price;
                if event_time_ms >= *last_time_ms {
                    *last = *price;
                    *last_time_ms = event_time_ms;
                }
            }
            (Totals::Count { count }, _)
            | (Totals::Clicks { count, .. }, _)
            | (Totals::Prices { count, .. }, _) => *count += 1,
        }
    }

    /// The number of events.
    pub fn count(&self) -> i64 {
        match self {
            Totals::Clicks { count, .. }
            | Totals::Prices { count, .. }
            | Totals::Count { count } => *count,
        }
    }

    /// Approximate bytes held, for the state-size metric.
    fn approx_bytes(&self) -> usize {
        match self {
            Totals::Clicks { ips, .. } => 48 + ips.iter().map(|ip| ip.len() + 32).sum::<usize>(),
            _ => 48,
        }
    }
}

struct Group {
    totals: Totals,
    /// Idempotency keys counted in this window: a retried event is counted once.
    seen: HashSet<String>,
    dirty: bool,
    /// Trace contexts of the events added since the last emission (at most
    /// [`MAX_LINKS`]), for the links of the span that emits the group.
    links: Vec<SpanContext>,
}

struct Window {
    groups: HashMap<String, Group>,
    /// The smallest offset that contributed; the partition may not be
    /// committed past it while the window is open.
    min_offset: i64,
}

/// One aggregate to emit.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The group key.
    pub group_key: String,
    /// Window start (ms).
    pub window_start_ms: i64,
    /// Window end, exclusive (ms).
    pub window_end_ms: i64,
    /// Full totals of the window so far.
    pub totals: Totals,
    /// The window has closed: these are its final totals.
    pub is_final: bool,
}

/// Why an event was not added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Its window closed already (later than the allowed lateness).
    Late {
        /// The partition's watermark when it arrived.
        watermark_ms: i64,
    },
    /// The same idempotency key was counted in this window already.
    Duplicate,
}

/// The open windows and watermark of one partition.
pub struct PartitionWindows {
    spec: WindowSpec,
    windows: BTreeMap<i64, Window>,
    max_event_time_ms: i64,
    /// Where idleness has moved the watermark (see [`PartitionWindows::advance_if_idle`]).
    idle_floor_ms: i64,
    last_record_wall_ms: i64,
    next_offset: i64,
}

impl PartitionWindows {
    /// No windows yet.
    pub fn new(spec: WindowSpec) -> Self {
        Self {
            spec,
            windows: BTreeMap::new(),
            max_event_time_ms: i64::MIN,
            idle_floor_ms: i64::MIN,
            last_record_wall_ms: i64::MIN,
            next_offset: 0,
        }
    }

    /// The watermark: the latest event time seen, or where idleness moved it
    /// (the wall clock minus the idle delay), whichever is later.
    pub fn watermark(&self) -> i64 {
        self.max_event_time_ms.max(self.idle_floor_ms)
    }

    /// Moves the watermark to the wall clock minus the idle delay when no
    /// record has come for that long and the partition is `caught_up` (the
    /// consumer has read up to the broker's high watermark), so windows close
    /// when traffic stops. A partition the processor has merely not got to
    /// (a backlog, a wait on another partition's record) is not idle: its
    /// waiting records must not turn late.
    pub fn advance_if_idle(&mut self, wall_ms: i64, caught_up: bool) {
        let quiet = wall_ms.saturating_sub(self.last_record_wall_ms) >= self.spec.idle_advance_ms;
        if caught_up && quiet && self.last_record_wall_ms != i64::MIN {
            self.idle_floor_ms = self.idle_floor_ms.max(wall_ms - self.spec.idle_advance_ms);
        }
    }

    /// The offset after the last record handled.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    fn closed(&self, window_start: i64, watermark: i64) -> bool {
        window_start + self.spec.size_ms + self.spec.allowed_lateness_ms <= watermark
    }

    /// Notes that the record at `offset` was handled (added, refused or dead-lettered).
    pub fn record_seen(&mut self, offset: i64, wall_ms: i64) {
        self.next_offset = self.next_offset.max(offset + 1);
        self.last_record_wall_ms = wall_ms;
    }

    /// Adds one event of `group_key` at `event_time_ms`, read at `offset`.
    pub fn add(
        &mut self,
        offset: i64,
        group_key: &str,
        event_time_ms: i64,
        idempotency_key: &str,
        contribution: &Contribution,
        wall_ms: i64,
    ) -> Result<(), Refused> {
        let watermark = self.watermark();
        self.record_seen(offset, wall_ms);
        let start = self.spec.window_start(event_time_ms);
        if self.closed(start, watermark) {
            return Err(Refused::Late {
                watermark_ms: watermark,
            });
        }
        self.max_event_time_ms = self.max_event_time_ms.max(event_time_ms);
        let window = self.windows.entry(start).or_insert_with(|| Window {
            groups: HashMap::new(),
            min_offset: offset,
        });
        window.min_offset = window.min_offset.min(offset);
        match window.groups.get_mut(group_key) {
            Some(group) => {
                if !idempotency_key.is_empty() && !group.seen.insert(idempotency_key.to_string()) {
                    return Err(Refused::Duplicate);
                }
                group.totals.add(contribution, event_time_ms);
                group.dirty = true;
            }
            None => {
                let seen = if idempotency_key.is_empty() {
                    HashSet::new()
                } else {
                    HashSet::from([idempotency_key.to_string()])
                };
                window.groups.insert(
                    group_key.to_string(),
                    Group {
                        totals: Totals::new(contribution, event_time_ms),
                        seen,
                        dirty: true,
                        links: Vec::new(),
                    },
                );
            }
        }
        Ok(())
    }

    /// Remembers `trace` as the context of an event just added to
    /// `group_key` at `event_time_ms`, for the emitting span's links; beyond
    /// [`MAX_LINKS`] per group and emission, contexts are dropped.
    pub fn link(&mut self, group_key: &str, event_time_ms: i64, trace: SpanContext) {
        let start = self.spec.window_start(event_time_ms);
        if let Some(group) = self
            .windows
            .get_mut(&start)
            .and_then(|w| w.groups.get_mut(group_key))
            && group.links.len() < MAX_LINKS
        {
            group.links.push(trace);
        }
    }

    /// The trace contexts remembered by [`PartitionWindows::link`] for the
    /// group of `update` since its last emission.
    pub fn links(&self, update: &Update) -> &[SpanContext] {
        self.windows
            .get(&update.window_start_ms)
            .and_then(|w| w.groups.get(&update.group_key))
            .map_or(&[], |g| g.links.as_slice())
    }

    /// What to emit now: every changed group of an open window, and every
    /// group of a window that has closed (final). Nothing changes until
    /// [`PartitionWindows::emitted`] confirms the broker has them.
    pub fn pending(&self) -> Vec<Update> {
        let watermark = self.watermark();
        let mut updates = Vec::new();
        for (&start, window) in &self.windows {
            let is_final = self.closed(start, watermark);
            for (key, group) in &window.groups {
                if group.dirty || is_final {
                    updates.push(Update {
                        group_key: key.clone(),
                        window_start_ms: start,
                        window_end_ms: start + self.spec.size_ms,
                        totals: group.totals.clone(),
                        is_final,
                    });
                }
            }
        }
        updates
    }

    /// The updates of [`PartitionWindows::pending`] are durable:
    /// clear the change marks and forget closed windows.
    pub fn emitted(&mut self) {
        let watermark = self.watermark();
        let (size, lateness) = (self.spec.size_ms, self.spec.allowed_lateness_ms);
        self.windows
            .retain(|&start, _| start + size + lateness > watermark);
        for window in self.windows.values_mut() {
            for group in window.groups.values_mut() {
                group.dirty = false;
                group.links.clear();
            }
        }
    }

    /// The offset to commit: every record before it is reflected in emitted
    /// aggregates of closed windows, or was dead-lettered; records of open
    /// windows are re-read after a restart so their totals are rebuilt.
    pub fn commit_offset(&self) -> i64 {
        self.windows
            .values()
            .map(|w| w.min_offset)
            .min()
            .unwrap_or(self.next_offset)
            .min(self.next_offset)
    }

    /// Open windows.
    pub fn open_windows(&self) -> usize {
        self.windows.len()
    }

    /// Approximate bytes of state.
    pub fn approx_bytes(&self) -> usize {
        self.windows
            .values()
            .flat_map(|w| w.groups.iter())
            .map(|(k, g)| {
                k.len()
                    + g.totals.approx_bytes()
                    + g.seen.iter().map(|s| s.len() + 32).sum::<usize>()
                    + g.links.len() * std::mem::size_of::<SpanContext>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn spec() -> WindowSpec {
        WindowSpec {
            size_ms: MIN,
            allowed_lateness_ms: 10_000,
            idle_advance_ms: 5_000,
        }
    }

    fn click(ip: &str) -> Contribution {
        Contribution::Click {
            ip_address: ip.into(),
        }
    }

    #[test]
    fn clicks_are_counted_with_distinct_addresses_per_window() {
        let mut w = PartitionWindows::new(spec());
        w.add(0, "adv", 1_000, "a", &click("1.1.1.1"), 0).unwrap();
        w.add(1, "adv", 2_000, "b", &click("1.1.1.1"), 0).unwrap();
        w.add(2, "adv", 3_000, "c", &click("2.2.2.2"), 0).unwrap();
        w.add(3, "adv", MIN + 1, "d", &click("3.3.3.3"), 0).unwrap();
        let mut updates = w.pending();
        updates.sort_by_key(|u| u.window_start_ms);
        assert_eq!(updates.len(), 2);
        let Totals::Clicks { count, ips } = &updates[0].totals else {
            panic!()
        };
        assert_eq!((*count, ips.len()), (3, 2));
        assert_eq!(
            (
                updates[0].window_start_ms,
                updates[0].window_end_ms,
                updates[0].is_final
            ),
            (0, MIN, false)
        );
    }

    #[test]
    fn prices_keep_min_max_sum_and_the_last_by_event_time() {
        let mut w = PartitionWindows::new(spec());
        for (offset, (t, p)) in [(5_000, 10.0), (1_000, 30.0), (3_000, 20.0)]
            .into_iter()
            .enumerate()
        {
            w.add(
                offset as i64,
                "ETH-USD/a",
                t,
                &offset.to_string(),
                &Contribution::Price { price: p },
                0,
            )
            .unwrap();
        }
        let updates = w.pending();
        assert_eq!(
            updates[0].totals,
            Totals::Prices {
                count: 3,
                min: 10.0,
                max: 30.0,
                sum: 60.0,
                last: 10.0,
                last_time_ms: 5_000
            }
        );
    }

    #[test]
    fn links_are_kept_per_group_until_emitted_and_capped() {
        use tributary_common::trace_context::span_context;
        let trace = |i: usize| {
            span_context(Some(&format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-{i:016x}-01"
            )))
            .unwrap()
        };
        let mut w = PartitionWindows::new(spec());
        for i in 1..=MAX_LINKS + 5 {
            w.add(
                i as i64,
                "k",
                1_000,
                &i.to_string(),
                &Contribution::Count,
                0,
            )
            .unwrap();
            w.link("k", 1_000, trace(i));
        }
        w.add(0, "other", 1_000, "x", &Contribution::Count, 0)
            .unwrap();
        let updates = w.pending();
        let k = updates.iter().find(|u| u.group_key == "k").unwrap();
        assert_eq!(w.links(k).len(), MAX_LINKS);
        assert_eq!(w.links(k)[0], trace(1));
        let other = updates.iter().find(|u| u.group_key == "other").unwrap();
        assert!(w.links(other).is_empty());
        w.emitted();
        w.add(999, "k", 1_000, "new", &Contribution::Count, 0)
            .unwrap();
        w.link("k", 1_000, trace(999));
        assert_eq!(w.links(&w.pending()[0]), [trace(999)]);
    }

    #[test]
    fn a_retried_event_is_counted_once() {
        let mut w = PartitionWindows::new(spec());
        w.add(0, "k", 1_000, "same", &Contribution::Count, 0)
            .unwrap();
        assert_eq!(
            w.add(1, "k", 1_000, "same", &Contribution::Count, 0),
            Err(Refused::Duplicate)
        );
        assert_eq!(w.pending()[0].totals.count(), 1);
    }

    #[test]
    fn an_event_behind_a_closed_window_is_late() {
        let mut w = PartitionWindows::new(spec());
        w.add(0, "k", 1_000, "a", &Contribution::Count, 0).unwrap();
        // Watermark reaches the end of window 0 plus the lateness: it closes.
        w.add(1, "k", MIN + 10_000, "b", &Contribution::Count, 0)
            .unwrap();
        assert_eq!(
            w.add(2, "k", 59_999, "c", &Contribution::Count, 0),
            Err(Refused::Late {
                watermark_ms: MIN + 10_000
            })
        );
        // Within the lateness it still counts.
        let mut w = PartitionWindows::new(spec());
        w.add(0, "k", MIN + 9_999, "a", &Contribution::Count, 0)
            .unwrap();
        assert_eq!(w.add(1, "k", 30_000, "b", &Contribution::Count, 0), Ok(()));
    }

    #[test]
    fn open_windows_emit_changes_and_closed_windows_emit_once_as_final() {
        let mut w = PartitionWindows::new(spec());
        w.add(0, "k", 1_000, "a", &Contribution::Count, 0).unwrap();
        assert_eq!(w.pending().len(), 1);
        w.emitted();
        assert_eq!(w.pending(), vec![], "nothing changed");
        w.add(1, "k", 2 * MIN + 10_000, "b", &Contribution::Count, 0)
            .unwrap();
        let updates = w.pending();
        let first = updates.iter().find(|u| u.window_start_ms == 0).unwrap();
        assert!(first.is_final);
        assert_eq!(first.totals.count(), 1);
        w.emitted();
        assert_eq!(w.open_windows(), 1);
    }

    #[test]
    fn an_idle_partition_closes_its_windows_by_the_wall_clock() {
        let mut w = PartitionWindows::new(spec());
        w.add(0, "k", 1_000, "a", &Contribution::Count, 1_000)
            .unwrap();
        w.advance_if_idle(4_000, true);
        assert!(!w.pending()[0].is_final);
        // 5 s idle: the watermark follows the wall clock minus 5 s.
        w.advance_if_idle(MIN + 10_000 + 5_000, true);
        assert!(w.pending()[0].is_final);
    }

    #[test]
    fn a_partition_with_unread_records_is_not_idle() {
        let mut w = PartitionWindows::new(spec());
        w.add(0, "k", 1_000, "a", &Contribution::Count, 1_000)
            .unwrap();
        // Nothing handled for 20 s, but the broker holds more records (the
        // processor waited on another partition): the watermark stays.
        let later = 1_000 + 20_000 + MIN;
        w.advance_if_idle(later, false);
        assert!(!w.pending()[0].is_final);
        // The waiting record, from 5 s after the first, still counts.
        w.add(1, "k", 6_000, "b", &Contribution::Count, later)
            .unwrap();
        assert_eq!(w.pending()[0].totals.count(), 2);
    }

    #[test]
    fn the_commit_offset_stays_at_the_oldest_record_of_an_open_window() {
        let mut w = PartitionWindows::new(spec());
        assert_eq!(w.commit_offset(), 0);
        w.add(7, "k", 1_000, "a", &Contribution::Count, 0).unwrap();
        w.add(8, "k", MIN + 1, "b", &Contribution::Count, 0)
            .unwrap();
        assert_eq!(w.commit_offset(), 7);
        w.add(9, "k", 2 * MIN + 5_000, "c", &Contribution::Count, 0)
            .unwrap();
        w.emitted();
        assert_eq!(
            w.commit_offset(),
            8,
            "window 0 closed and emitted; window 1 is open"
        );
    }
}
