//! Partition revocations, reported by the consumer's rebalance callback and
//! picked up by the processing loop, which then forgets those partitions'
//! windows: the next owner rebuilds them from the committed offsets.
use std::sync::Mutex;

use rdkafka::{
    ClientContext,
    consumer::{BaseConsumer, ConsumerContext, Rebalance},
};

/// A consumer context that remembers revoked partitions.
#[derive(Default)]
pub struct RevocationLog {
    revoked: Mutex<Vec<(String, i32)>>,
}

impl RevocationLog {
    /// The partitions revoked since the last call.
    pub fn take(&self) -> Vec<(String, i32)> {
        std::mem::take(&mut *self.revoked.lock().expect("revocation lock"))
    }
}

static CONSUMER_LAG: std::sync::LazyLock<prometheus::IntGaugeVec> =
    std::sync::LazyLock::new(|| {
        prometheus::register_int_gauge_vec!(
            "tributary_consumer_lag",
            "Records between a partition's high watermark and the consumer's position.",
            &["topic", "partition"]
        )
        .expect("metric registers once")
    });

impl ClientContext for RevocationLog {
    /// librdkafka's statistics (every `statistics.interval.ms`) carry each
    /// assigned partition's lag.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    CONSUMER_LAG
                        .with_label_values(&[topic.as_str(), &partition.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for RevocationLog {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let mut revoked = self.revoked.lock().expect("revocation lock");
            for p in partitions.elements() {
                revoked.push((p.topic().to_string(), p.partition()));
            }
            tracing::info!(count = partitions.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(count = partitions.count(), "partitions assigned")
            }
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }
}
