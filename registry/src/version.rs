//! A version as written in a URL: a number in 1..2^31-1, or `latest` / `-1`.
use std::str::FromStr;

use crate::error::RegistryError;

/// Which version of a subject a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// The highest (visible) version.
    Latest,
    /// This version number.
    Number(i32),
}

impl FromStr for VersionSpec {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("latest") || s == "-1" {
            return Ok(Self::Latest);
        }
        match s.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(Self::Number(n)),
            _ => Err(RegistryError::InvalidVersion(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_minus_one_and_positive_numbers_are_versions() {
        assert_eq!(
            "latest".parse::<VersionSpec>().unwrap(),
            VersionSpec::Latest
        );
        assert_eq!("-1".parse::<VersionSpec>().unwrap(), VersionSpec::Latest);
        assert_eq!("7".parse::<VersionSpec>().unwrap(), VersionSpec::Number(7));
        for bad in ["0", "-2", "abc", "2147483648", ""] {
            assert!(bad.parse::<VersionSpec>().is_err(), "{bad}");
        }
    }
}
