//! The query API as one value: the database pool (or its absence) and the
//! processor's window size, answering parsed requests. The gRPC service and
//! the HTTP routes both call it, so both apply the same rules.
use std::time::Duration;

use sqlx::{PgPool, postgres::PgPoolOptions};
use tributary_proto::v1::{GetAggregatesRequest, GetPriceAccuracyRequest};

use super::{
    accuracy::{self, AccuracyReport},
    error::QueryError,
    request::{AccuracyQuery, AggregatesQuery},
    rollup::{self, AggregatesPage},
};

/// Connections the query API keeps to Postgres at most.
pub const MAX_CONNECTIONS: u32 = 8;
/// How long a query waits for a connection before answering UNAVAILABLE.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers query requests.
#[derive(Debug, Clone)]
pub struct QueryApi {
    pool: Option<PgPool>,
    window: Duration,
}

impl QueryApi {
    /// Queries `pool`; `window` is the processor's window size (positive).
    pub fn new(pool: PgPool, window: Duration) -> Self {
        assert!(!window.is_zero(), "the window size must be positive");
        Self {
            pool: Some(pool),
            window,
        }
    }

    /// Queries the database at `database_url`, connecting on first use, so
    /// the service starts even while Postgres is down (queries then answer
    /// UNAVAILABLE). Fails only on a malformed URL.
    pub fn connect_lazy(database_url: &str, window: Duration) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy(database_url)?;
        Ok(Self::new(pool, window))
    }

    /// Answers every request with [`QueryError::NotConfigured`].
    pub fn not_configured() -> Self {
        Self {
            pool: None,
            window: Duration::from_secs(60),
        }
    }

    /// The processor's window size this API assumes.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Whether the database answers a trivial statement (within
    /// [`ACQUIRE_TIMEOUT`] to get a connection).
    pub async fn reachable(&self) -> bool {
        match &self.pool {
            Some(pool) => sqlx::query("SELECT 1").execute(pool).await.is_ok(),
            None => false,
        }
    }

    fn pool(&self) -> Result<&PgPool, QueryError> {
        self.pool.as_ref().ok_or(QueryError::NotConfigured)
    }

    /// One page of aggregates. A type that is neither built in nor has any
    /// stored row is refused (checked only when the page is empty, so a
    /// normal page costs one statement).
    pub async fn aggregates(
        &self,
        request: GetAggregatesRequest,
    ) -> Result<AggregatesPage, QueryError> {
        let pool = self.pool()?;
        let query = AggregatesQuery::parse(request, self.window)?;
        let page = rollup::fetch_page(pool, &query).await?;
        if page.aggregates.is_empty()
            && !query.is_built_in()
            && !rollup::type_has_rows(pool, &query.event_type).await?
        {
            return Err(QueryError::invalid(
                "event_type",
                format!(
                    "unknown event type `{}`: it is not built in and has no stored aggregates",
                    query.event_type
                ),
            ));
        }
        Ok(page)
    }

    /// The accuracy of every price source.
    pub async fn price_accuracy(
        &self,
        request: GetPriceAccuracyRequest,
    ) -> Result<AccuracyReport, QueryError> {
        let pool = self.pool()?;
        let query = AccuracyQuery::parse(request, self.window)?;
        accuracy::report(pool, &query).await
    }
}
