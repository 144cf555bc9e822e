//! Dead letters over HTTP: the same reading and replay as `trib dlq`
//! (`tributary_common::dead_letter`), as JSON.
//!
//! Lists are served from a snapshot of the [`DeadLetterCache`]: the newest
//! [`read::MAX_CACHED_PER_PARTITION`] dead letters of each partition,
//! without payloads. A list starts a refresh (one at a time: requests
//! arriving while one runs wait for it instead of reading the topic again)
//! and answers from the snapshot it made, waiting at most [`LIST_WAIT`]
//! (then with the snapshot there is and `complete: false`). `show` reads the
//! one record, payload included, from the broker.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json,
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tributary_common::config::KafkaArgs;
use tributary_common::dead_letter::{
    read::{self, Detail, ReasonCount, Summary},
    replay::{self, Report, Selection},
};
use tributary_edge::error::ApiError;

use crate::{params::Params, server::AppState};

/// How many dead letters a list returns by default.
pub const DEFAULT_LIMIT: usize = 100;

/// How long a list waits for the refresh it started (or found running).
pub const LIST_WAIT: Duration = Duration::from_secs(30);

/// The console's dead letters: a [`read::Cache`] refreshed by one task at a
/// time, and the snapshot lists are answered from.
pub struct DeadLetterCache {
    cache: Arc<tokio::sync::Mutex<read::Cache>>,
    snapshot: Arc<watch::Sender<Arc<Snapshot>>>,
}

/// What a refresh left.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The dead letters kept, newest first (no payloads).
    pub letters: Vec<read::DeadLetter>,
    /// The refresh read every partition to its end.
    pub complete: bool,
    /// When the refresh ended (`None` before the first).
    pub refreshed_at: Option<Instant>,
    /// Why the refresh failed, if it did.
    pub error: Option<String>,
}

impl Default for DeadLetterCache {
    fn default() -> Self {
        Self {
            cache: Arc::default(),
            snapshot: Arc::new(watch::Sender::new(Arc::default())),
        }
    }
}

impl DeadLetterCache {
    /// A snapshot made after this call began: refreshed by a task this call
    /// starts or by the one running. After [`LIST_WAIT`] without one, the
    /// latest there is.
    pub async fn current(&self, kafka: &KafkaArgs) -> Arc<Snapshot> {
        let requested = Instant::now();
        let mut updates = self.snapshot.subscribe();
        if let Ok(mut cache) = self.cache.clone().try_lock_owned() {
            // In a task of its own: a request that goes away does not cut
            // the read short, and what it read is kept.
            let (kafka, snapshot) = (kafka.clone(), self.snapshot.clone());
            tokio::spawn(async move {
                let result = cache.refresh(&kafka, &kafka.dead_letter_topic).await;
                snapshot.send_replace(Arc::new(Snapshot {
                    letters: cache.letters().to_vec(),
                    complete: cache.complete() && result.is_ok(),
                    refreshed_at: Some(Instant::now()),
                    error: result.err().map(|e| format!("{e:#}")),
                }));
            });
        }
        let fresh = |s: &Arc<Snapshot>| s.refreshed_at.is_some_and(|t| t >= requested);
        let _ = tokio::time::timeout(LIST_WAIT, updates.wait_for(fresh)).await;
        let latest = self.snapshot.borrow().clone();
        if fresh(&latest) {
            latest
        } else {
            Arc::new(Snapshot {
                letters: latest.letters.clone(),
                complete: false,
                refreshed_at: latest.refreshed_at,
                error: None,
            })
        }
    }
}

/// `GET /api/dead-letters`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterList {
    /// The dead-letter topic.
    pub topic: String,
    /// How many match the filter.
    pub total: usize,
    /// Those counted by reason and source topic.
    pub counts: Vec<ReasonCount>,
    /// The newest `limit` of them, newest first.
    pub dead_letters: Vec<Summary>,
    /// **(addition)** Whether the list is of the whole topic as it is now:
    /// `false` while the first read is still going (or it was cut short by
    /// the read timeout: the next list goes on from there).
    pub complete: bool,
    /// **(addition)** The most dead letters kept per partition (the newest):
    /// `total` and `counts` count only those.
    pub kept_per_partition: i64,
}

fn unavailable(error: anyhow::Error) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("cannot read the dead-letter topic: {error:#}"),
    )
    .logged()
}

fn filter(params: &Params) -> Result<read::Filter, ApiError> {
    Ok(read::Filter {
        reasons: params.all("reason"),
        sources: params.all("source"),
        since: params
            .one("since")
            .map(|s| crate::params::parse_time(s).map_err(|e| ApiError::invalid("since", e)))
            .transpose()?,
    })
}

/// `GET /api/dead-letters?reason=&source=&since=&limit=`: newest first.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeadLetterList>, ApiError> {
    let params = Params::parse(query.as_deref());
    let filter = filter(&params)?;
    let limit = match params.one("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| ApiError::invalid("limit", format!("`{text}` is not a count")))?,
    };
    let kafka = state.kafka();
    // Brought up to date (only what is new is read), then filtered.
    let snapshot = state.dead_letter_cache().current(kafka).await;
    if let Some(error) = &snapshot.error {
        return Err(unavailable(anyhow::anyhow!("{error}")));
    }
    let letters: Vec<&read::DeadLetter> = snapshot
        .letters
        .iter()
        .filter(|l| filter.takes(l))
        .collect();
    Ok(Json(DeadLetterList {
        topic: kafka.dead_letter_topic.clone(),
        total: letters.len(),
        counts: read::count_by_reason(letters.iter().copied()),
        dead_letters: letters.iter().take(limit).map(|l| l.summary()).collect(),
        complete: snapshot.complete,
        kept_per_partition: read::MAX_CACHED_PER_PARTITION,
    }))
}

/// `GET /api/dead-letters/{partition}/{offset}`: one, its payload decoded.
pub async fn show(
    State(state): State<AppState>,
    Path((partition, offset)): Path<(String, String)>,
) -> Result<Json<Detail>, ApiError> {
    let at = read::parse_at(&format!("{partition}/{offset}"))
        .map_err(|e| ApiError::invalid("id", format!("{e:#}")))?;
    let kafka = state.kafka();
    let letter = read::find(kafka, at)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "{} has no record at {partition}/{offset}",
                    kafka.dead_letter_topic
                ),
            )
        })?;
    Ok(Json(state.decoder().detail(&letter).await))
}

/// `POST /api/dead-letters/replay`'s body: ids, or a filter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// `PARTITION/OFFSET` of each dead letter to replay.
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    /// Or those a filter takes.
    #[serde(default)]
    pub filter: Option<ReplayFilter>,
    /// Say what would be replayed; replay nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// A replay filter, as `trib dlq replay` takes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayFilter {
    /// Only these reasons.
    #[serde(default)]
    pub reason: Vec<String>,
    /// Only from these source topics.
    #[serde(default)]
    pub source: Vec<String>,
    /// Only dead-lettered since (a duration back, RFC 3339 or Unix ms).
    #[serde(default)]
    pub since: Option<String>,
}

/// `POST /api/dead-letters/replay`: the replay of `trib dlq replay`, each
/// dead letter at most once; one replay at a time per console.
pub async fn replay(
    State(state): State<AppState>,
    body: Result<Json<ReplayRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Report>, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::invalid("body", e.body_text()))?;
    let selection = match (request.ids, request.filter) {
        (Some(ids), None) => {
            if ids.is_empty() {
                return Err(ApiError::invalid("ids", "no dead letter selected"));
            }
            let ids = ids
                .iter()
                .map(|id| {
                    read::parse_at(id)
                        .map_err(|e| ApiError::invalid("ids", format!("`{id}`: {e:#}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Selection::Ids(ids)
        }
        (None, Some(filter)) => Selection::Filter(read::Filter {
            reasons: filter.reason,
            sources: filter.source,
            since: filter
                .since
                .as_deref()
                .map(|s| {
                    crate::params::parse_time(s).map_err(|e| ApiError::invalid("filter.since", e))
                })
                .transpose()?,
        }),
        _ => {
            return Err(ApiError::invalid(
                "body",
                "give either `ids` (PARTITION/OFFSET strings) or a `filter`",
            ));
        }
    };
    let _one_at_a_time = state.replay_lock().lock().await;
    let report = replay::replay(state.kafka(), &selection, request.dry_run)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("the replay stopped: {e:#}"),
            )
            .logged()
        })?;
    tracing::info!(
        replayed = report.replayed,
        skipped = report.skipped,
        failed = report.failed,
        dry_run = report.dry_run,
        "dead letters replayed from the console"
    );
    Ok(Json(report))
}
