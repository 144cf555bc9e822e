//! The README's run command: `tributary-stack` brings the stack up (database,
//! broker, registry, topics, schemas, the services with their metrics, the
//! console), prints its endpoints, and stops every process cleanly on SIGTERM
//! or Ctrl-C.
use std::{process::Stdio, time::Duration};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use sqlx::Connection as _;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::Command,
};
use tributary_common::{config::KafkaArgs, kafka};
use tributary_stack::postgres::TestDatabase;

#[tokio::test]
async fn the_stack_comes_up_with_topics_schemas_and_ingest_and_stops_cleanly_on_sigterm()
-> anyhow::Result<()> {
    comes_up_and_stops_cleanly("tansu", "Kafka (Tansu)    ").await
}

#[tokio::test]
async fn the_stack_on_apache_kafka_comes_up_with_topics_schemas_and_ingest_and_stops_cleanly()
-> anyhow::Result<()> {
    comes_up_and_stops_cleanly("kafka", "Kafka (Apache)   ").await
}

async fn comes_up_and_stops_cleanly(broker: &str, banner: &str) -> anyhow::Result<()> {
    let bin_dir = tributary_stack::binaries::build_service_binaries()?;
    let holder = TestDatabase::create().await?;
    // A database the launcher must create itself.
    let database_url = format!("{}_stack", holder.url());
    // Kafka's controller listens on the port after the broker's.
    let (kafka_port, registry_port) = (listen_ports(2)?, listen_ports(1)?);
    let (grpc_port, http_port) = (listen_ports(1)?, listen_ports(1)?);
    // The services' metrics on base+1..=base+4, the console on its own port.
    let (metrics_base, console_port) = (listen_ports(5)?, listen_ports(1)?);
    let data_dir = std::env::temp_dir().join(format!("tributary-stack-test-{kafka_port}"));

    let mut launcher = Command::new(env!("CARGO_BIN_EXE_tributary-stack"))
        .args(["--broker", broker])
        .args(["--partitions", "2", "--kafka-port", &kafka_port.to_string()])
        .args(["--registry-addr", &format!("127.0.0.1:{registry_port}")])
        .args(["--ingest-grpc-addr", &format!("127.0.0.1:{grpc_port}")])
        .args(["--ingest-http-addr", &format!("127.0.0.1:{http_port}")])
        .args(["--metrics-port-base", &metrics_base.to_string()])
        .args(["--console-addr", &format!("127.0.0.1:{console_port}")])
        .args(["--database-url", &database_url])
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--bin-dir")
        .arg(&bin_dir)
        .env("TRIBUTARY_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;

    let mut lines = BufReader::new(launcher.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            let done = line.starts_with("  Logs");
            printed.push(line);
            if done {
                break;
            }
        }
        anyhow::Ok(())
    })
    .await??;
    let printed = printed.join("\n");
    assert!(printed.contains("Tributary local stack is up"), "{printed}");
    assert!(
        printed.contains(&format!("{banner}127.0.0.1:{kafka_port}")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "Schema Registry  http://127.0.0.1:{registry_port}"
        )),
        "{printed}"
    );

    assert!(
        printed.contains(&format!(
            "Console          http://127.0.0.1:{console_port}/"
        )),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "Metrics          registry http://127.0.0.1:{}/metrics",
            metrics_base + 1
        )),
        "{printed}"
    );
    // The console serves its page, and every service its metrics.
    let page = reqwest::get(format!("http://127.0.0.1:{console_port}/")).await?;
    assert!(page.status().is_success(), "console: {page:?}");
    assert!(
        page.text().await?.contains("<html"),
        "the console's page is HTML"
    );
    for offset in 1..=4 {
        let metrics = reqwest::get(format!(
            "http://127.0.0.1:{}/metrics",
            metrics_base + offset
        ))
        .await?;
        assert!(metrics.status().is_success(), "metrics port base+{offset}");
    }

    let subjects: Vec<String> = reqwest::get(format!("http://127.0.0.1:{registry_port}/subjects"))
        .await?
        .json()
        .await?;
    assert_eq!(
        subjects,
        [
            "tributary.aggregates-value",
            "tributary.events.ad_click-value",
            "tributary.events.price_tick-value"
        ]
    );
    let kafka_args = KafkaArgs::for_brokers(format!("127.0.0.1:{kafka_port}"));
    // The banner lists every topic on the broker.
    let on_broker = kafka::topic_names(&kafka_args).await?;
    assert!(on_broker.contains(&"tributary.events.ad_click".to_string()));
    assert!(
        printed.contains(&format!("   topics: {}\n", on_broker.join(", "))),
        "{printed}"
    );
    let consumer: BaseConsumer = kafka::client_config(&kafka_args).create()?;
    let metadata =
        consumer.fetch_metadata(Some("tributary.events.ad_click"), Duration::from_secs(10))?;
    assert_eq!(metadata.topics()[0].partitions().len(), 2);

    // Ingest is reachable on both of its endpoints and stores an event.
    let submitted = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http_port}/submit"))
        .json(&serde_json::json!({
            "ip_address": "203.0.113.7", "user_agent": "curl", "referring_url": "https://example.com/",
            "advertiser_id": "adv-1", "metadata": {}
        }))
        .send()
        .await?;
    assert_eq!(submitted.status().as_u16(), 204);
    // The processor turns it into an aggregate.
    let aggregates: rdkafka::consumer::StreamConsumer =
        kafka::consumer_config(&kafka_args, "launcher-test").create()?;
    aggregates.subscribe(&["tributary.aggregates"])?;
    let aggregate = tokio::time::timeout(Duration::from_secs(60), aggregates.recv()).await??;
    let key =
        String::from_utf8_lossy(rdkafka::Message::key(&aggregate).unwrap_or_default()).into_owned();
    assert!(key.starts_with("ad_click|adv-1|"), "{key}");
    // The sink writes it to Postgres.
    let pool = sqlx::PgPool::connect(&database_url).await?;
    let mut stored = None;
    for _ in 0..300 {
        stored = sqlx::query_scalar::<_, i64>(
            "SELECT count FROM aggregates WHERE event_type = 'ad_click' AND group_key = 'adv-1'",
        )
        .fetch_optional(&pool)
        .await?;
        if stored.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stored, Some(1), "the aggregate never reached Postgres");
    pool.close().await;
    let grpc_addr = format!("127.0.0.1:{grpc_port}");
    let listed = tokio::task::spawn_blocking(move || {
        std::process::Command::new("grpcurl")
            .args(["-plaintext", &grpc_addr, "list"])
            .output()
    })
    .await??;
    assert!(
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .any(|l| l == "tributary.v1.IngestService"),
        "grpcurl list: {listed:?}"
    );

    let pid = nix::unistd::Pid::from_raw(launcher.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
    let status = tokio::time::timeout(Duration::from_secs(30), launcher.wait()).await??;
    assert!(status.success(), "launcher exited with {status}");
    assert!(
        reqwest::get(format!("http://127.0.0.1:{registry_port}/subjects"))
            .await
            .is_err(),
        "the registry is still running after the stack stopped"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", grpc_port)).is_err(),
        "ingest is still running after the stack stopped"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", console_port)).is_err(),
        "the console is still running after the stack stopped"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", kafka_port)).is_err(),
        "the broker is still running after the stack stopped"
    );

    let mut admin = sqlx::PgConnection::connect(&format!(
        "{}/postgres",
        tributary_stack::postgres::test_server_url()
    ))
    .await?;
    sqlx::query(&format!(
        "DROP DATABASE \"{}_stack\" WITH (FORCE)",
        holder.name()
    ))
    .execute(&mut admin)
    .await?;
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}

/// A free port whose next port is free too: the launcher puts Apache
/// Kafka's controller on `--kafka-port` + 1, and a port another test's
/// service holds made the broker fail to start.
/// Ports the stack is told to listen on are chosen below the kernel's
/// ephemeral range (32768-60999 here): a port `bind(0)` picks there may be
/// taken, in the seconds before the stack binds it, as the source port of any
/// outgoing connection on the machine (CI once failed with ingest's HTTP
/// port in use). Returns the first of `count` consecutive free ports.
fn listen_ports(count: u16) -> anyhow::Result<u16> {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_000;
    // Each process of this test binary starts at a random place (the
    // standard library seeds every RandomState at random), so the two tests,
    // run at once by consecutive processes, do not pick the same ports.
    use std::hash::BuildHasher as _;
    let start =
        (std::collections::hash_map::RandomState::new().hash_one(0u8) % u64::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let offset = NEXT.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
        let first = LOW + (start + offset) % (SPAN - count);
        if (first..first + count).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return Ok(first);
        }
    }
    anyhow::bail!("no {count} consecutive free ports below the ephemeral range")
}
