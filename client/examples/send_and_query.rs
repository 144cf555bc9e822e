//! Streams a few price ticks to a local stack (`dev/up`) and prints the
//! aggregates of the last hour. Run: `cargo run -p tributary-client --example
//! send_and_query` (set `TRIBUTARY_URL` / `TRIBUTARY_API_KEY` if needed).
use tributary_client::{ClientBuilder, Outcome, SenderOptions, event, proto::GetAggregatesRequest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url =
        std::env::var("TRIBUTARY_URL").unwrap_or_else(|_| tributary_client::DEFAULT_URL.into());
    let mut builder = ClientBuilder::new(url);
    if let Ok(key) = std::env::var("TRIBUTARY_API_KEY") {
        builder = builder.api_key(key);
    }
    let client = builder.build()?;

    let sender = client.sender(SenderOptions::default());
    let mut outcomes = Vec::new();
    for (source, price) in [
        ("coinbase", 3012.5),
        ("kraken", 3011.0),
        ("contract", 3000.0),
    ] {
        outcomes.push(
            sender
                .send(event::price_tick("ETH-USD", source, price).build())
                .await?,
        );
    }
    sender.close().await?;
    let mut acked = 0;
    for outcome in outcomes {
        match outcome.await? {
            Outcome::Acked(ack) => {
                acked += 1;
                println!("acked: {}/{}@{}", ack.topic, ack.partition, ack.offset)
            }
            Outcome::Rejected(error) => println!("rejected: {}: {}", error.field, error.message),
        }
    }

    let now = chrono::Utc::now();
    let request = GetAggregatesRequest {
        event_type: "price_tick".into(),
        start_time: Some(event::timestamp(now - chrono::Duration::hours(1))),
        end_time: Some(event::timestamp(now + chrono::Duration::minutes(1))),
        ..Default::default()
    };
    // Aggregates are windowed by the processor and written by the sink:
    // wait (up to a minute) until every acknowledged tick is counted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let aggregates = client.aggregates(request.clone()).collect().await?;
        let counted: i64 = aggregates.iter().map(|a| a.count).sum();
        if counted >= acked as i64 || std::time::Instant::now() > deadline {
            for aggregate in aggregates {
                println!(
                    "{} count={} avg={:?}",
                    aggregate.key, aggregate.count, aggregate.avg
                );
            }
            anyhow::ensure!(
                counted >= acked as i64,
                "only {counted} of {acked} acknowledged ticks were counted within a minute"
            );
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
