//! A partition the processor has not got to is not idle: while it waits on
//! another partition's record (here, for a registry that is down), the
//! records waiting on the other partitions keep their place and count when
//! it resumes, instead of turning late because no record of theirs was
//! handled for longer than the idle delay.
use std::{net::SocketAddr, time::Duration};

use apache_avro::{types::Value, writer::datum::GenericDatumWriter};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tributary_common::{kafka, schemas, wire};
use tributary_registry::config::RegistryConfig;
use tributary_stack::{TestStack, bootstrap, processor, registry::RunningRegistry, sink};

/// A framed `ad_click` record of built-in schema version `version`.
fn ad_click(version: u32, id: u32, advertiser: &str, at_ms: i64) -> anyhow::Result<Vec<u8>> {
    let schema = schemas::versions(schemas::AD_CLICK)
        .find(|s| s.version == version)
        .expect("a built-in version")
        .parse();
    let mut fields = vec![
        (
            "ip_address".to_string(),
            Value::String("203.0.113.7".into()),
        ),
        ("user_agent".into(), Value::String("stall".into())),
        (
            "referring_url".into(),
            Value::String("https://example.com/".into()),
        ),
        ("advertiser_id".into(), Value::String(advertiser.into())),
        ("metadata".into(), Value::String("{}".into())),
        ("event_time".into(), Value::TimestampMillis(at_ms)),
    ];
    if version >= 2 {
        fields.push(("campaign_id".into(), Value::Union(0, Box::new(Value::Null))));
    }
    let body = GenericDatumWriter::builder(&schema)
        .build()?
        .write_value_to_vec(Value::Record(fields))?;
    let mut out = Vec::new();
    wire::frame_into(id, &body, &mut out);
    Ok(out)
}

#[tokio::test]
async fn records_waiting_behind_a_stalled_partition_still_count() -> anyhow::Result<()> {
    let mut stack = TestStack::start().await?;
    let kafka_args = stack.kafka();
    bootstrap::create_topics(&kafka_args, 2).await?;
    let registered = bootstrap::register_schemas(&kafka_args, &stack.registry_args()).await?;
    let subject = schemas::value_subject(&kafka_args.event_topic(schemas::AD_CLICK));
    let id = |version: u32| {
        registered
            .iter()
            .find(|r| r.subject == subject && r.version == version)
            .map(|r| r.id)
            .expect("registered")
    };
    let sink = sink::start(&stack, |_| {}).await?;
    // One-second windows, one second of lateness, idle after 2 s.
    let processor = processor::start(&stack, |config| {
        processor::quick_windows(config);
        config.window = Duration::from_secs(1);
        config.allowed_lateness = Duration::from_secs(1);
    })
    .await?;
    let producer: FutureProducer = kafka::producer_config(&kafka_args).create()?;
    let topic = kafka_args.event_topic(schemas::AD_CLICK);
    let send = async |partition: i32, payload: Vec<u8>, key: &str| {
        producer
            .send(
                FutureRecord::to(&topic)
                    .partition(partition)
                    .key(key)
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map(drop)
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))
    };

    // Partition 1 is processed once with v2, whose writer schema is then cached.
    let start = chrono::Utc::now().timestamp_millis();
    send(1, ad_click(2, id(2), "adv-b", start)?, "adv-b").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The registry goes down; partition 0 gets a v1 record (not cached: the
    // processor waits for the registry), partition 1 three more v2 records.
    let addr: SocketAddr = stack.registry.addr();
    let database_url = stack.database.url().to_string();
    // A stand-in on another port keeps the stack whole; the services know
    // only the stopped one's address.
    let stand_in = RunningRegistry::start(&database_url).await?;
    std::mem::replace(&mut stack.registry, stand_in)
        .stop()
        .await;
    let now = chrono::Utc::now().timestamp_millis();
    send(0, ad_click(1, id(1), "adv-a", now)?, "adv-a").await?;
    // The processor is now stuck on that record: these wait behind it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..3 {
        send(1, ad_click(2, id(2), "adv-b", now + i)?, "adv-b").await?;
    }
    // Longer than the idle delay plus a window plus the lateness.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let restarted = RunningRegistry::start_with(RegistryConfig::new(addr, &database_url)).await?;
    let _stopped = std::mem::replace(&mut stack.registry, restarted);

    let pool = sqlx::PgPool::connect(&database_url).await?;
    let total = async |key: &str| -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar::<_, Option<i64>>(
            "SELECT sum(count)::int8 FROM aggregates WHERE event_type = 'ad_click' AND group_key = $1",
        )
        .bind(key)
        .fetch_one(&pool)
        .await?
        .unwrap_or(0))
    };
    let mut counts = (0, 0);
    for _ in 0..150 {
        counts = (total("adv-a").await?, total("adv-b").await?);
        if counts == (1, 4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        counts,
        (1, 4),
        "(adv-a, adv-b): every record counts, none dead-lettered as late"
    );
    processor.shutdown().await?;
    sink.shutdown().await?;
    Ok(())
}
