//! Flags shared by every service. Each flag has a matching environment
//! variable (the configuration contract in the README); services flatten the
//! groups they need into their own `clap::Parser`.

/// How to reach Kafka, and the librdkafka properties passed through untouched
/// (SASL, TLS, ...).
#[derive(clap::Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(
        long = "kafka-brokers",
        env = "TRIBUTARY_KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,

    /// Extra librdkafka properties as key=value, passed to every Kafka client
    /// of the service and winning over Tributary's defaults: SASL and TLS,
    /// e.g. security.protocol=SASL_SSL, sasl.mechanism=SCRAM-SHA-512,
    /// sasl.username=..., sasl.password=..., ssl.ca.location=/path/ca.pem.
    /// Repeat the flag, or separate with ';' in the environment variable. A
    /// property librdkafka refuses stops the service with an error naming it.
    #[arg(
        long = "kafka-property",
        env = "TRIBUTARY_KAFKA_PROPERTIES",
        value_delimiter = ';',
        value_parser = parse_key_value,
        hide_env_values = true
    )]
    pub properties: Vec<(String, String)>,

    /// Prefix of the per-event-type topics: events of type T go to
    /// `{prefix}{T}`.
    #[arg(
        long = "topic-prefix",
        env = "TRIBUTARY_TOPIC_PREFIX",
        default_value = "tributary.events."
    )]
    pub topic_prefix: String,

    /// The topic aggregates are written to.
    #[arg(
        long = "aggregates-topic",
        env = "TRIBUTARY_AGGREGATES_TOPIC",
        default_value = "tributary.aggregates"
    )]
    pub aggregates_topic: String,

    /// The dead-letter topic for records that cannot be processed.
    #[arg(
        long = "dead-letter-topic",
        env = "TRIBUTARY_DEAD_LETTER_TOPIC",
        default_value = "tributary.dead-letter"
    )]
    pub dead_letter_topic: String,
}

/// How a consuming service's replica is known to its consumer group.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MembershipArgs {
    /// Static group membership (Kafka's `group.instance.id`): a stable name
    /// unique to this replica, e.g. a StatefulSet pod's name. A replica
    /// restarted under the same name takes its predecessor's place and
    /// partitions at once, even when it crashed in the middle of a
    /// rebalance, instead of waiting for the group to notice the dead
    /// member. A replica stopped for good keeps its partitions until its
    /// session times out. Two running replicas must never share a name.
    /// Unset: dynamic membership.
    #[arg(long = "group-instance-id", env = "TRIBUTARY_GROUP_INSTANCE_ID")]
    pub instance_id: Option<String>,
}

/// How far an event's time may be from when it is accepted: ingest refuses
/// event times further away (either way), and the processor keeps the state
/// of closed windows this long, so every event ingest acknowledges is
/// counted, however late. One setting, one environment variable, for both.
#[derive(clap::Args, Debug, Clone)]
pub struct EventTimeArgs {
    /// How far an event's event_time may be from now, either way: ingest
    /// refuses events outside it, and the processor corrects closed windows
    /// for events inside it (keeping their state this long).
    #[arg(long = "max-event-time-skew", env = "TRIBUTARY_MAX_EVENT_TIME_SKEW", value_parser = humantime::parse_duration, default_value = "24h")]
    pub max_event_time_skew: std::time::Duration,
}

impl Default for EventTimeArgs {
    fn default() -> Self {
        Self {
            max_event_time_skew: std::time::Duration::from_secs(24 * 3600),
        }
    }
}

/// Which of [`KafkaArgs`]' topics a binary uses, and from which side, so its
/// `--help` shows only its own topic flags, described as it uses them.
#[derive(Debug, Clone, Copy, Default)]
pub struct TopicUse {
    /// How the binary uses `--topic-prefix` (`None`: hidden).
    pub events: Option<&'static str>,
    /// How it uses `--aggregates-topic` (`None`: hidden).
    pub aggregates: Option<&'static str>,
    /// How it uses `--dead-letter-topic` (`None`: hidden).
    pub dead_letters: Option<&'static str>,
}

impl TopicUse {
    /// `command` with the topic flags the binary does not use hidden (still
    /// accepted, so a shared environment file does not break it) and the
    /// others described from its side.
    pub fn apply(self, command: clap::Command) -> clap::Command {
        let describe = |command: clap::Command, id: &'static str, help: Option<&'static str>| {
            command.mut_arg(id, |arg| match help {
                Some(help) => arg.help(help),
                None => arg.hide(true),
            })
        };
        let command = describe(command, "topic_prefix", self.events);
        let command = describe(command, "aggregates_topic", self.aggregates);
        describe(command, "dead_letter_topic", self.dead_letters)
    }

    /// Parses `C` from the command line with [`Self::apply`]'s `--help`.
    pub fn parse<C: clap::Parser>(self) -> C {
        let matches = self.apply(C::command()).get_matches();
        C::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

impl KafkaArgs {
    /// Settings for a broker at `brokers` with every other flag at its default.
    pub fn for_brokers(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            properties: Vec::new(),
            topic_prefix: "tributary.events.".into(),
            aggregates_topic: "tributary.aggregates".into(),
            dead_letter_topic: "tributary.dead-letter".into(),
        }
    }

    /// The topic events of `event_type` are produced to.
    pub fn event_topic(&self, event_type: &str) -> String {
        format!("{}{event_type}", self.topic_prefix)
    }
}

/// How to reach the Confluent-compatible Schema Registry.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Base URL of the Schema Registry (Tributary's own, Confluent, Karapace,
    /// Redpanda or Apicurio's Confluent API).
    /// Credentials may be given in the URL (`https://user:password@host`),
    /// as with Confluent's `basic.auth.credentials.source=URL`.
    #[arg(
        long = "registry-url",
        env = "TRIBUTARY_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub url: String,

    /// `USER:PASSWORD` for the registry's HTTP basic authentication (what
    /// Confluent's clients call `basic.auth.user.info`); prefer the
    /// environment variable, which `ps` does not show.
    #[arg(
        long = "registry-basic-auth",
        env = "TRIBUTARY_REGISTRY_BASIC_AUTH",
        hide_env_values = true,
        value_name = "USER:PASSWORD"
    )]
    pub basic_auth: Option<String>,

    /// PEM file of CA certificates to trust for the registry's TLS, beside
    /// the system's (a private CA).
    #[arg(
        long = "registry-ca",
        env = "TRIBUTARY_REGISTRY_CA",
        value_name = "PEM"
    )]
    pub ca: Option<std::path::PathBuf>,
}

impl RegistryArgs {
    /// The registry at `url`, without credentials or a private CA.
    pub fn at(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            basic_auth: None,
            ca: None,
        }
    }

    /// The same registry reached with `USER:PASSWORD` basic authentication.
    pub fn with_basic_auth(mut self, user_password: impl Into<String>) -> Self {
        self.basic_auth = Some(user_password.into());
        self
    }

    /// The same registry, trusting the CA certificates in the PEM file `ca`.
    pub fn with_ca(mut self, ca: impl Into<std::path::PathBuf>) -> Self {
        self.ca = Some(ca.into());
        self
    }

    /// The base URL without credentials or a trailing `/`.
    pub fn base_url(&self) -> anyhow::Result<String> {
        let mut url = url::Url::parse(&self.url).map_err(|e| {
            anyhow::anyhow!(
                "--registry-url `{}` is not a URL: {e}",
                redact_url(&self.url)
            )
        })?;
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok(url.as_str().trim_end_matches('/').to_string())
    }

    /// The basic-auth user and password: from `--registry-basic-auth`, or
    /// else from the URL; both at once is an error.
    pub fn credentials(&self) -> anyhow::Result<Option<(String, String)>> {
        let url = url::Url::parse(&self.url).map_err(|e| {
            anyhow::anyhow!(
                "--registry-url `{}` is not a URL: {e}",
                redact_url(&self.url)
            )
        })?;
        let in_url = (!url.username().is_empty()).then(|| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            )
        });
        match (&self.basic_auth, in_url) {
            (Some(_), Some(_)) => anyhow::bail!(
                "registry credentials are given twice: in --registry-url and in --registry-basic-auth; keep one"
            ),
            (Some(pair), None) => {
                let (user, password) = pair.split_once(':').ok_or_else(|| {
                    anyhow::anyhow!("--registry-basic-auth must be USER:PASSWORD (no `:` found)")
                })?;
                anyhow::ensure!(
                    !user.is_empty(),
                    "--registry-basic-auth has an empty user name"
                );
                Ok(Some((user.to_string(), password.to_string())))
            }
            (None, in_url) => Ok(in_url),
        }
    }

    /// An HTTP client builder that trusts `--registry-ca` and sends the
    /// credentials with every request.
    pub fn http_client_builder(&self) -> anyhow::Result<reqwest::ClientBuilder> {
        let mut builder = reqwest::Client::builder();
        if let Some(path) = &self.ca {
            let pem = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!("cannot read --registry-ca {}: {e}", path.display())
            })?;
            for certificate in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("--registry-ca {} is not PEM: {e}", path.display()))?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(builder)
    }

    /// An HTTP client for the registry's REST API: the private CA trusted,
    /// credentials (if any) in every request's `authorization` header.
    pub fn http_client(&self, timeout: std::time::Duration) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some((user, password)) = self.credentials()? {
            use base64::Engine as _;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Basic {token}"))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(self
            .http_client_builder()?
            .default_headers(headers)
            .timeout(timeout)
            .build()?)
    }
}

/// Logging. (Metrics and trace export arrive with the operations issue.)
#[derive(clap::Args, Debug, Clone)]
pub struct TelemetryArgs {
    /// Log format: `auto` is JSON when stderr is not a terminal, text otherwise.
    #[arg(long = "log-format", env = "TRIBUTARY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// Log filter in `tracing` EnvFilter syntax, e.g. `info,tributary=debug`.
    #[arg(long = "log", env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,

    /// Address of the Prometheus endpoint (`GET /metrics`); port 0 picks a
    /// free port (the bound address is logged). Disabled when unset.
    #[arg(long = "metrics-addr", env = "TRIBUTARY_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl Default for TelemetryArgs {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Auto,
            log_filter: "info".into(),
            metrics_addr: None,
        }
    }
}

/// How log lines are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON when stderr is not a terminal, human-readable text otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// `url` with its password, if any, replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "(an unparsable URL)".to_string(),
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected key=value, got `{s}`"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("empty key in `{s}`"));
    }
    Ok((k.to_string(), v.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_property_is_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_key_value("sasl.jaas.config=a=b").unwrap(),
            ("sasl.jaas.config".to_string(), "a=b".to_string())
        );
    }

    #[test]
    fn redacted_urls_keep_everything_but_the_password() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/tributary?sslmode=require"),
            "postgres://app:***@db:5432/tributary?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/t"),
            "postgres://postgres@127.0.0.1/t"
        );
        assert!(!redact_url("postgres://a:s3cret@c:notaport/d").contains("s3cret"));
    }

    #[test]
    fn kafka_property_without_equals_sign_is_refused() {
        assert_eq!(
            parse_key_value("acks").unwrap_err(),
            "expected key=value, got `acks`"
        );
    }
}
