//! Event-time tumbling windows of one partition: what each group key has
//! accumulated in each open window, the partition's watermark, which
//! windows changed or closed since the last emission, and the corrections
//! late events make to windows that have closed.
//!
//! Partitions are aggregated independently: ingest keys events by their
//! group key (advertiser, pair, event key), so a group lives in one partition
//! and no two processors ever hold the same group.
//!
//! A window is open until the watermark passes its end by the allowed
//! lateness; it is then emitted as final and its groups' state leaves the
//! heap for the [`ClosedWindows`] store (on disk, backed by a changelog
//! topic). An event for a closed window still counts for as long as ingest
//! accepts its event time (the retention, `--max-event-time-skew`): the
//! group's state is loaded from the store, the event added, and a corrected
//! final aggregate emitted. Whether an event counts therefore does not
//! depend on its partition's watermark.
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    hash::BuildHasher,
    sync::LazyLock,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tributary_common::trace_context::{MAX_LINKS, SpanContext};

/// A set of keys hashed by [`KeyHasher`]. Serialised as the same JSON array
/// as a `HashSet<String>`.
pub type KeySet = HashSet<String, KeyHasher>;

/// The hasher of the key sets and of the groups: foldhash, several times
/// cheaper than the standard SipHash for short strings, seeded from the
/// operating system's randomness (through std's `RandomState`) once per
/// process and anew per set, so clients cannot choose keys that collide.
#[derive(Clone, Debug)]
pub struct KeyHasher(foldhash::fast::SeedableRandomState);

static SHARED_SEED: LazyLock<foldhash::SharedSeed> =
    LazyLock::new(|| foldhash::SharedSeed::from_u64(std::hash::RandomState::new().hash_one(0_u8)));

impl Default for KeyHasher {
    fn default() -> Self {
        let per_set = std::hash::RandomState::new().hash_one(1_u8);
        Self(foldhash::fast::SeedableRandomState::with_seed(
            per_set,
            &SHARED_SEED,
        ))
    }
}

impl BuildHasher for KeyHasher {
    type Hasher = foldhash::fast::FoldHasher;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

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
    /// How far before the time ingest accepted it (the `tributary.accepted_at`
    /// header; another producer's record timestamp) an
    /// event time may be and still count: ingest's `--max-event-time-skew`.
    pub retention_ms: i64,
}

impl WindowSpec {
    /// From durations.
    pub fn new(
        size: Duration,
        allowed_lateness: Duration,
        idle_advance: Duration,
        retention: Duration,
    ) -> Self {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
        Self {
            size_ms: ms(size).max(1),
            allowed_lateness_ms: ms(allowed_lateness),
            idle_advance_ms: ms(idle_advance),
            retention_ms: ms(retention),
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
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

/// The state of one group in one closed window, as the [`ClosedWindows`]
/// store and the changelog keep it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedGroup {
    /// The totals.
    pub totals: Totals,
    /// Idempotency keys counted: a retried event is counted once, even when
    /// its first copy was counted before the window closed.
    pub seen: KeySet,
    /// Every record of the partition before this offset that belongs to the
    /// group and window is in `totals`, so records re-read after a restart
    /// from an older committed offset are not counted twice.
    pub through_offset: i64,
    /// How many corrected finals followed the first one.
    #[serde(default)]
    pub revision: u32,
}

/// A group's state that is final as of an emission, to be kept off the heap.
#[derive(Debug, Clone, PartialEq)]
pub struct Closing {
    /// The group key.
    pub group_key: String,
    /// Window start (ms).
    pub window_start_ms: i64,
    /// Window end, exclusive (ms).
    pub window_end_ms: i64,
    /// The state.
    pub state: ClosedGroup,
}

/// Where one partition's closed windows are kept, off the heap.
pub trait ClosedWindows: Send {
    /// The state of `group_key` in the closed window starting at `window_start_ms`.
    fn get(&self, group_key: &str, window_start_ms: i64) -> anyhow::Result<Option<ClosedGroup>>;
    /// Keeps `groups`, replacing earlier states of the same group and window.
    fn put(&mut self, groups: &[Closing]) -> anyhow::Result<()>;
    /// Forgets every window that ends at or before `window_end_ms`.
    fn forget_until(&mut self, window_end_ms: i64) -> anyhow::Result<()>;
}

/// Closed windows kept on the heap: the unit tests' store, and the baseline
/// of the retention measurement (`examples/retention_memory.rs`). Clones
/// share the windows, so a test can "restart" on them.
#[derive(Clone, Default)]
pub struct HeapClosedWindows(std::sync::Arc<std::sync::Mutex<HeapKept>>);

/// (group key, window start) → (window end, state).
type HeapKept = BTreeMap<(String, i64), (i64, ClosedGroup)>;

impl HeapClosedWindows {
    /// The window starts kept, by group key.
    pub fn kept(&self) -> Vec<(String, i64)> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HeapKept> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ClosedWindows for HeapClosedWindows {
    fn get(&self, group_key: &str, start: i64) -> anyhow::Result<Option<ClosedGroup>> {
        Ok(self
            .lock()
            .get(&(group_key.to_string(), start))
            .map(|(_, s)| s.clone()))
    }

    fn put(&mut self, groups: &[Closing]) -> anyhow::Result<()> {
        let mut kept = self.lock();
        for g in groups {
            kept.insert(
                (g.group_key.clone(), g.window_start_ms),
                (g.window_end_ms, g.state.clone()),
            );
        }
        Ok(())
    }

    fn forget_until(&mut self, window_end_ms: i64) -> anyhow::Result<()> {
        self.lock().retain(|_, (end, _)| *end > window_end_ms);
        Ok(())
    }
}

/// How much later than a record's neighbours its timestamp may be: closed
/// windows are kept this much longer than the retention, so an event that
/// ingest accepted still finds its window's state.
const RECORD_TIME_DISORDER_MS: i64 = 10 * 60_000;

struct Group {
    totals: Totals,
    /// Idempotency keys counted in this window: a retried event is counted once.
    seen: KeySet,
    dirty: bool,
    /// Trace contexts of the events added since the last emission (at most
    /// [`MAX_LINKS`]), for the links of the span that emits the group.
    links: Vec<SpanContext>,
    /// See [`ClosedGroup::revision`].
    revision: u32,
}

impl Group {
    /// A group whose first event is `contribution`; its key set is sized
    /// for `expected_keys`.
    fn new(
        contribution: &Contribution,
        event_time_ms: i64,
        idempotency_key: &str,
        expected_keys: usize,
    ) -> Self {
        let mut seen = KeySet::default();
        if !idempotency_key.is_empty() {
            seen.reserve(expected_keys.max(1));
            seen.insert(idempotency_key.to_string());
        }
        Self {
            totals: Totals::new(contribution, event_time_ms),
            seen,
            dirty: true,
            links: Vec::new(),
            revision: 0,
        }
    }

    /// A closed group whose final has been emitted, about to be corrected.
    fn correcting(state: ClosedGroup) -> Self {
        Self {
            totals: state.totals,
            seen: state.seen,
            dirty: true,
            links: Vec::new(),
            revision: state.revision + 1,
        }
    }

    /// Adds the event unless its idempotency key was counted already
    /// (then `false`).
    fn add(&mut self, contribution: &Contribution, event_time_ms: i64, key: &str) -> bool {
        if !key.is_empty() && !self.seen.insert(key.to_string()) {
            return false;
        }
        self.totals.add(contribution, event_time_ms);
        self.dirty = true;
        true
    }

    fn approx_bytes(&self) -> usize {
        self.totals.approx_bytes()
            + self.seen.iter().map(|s| s.len() + 32).sum::<usize>()
            + self.links.len() * std::mem::size_of::<SpanContext>()
    }
}

struct Window {
    groups: HashMap<String, Group, KeyHasher>,
    /// The smallest offset that contributed; the partition may not be
    /// committed past it while the window is open.
    min_offset: i64,
}

/// A closed window's group that late events changed since the last emission.
struct Correction {
    group: Group,
    /// The smallest offset that changed it; not committed past until emitted.
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
    /// The window has closed: these are its final totals (corrected ones
    /// when late events changed a window already emitted as final).
    pub is_final: bool,
    /// 0, or how many times late events have corrected the final totals.
    pub revision: u32,
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Added to a window that has not been emitted as final yet.
    Added,
    /// Added to a closed window: a corrected final aggregate follows.
    Corrected,
    /// The same idempotency key was counted in this window already.
    Duplicate,
    /// Already in the closed window's kept state: a record re-read after a
    /// restart.
    Replayed,
    /// Its event time is before `horizon_ms`: more than the retention before
    /// when it was accepted (ingest refuses such events), or in a window
    /// whose state has been forgotten.
    Expired {
        /// The earliest event time that still counts.
        horizon_ms: i64,
    },
}

/// The windows, watermark and closed-window corrections of one partition.
pub struct PartitionWindows {
    spec: WindowSpec,
    windows: BTreeMap<i64, Window>,
    corrections: HashMap<(i64, String), Correction>,
    closed: Box<dyn ClosedWindows>,
    max_event_time_ms: i64,
    /// Where idleness has moved the watermark (see [`PartitionWindows::advance_if_idle`]).
    idle_floor_ms: i64,
    last_record_wall_ms: i64,
    next_offset: i64,
    /// The latest acceptance time of a record (see [`WindowSpec::retention_ms`]).
    max_record_time_ms: i64,
    /// Closed windows ending at or before this have been forgotten.
    forgotten_until_ms: i64,
}

impl PartitionWindows {
    /// No windows yet; closed windows are kept in `closed`.
    pub fn new(spec: WindowSpec, closed: Box<dyn ClosedWindows>) -> Self {
        Self {
            spec,
            windows: BTreeMap::new(),
            corrections: HashMap::new(),
            closed,
            max_event_time_ms: i64::MIN,
            idle_floor_ms: i64::MIN,
            last_record_wall_ms: i64::MIN,
            next_offset: 0,
            max_record_time_ms: i64::MIN,
            forgotten_until_ms: i64::MIN,
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
    /// (a backlog, a wait on another partition's record) is not idle.
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

    /// Adds one event of `group_key` at `event_time_ms`, read at `offset`
    /// from a record stamped `record_time_ms`: to its open window, or as a
    /// correction to its closed window. Fails only when the closed-window
    /// store does.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        offset: i64,
        group_key: &str,
        event_time_ms: i64,
        record_time_ms: i64,
        idempotency_key: &str,
        contribution: &Contribution,
        wall_ms: i64,
    ) -> anyhow::Result<Outcome> {
        let watermark = self.watermark();
        self.record_seen(offset, wall_ms);
        self.max_record_time_ms = self.max_record_time_ms.max(record_time_ms);
        let horizon = record_time_ms.saturating_sub(self.spec.retention_ms);
        if event_time_ms < horizon {
            return Ok(Outcome::Expired {
                horizon_ms: horizon,
            });
        }
        let start = self.spec.window_start(event_time_ms);
        self.max_event_time_ms = self.max_event_time_ms.max(event_time_ms);
        let added = |added: bool, outcome: Outcome| {
            if added { outcome } else { Outcome::Duplicate }
        };
        if let Some(window) = self.windows.get_mut(&start)
            && let Some(group) = window.groups.get_mut(group_key)
        {
            window.min_offset = window.min_offset.min(offset);
            let fresh = group.add(contribution, event_time_ms, idempotency_key);
            return Ok(added(fresh, Outcome::Added));
        }
        let key = (start, group_key.to_string());
        if let Some(correction) = self.corrections.get_mut(&key) {
            correction.min_offset = correction.min_offset.min(offset);
            let fresh = correction
                .group
                .add(contribution, event_time_ms, idempotency_key);
            return Ok(added(fresh, Outcome::Corrected));
        }
        if let Some(state) = self.closed.get(group_key, start)? {
            if offset < state.through_offset {
                return Ok(Outcome::Replayed);
            }
            let mut group = Group::correcting(state);
            if !group.add(contribution, event_time_ms, idempotency_key) {
                return Ok(Outcome::Duplicate);
            }
            self.corrections.insert(
                key,
                Correction {
                    group,
                    min_offset: offset,
                },
            );
            return Ok(Outcome::Corrected);
        }
        if self.closed(start, watermark) && !self.windows.contains_key(&start) {
            if start + self.spec.size_ms <= self.forgotten_until_ms {
                return Ok(Outcome::Expired {
                    horizon_ms: self.forgotten_until_ms,
                });
            }
            // A closed window this group had no events in: its first final.
            self.corrections.insert(
                key,
                Correction {
                    group: Group::new(contribution, event_time_ms, idempotency_key, 0),
                    min_offset: offset,
                },
            );
            return Ok(Outcome::Corrected);
        }
        // The group's keys in the window before are the best guess of how
        // many this one will hold: sized once, its key set is not rebuilt
        // (and its memory not cleared anew) each time it doubles.
        let expected_keys = start
            .checked_sub(self.spec.size_ms)
            .and_then(|before| self.windows.get(&before))
            .and_then(|w| w.groups.get(group_key))
            .map_or(0, |g| g.seen.len());
        let window = self.windows.entry(start).or_insert_with(|| Window {
            groups: HashMap::default(),
            min_offset: offset,
        });
        window.min_offset = window.min_offset.min(offset);
        window.groups.insert(
            group_key.to_string(),
            Group::new(contribution, event_time_ms, idempotency_key, expected_keys),
        );
        Ok(Outcome::Added)
    }

    fn group(&self, window_start_ms: i64, group_key: &str) -> Option<&Group> {
        self.windows
            .get(&window_start_ms)
            .and_then(|w| w.groups.get(group_key))
            .or_else(|| {
                self.corrections
                    .get(&(window_start_ms, group_key.to_string()))
                    .map(|c| &c.group)
            })
    }

    /// Remembers `trace` as the context of an event just added to
    /// `group_key` at `event_time_ms`, for the emitting span's links; beyond
    /// [`MAX_LINKS`] per group and emission, contexts are dropped.
    pub fn link(&mut self, group_key: &str, event_time_ms: i64, trace: SpanContext) {
        let start = self.spec.window_start(event_time_ms);
        let group = match self
            .windows
            .get_mut(&start)
            .and_then(|w| w.groups.get_mut(group_key))
        {
            Some(group) => Some(group),
            None => self
                .corrections
                .get_mut(&(start, group_key.to_string()))
                .map(|c| &mut c.group),
        };
        if let Some(group) = group
            && group.links.len() < MAX_LINKS
        {
            group.links.push(trace);
        }
    }

    /// The trace contexts remembered by [`PartitionWindows::link`] for the
    /// group of `update` since its last emission.
    pub fn links(&self, update: &Update) -> &[SpanContext] {
        self.group(update.window_start_ms, &update.group_key)
            .map_or(&[], |g| g.links.as_slice())
    }

    /// What to emit now: every changed group of an open window, every group
    /// of a window that has closed (final), and every corrected group of a
    /// closed window (final). Nothing changes until
    /// [`PartitionWindows::emitted`] confirms the broker has them.
    pub fn pending(&self) -> Vec<Update> {
        let watermark = self.watermark();
        let mut updates = Vec::new();
        for (&start, window) in &self.windows {
            let is_final = self.closed(start, watermark);
            for (key, group) in &window.groups {
                if group.dirty || is_final {
                    updates.push(self.update(start, key, group, is_final));
                }
            }
        }
        for ((start, key), correction) in &self.corrections {
            updates.push(self.update(*start, key, &correction.group, true));
        }
        updates
    }

    fn update(&self, start: i64, key: &str, group: &Group, is_final: bool) -> Update {
        Update {
            group_key: key.to_string(),
            window_start_ms: start,
            window_end_ms: start + self.spec.size_ms,
            totals: group.totals.clone(),
            is_final,
            revision: group.revision,
        }
    }

    /// The state of every group whose final (or corrected) aggregate is in
    /// [`PartitionWindows::pending`]: what the changelog and the
    /// closed-window store keep once the broker has it.
    pub fn closing(&self) -> Vec<Closing> {
        let watermark = self.watermark();
        let closing = |start: i64, key: &str, group: &Group| Closing {
            group_key: key.to_string(),
            window_start_ms: start,
            window_end_ms: start + self.spec.size_ms,
            state: ClosedGroup {
                totals: group.totals.clone(),
                seen: group.seen.clone(),
                through_offset: self.next_offset,
                revision: group.revision,
            },
        };
        let mut states = Vec::new();
        for (&start, window) in &self.windows {
            if self.closed(start, watermark) {
                states.extend(window.groups.iter().map(|(k, g)| closing(start, k, g)));
            }
        }
        for ((start, key), correction) in &self.corrections {
            states.push(closing(*start, key, &correction.group));
        }
        states
    }

    /// The updates of [`PartitionWindows::pending`] and the states of
    /// [`PartitionWindows::closing`] are durable: keep `closing` in the
    /// closed-window store, forget closed windows from the heap, clear the
    /// change marks, and forget closed windows past the retention.
    pub fn emitted(&mut self, closing: &[Closing]) -> anyhow::Result<()> {
        self.closed.put(closing)?;
        self.corrections.clear();
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
        let forget_until = self
            .max_record_time_ms
            .saturating_sub(self.spec.retention_ms)
            .saturating_sub(RECORD_TIME_DISORDER_MS);
        if forget_until > self.forgotten_until_ms {
            self.closed.forget_until(forget_until)?;
            self.forgotten_until_ms = forget_until;
        }
        Ok(())
    }

    /// The offset to commit: every record before it is reflected in emitted
    /// aggregates of closed windows (kept in the changelog), or was
    /// dead-lettered; records of open windows and of unemitted corrections
    /// are re-read after a restart so their totals are rebuilt.
    pub fn commit_offset(&self) -> i64 {
        self.windows
            .values()
            .map(|w| w.min_offset)
            .chain(self.corrections.values().map(|c| c.min_offset))
            .min()
            .unwrap_or(self.next_offset)
            .min(self.next_offset)
    }

    /// Open windows (and closed ones not yet emitted).
    pub fn open_windows(&self) -> usize {
        self.windows.len()
    }

    /// Approximate bytes of state on the heap.
    pub fn approx_bytes(&self) -> usize {
        let open: usize = self
            .windows
            .values()
            .flat_map(|w| w.groups.iter())
            .map(|(k, g)| k.len() + g.approx_bytes())
            .sum();
        let corrections: usize = self
            .corrections
            .iter()
            .map(|((_, k), c)| k.len() + c.group.approx_bytes())
            .sum();
        open + corrections
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
            retention_ms: 60 * MIN,
        }
    }

    type Memory = HeapClosedWindows;

    fn windows() -> PartitionWindows {
        PartitionWindows::new(spec(), Box::new(Memory::default()))
    }

    impl PartitionWindows {
        /// Adds an event whose record was stamped at its event time.
        fn add_at(
            &mut self,
            offset: i64,
            key: &str,
            t: i64,
            idempotency_key: &str,
            c: &Contribution,
            wall: i64,
        ) -> Outcome {
            self.add(offset, key, t, t, idempotency_key, c, wall)
                .unwrap()
        }

        /// Emits what is pending.
        fn emit(&mut self) -> Vec<Update> {
            let updates = self.pending();
            let closing = self.closing();
            self.emitted(&closing).unwrap();
            updates
        }
    }

    fn click(ip: &str) -> Contribution {
        Contribution::Click {
            ip_address: ip.into(),
        }
    }

    #[test]
    fn clicks_are_counted_with_distinct_addresses_per_window() {
        let mut w = windows();
        w.add_at(0, "adv", 1_000, "a", &click("1.1.1.1"), 0);
        w.add_at(1, "adv", 2_000, "b", &click("1.1.1.1"), 0);
        w.add_at(2, "adv", 3_000, "c", &click("2.2.2.2"), 0);
        w.add_at(3, "adv", MIN + 1, "d", &click("3.3.3.3"), 0);
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
        let mut w = windows();
        for (offset, (t, p)) in [(5_000, 10.0), (1_000, 30.0), (3_000, 20.0)]
            .into_iter()
            .enumerate()
        {
            w.add_at(
                offset as i64,
                "ETH-USD/a",
                t,
                &offset.to_string(),
                &Contribution::Price { price: p },
                0,
            );
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
        let mut w = windows();
        for i in 1..=MAX_LINKS + 5 {
            w.add_at(
                i as i64,
                "k",
                1_000,
                &i.to_string(),
                &Contribution::Count,
                0,
            );
            w.link("k", 1_000, trace(i));
        }
        w.add_at(0, "other", 1_000, "x", &Contribution::Count, 0);
        let updates = w.pending();
        let k = updates.iter().find(|u| u.group_key == "k").unwrap();
        assert_eq!(w.links(k).len(), MAX_LINKS);
        assert_eq!(w.links(k)[0], trace(1));
        let other = updates.iter().find(|u| u.group_key == "other").unwrap();
        assert!(w.links(other).is_empty());
        w.emit();
        w.add_at(999, "k", 1_000, "new", &Contribution::Count, 0);
        w.link("k", 1_000, trace(999));
        assert_eq!(w.links(&w.pending()[0]), [trace(999)]);
    }

    #[test]
    fn closed_state_is_stored_in_the_format_of_a_std_hash_set() {
        let std_set = HashSet::from(["k1".to_string(), "k2".to_string()]);
        let state = ClosedGroup {
            totals: Totals::Clicks {
                count: 2,
                ips: HashSet::from(["10.0.0.1".to_string()]),
            },
            seen: KeySet::from_iter(std_set.iter().cloned()),
            through_offset: 7,
            revision: 1,
        };
        let json: serde_json::Value = serde_json::to_value(&state).unwrap();
        let mut seen: Vec<String> = serde_json::from_value(json["seen"].clone()).unwrap();
        seen.sort();
        assert_eq!(seen, ["k1", "k2"]);
        // What an earlier processor wrote, with std's `HashSet<String>`.
        let earlier = serde_json::json!({
            "totals": {"kind": "clicks", "count": 2, "ips": ["10.0.0.1"]},
            "seen": std_set,
            "through_offset": 7,
            "revision": 1,
        });
        assert_eq!(
            serde_json::from_value::<ClosedGroup>(earlier).unwrap(),
            state
        );
    }

    #[test]
    fn a_retried_event_is_counted_once() {
        let mut w = windows();
        w.add_at(0, "k", 1_000, "same", &Contribution::Count, 0);
        assert_eq!(
            w.add_at(1, "k", 1_000, "same", &Contribution::Count, 0),
            Outcome::Duplicate
        );
        assert_eq!(w.pending()[0].totals.count(), 1);
    }

    #[test]
    fn an_event_behind_a_closed_window_corrects_its_final_totals() {
        let mut w = windows();
        w.add_at(0, "k", 1_000, "a", &click("1.1.1.1"), 0);
        // Watermark reaches the end of window 0 plus the lateness: it closes.
        w.add_at(1, "k", MIN + 10_000, "b", &click("1.1.1.1"), 0);
        let first = w.emit();
        let final0 = first.iter().find(|u| u.window_start_ms == 0).unwrap();
        assert!(final0.is_final);
        assert_eq!(w.open_windows(), 1, "window 0 left the heap");
        assert_eq!(
            w.add_at(2, "k", 59_999, "c", &click("2.2.2.2"), 0),
            Outcome::Corrected
        );
        assert_eq!(
            w.commit_offset(),
            1,
            "the correction holds the commit until it is emitted"
        );
        let corrected = w.emit();
        let Totals::Clicks { count, ips } = &corrected[0].totals else {
            panic!("{corrected:?}")
        };
        assert_eq!((corrected.len(), *count, ips.len()), (1, 2, 2));
        assert!(corrected[0].is_final);
        assert_eq!((final0.revision, corrected[0].revision), (0, 1));
        // The retry of a counted event, arriving after the close, is not counted.
        assert_eq!(
            w.add_at(3, "k", 2_000, "a", &click("1.1.1.1"), 0),
            Outcome::Duplicate
        );
        assert_eq!(w.emit(), vec![]);
        // Within the lateness an event joins its open window.
        let mut w = windows();
        w.add_at(0, "k", MIN + 9_999, "a", &Contribution::Count, 0);
        assert_eq!(
            w.add_at(1, "k", 30_000, "b", &Contribution::Count, 0),
            Outcome::Added
        );
    }

    #[test]
    fn a_closed_window_without_the_group_gets_its_first_final() {
        let mut w = windows();
        w.add_at(0, "k", 3 * MIN, "a", &Contribution::Count, 0);
        assert_eq!(
            w.add_at(1, "other", 1_000, "b", &Contribution::Count, 0),
            Outcome::Corrected
        );
        let updates = w.emit();
        let other = updates.iter().find(|u| u.group_key == "other").unwrap();
        assert!(other.is_final);
        assert_eq!(other.totals.count(), 1);
    }

    #[test]
    fn after_a_restart_records_already_in_a_closed_window_are_not_counted_again() {
        let kept = Memory::default();
        let mut w = PartitionWindows::new(spec(), Box::new(kept.clone()));
        w.add_at(10, "k", 1_000, "", &Contribution::Count, 0);
        w.add_at(11, "k", 2_000, "", &Contribution::Count, 0);
        w.add_at(12, "k", 2 * MIN, "", &Contribution::Count, 0);
        w.emit();
        assert_eq!(w.commit_offset(), 12, "window 0 is in the store");
        // A late event (no idempotency key) corrects window 0; the crash
        // comes before its commit, so the restart re-reads from 12.
        w.add_at(13, "k", 3_000, "", &Contribution::Count, 0);
        w.emit();
        let mut restarted = PartitionWindows::new(spec(), Box::new(kept));
        assert_eq!(
            restarted.add_at(13, "k", 3_000, "", &Contribution::Count, 0),
            Outcome::Replayed
        );
        assert_eq!(
            restarted.add_at(14, "k", 4_000, "", &Contribution::Count, 0),
            Outcome::Corrected,
            "a record after the kept state counts, although the watermark restarted"
        );
        let updates = restarted.emit();
        assert_eq!(updates.len(), 1);
        assert_eq!(
            (
                updates[0].totals.count(),
                updates[0].is_final,
                updates[0].revision
            ),
            (4, true, 2)
        );
    }

    #[test]
    fn an_event_older_than_the_retention_before_its_record_is_expired() {
        let mut w = windows();
        let record_time = 100 * MIN;
        assert_eq!(
            w.add(0, "k", 39 * MIN, record_time, "a", &Contribution::Count, 0)
                .unwrap(),
            Outcome::Expired {
                horizon_ms: 40 * MIN
            }
        );
        assert_eq!(
            w.add(1, "k", 40 * MIN, record_time, "b", &Contribution::Count, 0)
                .unwrap(),
            Outcome::Added
        );
    }

    #[test]
    fn closed_windows_are_forgotten_after_the_retention_and_the_disorder_allowance() {
        let kept = Memory::default();
        let mut w = PartitionWindows::new(spec(), Box::new(kept.clone()));
        w.add_at(0, "k", 1_000, "a", &Contribution::Count, 0);
        w.add_at(1, "k", 2 * MIN, "b", &Contribution::Count, 0);
        w.emit();
        assert_eq!(kept.kept().len(), 1);
        // A record stamped retention + disorder allowance after window 0's end.
        let later = MIN + 60 * MIN + RECORD_TIME_DISORDER_MS;
        w.add_at(2, "k", later, "c", &Contribution::Count, 0);
        w.emit();
        let kept_starts: Vec<i64> = kept.kept().iter().map(|k| k.1).collect();
        assert_eq!(kept_starts, [2 * MIN], "window 0 forgotten, window 2 kept");
        assert_eq!(
            w.add(3, "k", 1_000, later, "d", &Contribution::Count, 0)
                .unwrap(),
            Outcome::Expired {
                horizon_ms: later - 60 * MIN
            }
        );
    }

    #[test]
    fn open_windows_emit_changes_and_closed_windows_emit_once_as_final() {
        let mut w = windows();
        w.add_at(0, "k", 1_000, "a", &Contribution::Count, 0);
        assert_eq!(w.pending().len(), 1);
        w.emit();
        assert_eq!(w.pending(), vec![], "nothing changed");
        w.add_at(1, "k", 2 * MIN + 10_000, "b", &Contribution::Count, 0);
        let updates = w.pending();
        let first = updates.iter().find(|u| u.window_start_ms == 0).unwrap();
        assert!(first.is_final);
        assert_eq!(first.totals.count(), 1);
        w.emit();
        assert_eq!(w.open_windows(), 1);
    }

    #[test]
    fn an_idle_partition_closes_its_windows_by_the_wall_clock() {
        let mut w = windows();
        w.add_at(0, "k", 1_000, "a", &Contribution::Count, 1_000);
        w.advance_if_idle(4_000, true);
        assert!(!w.pending()[0].is_final);
        // 5 s idle: the watermark follows the wall clock minus 5 s.
        w.advance_if_idle(MIN + 10_000 + 5_000, true);
        assert!(w.pending()[0].is_final);
    }

    #[test]
    fn a_partition_with_unread_records_is_not_idle() {
        let mut w = windows();
        w.add_at(0, "k", 1_000, "a", &Contribution::Count, 1_000);
        // Nothing handled for 20 s, but the broker holds more records (the
        // processor waited on another partition): the watermark stays.
        let later = 1_000 + 20_000 + MIN;
        w.advance_if_idle(later, false);
        assert!(!w.pending()[0].is_final);
        // The waiting record, from 5 s after the first, still counts.
        w.add_at(1, "k", 6_000, "b", &Contribution::Count, later);
        assert_eq!(w.pending()[0].totals.count(), 2);
    }

    #[test]
    fn the_commit_offset_stays_at_the_oldest_record_of_an_open_window() {
        let mut w = windows();
        assert_eq!(w.commit_offset(), 0);
        w.add_at(7, "k", 1_000, "a", &Contribution::Count, 0);
        w.add_at(8, "k", MIN + 1, "b", &Contribution::Count, 0);
        assert_eq!(w.commit_offset(), 7);
        w.add_at(9, "k", 2 * MIN + 5_000, "c", &Contribution::Count, 0);
        w.emit();
        assert_eq!(
            w.commit_offset(),
            8,
            "window 0 closed and emitted; window 1 is open"
        );
    }
}
