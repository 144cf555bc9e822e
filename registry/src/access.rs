//! Who may call the registry, and what each caller changed.
//!
//! With users configured (`--users-file`, `--user`), every request must carry
//! HTTP basic credentials (`authorization: Basic …`, what Confluent's clients
//! send from `basic.auth.user.info`) of a known user whose role allows it:
//!
//! | role    | may                                                        |
//! |---------|------------------------------------------------------------|
//! | `read`  | every `GET`, schema lookups, compatibility checks          |
//! | `write` | also register versions, set or reset compatibility and mode |
//! | `admin` | also delete (soft and permanent) and set `IMPORT` mode      |
//!
//! Passwords are stored as Argon2 PHC strings (salted; made by
//! `tributary-registry hash-password`). Verifying one costs tens of
//! milliseconds by design, so a verified password is remembered as its
//! SHA-256 digest and later requests are compared against that in constant
//! time. Without users every request is let in as `anonymous` with every
//! role, as before.
//!
//! Every change (register, config, mode, delete) is logged at `info` under
//! the `tributary_registry::audit` target with the caller, method, path and
//! answer, whether or not access control is on.
use std::{collections::HashMap, path::PathBuf, str::FromStr, sync::Arc};

use anyhow::Context as _;
use argon2::{
    Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _,
    password_hash::{SaltString, rand_core::OsRng},
};
use axum::{
    extract::{FromRequestParts, Request, State},
    http::{Method, request::Parts},
    middleware::Next,
    response::{IntoResponse as _, Response},
};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::error::RegistryError;

/// What a caller may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads, lookups and compatibility checks.
    Read,
    /// Also registrations, compatibility levels and modes.
    Write,
    /// Also deletes and `IMPORT` mode.
    Admin,
}

impl Role {
    /// The role's name as written in the users file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            other => anyhow::bail!("unknown role `{other}`: the roles are read, write and admin"),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The registry's users flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct UsersArgs {
    /// A file of users allowed to call the registry, one `NAME:ROLE:HASH`
    /// per line (blank lines and `#` comments ignored); ROLE is `read`,
    /// `write` or `admin`; HASH is an Argon2 PHC string from
    /// `tributary-registry hash-password`. With any user configured, every
    /// request needs HTTP basic authentication.
    #[arg(
        long = "users-file",
        env = "TRIBUTARY_REGISTRY_USERS_FILE",
        value_name = "PATH"
    )]
    pub users_file: Option<PathBuf>,

    /// A user as `NAME:ROLE:HASH` (repeatable; whitespace-separated in the
    /// environment variable).
    #[arg(
        long = "user",
        env = "TRIBUTARY_REGISTRY_USERS",
        value_name = "NAME:ROLE:HASH",
        value_delimiter = ' ',
        hide_env_values = true
    )]
    pub users: Vec<String>,
}

impl UsersArgs {
    /// Every configured user, from the flags and the file.
    pub fn load(&self) -> anyhow::Result<Users> {
        let mut lines: Vec<(String, String)> = self
            .users
            .iter()
            .map(|entry| ("--user".to_string(), entry.clone()))
            .collect();
        if let Some(path) = &self.users_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the users file {}", path.display()))?;
            lines.extend(
                text.lines()
                    .enumerate()
                    .map(|(n, line)| (format!("{}:{}", path.display(), n + 1), line.to_string())),
            );
        }
        let mut users = HashMap::new();
        for (origin, line) in lines {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let user = User::parse(line).with_context(|| format!("{origin}: invalid user"))?;
            let name = user.name.clone();
            anyhow::ensure!(
                users.insert(name.clone(), Arc::new(user)).is_none(),
                "{origin}: user `{name}` is configured twice"
            );
        }
        Ok(Users {
            users: Arc::new(users),
        })
    }
}

/// A configured user.
struct User {
    name: String,
    role: Role,
    /// The Argon2 PHC string.
    hash: String,
    /// The SHA-256 digest of the password last verified against `hash`.
    verified: std::sync::Mutex<Option<[u8; 32]>>,
}

impl User {
    /// Parses `NAME:ROLE:HASH`.
    fn parse(line: &str) -> anyhow::Result<Self> {
        let mut parts = line.splitn(3, ':');
        let (Some(name), Some(role), Some(hash)) = (parts.next(), parts.next(), parts.next())
        else {
            anyhow::bail!("expected NAME:ROLE:HASH");
        };
        let name = name.trim();
        anyhow::ensure!(!name.is_empty(), "the user name is empty");
        let role = role.parse()?;
        let hash = hash.trim();
        PasswordHash::new(hash).map_err(|e| {
            anyhow::anyhow!(
                "the password hash of `{name}` is not a PHC string ({e}); make one with `tributary-registry hash-password`"
            )
        })?;
        Ok(Self {
            name: name.to_string(),
            role,
            hash: hash.to_string(),
            verified: std::sync::Mutex::new(None),
        })
    }

    /// Whether `password` is this user's; slow (Argon2) only the first time.
    fn verify(&self, password: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        let remembered = *self.verified.lock().expect("verified lock");
        if let Some(known) = remembered
            && bool::from(known.ct_eq(&digest))
        {
            return true;
        }
        let hash = PasswordHash::new(&self.hash).expect("checked when loaded");
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        if ok {
            *self.verified.lock().expect("verified lock") = Some(digest);
        }
        ok
    }
}

/// The configured users; none means access control is off.
#[derive(Clone, Default)]
pub struct Users {
    users: Arc<HashMap<String, Arc<User>>>,
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name (`anonymous` without access control).
    pub name: String,
    /// What the user may do.
    pub role: Role,
}

impl Principal {
    /// The caller when access control is off: may do everything.
    pub fn anonymous() -> Self {
        Self {
            name: "anonymous".into(),
            role: Role::Admin,
        }
    }

    /// Refuses with 40301 unless the caller's role includes `needed`;
    /// `action` says what was attempted.
    pub fn require(&self, needed: Role, action: &str) -> Result<(), RegistryError> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(RegistryError::Forbidden {
                user: self.name.clone(),
                role: self.role,
                needed,
                action: action.to_string(),
            })
        }
    }
}

impl Users {
    /// Whether access control is on.
    pub fn enabled(&self) -> bool {
        !self.users.is_empty()
    }

    /// The caller an `authorization` header names, or why it is refused.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> Result<Principal, RegistryError> {
        if !self.enabled() {
            return Ok(Principal::anonymous());
        }
        let header = authorization.ok_or_else(|| {
            RegistryError::Unauthenticated("the request has no basic credentials".into())
        })?;
        let (user, password) = decode_basic(header).ok_or_else(|| {
            RegistryError::Unauthenticated(
                "the authorization header is not `Basic base64(user:password)`".into(),
            )
        })?;
        let known = self.users.get(&user).cloned();
        let password_ok = {
            let known = known.clone();
            // Argon2 takes tens of milliseconds: off the async workers. An
            // unknown user costs the same as a wrong password.
            tokio::task::spawn_blocking(move || match known {
                Some(user) => user.verify(&password),
                None => {
                    let _ = Argon2::default()
                        .verify_password(password.as_bytes(), &unknown_user_hash());
                    false
                }
            })
            .await
            .unwrap_or(false)
        };
        match known {
            Some(user) if password_ok => Ok(Principal {
                name: user.name.clone(),
                role: user.role,
            }),
            _ => Err(RegistryError::Unauthenticated(
                "bad user name or password".into(),
            )),
        }
    }
}

/// A hash to verify against for unknown users, so their refusal takes as
/// long as a wrong password's.
fn unknown_user_hash() -> PasswordHash<'static> {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = HASH.get_or_init(|| hash_password("unknown user").expect("hash"));
    PasswordHash::new(text).expect("a PHC string")
}

/// `(user, password)` of a `Basic` authorization header.
fn decode_basic(header: &str) -> Option<(String, String)> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// An Argon2id PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// The least role a request needs, from its method and path.
pub fn required_role(method: &Method, path: &str) -> Role {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => Role::Read,
        Method::DELETE if segments.first() == Some(&"subjects") => Role::Admin,
        // POST /subjects/{s} looks a schema up; POST /compatibility/… checks one.
        Method::POST if segments.first() == Some(&"subjects") && segments.len() == 2 => Role::Read,
        Method::POST if segments.first() == Some(&"compatibility") => Role::Read,
        _ => Role::Write,
    }
}

/// Middleware: authenticates the caller, refuses what its role does not
/// allow, leaves the [`Principal`] in the request's extensions and logs
/// every change with who made it.
pub async fn guard(State(users): State<Users>, mut request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match users.authenticate(header).await {
        Ok(principal) => principal,
        Err(refusal) => return refusal.into_response(),
    };
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let needed = required_role(&method, &path);
    if let Err(refusal) = principal.require(needed, &format!("{method} {path}")) {
        tracing::warn!(
            target: "tributary_registry::audit",
            user = %principal.name, %method, %path, role = %principal.role, needed = %needed,
            "registry request refused"
        );
        return refusal.into_response();
    }
    request.extensions_mut().insert(principal.clone());
    let response = next.run(request).await;
    if needed >= Role::Write {
        tracing::info!(
            target: "tributary_registry::audit",
            user = %principal.name, %method, %path, status = response.status().as_u16(),
            "registry change"
        );
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = RegistryError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Principal>()
            .cloned()
            .unwrap_or_else(Principal::anonymous))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(lines: &[&str]) -> Users {
        UsersArgs {
            users_file: None,
            users: lines.iter().map(|l| l.to_string()).collect(),
        }
        .load()
        .unwrap()
    }

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[tokio::test]
    async fn a_known_user_with_the_right_password_is_let_in_with_its_role() {
        let hash = hash_password("s3cret:with:colons").unwrap();
        let users = users(&[&format!("alice:write:{hash}")]);
        for _ in 0..2 {
            // The second time from the remembered digest.
            let principal = users
                .authenticate(Some(&basic("alice", "s3cret:with:colons")))
                .await
                .unwrap();
            assert_eq!(principal.name, "alice");
            assert_eq!(principal.role, Role::Write);
        }
        for header in [
            None,
            Some(basic("alice", "wrong")),
            Some(basic("bob", "s3cret:with:colons")),
            Some("Bearer abc".to_string()),
            Some("Basic !!!".to_string()),
        ] {
            let refused = users.authenticate(header.as_deref()).await.unwrap_err();
            assert_eq!(refused.codes().1, 40101, "{header:?}");
        }
    }

    #[tokio::test]
    async fn without_users_everyone_is_an_anonymous_admin() {
        let principal = Users::default().authenticate(None).await.unwrap();
        assert_eq!(principal, Principal::anonymous());
    }

    #[test]
    fn bad_user_lines_are_refused_with_the_reason() {
        let load = |line: &str| {
            UsersArgs {
                users_file: None,
                users: vec![line.to_string()],
            }
            .load()
            .err()
            .map(|e| format!("{e:#}"))
        };
        assert!(load("alice:write").unwrap().contains("NAME:ROLE:HASH"));
        assert!(
            load("alice:owner:$argon2id$x")
                .unwrap()
                .contains("unknown role")
        );
        assert!(load("alice:read:plaintext").unwrap().contains("PHC string"));
        let hash = hash_password("x").unwrap();
        let twice = UsersArgs {
            users_file: None,
            users: vec![format!("a:read:{hash}"), format!("a:admin:{hash}")],
        }
        .load()
        .err()
        .unwrap();
        assert!(format!("{twice:#}").contains("configured twice"));
    }

    /// A log sink for one test.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn changes_and_refusals_are_logged_with_who_made_them() {
        use axum::routing::{get, post};
        use tower::ServiceExt as _;

        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);

        let hash = hash_password("pw").unwrap();
        let users = users(&[&format!("wanda:write:{hash}"), &format!("rita:read:{hash}")]);
        let app = axum::Router::new()
            .route("/subjects/{s}/versions", post(|| async { "registered" }))
            .route("/subjects", get(|| async { "[]" }))
            .layer(axum::middleware::from_fn_with_state(users, guard));
        let call = |method: Method, path: &str, user: &str| {
            Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", basic(user, "pw"))
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let registered = app
            .clone()
            .oneshot(call(Method::POST, "/subjects/s-value/versions", "wanda"))
            .await
            .unwrap();
        assert_eq!(registered.status(), 200);
        let refused = app
            .clone()
            .oneshot(call(Method::POST, "/subjects/s-value/versions", "rita"))
            .await
            .unwrap();
        assert_eq!(refused.status(), 403);
        let read = app
            .oneshot(call(Method::GET, "/subjects", "rita"))
            .await
            .unwrap();
        assert_eq!(read.status(), 200);

        let lines: Vec<serde_json::Value> = String::from_utf8(captured.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let audit: Vec<(String, String, String)> = lines
            .iter()
            .filter(|l| l["target"] == "tributary_registry::audit")
            .map(|l| {
                (
                    l["fields"]["message"].as_str().unwrap().to_string(),
                    l["fields"]["user"].as_str().unwrap().to_string(),
                    l["fields"]["path"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            audit,
            [
                (
                    "registry change".to_string(),
                    "wanda".to_string(),
                    "/subjects/s-value/versions".to_string()
                ),
                (
                    "registry request refused".to_string(),
                    "rita".to_string(),
                    "/subjects/s-value/versions".to_string()
                ),
            ],
            "reads are not audited; changes and refusals are: {lines:?}"
        );
    }

    #[test]
    fn roles_follow_the_method_and_the_resource() {
        let role = |method: Method, path: &str| required_role(&method, path);
        assert_eq!(role(Method::GET, "/subjects"), Role::Read);
        assert_eq!(role(Method::POST, "/subjects/s"), Role::Read);
        assert_eq!(
            role(Method::POST, "/compatibility/subjects/s/versions/latest"),
            Role::Read
        );
        assert_eq!(role(Method::POST, "/subjects/s/versions"), Role::Write);
        assert_eq!(role(Method::PUT, "/config/s"), Role::Write);
        assert_eq!(role(Method::DELETE, "/config/s"), Role::Write);
        assert_eq!(role(Method::PUT, "/mode"), Role::Write);
        assert_eq!(role(Method::DELETE, "/subjects/s"), Role::Admin);
        assert_eq!(role(Method::DELETE, "/subjects/s/versions/1"), Role::Admin);
    }
}
