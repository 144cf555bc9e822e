//! Who may call a listener and how often: the configured API keys and the
//! per-caller rate limiter, built once from the flags and shared by the gRPC
//! guard and the HTTP extractors of every service behind the edge.
use crate::{
    auth::{ApiKeys, Charge},
    config::EdgeArgs,
    rate_limit::RateLimiter,
};

/// API keys and rate limits, cheap to clone.
#[derive(Clone, Default)]
pub struct Access {
    api_keys: ApiKeys,
    rate_limiter: Option<RateLimiter>,
}

impl Access {
    /// The access rules of `--api-key`/`--api-keys-file` and `--rate-limit`.
    pub fn from_args(args: &EdgeArgs) -> anyhow::Result<Self> {
        Ok(Self {
            api_keys: ApiKeys::new(&args.auth.load()?),
            rate_limiter: args.rate_limit.limiter(),
        })
    }

    /// The accepted API keys.
    pub fn api_keys(&self) -> &ApiKeys {
        &self.api_keys
    }

    /// The per-caller rate limiter, when one is configured.
    pub fn rate_limiter(&self) -> Option<&RateLimiter> {
        self.rate_limiter.as_ref()
    }

    /// A tonic interceptor: UNAUTHENTICATED without an accepted key, then
    /// the rate limit charged as `charge` says.
    pub fn guard(&self, charge: Charge) -> impl tonic::service::Interceptor + Clone + use<> {
        self.api_keys.guard(self.rate_limiter.clone(), charge)
    }
}
