//! Query strings with repeated parameters (`key=a&key=b`), and the times
//! and durations the console's routes take.
use chrono::{DateTime, NaiveDateTime, Utc};
use tributary_edge::error::ApiError;

/// A query string's parameters, in order, repeated ones kept.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses `query` (without the `?`).
    pub fn parse(query: Option<&str>) -> Self {
        Self(
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first non-empty value of `name`.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    /// Every non-empty value of `name`, a value with commas split at them.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect()
    }

    /// `name` as a time (see [`parse_time`]), or `default`.
    pub fn time(&self, name: &str, default: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
        match self.one(name) {
            None => Ok(default),
            Some(text) => parse_time(text).map_err(|e| ApiError::invalid(name, e)),
        }
    }
}

/// A time: RFC 3339 (`2026-01-01T00:00:00Z`), a date and time without an
/// offset (taken as UTC, as `<input type=datetime-local>` sends it, seconds
/// optional), Unix milliseconds, or a duration back from now (`1h`, `30m`).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(naive.and_utc());
        }
    }
    if let Ok(ms) = text.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| format!("`{text}` is out of range"));
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        let ago = chrono::Duration::from_std(ago).map_err(|e| e.to_string())?;
        return Ok(Utc::now() - ago);
    }
    Err(format!(
        "`{text}` is not a time: RFC 3339 (2026-01-01T00:00:00Z), Unix milliseconds, or a duration back from now (1h)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_comma_separated_values() {
        let p = Params::parse(Some("key=a&key=b,c&key=&event_type=ad_click"));
        assert_eq!(p.all("key"), ["a", "b", "c"]);
        assert_eq!(p.one("event_type"), Some("ad_click"));
        assert_eq!(p.one("nothing"), None);
    }

    #[test]
    fn times_in_every_accepted_form() {
        let t = parse_time("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-02T03:04:05+00:00");
        assert_eq!(
            parse_time("2026-01-02T03:04").unwrap().timestamp(),
            t.timestamp() - 5
        );
        assert_eq!(parse_time("2026-01-02T03:04:05.000").unwrap(), t);
        assert_eq!(parse_time(&t.timestamp_millis().to_string()).unwrap(), t);
        let hour_ago = parse_time("1h").unwrap();
        assert!(((Utc::now() - hour_ago).num_seconds() - 3600).abs() < 5);
        assert!(parse_time("soon").is_err());
    }
}
