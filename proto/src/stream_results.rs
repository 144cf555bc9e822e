//! The compact answers of `SubmitEvents`: events sent many to a message
//! (`SubmitEventsRequest.events`) are answered by responses whose `acked`
//! runs and `errors` cover consecutive events. Ingest builds them with
//! [`CompactResults`]; clients read them back into one result per event with
//! [`results`].
use crate::v1::{AckedEvents, EventAck, EventResult, SubmitEventsResponse, event_result::Outcome};

/// A response being built from consecutive events' results, in index order.
#[derive(Debug, Default)]
pub struct CompactResults {
    response: SubmitEventsResponse,
    events: usize,
}

impl CompactResults {
    /// Adds the result of the event after the last one added.
    pub fn push(&mut self, result: EventResult) {
        self.events += 1;
        let Some(Outcome::Ack(ack)) = result.outcome else {
            self.response.errors.push(result);
            return;
        };
        if let Some(run) = self.response.acked.last_mut()
            && run.first_index + run.offsets.len() as u64 == result.index
            && run.topic == ack.topic
            && run.schema_id == ack.schema_id
        {
            run.partitions.push(ack.partition);
            run.offsets.push(ack.offset);
            return;
        }
        self.response.acked.push(AckedEvents {
            first_index: result.index,
            topic: ack.topic,
            schema_id: ack.schema_id,
            partitions: vec![ack.partition],
            offsets: vec![ack.offset],
        });
    }

    /// How many events the response answers so far.
    pub fn len(&self) -> usize {
        self.events
    }

    /// Whether no event has been added since the last [`Self::take`].
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// The response answering every event added since the last call, if any.
    pub fn take(&mut self) -> Option<SubmitEventsResponse> {
        if self.events == 0 {
            return None;
        }
        self.events = 0;
        Some(std::mem::take(&mut self.response))
    }
}

/// The results a response carries, one per event, in index order: its
/// `result`, or its `acked` runs and `errors` merged.
pub fn results(response: SubmitEventsResponse) -> Vec<EventResult> {
    let SubmitEventsResponse {
        result,
        acked,
        errors,
    } = response;
    let mut results: Vec<EventResult> = result.into_iter().collect();
    for run in acked {
        let AckedEvents {
            first_index,
            topic,
            schema_id,
            partitions,
            offsets,
        } = run;
        results.extend(partitions.into_iter().zip(offsets).zip(0..).map(
            |((partition, offset), i)| EventResult {
                index: first_index + i,
                outcome: Some(Outcome::Ack(EventAck {
                    topic: topic.clone(),
                    partition,
                    offset,
                    schema_id,
                })),
            },
        ));
    }
    results.extend(errors);
    results.sort_by_key(|r| r.index);
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{EventError, EventErrorCode};

    fn ack(index: u64, topic: &str, schema_id: i32, partition: i32, offset: i64) -> EventResult {
        EventResult {
            index,
            outcome: Some(Outcome::Ack(EventAck {
                topic: topic.into(),
                partition,
                offset,
                schema_id,
            })),
        }
    }

    fn error(index: u64) -> EventResult {
        EventResult {
            index,
            outcome: Some(Outcome::Error(EventError {
                code: EventErrorCode::InvalidArgument as i32,
                field: "ad_click.ip_address".into(),
                message: "bad".into(),
            })),
        }
    }

    #[test]
    fn consecutive_acks_of_one_topic_and_schema_share_a_run_and_read_back_in_order() {
        let sent = vec![
            ack(7, "clicks", 1, 0, 10),
            ack(8, "clicks", 1, 2, 4),
            error(9),
            ack(10, "clicks", 1, 1, 5),
            ack(11, "ticks", 2, 0, 3),
            ack(12, "ticks", 3, 0, 4),
        ];
        let mut compact = CompactResults::default();
        for result in sent.clone() {
            compact.push(result);
        }
        assert_eq!(compact.len(), 6);
        let response = compact.take().unwrap();
        assert!(compact.is_empty() && compact.take().is_none());
        // 7-8 one run; the error breaks it; a new topic and a new schema id too.
        let runs: Vec<(u64, usize)> = response
            .acked
            .iter()
            .map(|r| (r.first_index, r.offsets.len()))
            .collect();
        assert_eq!(runs, [(7, 2), (10, 1), (11, 1), (12, 1)]);
        assert_eq!(response.errors.len(), 1);
        assert_eq!(results(response), sent);
    }

    #[test]
    fn a_one_event_response_reads_as_its_result() {
        let response = SubmitEventsResponse {
            result: Some(error(3)),
            ..Default::default()
        };
        assert_eq!(results(response), vec![error(3)]);
    }
}
