//! Reading aggregates back: [`AggregatePages`] calls `GetAggregates` page by
//! page, passing each `next_page_token` on with the other parameters
//! unchanged, until the last (empty-token) page.
use crate::{
    connect::QueryClient,
    error::Result,
    proto::{Aggregate, GetAggregatesRequest},
};

/// The pages of one `GetAggregates` query; see [`Client::aggregates`](crate::Client::aggregates).
pub struct AggregatePages {
    client: QueryClient,
    request: GetAggregatesRequest,
    done: bool,
}

impl AggregatePages {
    pub(crate) fn new(client: QueryClient, request: GetAggregatesRequest) -> Self {
        Self {
            client,
            request,
            done: false,
        }
    }

    /// The next page, or `None` after the last one.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> anyhow::Result<()> {
    /// use tributary_client::{Client, proto::GetAggregatesRequest};
    ///
    /// let client = Client::new("http://127.0.0.1:50051")?;
    /// let mut pages = client.aggregates(GetAggregatesRequest {
    ///     event_type: "price_tick".into(),
    ///     page_size: 500,
    ///     ..Default::default()
    /// });
    /// while let Some(page) = pages.next_page().await? {
    ///     for aggregate in page {
    ///         println!("{} {}", aggregate.key, aggregate.count);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_page(&mut self) -> Result<Option<Vec<Aggregate>>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .client
            .get_aggregates(self.request.clone())
            .await?
            .into_inner();
        self.done = page.next_page_token.is_empty();
        self.request.page_token = page.next_page_token;
        Ok(Some(page.aggregates))
    }

    /// Every aggregate of every remaining page.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> anyhow::Result<()> {
    /// use tributary_client::{Client, proto::GetAggregatesRequest};
    ///
    /// let client = Client::new("http://127.0.0.1:50051")?;
    /// let request = GetAggregatesRequest { event_type: "ad_click".into(), ..Default::default() };
    /// let total: i64 = client.aggregates(request).collect().await?.iter().map(|a| a.count).sum();
    /// # Ok(()) }
    /// ```
    pub async fn collect(mut self) -> Result<Vec<Aggregate>> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page);
        }
        Ok(all)
    }
}
