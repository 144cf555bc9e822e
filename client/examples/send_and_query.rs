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
    for outcome in outcomes {
        match outcome.await? {
            Outcome::Acked(ack) => {
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
    for aggregate in client.aggregates(request).collect().await? {
        println!(
            "{} count={} avg={:?}",
            aggregate.key, aggregate.count, aggregate.avg
        );
    }
    Ok(())
}
