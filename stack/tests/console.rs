//! The web console (`tributary-console`) in real headless Chromium (Debian's
//! `chromium`, driven by `playwright-core` from `stack/tests/browser`)
//! against a real pipeline: Tansu, the registry, Postgres and every service
//! as its own process with its metrics, the console watching them.
//!
//! - the overview shows every service ready and a non-zero received rate
//!   while events arrive, paints first within a second and shows its first
//!   data (every service's row) within two (both measured from navigation
//!   start and printed);
//! - the aggregates chart has one point per window and key sent here, and
//!   the table the same rows;
//! - the price-accuracy page charts ETH-USD, LINK-USD and BTC-USD;
//! - a dead letter whose payload, key and idempotency-key header carry
//!   `<script>` and `<img onerror>` is shown as text in the list and the
//!   detail, creates no element and runs nothing, and once its cause is
//!   fixed is replayed from the page: the count in `GetAggregates` goes
//!   from 0 to 1;
//! - the diff of ad_click's versions 1 and 2 shows the added field;
//! - with API keys configured, the console asks for one and shows data once
//!   it is given.
//!
//! Screenshots of every page go to `console-screenshots/` in the cargo target
//! directory. `dev/setup` installs Chromium and the driver's packages.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio::process::Command;
use tributary_common::config::KafkaArgs;
use tributary_proto::v1::{
    Event, GetAggregatesRequest, GetPriceAccuracyRequest, PriceTick, event::Payload,
    query_service_client::QueryServiceClient,
};
use tributary_stack::{
    binaries::build_service_binaries,
    broker::{Broker, BrokerKind},
    cluster::{self, Cluster, ServiceProcess},
    events::{ad_click, submit_acknowledged, timestamp},
    postgres::TestDatabase,
    process::{ChildProcess, wait_for_http},
    tansu::free_port,
};

const MINUTE: i64 = 60_000;
/// What the dead letter's user agent says: rendered as text, it runs nothing.
/// (A `<script>` set as markup would not run either; the `<img>`'s onerror
/// would, so it is what the check can see. Single quotes: the payload is
/// shown as JSON, which would escape double ones.)
const XSS: &str = "<script>window.__xss=1</script><img src=x onerror='window.__xss=2'>";
/// The dead letter's key (advertiser) and idempotency key (a header of the
/// record), markup too.
const XSS_KEY: &str = r#"adv-xss<img src=x onerror="window.__xss=3">"#;
const XSS_ID: &str = r#"xss-1<img src=x onerror="window.__xss=4">"#;
const PAIRS: [&str; 3] = ["ETH-USD", "LINK-USD", "BTC-USD"];
const SOURCES: [&str; 3] = ["coinbase", "kraken", "chainlink"];
/// The aggregates chart's keys and windows.
const CHART_KEYS: [&str; 2] = ["adv-chart-1", "adv-chart-2"];
const CHART_WINDOWS: i64 = 3;
/// The overview's first contentful paint, and its first data (the services'
/// rows and `data-updated-at`), after navigation start.
const FIRST_PAINT_LIMIT_MS: u64 = 1000;
const FIRST_DATA_LIMIT_MS: u64 = 2000;
/// How long the browser script may take in all.
const SCRIPT_LIMIT: Duration = Duration::from_secs(240);

/// Processor settings: one-minute windows that close 2 s after their
/// partition goes idle, emitted every 200 ms.
const PROCESSOR_ENV: &[(&str, &str)] = &[
    ("TRIBUTARY_WINDOW", "1m"),
    ("TRIBUTARY_IDLE_ADVANCE", "2s"),
    ("TRIBUTARY_EMIT_INTERVAL", "200ms"),
];
const SINK_ENV: &[(&str, &str)] = &[("TRIBUTARY_SINK_BATCH_LINGER", "20ms")];

/// The pipeline as separate processes (so each has its own metrics) and the
/// console over it.
struct Pipeline {
    cluster: Cluster,
    log_dir: PathBuf,
    registry: ServiceProcess,
    server: ServiceProcess,
    processor: Option<ServiceProcess>,
    sink: Option<ServiceProcess>,
    console: Option<ChildProcess>,
    console_url: String,
    _database: TestDatabase,
    _broker: Broker,
}

impl Pipeline {
    /// Broker, database, registry, `tributary-server` (with `server_env`)
    /// and, with `consumers`, a processor and a sink.
    async fn start(
        name: &str,
        server_env: &[(&str, &str)],
        consumers: bool,
    ) -> anyhow::Result<Self> {
        let bin_dir = build_service_binaries()?;
        let (broker, database) =
            tokio::try_join!(Broker::start(BrokerKind::Tansu), TestDatabase::create())?;
        let pool = sqlx::PgPool::connect(database.url()).await?;
        tributary_store::migrate(&pool).await?;
        pool.close().await;
        let log_dir = cluster::log_dir(name)?;
        let (cluster, registry) = Cluster::bootstrap(
            bin_dir,
            log_dir.clone(),
            KafkaArgs::for_brokers(broker.brokers()),
            database.url().to_string(),
            2,
        )
        .await?;
        let (mut processor, mut sink) = (None, None);
        if consumers {
            let mut started = cluster.sink("sink", SINK_ENV)?;
            Cluster::wait_for_metrics(&mut started).await?;
            sink = Some(started);
            let mut started = cluster.processor("processor", PROCESSOR_ENV)?;
            Cluster::wait_for_metrics(&mut started).await?;
            processor = Some(started);
        }
        let server = cluster.ingest_with("server", server_env).await?;
        Ok(Self {
            cluster,
            log_dir,
            registry,
            server,
            processor,
            sink,
            console: None,
            console_url: String::new(),
            _database: database,
            _broker: broker,
        })
    }

    /// Starts `tributary-console` watching every service, with `args` added
    /// (API keys), and waits until it serves its page.
    async fn start_console(&mut self, args: &[&str]) -> anyhow::Result<()> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut command = Command::new(self.cluster.bin_dir.join("tributary-console"));
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command
            .env("RUST_LOG", "info")
            .env("TRIBUTARY_LOG_FORMAT", "json")
            .args(["--http-addr", &addr])
            .args(["--query-url", &self.server.grpc_url()])
            .args(["--registry-url", &self.registry.http_url()])
            .args(["--kafka-brokers", &self.cluster.kafka.brokers])
            .args(["--scrape-interval", "1s"])
            .args(args);
        let metrics = |s: &ServiceProcess| format!("http://{}/metrics", s.metrics);
        let mut services = vec![
            format!(
                "registry={},{}/schemas/types",
                metrics(&self.registry),
                self.registry.http_url()
            ),
            format!(
                "server={},{}/readyz",
                metrics(&self.server),
                self.server.http_url()
            ),
        ];
        for (name, service) in [("processor", &self.processor), ("sink", &self.sink)] {
            if let Some(service) = service {
                services.push(format!("{name}={}", metrics(service)));
            }
        }
        for service in services {
            command.args(["--service", &service]);
        }
        let mut console =
            ChildProcess::spawn("console", command, &self.log_dir.join("console.log"))?;
        self.console_url = format!("http://{addr}");
        wait_for_http(&format!("{}/", self.console_url), &mut console).await?;
        self.console = Some(console);
        Ok(())
    }

    /// The services' names as the console shows them.
    fn service_names(&self) -> Vec<&'static str> {
        let mut names = vec!["registry", "server"];
        if self.processor.is_some() {
            names.extend(["processor", "sink"]);
        }
        names
    }

    async fn query(&self) -> anyhow::Result<QueryServiceClient<tonic::transport::Channel>> {
        Ok(QueryServiceClient::connect(self.server.grpc_url()).await?)
    }

    /// Stops the console, then the services, each of which must exit 0.
    async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(mut console) = self.console.take() {
            let status = console.terminate(Duration::from_secs(30)).await?;
            anyhow::ensure!(
                status.is_some_and(|s| s.success()),
                "the console did not stop cleanly ({status:?}); log {}:\n{}",
                console.log_path().display(),
                console.log_tail(30)
            );
        }
        self.server.stop(Duration::from_secs(30)).await?;
        for service in [self.processor.as_mut(), self.sink.as_mut()]
            .into_iter()
            .flatten()
        {
            service.stop(Duration::from_secs(30)).await?;
        }
        self.registry.stop(Duration::from_secs(30)).await?;
        Ok(())
    }
}

/// Where the screenshots go: `console-screenshots/` in the cargo target
/// directory (`CARGO_TARGET_DIR`, else the one this test binary is in).
fn screenshot_dir() -> anyhow::Result<PathBuf> {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        // target/<profile>/deps/<test binary>
        None => std::env::current_exe()?
            .ancestors()
            .nth(3)
            .map(Path::to_path_buf)
            .context("the test binary is not in a cargo target directory")?,
    };
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// What a browser script found: each check's outcome and the measures.
struct Report {
    checks: BTreeMap<String, (bool, Value)>,
    measures: Value,
    output: String,
}

impl Report {
    /// Asserts that check `name` passed; `claim` says what it proves.
    fn assert_ok(&self, name: &str, claim: &str) {
        match self.checks.get(name) {
            Some((true, _)) => {}
            Some((false, detail)) => panic!("{claim}: check `{name}` failed: {detail}"),
            None => panic!(
                "{claim}: check `{name}` did not run; the script said:\n{}",
                self.output
            ),
        }
    }

    fn detail(&self, name: &str) -> &Value {
        &self.checks[name].1
    }
}

/// Runs `stack/tests/browser/<script>` with `config` (JSON in
/// `CONSOLE_TEST_CONFIG`) and reads the report it prints last.
async fn run_browser(script: &str, config: &Value) -> anyhow::Result<Report> {
    let dir = browser_dir();
    anyhow::ensure!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in {} (dev/setup does)",
        dir.display()
    );
    let chromium =
        std::env::var("TRIBUTARY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    anyhow::ensure!(
        Path::new(&chromium).exists(),
        "no Chromium at {chromium}: dev/setup installs Debian's `chromium` (TRIBUTARY_CHROMIUM overrides the path)"
    );
    let mut command = Command::new("node");
    command
        .arg(dir.join(script))
        .current_dir(&dir)
        .env("CONSOLE_TEST_CONFIG", config.to_string())
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .context("cannot run node (is Node.js installed?)")?;
    let output = tokio::time::timeout(SCRIPT_LIMIT, child.wait_with_output())
        .await
        .with_context(|| format!("{script} did not finish within {SCRIPT_LIMIT:?}"))??;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let all = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("REPORT "))
        .with_context(|| {
            format!(
                "{script} printed no report (exit {}):\n{all}",
                output.status
            )
        })
        .and_then(|l| Ok(serde_json::from_str(l)?))?;
    let checks = report["checks"]
        .as_array()
        .context("the report has no checks")?
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                (c["ok"].as_bool().unwrap_or(false), c["detail"].clone()),
            )
        })
        .collect::<BTreeMap<_, _>>();
    let all_ok = checks.values().all(|(ok, _)| *ok);
    // A script that failed without saying which check did is a failure too.
    anyhow::ensure!(
        output.status.success() || !all_ok,
        "{script} exited with {} though every check passed:\n{all}",
        output.status
    );
    Ok(Report {
        checks,
        measures: report["measures"].clone(),
        output: all,
    })
}

/// `ms` as RFC 3339 in UTC, to the second (as the console shows times).
fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("a time in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Clicks of `key` from `count` addresses at `at`, keys unique per `tag`.
fn clicks(key: &str, count: i64, at: i64, tag: &str) -> Vec<Event> {
    (0..count)
        .map(|i| {
            ad_click(
                key,
                &format!("10.{}.{}.{}", i / 65_536 % 256, i / 256 % 256, i % 256),
                at + i,
                &format!("{tag}-{key}-{at}-{i}"),
            )
        })
        .collect()
}

fn price_tick(pair: &str, source: &str, price: f64, at: i64, id: &str) -> Event {
    Event {
        event_time: timestamp(at),
        idempotency_key: id.into(),
        payload: Some(Payload::PriceTick(PriceTick {
            pair: pair.into(),
            source: source.into(),
            price,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Polls `check` every 250 ms until it holds or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let started = std::time::Instant::now();
    loop {
        if check().await? {
            return Ok(());
        }
        anyhow::ensure!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The count of `key`'s ad clicks in `[start, end)`.
async fn click_count(
    query: &mut QueryServiceClient<tonic::transport::Channel>,
    key: &str,
    start: i64,
    end: i64,
) -> anyhow::Result<i64> {
    let response = query
        .get_aggregates(GetAggregatesRequest {
            event_type: "ad_click".into(),
            keys: vec![key.into()],
            start_time: timestamp(start),
            end_time: timestamp(end),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(response.aggregates.iter().map(|a| a.count).sum())
}

/// Sum of a counter's series whose labels contain `label` (e.g.
/// `reason="expired"`).
fn counter_sum(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Sends a few live clicks every 250 ms until stopped (at most 5 minutes):
/// the overview's rates need events arriving while it is looked at.
fn send_live(
    grpc_url: String,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<usize>>,
) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut sent = 0usize;
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        let mut round = 0;
        while std::time::Instant::now() < deadline {
            let now = chrono::Utc::now().timestamp_millis();
            submit_acknowledged(
                &grpc_url,
                clicks("adv-live", 5, now, &format!("live-{round}")),
            )
            .await?;
            sent += 5;
            round += 1;
            tokio::select! {
                _ = &mut stopped => break,
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
        Ok(sent)
    });
    (stop, task)
}

#[tokio::test]
async fn the_console_shows_health_aggregates_accuracy_dead_letters_and_schemas_in_chromium()
-> anyhow::Result<()> {
    let mut pipeline = Pipeline::start("console", &[], true).await?;
    let grpc = pipeline.server.grpc_url();
    let now = chrono::Utc::now().timestamp_millis();

    // The chart's events: key k has k + w + 1 clicks in window w, 40
    // minutes ago.
    let base = (now - 40 * MINUTE).div_euclid(MINUTE) * MINUTE;
    let mut expected_rows = Vec::new();
    let mut events = Vec::new();
    for w in 0..CHART_WINDOWS {
        for (k, key) in CHART_KEYS.iter().enumerate() {
            let count = k as i64 + w + 1;
            let window = base + w * MINUTE;
            events.extend(clicks(key, count, window + 1_000, "chart"));
            expected_rows.push(json!({
                "key": key,
                "window_start_ms": window,
                "window_start": iso(window),
                "count": count,
            }));
        }
    }
    // Price ticks of three sources per pair in two windows, each source a
    // little off the others.
    let tick_base = base + 10 * MINUTE;
    for w in 0..2 {
        for (p, pair) in PAIRS.iter().enumerate() {
            let price = [3000.0, 15.0, 60_000.0][p];
            for (s, source) in SOURCES.iter().enumerate() {
                for i in 0..3 {
                    let at = tick_base + w * MINUTE + 5_000 + i * 1_000;
                    let off = 1.0 + (s as f64 - 1.0) * 0.002 + i as f64 * 0.0005;
                    events.push(price_tick(
                        pair,
                        source,
                        price * off,
                        at,
                        &format!("tick-{pair}-{source}-{w}-{i}"),
                    ));
                }
            }
        }
    }
    submit_acknowledged(&grpc, events).await?;

    // The dead letter: an ingest that accepts two days acknowledges a click
    // 25 hours old with markup in its user agent, advertiser and idempotency
    // key; the processor keeps one
    // day and dead-letters it as `expired`.
    let old_window = (now - 25 * 60 * MINUTE).div_euclid(MINUTE) * MINUTE;
    let mut lenient = pipeline
        .cluster
        .ingest_with("lenient", &[("TRIBUTARY_MAX_EVENT_TIME_SKEW", "48h")])
        .await?;
    let mut poison = ad_click(XSS_KEY, "10.9.9.9", old_window + 7_000, XSS_ID);
    if let Some(Payload::AdClick(click)) = &mut poison.payload {
        click.user_agent = XSS.into();
    }
    submit_acknowledged(&lenient.grpc_url(), vec![poison]).await?;
    lenient.stop(Duration::from_secs(30)).await?;

    let mut query = pipeline.query().await?;
    let chart_start = base;
    let chart_end = base + CHART_WINDOWS * MINUTE;
    let want: i64 = expected_rows
        .iter()
        .map(|r| r["count"].as_i64().unwrap())
        .sum();
    eventually(
        Duration::from_secs(60),
        "the chart's aggregates reach Postgres",
        || {
            let mut query = query.clone();
            async move {
                let mut total = 0;
                for key in CHART_KEYS {
                    total += click_count(&mut query, key, chart_start, chart_end).await?;
                }
                Ok(total == want)
            }
        },
    )
    .await?;
    eventually(
        Duration::from_secs(60),
        "every pair's accuracy is there",
        || {
            let mut query = query.clone();
            async move {
                let accuracy = query
                    .get_price_accuracy(GetPriceAccuracyRequest {
                        pairs: PAIRS.iter().map(|p| p.to_string()).collect(),
                        start_time: timestamp(tick_base),
                        end_time: timestamp(tick_base + 2 * MINUTE),
                        ..Default::default()
                    })
                    .await?
                    .into_inner()
                    .accuracy;
                Ok(PAIRS.iter().all(|p| accuracy.iter().any(|a| a.pair == *p)))
            }
        },
    )
    .await?;
    let processor = pipeline.processor.as_mut().expect("started with consumers");
    let watched = &*processor;
    eventually(
        Duration::from_secs(60),
        "the click is dead-lettered as expired",
        || async move {
            let text = watched.metrics_text().await?;
            Ok(counter_sum(&text, "tributary_dead_letters_total", "reason=\"expired\"") >= 1.0)
        },
    )
    .await?;
    assert_eq!(
        click_count(&mut query, XSS_KEY, old_window, old_window + MINUTE).await?,
        0,
        "the dead letter is counted before its replay"
    );

    // The fix: the processor keeps two days of windows, like that ingest.
    processor.stop(Duration::from_secs(30)).await?;
    pipeline
        .cluster
        .respawn_with(processor, &[("TRIBUTARY_MAX_EVENT_TIME_SKEW", "48h")])
        .await?;
    Cluster::wait_for_metrics(processor).await?;

    pipeline.start_console(&[]).await?;
    let screenshots = screenshot_dir()?;
    let config = json!({
        "url": pipeline.console_url,
        "screenshots": screenshots,
        "services": pipeline.service_names(),
        "firstPaintLimitMs": FIRST_PAINT_LIMIT_MS,
        "firstDataLimitMs": FIRST_DATA_LIMIT_MS,
        "aggregates": {
            "eventType": "ad_click",
            "keys": CHART_KEYS,
            "startMs": chart_start,
            "endMs": chart_end,
            "points": expected_rows.len(),
            "rows": expected_rows,
        },
        "pairs": PAIRS,
        "sources": SOURCES.len(),
        "accuracy": { "from": iso(tick_base - MINUTE), "to": iso(tick_base + 3 * MINUTE) },
        "deadLetter": {
            "key": XSS_KEY,
            "reason": "expired",
            "text": XSS,
            "header": "tributary.idempotency_key",
            "idempotencyKey": XSS_ID,
        },
        "schema": { "subject": "tributary.events.ad_click-value", "from": 1, "to": 2, "added": "campaign_id" },
    });
    let (stop_live, live) = send_live(grpc.clone());
    let report = run_browser("console.mjs", &config).await;
    let _ = stop_live.send(());
    let live_sent = live.await??;
    let report = report?;
    eprintln!("{}", report.output);

    report.assert_ok(
        "first-paint",
        &format!(
            "the overview paints first within {FIRST_PAINT_LIMIT_MS} ms and shows data within {FIRST_DATA_LIMIT_MS} ms"
        ),
    );
    eprintln!(
        "console: overview first contentful paint {} ms, first data {} ms (limits {FIRST_PAINT_LIMIT_MS} ms, {FIRST_DATA_LIMIT_MS} ms)",
        report.measures["firstPaintMs"], report.measures["firstDataMs"]
    );
    report.assert_ok(
        "overview",
        &format!("the overview shows every service ready and a non-zero received rate ({live_sent} live events sent)"),
    );
    report.assert_ok(
        "aggregates-chart",
        "the aggregates chart has one point per window and key sent",
    );
    report.assert_ok("aggregates-table", "the aggregates table has the rows sent");
    report.assert_ok(
        "aggregates-chart-resizes",
        "the aggregates chart narrows with the window and widens again",
    );
    report.assert_ok(
        "accuracy",
        "the accuracy page charts ETH-USD, LINK-USD and BTC-USD",
    );
    report.assert_ok(
        "dead-letter-escaped",
        "the dead letter's <script> and <img onerror> (payload, key, header) are shown as text and run nothing",
    );
    report.assert_ok(
        "dead-letter-replayed",
        "the dead letter is replayed from the page",
    );
    // The replay is counted once the fixed processor reads it.
    eventually(
        Duration::from_secs(60),
        "the replayed click is counted",
        || {
            let mut query = query.clone();
            async move {
                Ok(click_count(&mut query, XSS_KEY, old_window, old_window + MINUTE).await? == 1)
            }
        },
    )
    .await
    .context("GetAggregates does not count the dead letter replayed from the console")?;
    report.assert_ok(
        "schema-diff",
        "the diff of ad_click's v1 and v2 shows the added field",
    );
    report.assert_ok("screenshots", "every page is screenshotted");
    for page in report
        .detail("screenshots")
        .as_array()
        .into_iter()
        .flatten()
    {
        let path = PathBuf::from(page.as_str().unwrap_or_default());
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 0),
            "no screenshot at {}",
            path.display()
        );
    }
    eprintln!("console: screenshots in {}", screenshots.display());

    pipeline.stop().await
}

#[tokio::test]
async fn with_api_keys_the_console_asks_for_one_and_shows_data_once_given() -> anyhow::Result<()> {
    const KEY: &str = "console-test-key";
    let mut pipeline =
        Pipeline::start("console-keys", &[("TRIBUTARY_API_KEYS", KEY)], false).await?;
    pipeline
        .start_console(&["--api-key", KEY, "--query-api-key", KEY])
        .await?;

    // The API refuses a call without the key.
    let refused = reqwest::get(format!("{}/api/overview", pipeline.console_url)).await?;
    assert_eq!(
        refused.status().as_u16(),
        401,
        "the console's API without a key"
    );

    let config = json!({
        "url": pipeline.console_url,
        "screenshots": screenshot_dir()?,
        "services": pipeline.service_names(),
        "apiKey": KEY,
        "wrongKey": "not-the-key",
    });
    let report = run_browser("console_keys.mjs", &config).await?;
    eprintln!("{}", report.output);
    report.assert_ok(
        "asks-for-key",
        "with API keys configured the console asks for one and shows no data",
    );
    report.assert_ok("wrong-key-refused", "a wrong key is refused");
    report.assert_ok("shows-data", "with the key the console shows the services");
    pipeline.stop().await
}
