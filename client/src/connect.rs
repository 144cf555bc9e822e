//! Connecting to ingest: [`ClientBuilder`] turns a URL, an optional API key
//! and timeouts into a [`Client`], whose gRPC clients send the key as
//! `authorization: Bearer <key>` on every call. The channel connects lazily
//! and reconnects by itself, so a `Client` outlives restarts of ingest.
//!
//! An `https://` URL connects with TLS, trusting the system's root
//! certificates and, when given, a CA certificate of your own (for a
//! private or self-signed server certificate).
use std::time::Duration;

use tonic::{
    client::Grpc,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

use crate::{
    error::{Error, Result},
    proto::{ingest_service_client::IngestServiceClient, query_service_client::QueryServiceClient},
    query::AggregatePages,
    sender::{Sender, SenderOptions},
};

/// The default ingest gRPC endpoint of the local stack.
pub const DEFAULT_URL: &str = "http://127.0.0.1:50051";

/// The generated ingest client, with the API key interceptor.
pub type IngestClient = IngestServiceClient<InterceptedService<Channel, ApiKey>>;
/// The generated query client, with the API key interceptor.
pub type QueryClient = QueryServiceClient<InterceptedService<Channel, ApiKey>>;
/// The bare gRPC client the generated ones wrap, with the API key
/// interceptor: the streaming sender calls `SubmitEvents` through it with a
/// codec of its own.
pub(crate) type IngestGrpc = Grpc<InterceptedService<Channel, ApiKey>>;

/// Builds a [`Client`].
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), tributary_client::Error> {
/// use std::time::Duration;
/// use tributary_client::ClientBuilder;
///
/// let client = ClientBuilder::new("http://127.0.0.1:50051")
///     .api_key("secret")
///     .connect_timeout(Duration::from_secs(3))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    url: String,
    api_key: Option<String>,
    connect_timeout: Duration,
    tls_ca: Option<Vec<u8>>,
    tls_domain: Option<String>,
}

impl ClientBuilder {
    /// A builder for the ingest gRPC endpoint at `url`, e.g. `http://127.0.0.1:50051`.
    ///
    /// ```
    /// let builder = tributary_client::ClientBuilder::new(tributary_client::DEFAULT_URL);
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            api_key: None,
            connect_timeout: Duration::from_secs(5),
            tls_ca: None,
            tls_domain: None,
        }
    }

    /// Also trusts the PEM CA certificate `pem` for `https://` URLs (the
    /// system's roots are always trusted).
    ///
    /// ```no_run
    /// let ca = std::fs::read("ca.pem").unwrap();
    /// let builder = tributary_client::ClientBuilder::new("https://ingest.example.com:50051").tls_ca_certificate(ca);
    /// ```
    pub fn tls_ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_ca = Some(pem.into());
        self
    }

    /// The name the server certificate must carry, when it differs from the
    /// URL's host.
    ///
    /// ```
    /// let builder = tributary_client::ClientBuilder::new("https://10.0.0.5:50051").tls_domain("ingest.internal");
    /// ```
    pub fn tls_domain(mut self, name: impl Into<String>) -> Self {
        self.tls_domain = Some(name.into());
        self
    }

    /// Sends `key` as `authorization: Bearer <key>` on every call.
    ///
    /// ```
    /// let builder = tributary_client::ClientBuilder::new("http://127.0.0.1:50051").api_key("k");
    /// ```
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Bounds how long establishing a connection may take (default 5 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = tributary_client::ClientBuilder::new("http://127.0.0.1:50051")
    ///     .connect_timeout(Duration::from_millis(500));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Checks the URL and key and returns a client; it connects on first use.
    /// Must be called within a Tokio runtime.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let client = tributary_client::ClientBuilder::new("http://127.0.0.1:50051").build();
    /// assert!(client.is_ok());
    /// let tls = tributary_client::ClientBuilder::new("https://ingest.example.com").build();
    /// assert!(tls.is_ok());
    /// let other = tributary_client::ClientBuilder::new("ftp://ingest.example.com").build();
    /// assert!(other.is_err());
    /// # }
    /// ```
    pub fn build(self) -> Result<Client> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: self.url.clone(),
            reason,
        };
        let tls = if self.url.starts_with("https://") {
            true
        } else if self.url.starts_with("http://") {
            false
        } else {
            return Err(invalid(
                "the URL must start with http:// or https://".into(),
            ));
        };
        let mut endpoint =
            Endpoint::from_shared(self.url.clone()).map_err(|e| invalid(e.to_string()))?;
        if tls {
            let mut config = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &self.tls_ca {
                config = config.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some(domain) = &self.tls_domain {
                config = config.domain_name(domain.clone());
            }
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| invalid(format!("TLS: {e}")))?;
        }
        let endpoint = endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true);
        let api_key = match &self.api_key {
            Some(key) => Some(
                format!("Bearer {key}")
                    .parse()
                    .map_err(|_| Error::InvalidApiKey)?,
            ),
            None => None,
        };
        Ok(Client {
            url: self.url.clone(),
            channel: endpoint.connect_lazy(),
            api_key: ApiKey(api_key),
        })
    }
}

/// A connection to ingest: its gRPC clients, the streaming sender and the
/// query pager. Cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct Client {
    url: String,
    channel: Channel,
    api_key: ApiKey,
}

impl Client {
    /// Shorthand for `ClientBuilder::new(url).build()`.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), tributary_client::Error> {
    /// let client = tributary_client::Client::new("http://127.0.0.1:50051")?;
    /// # Ok(()) }
    /// ```
    pub fn new(url: impl Into<String>) -> Result<Self> {
        ClientBuilder::new(url).build()
    }

    /// The generated `IngestService` client (unary, batch and stream calls).
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> anyhow::Result<()> {
    /// use tributary_client::{Client, event, proto::SubmitEventRequest};
    ///
    /// let client = Client::new("http://127.0.0.1:50051")?;
    /// let event = event::price_tick("ETH-USD", "coinbase", 3012.5).build();
    /// let ack = client.ingest().submit_event(SubmitEventRequest { event: Some(event) }).await?;
    /// println!("{:?}", ack.into_inner().ack);
    /// # Ok(()) }
    /// ```
    pub fn ingest(&self) -> IngestClient {
        IngestServiceClient::with_interceptor(self.channel.clone(), self.api_key.clone())
    }

    /// The generated `QueryService` client.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> anyhow::Result<()> {
    /// use tributary_client::{Client, proto::GetPriceAccuracyRequest};
    ///
    /// let client = Client::new("http://127.0.0.1:50051")?;
    /// let accuracy = client.query().get_price_accuracy(GetPriceAccuracyRequest::default()).await;
    /// # Ok(()) }
    /// ```
    pub fn query(&self) -> QueryClient {
        QueryServiceClient::with_interceptor(self.channel.clone(), self.api_key.clone())
    }

    /// Starts a streaming [`Sender`] on this connection.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> anyhow::Result<()> {
    /// use tributary_client::{Client, SenderOptions, event};
    ///
    /// let client = Client::new("http://127.0.0.1:50051")?;
    /// let sender = client.sender(SenderOptions::default());
    /// let outcome = sender.send(event::price_tick("ETH-USD", "coinbase", 3012.5).build()).await?;
    /// sender.close().await?;
    /// println!("{:?}", outcome.await?);
    /// # Ok(()) }
    /// ```
    pub fn sender(&self, options: SenderOptions) -> Sender {
        let grpc = Grpc::new(InterceptedService::new(
            self.channel.clone(),
            self.api_key.clone(),
        ));
        Sender::start(grpc, self.url.clone(), options)
    }

    /// Pages through `GetAggregates`, following `next_page_token`.
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> anyhow::Result<()> {
    /// use tributary_client::{Client, proto::GetAggregatesRequest};
    ///
    /// let client = Client::new("http://127.0.0.1:50051")?;
    /// let request = GetAggregatesRequest { event_type: "ad_click".into(), ..Default::default() };
    /// let all = client.aggregates(request).collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn aggregates(&self, request: crate::proto::GetAggregatesRequest) -> AggregatePages {
        AggregatePages::new(self.query(), request)
    }
}

/// The interceptor that adds `authorization: Bearer <key>` when a key is set.
#[derive(Clone, Debug, Default)]
pub struct ApiKey(Option<MetadataValue<Ascii>>);

impl Interceptor for ApiKey {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}
