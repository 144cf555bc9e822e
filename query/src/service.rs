//! The query API mounted on an [`Edge`]: the gRPC `QueryService` (one rate
//! limit token per call), the JSON routes and their OpenAPI fragment, and a
//! readiness check that pings the database. Served alone by
//! `tributary-query`, or beside ingest by `tributary-server`.
use std::{future::Future, pin::Pin, time::Duration};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::interceptor::InterceptedService};
use tributary_edge::{Edge, EdgeService, auth::Charge, readiness};
use tributary_proto::v1::query_service_server::QueryServiceServer;

use crate::{
    QueryApi, QueryGrpc,
    config::QueryArgs,
    http::{self, QueryRoutes, QueryState},
};
use utoipa::OpenApi as _;

/// The gRPC service name the query API's readiness is reported under.
pub const QUERY_SERVICE: &str = <QueryServiceServer<QueryGrpc> as NamedService>::NAME;

/// How often the database is pinged for readiness.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The query API, ready to mount.
pub struct QueryService {
    api: QueryApi,
}

impl QueryService {
    /// Over the database of `args` (connected on first use).
    pub fn new(args: &QueryArgs) -> anyhow::Result<Self> {
        anyhow::ensure!(!args.window.is_zero(), "--window must be positive");
        let api = QueryApi::connect_lazy(&args.database_url, args.window)
            .context("invalid --database-url (DATABASE_URL)")?;
        Ok(Self { api })
    }

    /// Over an existing API (tests).
    pub fn from_api(api: QueryApi) -> Self {
        Self { api }
    }
}

impl EdgeService for QueryService {
    /// Adds the gRPC service, the JSON routes, their OpenAPI fragment and a
    /// readiness check (the database, pinged until `stop`) to `edge`.
    fn mount(&self, edge: &mut Edge, stop: &CancellationToken) {
        let access = edge.access().clone();
        edge.grpc().add_service(InterceptedService::new(
            QueryServiceServer::new(QueryGrpc::new(self.api.clone())),
            access.guard(Charge::PerCall),
        ));
        edge.http(http::router(QueryState {
            api: self.api.clone(),
            access,
        }));
        edge.document(QueryRoutes::openapi());
        let check = edge.readiness_check(QUERY_SERVICE);
        let api = self.api.clone();
        tokio::spawn(readiness::watch(
            check,
            CHECK_INTERVAL,
            stop.clone(),
            move || {
                let api = api.clone();
                async move {
                    if api.reachable().await {
                        Ok(())
                    } else {
                        Err("the database is unreachable".to_string())
                    }
                }
            },
        ));
    }

    /// Nothing to finish: queries are answered before the edge stops.
    fn drain(self: Box<Self>) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> {
        Box::pin(async { Ok(()) })
    }
}
