//! The overview: every watched service scraped each `--scrape-interval`
//! (its Prometheus `/metrics` and, when given, its readiness URL), turned
//! into one [`Overview`] (service states, ingest rates, consumer lag, dead
//! letters, freshness), kept as the latest JSON and pushed to every open
//! page.
//!
//! - **up**: the last scrape of `/metrics` answered 200, or fewer than
//!   [`DOWN_AFTER_FAILED_SCRAPES`] scrapes in a row have failed since one
//!   did (the detail then reads `last scrape failed …`); **down** after that
//!   many (or before the first answer). Each scrape waits at most 2-5 s
//!   (the interval, at least 2 s).
//! - **ready**: up, and its READY_URL answered 2xx; without a READY_URL
//!   (consumers: the processor and the sink) its metrics have at least one
//!   `tributary_consumer_lag` series, i.e. it has had partitions assigned.
//! - **rates**: per second over the last [`RATE_WINDOW_SCRAPES`] scrapes:
//!   per series, the increases between neighbouring samples are summed, a
//!   drop (a restarted service) taken as a counter reset whose increase is
//!   the new value, as Prometheus' `rate()` does; then summed over services.
//! - **freshness**: now minus the event time of the newest event whose
//!   aggregate the sink has stored (`tributary_sink_newest_event_timestamp_seconds`):
//!   how old the newest event a query can see is. While events flow it is
//!   the pipeline's end-to-end delay (ingest → processor window emission →
//!   sink commit); when nothing is sent it grows, as nothing newer exists.
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::ServiceTarget;

/// How many scrapes rates are computed over (the increases between
/// neighbouring samples, summed, over the time from the oldest to the newest).
pub const RATE_WINDOW_SCRAPES: usize = 5;

/// A service is `down` after this many failed scrapes in a row; before that
/// it keeps its state (and its rates' history), the detail naming the
/// failure (`last scrape failed (N of 3 before down): …`).
pub const DOWN_AFTER_FAILED_SCRAPES: u32 = 3;

/// The metric names the overview reads.
pub mod names {
    /// Ingest: events received.
    pub const RECEIVED: &str = "tributary_ingest_events_received_total";
    /// Ingest: events acknowledged, by `event_type`.
    pub const ACKED: &str = "tributary_ingest_events_acked_total";
    /// Ingest: events refused, by `reason`.
    pub const REJECTED: &str = "tributary_ingest_events_rejected_total";
    /// Consumers: lag by `topic`, `partition`.
    pub const LAG: &str = "tributary_consumer_lag";
    /// Processor, sink: dead letters by `reason`.
    pub const DEAD_LETTERS: &str = "tributary_dead_letters_total";
    /// Sink: the event time of the newest stored event (Unix seconds).
    pub const NEWEST_EVENT: &str = "tributary_sink_newest_event_timestamp_seconds";
    /// Sink: when it last committed a batch (Unix seconds).
    pub const LAST_COMMIT: &str = "tributary_sink_last_commit_timestamp_seconds";
}

/// What the overview page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// When it was made, Unix milliseconds.
    pub updated_at_ms: i64,
    /// `--scrape-interval` in milliseconds.
    pub scrape_interval_ms: u64,
    /// The span the rates are measured over, in seconds (0 before two scrapes).
    pub rate_window_seconds: f64,
    /// Every watched service, in the order of the flags.
    pub services: Vec<ServiceState>,
    /// Ingest's events, all ingest services added up.
    pub ingest: IngestRates,
    /// Consumer lag per service, topic and partition.
    pub lag: Vec<LagRow>,
    /// Dead letters by reason, the processor's and the sink's added up.
    pub dead_letters: Vec<Rate>,
    /// End-to-end freshness.
    pub freshness: Freshness,
}

/// One watched service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceState {
    /// The name given with `--service`.
    pub name: String,
    /// The last scrape answered.
    pub up: bool,
    /// Up and ready (see the module doc).
    pub ready: bool,
    /// `ready`, `up` or `down`.
    pub status: &'static str,
    /// Why it is not ready, or what ready means here.
    pub detail: String,
}

/// A counter's rate and total.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Rate {
    /// The label value (event type, reason), empty for an unlabelled counter.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// Per second over the rate window.
    pub per_second: f64,
    /// The counter's value now (since each service started).
    pub total: f64,
}

/// Ingest's counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestRates {
    /// Events received per second.
    pub received_per_second: f64,
    /// Events acknowledged per second.
    pub acknowledged_per_second: f64,
    /// Events refused per second.
    pub refused_per_second: f64,
    /// Received, total.
    pub received_total: f64,
    /// Acknowledged, total.
    pub acknowledged_total: f64,
    /// Refused, total.
    pub refused_total: f64,
    /// Acknowledged by event type (`label`).
    pub acknowledged_by_event_type: Vec<Rate>,
    /// Refused by reason (`label`).
    pub refused_by_reason: Vec<Rate>,
}

/// One partition's consumer lag.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LagRow {
    /// The consuming service (its `--service` name).
    pub consumer: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i64,
    /// Records between the high watermark and the consumer's position.
    pub lag: f64,
}

/// End-to-end freshness (see the module doc).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Freshness {
    /// Now minus the newest stored event time; `None` until the sink has
    /// stored a row (or when no watched service exposes it).
    pub seconds: Option<f64>,
    /// The newest stored event time (RFC 3339).
    pub newest_event_time: Option<String>,
    /// Seconds since the sink last committed a batch.
    pub last_commit_age_seconds: Option<f64>,
}

/// One series: its labels and value.
type Series = (BTreeMap<String, String>, f64);

/// One scrape of one service: its series by metric name.
#[derive(Debug, Clone, Default)]
struct Samples {
    values: HashMap<String, Vec<Series>>,
}

impl Samples {
    fn parse(text: &str) -> anyhow::Result<Self> {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines)?;
        let mut values: HashMap<String, Vec<Series>> = HashMap::new();
        for sample in scrape.samples {
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => continue,
            };
            let labels: BTreeMap<String, String> = sample
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            values
                .entry(sample.metric)
                .or_default()
                .push((labels, value));
        }
        Ok(Self { values })
    }

    fn series(&self, name: &str) -> &[Series] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    /// Sum of `name`'s series by the value of `label` (`""` for all).
    fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (labels, value) in self.series(name) {
            let key = labels.get(label).cloned().unwrap_or_default();
            *out.entry(key).or_insert(0.0) += value;
        }
        out
    }

    fn single(&self, name: &str) -> Option<f64> {
        self.series(name).first().map(|(_, v)| *v)
    }
}

/// What is remembered of a service between scrapes.
struct Watched {
    target: ServiceTarget,
    /// The last successful scrapes, oldest first, with when they were taken.
    history: VecDeque<(Instant, Arc<Samples>)>,
    state: ServiceState,
    /// Failed scrapes in a row.
    failures: u32,
}

/// The result of one service's scrape.
struct Scraped {
    samples: Result<Samples, String>,
    ready: Option<Result<(), String>>,
}

/// Scrapes the services and keeps the latest overview.
pub struct Scraper {
    http: reqwest::Client,
    interval: Duration,
    services: Vec<Watched>,
    latest: watch::Sender<Arc<String>>,
}

/// The latest overview as JSON, and every new one as it is made.
#[derive(Clone)]
pub struct OverviewFeed {
    latest: watch::Receiver<Arc<String>>,
}

impl OverviewFeed {
    /// The latest overview, as JSON.
    pub fn latest(&self) -> Arc<String> {
        self.latest.borrow().clone()
    }

    /// A receiver of every new overview.
    pub fn subscribe(&self) -> watch::Receiver<Arc<String>> {
        self.latest.clone()
    }
}

impl Scraper {
    /// Scrapes `services` every `interval`.
    pub fn new(
        services: &[ServiceTarget],
        interval: Duration,
    ) -> anyhow::Result<(Self, OverviewFeed)> {
        // At least 2 s whatever the interval: a service busy for a moment
        // (a GC pause, a loaded CI machine) is not a failed scrape.
        let timeout = interval.clamp(Duration::from_secs(2), Duration::from_secs(5));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        let services: Vec<Watched> = services
            .iter()
            .map(|target| Watched {
                target: target.clone(),
                history: VecDeque::new(),
                state: ServiceState {
                    name: target.name.clone(),
                    up: false,
                    ready: false,
                    status: "down",
                    detail: "not scraped yet".into(),
                },
                failures: 0,
            })
            .collect();
        let scraper = Self {
            http,
            interval,
            services,
            latest: watch::Sender::new(Arc::new(String::new())),
        };
        let first = scraper.overview();
        scraper.latest.send_replace(Arc::new(to_json(&first)));
        let feed = OverviewFeed {
            latest: scraper.latest.subscribe(),
        };
        Ok((scraper, feed))
    }

    /// Scrapes every interval until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            self.scrape_once().await;
        }
    }

    /// Scrapes every service once (concurrently) and publishes the overview.
    pub async fn scrape_once(&mut self) {
        let scrapes =
            futures::future::join_all(self.services.iter().map(|s| scrape(&self.http, &s.target)))
                .await;
        let now = Instant::now();
        for (service, scraped) in self.services.iter_mut().zip(scrapes) {
            service.update(now, scraped);
        }
        let overview = self.overview();
        self.latest.send_replace(Arc::new(to_json(&overview)));
    }

    fn overview(&self) -> Overview {
        let now = chrono::Utc::now();
        let mut ingest = IngestRates::default();
        let mut acked: BTreeMap<String, Rate> = BTreeMap::new();
        let mut refused: BTreeMap<String, Rate> = BTreeMap::new();
        let mut dead: BTreeMap<String, Rate> = BTreeMap::new();
        let mut lag = Vec::new();
        let mut newest_event: Option<f64> = None;
        let mut last_commit: Option<f64> = None;
        let mut window = 0.0f64;
        for service in &self.services {
            let Some((latest_at, latest)) = service.history.back() else {
                continue;
            };
            let oldest = service.history.front().filter(|(at, _)| at < latest_at);
            let span = oldest.map_or(0.0, |(at, _)| (*latest_at - *at).as_secs_f64());
            window = window.max(span);
            let history = &service.history;
            let rates = |name: &str, label: &str| -> BTreeMap<String, Rate> {
                let increases = increases(history, name, label);
                latest
                    .by_label(name, label)
                    .into_iter()
                    .map(|(key, total)| {
                        let per_second = if span > 0.0 {
                            increases.get(&key).copied().unwrap_or(0.0) / span
                        } else {
                            0.0
                        };
                        (
                            key.clone(),
                            Rate {
                                label: key,
                                per_second,
                                total,
                            },
                        )
                    })
                    .collect()
            };
            let add = |into: &mut BTreeMap<String, Rate>, from: BTreeMap<String, Rate>| {
                for (key, rate) in from {
                    let entry = into.entry(key).or_insert_with(|| Rate {
                        label: rate.label.clone(),
                        ..Rate::default()
                    });
                    entry.per_second += rate.per_second;
                    entry.total += rate.total;
                }
            };
            for rate in rates(names::RECEIVED, "").into_values() {
                ingest.received_per_second += rate.per_second;
                ingest.received_total += rate.total;
            }
            add(&mut acked, rates(names::ACKED, "event_type"));
            add(&mut refused, rates(names::REJECTED, "reason"));
            add(&mut dead, rates(names::DEAD_LETTERS, "reason"));
            for (labels, value) in latest.series(names::LAG) {
                lag.push(LagRow {
                    consumer: service.target.name.clone(),
                    topic: labels.get("topic").cloned().unwrap_or_default(),
                    partition: labels
                        .get("partition")
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(-1),
                    lag: *value,
                });
            }
            if let Some(v) = latest.single(names::NEWEST_EVENT).filter(|v| *v > 0.0) {
                newest_event = Some(newest_event.map_or(v, |n| n.max(v)));
            }
            if let Some(v) = latest.single(names::LAST_COMMIT).filter(|v| *v > 0.0) {
                last_commit = Some(last_commit.map_or(v, |n| n.max(v)));
            }
        }
        ingest.acknowledged_per_second =
            acked.values().map(|r| r.per_second).fold(0.0, |a, b| a + b);
        ingest.acknowledged_total = acked.values().map(|r| r.total).fold(0.0, |a, b| a + b);
        ingest.refused_per_second = refused
            .values()
            .map(|r| r.per_second)
            .fold(0.0, |a, b| a + b);
        ingest.refused_total = refused.values().map(|r| r.total).fold(0.0, |a, b| a + b);
        ingest.acknowledged_by_event_type = acked.into_values().collect();
        ingest.refused_by_reason = refused.into_values().collect();
        lag.sort_by(|a, b| {
            (&a.consumer, &a.topic, a.partition).cmp(&(&b.consumer, &b.topic, b.partition))
        });
        let now_seconds = now.timestamp_millis() as f64 / 1000.0;
        let freshness = Freshness {
            seconds: newest_event.map(|t| (now_seconds - t).max(0.0)),
            newest_event_time: newest_event
                .and_then(|t| chrono::DateTime::from_timestamp_millis((t * 1000.0) as i64))
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            last_commit_age_seconds: last_commit.map(|t| (now_seconds - t).max(0.0)),
        };
        Overview {
            updated_at_ms: now.timestamp_millis(),
            scrape_interval_ms: self.interval.as_millis() as u64,
            rate_window_seconds: window,
            services: self.services.iter().map(|s| s.state.clone()).collect(),
            ingest,
            lag,
            dead_letters: dead.into_values().collect(),
            freshness,
        }
    }
}

/// The increase of counter `name` over `history`, summed by the value of
/// `label`: per series, the increases between neighbouring samples, a drop
/// taken as a reset (the increase is then the new value), as Prometheus'
/// `rate()` does. A series absent from a sample starts again from 0.
fn increases(
    history: &VecDeque<(Instant, Arc<Samples>)>,
    name: &str,
    label: &str,
) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    let mut previous: Option<HashMap<&BTreeMap<String, String>, f64>> = None;
    for (_, samples) in history {
        let series = samples.series(name);
        if let Some(previous) = &previous {
            for (labels, value) in series {
                let increase = match previous.get(labels) {
                    Some(was) if value >= was => value - was,
                    _ => *value,
                };
                let key = labels.get(label).cloned().unwrap_or_default();
                *out.entry(key).or_insert(0.0) += increase;
            }
        }
        previous = Some(series.iter().map(|(l, v)| (l, *v)).collect());
    }
    out
}

impl Watched {
    fn update(&mut self, now: Instant, scraped: Scraped) {
        let samples = match scraped.samples {
            Ok(samples) => samples,
            Err(why) => {
                self.failures += 1;
                if self.failures >= DOWN_AFTER_FAILED_SCRAPES || !self.state.up {
                    // Down: rates start over when it is back.
                    self.history.clear();
                    self.state.up = false;
                    self.state.ready = false;
                    self.state.status = "down";
                    self.state.detail = if self.failures > 1 {
                        format!("{} scrapes failed, the last: {why}", self.failures)
                    } else {
                        why
                    };
                } else {
                    // One failure is not down: the state and the rates'
                    // history stay until DOWN_AFTER_FAILED_SCRAPES in a row.
                    self.state.detail = format!(
                        "last scrape failed ({} of {DOWN_AFTER_FAILED_SCRAPES} before down): {why}",
                        self.failures
                    );
                }
                return;
            }
        };
        self.failures = 0;
        let (ready, detail) = match scraped.ready {
            Some(Ok(())) => (true, "ready".to_string()),
            Some(Err(why)) => (false, why),
            None => {
                let partitions = samples.series(names::LAG).len();
                if partitions > 0 {
                    (true, format!("{partitions} partitions assigned"))
                } else {
                    (false, "no partitions assigned yet".to_string())
                }
            }
        };
        self.history.push_back((now, Arc::new(samples)));
        while self.history.len() > RATE_WINDOW_SCRAPES {
            self.history.pop_front();
        }
        self.state.up = true;
        self.state.ready = ready;
        self.state.status = if ready { "ready" } else { "up" };
        self.state.detail = detail;
    }
}

async fn scrape(http: &reqwest::Client, target: &ServiceTarget) -> Scraped {
    let metrics = async {
        let response = http
            .get(&target.metrics_url)
            .send()
            .await
            .map_err(|e| format!("metrics: {}", without_url(&e)))?;
        if !response.status().is_success() {
            return Err(format!("metrics answered {}", response.status()));
        }
        let text = response
            .text()
            .await
            .map_err(|e| format!("metrics: {}", without_url(&e)))?;
        Samples::parse(&text).map_err(|e| format!("metrics are not Prometheus text: {e}"))
    };
    let ready = async {
        let url = target.ready_url.as_ref()?;
        Some(match http.get(url).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!(
                "not ready: readiness answered {}",
                response.status()
            )),
            Err(e) => Err(format!("not ready: {}", without_url(&e))),
        })
    };
    let (samples, ready) = tokio::join!(metrics, ready);
    Scraped { samples, ready }
}

fn without_url(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "connection refused".to_string()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        if error.is_connect() {
            text = format!("cannot connect ({inner})");
        }
        source = inner.source();
    }
    text
}

fn to_json(overview: &Overview) -> String {
    serde_json::to_string(overview).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INGEST: &str = "\
# HELP tributary_ingest_events_received_total Events received.
# TYPE tributary_ingest_events_received_total counter
tributary_ingest_events_received_total 100
# TYPE tributary_ingest_events_acked_total counter
tributary_ingest_events_acked_total{event_type=\"ad_click\"} 60
tributary_ingest_events_acked_total{event_type=\"price_tick\"} 30
# TYPE tributary_ingest_events_rejected_total counter
tributary_ingest_events_rejected_total{reason=\"EVENT_ERROR_CODE_INVALID_FIELD\"} 10
# HELP tributary_ingest_produce_seconds Time until the broker acknowledged a record.
# TYPE tributary_ingest_produce_seconds histogram
tributary_ingest_produce_seconds_bucket{le=\"0.0005\"} 0
tributary_ingest_produce_seconds_bucket{le=\"+Inf\"} 3
tributary_ingest_produce_seconds_sum 0.01
tributary_ingest_produce_seconds_count 3
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 0.5
";

    const SINK: &str = "\
# TYPE tributary_consumer_lag gauge
tributary_consumer_lag{partition=\"0\",topic=\"tributary.aggregates\"} 3
tributary_consumer_lag{partition=\"1\",topic=\"tributary.aggregates\"} 0
# TYPE tributary_dead_letters_total counter
tributary_dead_letters_total{reason=\"undecodable\"} 2
# TYPE tributary_sink_newest_event_timestamp_seconds gauge
tributary_sink_newest_event_timestamp_seconds 1700000000.5
";

    fn target(name: &str, ready: Option<&str>) -> ServiceTarget {
        ServiceTarget {
            name: name.into(),
            metrics_url: "http://127.0.0.1:1/metrics".into(),
            ready_url: ready.map(String::from),
        }
    }

    #[test]
    fn rates_are_increases_over_the_window_and_states_follow_the_scrapes() {
        let (mut scraper, feed) = Scraper::new(
            &[
                target("ingest", Some("http://127.0.0.1:1/readyz")),
                target("sink", None),
            ],
            Duration::from_secs(1),
        )
        .unwrap();
        let first: serde_json::Value = serde_json::from_str(&feed.latest()).unwrap();
        assert_eq!(first["services"][0]["status"], "down");
        let t0 = Instant::now();
        let later = INGEST.replace(" 100", " 150").replace(" 60", " 100");
        scraper.services[0].update(
            t0,
            Scraped {
                samples: Samples::parse(INGEST).map_err(|e| e.to_string()),
                ready: Some(Ok(())),
            },
        );
        scraper.services[0].update(
            t0 + Duration::from_secs(2),
            Scraped {
                samples: Samples::parse(&later).map_err(|e| e.to_string()),
                ready: Some(Ok(())),
            },
        );
        scraper.services[1].update(
            t0,
            Scraped {
                samples: Samples::parse(SINK).map_err(|e| e.to_string()),
                ready: None,
            },
        );
        let overview = scraper.overview();
        assert_eq!(overview.services[0].status, "ready");
        assert_eq!(overview.services[1].status, "ready");
        assert_eq!(overview.services[1].detail, "2 partitions assigned");
        assert_eq!(overview.ingest.received_per_second, 25.0);
        assert_eq!(overview.ingest.acknowledged_per_second, 20.0);
        assert_eq!(overview.ingest.acknowledged_total, 130.0);
        assert_eq!(overview.ingest.refused_by_reason[0].total, 10.0);
        assert_eq!(overview.lag.len(), 2);
        assert_eq!(overview.lag[0].lag, 3.0);
        assert_eq!(overview.dead_letters[0].label, "undecodable");
        assert!(overview.freshness.seconds.unwrap() > 0.0);
        assert_eq!(overview.rate_window_seconds, 2.0);

        scraper.services[1].update(
            t0,
            Scraped {
                samples: Samples::parse("").map_err(|e| e.to_string()),
                ready: None,
            },
        );
        assert_eq!(scraper.services[1].state.status, "up");
        let failed = || Scraped {
            samples: Err("metrics: connection refused".into()),
            ready: None,
        };
        scraper.services[0].update(t0, failed());
        assert_eq!(scraper.services[0].state.status, "ready");
        scraper.services[0].update(t0, failed());
        scraper.services[0].update(t0, failed());
        assert_eq!(scraper.services[0].state.status, "down");
    }

    fn counter(value: f64) -> Scraped {
        Scraped {
            samples: Samples::parse(&format!(
                "# TYPE tributary_ingest_events_received_total counter\n\
                 tributary_ingest_events_received_total {value}\n\
                 # TYPE tributary_ingest_events_acked_total counter\n\
                 tributary_ingest_events_acked_total{{event_type=\"ad_click\",shard=\"a\"}} {value}\n\
                 tributary_ingest_events_acked_total{{event_type=\"ad_click\",shard=\"b\"}} 1000\n"
            ))
            .map_err(|e| e.to_string()),
            ready: Some(Ok(())),
        }
    }

    #[test]
    fn a_counter_reset_counts_the_new_value_not_the_whole_window() {
        let (mut scraper, _) =
            Scraper::new(&[target("ingest", None)], Duration::from_secs(1)).unwrap();
        let t0 = Instant::now();
        // 100 → 200 → 300, the service restarts → 20 → 40: 100 + 100 + 20 + 20.
        for (i, value) in [100.0, 200.0, 300.0, 20.0, 40.0].into_iter().enumerate() {
            scraper.services[0].update(t0 + Duration::from_secs(i as u64), counter(value));
        }
        let overview = scraper.overview();
        assert_eq!(overview.rate_window_seconds, 4.0);
        assert_eq!(overview.ingest.received_per_second, 60.0);
        assert_eq!(overview.ingest.received_total, 40.0);
        // Per series: the steady series (shard b) adds nothing.
        assert_eq!(overview.ingest.acknowledged_per_second, 60.0);
    }

    #[test]
    fn a_failed_scrape_keeps_the_state_and_the_rates_until_three_in_a_row() {
        let (mut scraper, _) = Scraper::new(
            &[target("ingest", Some("http://127.0.0.1:1/readyz"))],
            Duration::from_secs(1),
        )
        .unwrap();
        let failed = || Scraped {
            samples: Err("metrics: timed out".into()),
            ready: None,
        };
        let t0 = Instant::now();
        scraper.services[0].update(t0, counter(100.0));
        scraper.services[0].update(t0 + Duration::from_secs(1), counter(110.0));
        scraper.services[0].update(t0 + Duration::from_secs(2), failed());
        let service = &scraper.services[0].state;
        assert_eq!(service.status, "ready");
        assert!(
            service.detail.starts_with("last scrape failed")
                && service.detail.contains("timed out"),
            "{}",
            service.detail
        );
        assert_eq!(scraper.overview().ingest.received_per_second, 10.0);
        scraper.services[0].update(t0 + Duration::from_secs(3), counter(140.0));
        assert_eq!(scraper.services[0].state.detail, "ready");
        // 30 more over the 3 s since the first sample.
        assert_eq!(scraper.overview().ingest.received_per_second, 40.0 / 3.0);
        for i in 4..6 {
            scraper.services[0].update(t0 + Duration::from_secs(i), failed());
            assert_eq!(scraper.services[0].state.status, "ready");
        }
        scraper.services[0].update(t0 + Duration::from_secs(6), failed());
        let service = &scraper.services[0].state;
        assert_eq!(service.status, "down");
        assert!(!service.up && !service.ready);
        assert!(
            service.detail.contains("3 scrapes failed"),
            "{}",
            service.detail
        );
        assert_eq!(scraper.overview().ingest.received_per_second, 0.0);
    }
}
