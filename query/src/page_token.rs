//! Page tokens of `GetAggregates`: keyset pagination. A token carries the
//! last (bucket, key) a page returned, so the next page starts right after it
//! whatever was inserted meanwhile, and a fingerprint of the filter it was
//! issued for, so it cannot silently be applied to another query.
//!
//! The token is opaque to clients: hex text (safe in a URL query string) of a
//! small versioned record. It is not a secret; forging one only moves the
//! caller's own cursor.
use chrono::{DateTime, Utc};

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
        record.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a token produced by [`PageToken::encode`].
    pub fn decode(token: &str) -> Result<Self, MalformedToken> {
        if !token.len().is_multiple_of(2) || !token.is_ascii() {
            return Err(MalformedToken);
        }
        let bytes = (0..token.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| MalformedToken)?;
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

/// A stable 64-bit fingerprint (FNV-1a) of `parts`. Each part is
/// length-prefixed so that `["ab", "c"]` and `["a", "bc"]` differ. Not
/// cryptographic: it only has to catch a token reused with other parameters.
pub fn fingerprint<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for part in parts {
        feed(&(part.len() as u64).to_le_bytes());
        feed(part);
    }
    hash
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
        assert_eq!(PageToken::decode("7631"), Err(MalformedToken));
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
