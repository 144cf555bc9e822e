//! Page tokens of `GetAggregates`: keyset pagination. A token carries the
//! last (bucket, key) a page returned, so the next page starts right after it
//! whatever was inserted meanwhile, and a fingerprint of the filter it was
//! issued for, so it cannot silently be applied to another query.
//!
//! The token is opaque to clients: unpadded URL-safe base64 (safe in a URL
//! query string) of a small versioned record. It is not a secret; forging one only moves the
//! caller's own cursor.
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

/// Version tag of the token layout, so a later layout can refuse old tokens
/// clearly instead of misreading them.
const VERSION: &str = "v1";

/// Where the previous page ended, and for which query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    /// Start of the last bucket returned.
    pub bucket: DateTime<Utc>,
    /// Key of the last aggregate returned.
    pub key: String,
    /// [`fingerprint`] of the query's filter parameters.
    pub fingerprint: u64,
}

/// Why a token could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a page token issued by this API")]
pub struct MalformedToken;

impl PageToken {
    /// The token's text.
    pub fn encode(&self) -> String {
        let record = format!(
            "{VERSION}\n{}\n{:016x}\n{}",
            self.bucket.timestamp_micros(),
            self.fingerprint,
            self.key
        );
        URL_SAFE_NO_PAD.encode(record)
    }

    /// Reads a token produced by [`PageToken::encode`].
    pub fn decode(token: &str) -> Result<Self, MalformedToken> {
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| MalformedToken)?;
        let record = String::from_utf8(bytes).map_err(|_| MalformedToken)?;
        // The key comes last and may itself contain newlines.
        let mut parts = record.splitn(4, '\n');
        let (Some(VERSION), Some(micros), Some(fingerprint), Some(key)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MalformedToken);
        };
        let micros: i64 = micros.parse().map_err(|_| MalformedToken)?;
        Ok(Self {
            bucket: DateTime::from_timestamp_micros(micros).ok_or(MalformedToken)?,
            key: key.to_string(),
            fingerprint: u64::from_str_radix(fingerprint, 16).map_err(|_| MalformedToken)?,
        })
    }
}

/// A stable 64-bit fingerprint of `parts`: the first 8 bytes of their
/// SHA-256, each part length-prefixed so that `["ab", "c"]` and
/// `["a", "bc"]` differ. It only has to catch a token reused with other
/// parameters, and stays the same across versions and restarts.
pub fn fingerprint<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_as_written() {
        let token = PageToken {
            bucket: DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
            key: "ETH-USD/api-1\nodd".into(),
            fingerprint: 0xdead_beef_0000_0001,
        };
        assert_eq!(PageToken::decode(&token.encode()), Ok(token));
    }

    #[test]
    fn garbage_is_not_a_token() {
        assert_eq!(PageToken::decode("zz"), Err(MalformedToken));
        assert_eq!(PageToken::decode("abc"), Err(MalformedToken));
        assert_eq!(PageToken::decode("djE"), Err(MalformedToken));
        assert_eq!(PageToken::decode("not base64!"), Err(MalformedToken));
        assert_eq!(PageToken::decode("é1"), Err(MalformedToken));
    }

    #[test]
    fn fingerprints_separate_parts() {
        assert_ne!(
            fingerprint([b"ab".as_slice(), b"c"]),
            fingerprint([b"a".as_slice(), b"bc"])
        );
        assert_eq!(
            fingerprint([b"x".as_slice()]),
            fingerprint([b"x".as_slice()])
        );
    }
}
