//! Partition revocations, reported by the consumer's rebalance callback and
//! picked up by the processing loop, which then forgets those partitions'
//! windows: the next owner rebuilds them from the committed offsets.
//!
//! The context also keeps `tributary_consumer_lag` (one series per assigned
//! partition, from librdkafka's statistics): a revoked partition's series is
//! removed, and statistics for partitions outside the current assignment
//! (librdkafka may list a revoked partition for a while) are ignored, so a
//! consumer left without partitions carries no lag series.
use std::{collections::HashSet, sync::Mutex};

use rdkafka::{
    ClientContext,
    consumer::{BaseConsumer, ConsumerContext, Rebalance},
};

/// A consumer context that remembers revoked partitions.
#[derive(Default)]
pub struct RevocationLog {
    revoked: Mutex<Vec<(String, i32)>>,
    /// The current assignment (added on assign, removed on revoke: right
    /// for both eager and cooperative rebalancing).
    assigned: Mutex<HashSet<(String, i32)>>,
}

impl RevocationLog {
    /// The partitions revoked since the last call.
    pub fn take(&self) -> Vec<(String, i32)> {
        std::mem::take(&mut *self.revoked.lock().expect("revocation lock"))
    }

    /// Notes an assignment (what `post_rebalance` does on `Assign`).
    fn assign(&self, partitions: impl IntoIterator<Item = (String, i32)>) {
        let mut assigned = self.assigned.lock().expect("assignment lock");
        assigned.extend(partitions);
    }

    /// Notes a revocation (what `pre_rebalance` does on `Revoke`): the
    /// partitions are handed to the loop and their lag series removed.
    fn revoke(&self, partitions: impl IntoIterator<Item = (String, i32)>) {
        let mut assigned = self.assigned.lock().expect("assignment lock");
        let mut revoked = self.revoked.lock().expect("revocation lock");
        for (topic, partition) in partitions {
            assigned.remove(&(topic.clone(), partition));
            // Absent when no statistics came since the assignment: fine.
            let _ = CONSUMER_LAG.remove_label_values(&[topic.as_str(), &partition.to_string()]);
            revoked.push((topic, partition));
        }
    }

    /// Records the lag of `partition` if it is assigned.
    fn lag(&self, topic: &str, partition: i32, lag: i64) {
        let assigned = self.assigned.lock().expect("assignment lock");
        if partition >= 0 && lag >= 0 && assigned.contains(&(topic.to_string(), partition)) {
            CONSUMER_LAG
                .with_label_values(&[topic, &partition.to_string()])
                .set(lag);
        }
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
                self.lag(topic, *partition, p.consumer_lag);
            }
        }
    }
}

fn elements(partitions: &rdkafka::TopicPartitionList) -> Vec<(String, i32)> {
    partitions
        .elements()
        .iter()
        .map(|p| (p.topic().to_string(), p.partition()))
        .collect()
}

impl ConsumerContext for RevocationLog {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            self.revoke(elements(partitions));
            tracing::info!(count = partitions.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                self.assign(elements(partitions));
                tracing::info!(count = partitions.count(), "partitions assigned")
            }
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(topic: &str) -> Vec<String> {
        crate::metrics::render()
            .lines()
            .filter(|l| l.starts_with("tributary_consumer_lag{") && l.contains(topic))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn revoked_partitions_lose_their_lag_series_and_stay_lost() {
        let topic = "rebalance-test-topic";
        let log = RevocationLog::default();
        log.assign([(topic.to_string(), 0), (topic.to_string(), 1)]);
        log.lag(topic, 0, 5);
        log.lag(topic, 1, 0);
        log.lag(topic, 2, 7); // not assigned: ignored
        assert_eq!(series(topic).len(), 2, "{:?}", series(topic));

        log.revoke([(topic.to_string(), 0), (topic.to_string(), 1)]);
        assert_eq!(log.take().len(), 2);
        assert!(series(topic).is_empty(), "{:?}", series(topic));
        // Statistics that still list the revoked partitions do not bring
        // them back.
        log.lag(topic, 0, 5);
        assert!(series(topic).is_empty(), "{:?}", series(topic));
    }
}
