//! Schemas from the registry's Confluent REST API: subjects with their
//! versions and compatibility level, one version, the line diff of two
//! versions' pretty-printed schemas, and the registry's verdict on a
//! candidate (with its reasons).
use axum::{
    Json,
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use futures::future::join_all;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};
use tributary_common::{
    config::RegistryArgs,
    registry_rest::{self, Refusal, RegistryRest, segment},
};
use tributary_edge::error::ApiError;

use crate::{params::Params, server::AppState};

/// The registry at one base URL, reached with its credentials and CA.
pub struct Registry {
    rest: RegistryRest,
}

/// Why a registry call has no answer, as the console answers it.
enum CallError {
    Refused(Refusal),
    Failed(String),
}

impl From<registry_rest::CallError> for CallError {
    fn from(error: registry_rest::CallError) -> Self {
        match error {
            registry_rest::CallError::Refused(refusal) => Self::Refused(refusal),
            registry_rest::CallError::Unreachable(why) => Self::Failed(why),
        }
    }
}

impl From<CallError> for ApiError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Refused(r) if r.status == 404 => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", r.message)
            }
            CallError::Refused(r) if r.status == 422 || r.status == 400 => {
                ApiError::invalid("schema", r.message)
            }
            CallError::Refused(r) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "unavailable",
                format!(
                    "the registry answered {} ({}): {}",
                    r.status, r.code, r.message
                ),
            )
            .logged(),
            CallError::Failed(why) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("the registry did not answer: {why}"),
            )
            .logged(),
        }
    }
}

/// A subject or version as a path segment of the registry's API: `.` and
/// `..` (however encoded, a URL resolves them as the current and parent
/// path) are refused, 400 naming the field and the value.
pub fn checked<'a>(field: &str, value: &'a str) -> Result<&'a str, ApiError> {
    if value == "." || value == ".." {
        return Err(ApiError::invalid(
            field,
            format!("`{value}` is not a {field} (`.` and `..` cannot be path segments)"),
        ));
    }
    Ok(value)
}

impl Registry {
    /// The registry `args` names.
    pub fn new(args: &RegistryArgs) -> anyhow::Result<Self> {
        Ok(Self {
            rest: RegistryRest::new(args, std::time::Duration::from_secs(15))?,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CallError> {
        Ok(self.rest.call(method, path, body).await?)
    }

    /// The compatibility level of `subject`, and whether it is its own
    /// (`subject`) or the registry's (`global`).
    async fn level(&self, subject: &str) -> Result<(String, &'static str), CallError> {
        match self
            .call(Method::GET, &format!("/config/{}", segment(subject)), None)
            .await
        {
            Ok(v) => Ok((level_of(&v), "subject")),
            Err(CallError::Refused(r)) if r.status == 404 => {
                let v = self.call(Method::GET, "/config", None).await?;
                Ok((level_of(&v), "global"))
            }
            Err(e) => Err(e),
        }
    }

    async fn versions(&self, subject: &str) -> Result<Vec<i64>, CallError> {
        let v = self
            .call(
                Method::GET,
                &format!("/subjects/{}/versions", segment(subject)),
                None,
            )
            .await?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .collect())
    }

    async fn version(&self, subject: &str, version: &str) -> Result<Value, CallError> {
        self.call(
            Method::GET,
            &format!(
                "/subjects/{}/versions/{}",
                segment(subject),
                segment(version)
            ),
            None,
        )
        .await
    }
}

fn level_of(config: &Value) -> String {
    config["compatibilityLevel"]
        .as_str()
        .or_else(|| config["compatibility"].as_str())
        .unwrap_or("?")
        .to_string()
}

/// One subject.
#[derive(Debug, Clone, Serialize)]
pub struct Subject {
    /// The subject, e.g. `tributary.events.ad_click-value`.
    pub subject: String,
    /// Its versions, ascending.
    pub versions: Vec<i64>,
    /// Its compatibility level.
    pub compatibility: String,
    /// `subject` (its own) or `global` (the registry's default).
    pub compatibility_source: &'static str,
}

/// `GET /api/schemas`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct Subjects {
    /// The registry's global compatibility level.
    pub global_compatibility: String,
    /// Every subject, by name.
    pub subjects: Vec<Subject>,
}

/// `GET /api/schemas`: subjects with versions and compatibility level.
pub async fn list(State(state): State<AppState>) -> Result<Json<Subjects>, ApiError> {
    let registry = state.registry();
    let global = registry.call(Method::GET, "/config", None).await?;
    let names = registry.call(Method::GET, "/subjects", None).await?;
    let mut names: Vec<String> = names
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect();
    names.sort();
    let subjects = join_all(names.into_iter().map(|subject| async move {
        let (versions, level) = tokio::join!(registry.versions(&subject), registry.level(&subject));
        let (compatibility, compatibility_source) = level?;
        Ok::<_, CallError>(Subject {
            versions: versions?,
            subject,
            compatibility,
            compatibility_source,
        })
    }))
    .await
    .into_iter()
    // A subject deleted meanwhile is left out.
    .filter(|s| !matches!(s, Err(CallError::Refused(r)) if r.status == 404))
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Subjects {
        global_compatibility: level_of(&global),
        subjects,
    }))
}

/// A schema string pretty-printed (JSON schemas; anything else as it is).
pub fn pretty(schema: &str) -> String {
    serde_json::from_str::<Value>(schema)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| schema.to_string())
}

/// `GET /api/schemas/{subject}/versions/{v}`: the registry's answer (`subject`,
/// `version`, `id`, `schema`, ...) plus `pretty`, the schema pretty-printed.
pub async fn version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    checked("subject", &subject)?;
    checked("version", &version)?;
    let mut found = state.registry().version(&subject, &version).await?;
    let text = found["schema"].as_str().unwrap_or_default().to_string();
    found["pretty"] = Value::String(pretty(&text));
    Ok(Json(found))
}

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    /// `added`, `removed` or `same`.
    pub tag: &'static str,
    /// The line, without its line break.
    pub text: String,
}

/// `GET /api/schemas/{subject}/diff`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    /// The subject.
    pub subject: String,
    /// The older version.
    pub from: i64,
    /// The newer version.
    pub to: i64,
    /// Every line of both, in diff order.
    pub lines: Vec<DiffLine>,
}

/// The line diff of `old` and `new`.
pub fn diff_lines(old: &str, new: &str) -> Vec<DiffLine> {
    similar::TextDiff::from_lines(old, new)
        .iter_all_changes()
        .map(|change| DiffLine {
            tag: match change.tag() {
                similar::ChangeTag::Delete => "removed",
                similar::ChangeTag::Insert => "added",
                similar::ChangeTag::Equal => "same",
            },
            text: change.value().trim_end_matches(['\n', '\r']).to_string(),
        })
        .collect()
}

/// `GET /api/schemas/{subject}/diff?from=&to=`: the line diff of two
/// versions' pretty-printed schemas (default: the two newest).
pub async fn diff(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Diff>, ApiError> {
    checked("subject", &subject)?;
    let params = Params::parse(query.as_deref());
    let registry = state.registry();
    let version_param = |name: &str| -> Result<Option<i64>, ApiError> {
        params
            .one(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::invalid(name, format!("`{v}` is not a version number")))
            })
            .transpose()
    };
    let (mut from, mut to) = (version_param("from")?, version_param("to")?);
    if from.is_none() || to.is_none() {
        let versions = registry.versions(&subject).await?;
        let newest = versions.last().copied().unwrap_or(1);
        to = to.or(Some(newest));
        from = from.or_else(|| {
            versions
                .iter()
                .rev()
                .find(|v| Some(**v) < to)
                .copied()
                .or(to)
        });
    }
    let (from, to) = (from.unwrap_or(1), to.unwrap_or(1));
    let (from_text, to_text) = (from.to_string(), to.to_string());
    let (old, new) = tokio::join!(
        registry.version(&subject, &from_text),
        registry.version(&subject, &to_text)
    );
    let text = |v: &Value| pretty(v["schema"].as_str().unwrap_or_default());
    Ok(Json(Diff {
        lines: diff_lines(&text(&old?), &text(&new?)),
        subject,
        from,
        to,
    }))
}

/// `POST /api/schemas/{subject}/check`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Whether the subject's level accepts the candidate.
    pub compatible: bool,
    /// The subject's compatibility level.
    pub compatibility: String,
    /// The version checked against, when the registry says.
    pub checked_against: Option<String>,
    /// Why not (`READER_FIELD_MISSING_DEFAULT_VALUE at /fields/2: country`),
    /// or a note when it is compatible.
    pub reasons: Vec<String>,
    /// The registry's messages as it gave them.
    pub messages: Vec<String>,
}

/// Confluent's verbose messages, shortened as `trib schema check` shows
/// them: `TYPE at LOCATION: MESSAGE`, and nothing for the context lines.
fn readable(message: &str) -> Option<String> {
    if message.starts_with("{oldSchema") || message.starts_with("{compatibility") {
        return None;
    }
    let parsed = (|| {
        let rest = message.strip_prefix("Incompatibility{type:")?;
        let (kind, rest) = rest.split_once(", location:")?;
        let (location, rest) = rest.split_once(", message:")?;
        let (detail, _) = rest.split_once(", reader:")?;
        Some(format!("{kind} at {location}: {detail}"))
    })();
    Some(parsed.unwrap_or_else(|| message.to_string()))
}

/// `POST /api/schemas/{subject}/check` with the candidate schema (its JSON)
/// as the body: the verdict of the subject's compatibility level (checked
/// against the versions the level names, as `trib schema check` does),
/// registering nothing.
pub async fn check(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    body: String,
) -> Result<Json<Verdict>, ApiError> {
    checked("subject", &subject)?;
    let candidate: Value = serde_json::from_str(&body)
        .map_err(|e| ApiError::invalid("schema", format!("the candidate is not JSON: {e}")))?;
    // `{"schema": "..."}` (the registry's own request shape) is taken too.
    let schema = match &candidate {
        Value::Object(o) if o.len() == 1 && o.get("schema").is_some_and(Value::is_string) => {
            o["schema"].as_str().unwrap_or_default().to_string()
        }
        other => other.to_string(),
    };
    let registry = state.registry();
    let (compatibility, _) = registry.level(&subject).await?;
    let path = format!(
        "/compatibility/subjects/{}/versions?verbose=true",
        segment(&subject)
    );
    let verdict = match registry
        .call(Method::POST, &path, Some(json!({ "schema": schema })))
        .await
    {
        Ok(verdict) => verdict,
        Err(CallError::Refused(r)) if r.code == 40401 || r.status == 404 => {
            return Ok(Json(Verdict {
                compatible: true,
                compatibility,
                checked_against: None,
                reasons: vec![format!("{subject} has no versions yet: anything registers")],
                messages: vec![r.message],
            }));
        }
        Err(e) => return Err(e.into()),
    };
    let messages: Vec<String> = verdict["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str().map(String::from))
        .collect();
    let checked_against = messages.iter().find_map(|m| {
        m.strip_prefix("{oldSchemaVersion: ")?
            .strip_suffix('}')
            .map(String::from)
    });
    Ok(Json(Verdict {
        compatible: verdict["is_compatible"].as_bool() == Some(true),
        compatibility,
        checked_against,
        reasons: {
            // Checked against several versions, the same reason repeats.
            let mut reasons: Vec<String> = Vec::new();
            for reason in messages.iter().filter_map(|m| readable(m)) {
                if !reasons.contains(&reason) {
                    reasons.push(reason);
                }
            }
            reasons
        },
        messages,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_tags_every_line() {
        let old = pretty(r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"}]}"#);
        let new = pretty(
            r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"b","type":["null","string"],"default":null}]}"#,
        );
        let lines = diff_lines(&old, &new);
        assert!(
            lines
                .iter()
                .any(|l| l.tag == "added" && l.text.contains("\"b\"")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.tag == "same" && l.text.contains("\"a\""))
        );
        assert!(lines.iter().all(|l| !l.text.ends_with('\n')));
    }

    #[test]
    fn dot_segments_are_refused_naming_the_field() {
        for (field, value) in [("subject", "."), ("subject", ".."), ("version", "..")] {
            let response =
                axum::response::IntoResponse::into_response(checked(field, value).unwrap_err());
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        }
        assert_eq!(checked("subject", "a.b").unwrap(), "a.b");
        assert_eq!(checked("subject", "...").unwrap(), "...");
        assert_eq!(checked("version", "latest").unwrap(), "latest");
    }

    #[test]
    fn subjects_are_encoded_as_one_segment() {
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(
            segment("tributary.events.ad_click-value"),
            "tributary.events.ad_click-value"
        );
    }
}
