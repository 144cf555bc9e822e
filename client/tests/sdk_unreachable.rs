//! A sender that never reaches ingest gives up after `first_connect_timeout`
//! counted from its first attempt, however long it waited for its first event.
use std::time::{Duration, Instant};

use tributary_client::{Client, Error, SenderOptions, event};
use tributary_stack::tansu::free_port;

#[tokio::test]
async fn an_idle_sender_still_tries_for_the_whole_first_connect_timeout() -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{}", free_port()?);
    let sender = Client::new(url.clone())?.sender(SenderOptions {
        first_connect_timeout: Duration::from_secs(2),
        ..Default::default()
    });
    // Idle for longer than the timeout before the first event.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = Instant::now();
    let pending = sender
        .send(event::price_tick("ETH-USD", "a", 1.0).build())
        .await?;
    let outcome = pending.await;
    let tried_for = sent.elapsed();
    assert!(
        matches!(&outcome, Err(Error::Unreachable { url: u, .. }) if *u == url),
        "{outcome:?}"
    );
    assert!(tried_for >= Duration::from_secs(2), "{tried_for:?}");
    assert!(matches!(
        sender.close().await,
        Err(Error::Unreachable { .. })
    ));
    Ok(())
}
