//! The tonic `QueryService`: protobuf in, [`QueryApi`] in the middle,
//! protobuf out; errors become statuses through [`QueryError`]'s one mapping.
use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};
use tributary_proto::v1::{
    self as proto, GetAggregatesRequest, GetAggregatesResponse, GetPriceAccuracyRequest,
    GetPriceAccuracyResponse, query_service_server::QueryService,
};

use super::{accuracy::PriceAccuracy, api::QueryApi, rollup::BucketAggregate};

/// `QueryService` over a [`QueryApi`].
#[derive(Debug, Clone)]
pub struct QueryGrpc {
    api: QueryApi,
}

impl QueryGrpc {
    /// Serves `api`.
    pub fn new(api: QueryApi) -> Self {
        Self { api }
    }
}

#[tonic::async_trait]
impl QueryService for QueryGrpc {
    async fn get_aggregates(
        &self,
        request: Request<GetAggregatesRequest>,
    ) -> Result<Response<GetAggregatesResponse>, Status> {
        let page = self
            .api
            .aggregates(request.into_inner())
            .await
            .map_err(Status::from)?;
        Ok(Response::new(GetAggregatesResponse {
            aggregates: page.aggregates.into_iter().map(aggregate).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_price_accuracy(
        &self,
        request: Request<GetPriceAccuracyRequest>,
    ) -> Result<Response<GetPriceAccuracyResponse>, Status> {
        let report = self
            .api
            .price_accuracy(request.into_inner())
            .await
            .map_err(Status::from)?;
        Ok(Response::new(GetPriceAccuracyResponse {
            accuracy: report.accuracy.into_iter().map(accuracy).collect(),
        }))
    }
}

fn timestamp(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    })
}

fn aggregate(a: BucketAggregate) -> proto::Aggregate {
    proto::Aggregate {
        event_type: a.event_type,
        key: a.key,
        window_start: timestamp(a.window_start),
        window_end: timestamp(a.window_end),
        count: a.count,
        distinct_count: a.distinct_count,
        min: a.min,
        max: a.max,
        sum: a.sum,
        avg: a.avg,
        last: a.last,
        revisions: a.revisions,
    }
}

fn accuracy(a: PriceAccuracy) -> proto::PriceAccuracy {
    proto::PriceAccuracy {
        pair: a.pair,
        source: a.source,
        window_start: timestamp(a.window_start),
        source_avg: a.source_avg,
        others_mean: a.others_mean,
        percent_difference: a.percent_difference,
    }
}
