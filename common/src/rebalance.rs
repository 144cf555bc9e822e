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

impl ClientContext for RevocationLog {}

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
}
