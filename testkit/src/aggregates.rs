//! Ground truth for end-to-end checks: the aggregates a set of acknowledged
//! events must become (computed here, independently of the processor), the
//! aggregates table read back from Postgres, and the comparison of the two
//! (exact windows, events lost, events counted twice).
use std::collections::{BTreeMap, BTreeSet};

use tributary_proto::v1::{Event, event::Payload};

/// One row of the aggregates table, as compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Events in the window.
    pub count: i64,
    /// Distinct IP addresses (ad clicks).
    pub distinct: Option<i64>,
    /// Lowest price (price ticks).
    pub min: Option<f64>,
    /// Highest price.
    pub max: Option<f64>,
    /// Sum of prices.
    pub sum: Option<f64>,
    /// Price of the latest tick by event time.
    pub last: Option<f64>,
    /// The window is closed.
    pub is_final: bool,
}

/// (event type, group key, window start in ms)
pub type RowKey = (String, String, i64);

fn millis(event: &Event) -> i64 {
    event
        .event_time
        .as_ref()
        .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
        .expect("every event has a time")
}

/// The final aggregates of `events` (ad clicks and price ticks) in tumbling
/// windows of `window_ms`, each idempotency key counted once.
pub fn expected<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    window_ms: i64,
) -> BTreeMap<RowKey, Row> {
    #[derive(Default)]
    struct Acc {
        count: i64,
        ips: BTreeSet<String>,
        prices: Vec<(i64, f64)>,
    }
    let mut seen = BTreeSet::new();
    let mut acc: BTreeMap<RowKey, Acc> = BTreeMap::new();
    for event in events {
        if !seen.insert(event.idempotency_key.as_str()) {
            continue;
        }
        let at = millis(event);
        let window = at.div_euclid(window_ms) * window_ms;
        match &event.payload {
            Some(Payload::AdClick(c)) => {
                let a = acc
                    .entry(("ad_click".into(), c.advertiser_id.clone(), window))
                    .or_default();
                a.count += 1;
                a.ips.insert(c.ip_address.clone());
            }
            Some(Payload::PriceTick(t)) => {
                let a = acc
                    .entry((
                        "price_tick".into(),
                        format!("{}/{}", t.pair, t.source),
                        window,
                    ))
                    .or_default();
                a.count += 1;
                a.prices.push((at, t.price));
            }
            other => panic!("ground truth covers ad clicks and price ticks, not {other:?}"),
        }
    }
    acc.into_iter()
        .map(|(key, a)| {
            let row = if key.0 == "ad_click" {
                Row {
                    count: a.count,
                    distinct: Some(a.ips.len() as i64),
                    min: None,
                    max: None,
                    sum: None,
                    last: None,
                    is_final: true,
                }
            } else {
                let prices = a.prices.iter().map(|(_, p)| *p);
                Row {
                    count: a.count,
                    distinct: None,
                    min: prices.clone().reduce(f64::min),
                    max: prices.clone().reduce(f64::max),
                    sum: Some(prices.sum()),
                    last: a.prices.iter().max_by_key(|(at, _)| *at).map(|(_, p)| *p),
                    is_final: true,
                }
            };
            (key, row)
        })
        .collect()
}

/// The aggregates table.
pub async fn rows(pool: &sqlx::PgPool) -> anyhow::Result<BTreeMap<RowKey, Row>> {
    type Raw = (
        String,
        String,
        i64,
        i64,
        Option<i64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        bool,
    );
    let raw: Vec<Raw> = sqlx::query_as(
        "SELECT event_type, group_key, (extract(epoch FROM window_start) * 1000)::int8,
                count, distinct_count, min, max, sum, last, is_final
         FROM aggregates",
    )
    .fetch_all(pool)
    .await?;
    Ok(raw
        .into_iter()
        .map(|r| {
            (
                (r.0, r.1, r.2),
                Row {
                    count: r.3,
                    distinct: r.4,
                    min: r.5,
                    max: r.6,
                    sum: r.7,
                    last: r.8,
                    is_final: r.9,
                },
            )
        })
        .collect())
}

/// How the table compares with the ground truth.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    /// Windows expected.
    pub windows: usize,
    /// Windows whose row equals the expected one, final.
    pub exact: usize,
    /// Windows with the right values that are not final yet.
    pub open: usize,
    /// Events missing: the expected counts above the stored ones, summed.
    pub lost: i64,
    /// Events counted twice: the stored counts above the expected ones,
    /// summed, rows nobody expects included.
    pub double: i64,
    /// Windows with the right count but other values (distinct, prices).
    pub wrong_values: usize,
    /// Up to ten differences, for the report.
    pub examples: Vec<String>,
}

impl Comparison {
    /// Every expected window is there, final and exact, and nothing else is.
    pub fn is_exact(&self) -> bool {
        self.exact == self.windows && self.lost == 0 && self.double == 0 && self.wrong_values == 0
    }

    /// The values are right though some windows are still open.
    pub fn values_match(&self) -> bool {
        self.exact + self.open == self.windows
            && self.lost == 0
            && self.double == 0
            && self.wrong_values == 0
    }
}

/// Compares the stored rows `got` with the `want`ed ones.
pub fn compare(want: &BTreeMap<RowKey, Row>, got: &BTreeMap<RowKey, Row>) -> Comparison {
    let mut c = Comparison {
        windows: want.len(),
        ..Default::default()
    };
    let example = |c: &mut Comparison, text: String| {
        if c.examples.len() < 10 {
            c.examples.push(text);
        }
    };
    for (key, w) in want {
        match got.get(key) {
            Some(g) if g == w => c.exact += 1,
            Some(g)
                if Row {
                    is_final: true,
                    ..g.clone()
                } == *w =>
            {
                c.open += 1
            }
            Some(g) => {
                if g.count < w.count {
                    c.lost += w.count - g.count;
                } else if g.count > w.count {
                    c.double += g.count - w.count;
                } else {
                    c.wrong_values += 1;
                }
                example(&mut c, format!("{key:?}: want {w:?}, have {g:?}"));
            }
            None => {
                c.lost += w.count;
                example(&mut c, format!("{key:?}: want {w:?}, have nothing"));
            }
        }
    }
    for (key, g) in got.iter().filter(|(k, _)| !want.contains_key(*k)) {
        c.double += g.count;
        example(&mut c, format!("{key:?}: unexpected {g:?}"));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(count: i64, is_final: bool) -> Row {
        Row {
            count,
            distinct: Some(1),
            min: None,
            max: None,
            sum: None,
            last: None,
            is_final,
        }
    }

    fn key(window: i64) -> RowKey {
        ("ad_click".into(), "adv".into(), window)
    }

    #[test]
    fn lost_double_open_and_exact_windows_are_told_apart() {
        let want: BTreeMap<_, _> = (0..5).map(|w| (key(w), row(10, true))).collect();
        let got: BTreeMap<_, _> = [
            (key(0), row(10, true)),
            (key(1), row(10, false)),
            (key(2), row(7, true)),
            (key(3), row(12, true)),
            (key(9), row(4, true)),
        ]
        .into();
        let c = compare(&want, &got);
        assert_eq!((c.windows, c.exact, c.open), (5, 1, 1));
        assert_eq!(c.lost, 3 + 10, "three of window 2, all of window 4");
        assert_eq!(c.double, 2 + 4, "two in window 3, the unexpected window");
        assert!(!c.is_exact() && !c.values_match());
        assert_eq!(c.examples.len(), 4);

        let open: BTreeMap<_, _> = want.keys().map(|k| (k.clone(), row(10, false))).collect();
        assert!(compare(&want, &open).values_match());
        assert!(!compare(&want, &open).is_exact());
        assert!(compare(&want, &want).is_exact());
    }
}
