//! The page: plain HTML, CSS and ES modules from `console/web/`, embedded in
//! the binary (no Node.js needed to run or build it), and uPlot vendored in
//! `console/web/vendor/` from the npm package pinned in
//! `console/web/package-lock.json`.
//!
//! Caching: the vendored files are pinned, so browsers keep them for a day;
//! the console's own files and the shell are revalidated on every load
//! (`no-cache` with an `ETag`, answered 304 when unchanged), so a new
//! binary's page is picked up at once and a reload costs one round trip per
//! file.
use std::{
    hash::{Hash as _, Hasher as _},
    sync::LazyLock,
};

use axum::{
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

/// One embedded file.
pub struct Asset {
    /// Its URL path.
    pub path: &'static str,
    /// Its content type.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
    /// Kept by browsers (pinned vendor files) rather than revalidated.
    pub immutable: bool,
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:literal, $immutable:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $file)),
            immutable: $immutable,
        }
    };
}

/// Every embedded file.
pub static ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8", false),
    asset!("/app.css", "app.css", "text/css; charset=utf-8", false),
    asset!(
        "/js/app.js",
        "js/app.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/js/api.js",
        "js/api.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/js/dom.js",
        "js/dom.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/js/charts.js",
        "js/charts.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/js/overview.js",
        "js/overview.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/js/aggregates.js",
        "js/aggregates.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/js/accuracy.js",
        "js/accuracy.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/js/dead-letters.js",
        "js/dead-letters.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/js/schemas.js",
        "js/schemas.js",
        "text/javascript; charset=utf-8",
        false
    ),
    asset!(
        "/vendor/uPlot.iife.min.js",
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        true
    ),
    asset!(
        "/vendor/uPlot.min.css",
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        true
    ),
    asset!(
        "/vendor/uPlot.LICENSE",
        "vendor/uPlot.LICENSE",
        "text/plain; charset=utf-8",
        true
    ),
    asset!("/favicon.svg", "favicon.svg", "image/svg+xml", false),
];

/// The embedded file at `path`.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Every file's ETag, by index in [`ASSETS`].
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            a.bytes.hash(&mut hasher);
            format!("\"{:016x}\"", hasher.finish())
        })
        .collect()
});

/// The response for `asset`, 304 when the browser's copy is current.
pub fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let index = ASSETS
        .iter()
        .position(|a| std::ptr::eq(a, asset))
        .unwrap_or_default();
    let etag = &ETAGS[index];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let cache = if asset.immutable {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.bytes.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    if asset.path == "/" {
        // The page runs only its own scripts: data is never markup.
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
            ),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

/// `GET /` (also `/index.html`).
pub async fn index(request: HeaderMap) -> Response {
    serve(find("/").expect("the shell is embedded"), &request)
}

/// `GET /{*path}` for the other files.
pub async fn file(Path(path): Path<String>, request: HeaderMap) -> Response {
    match find(&format!("/{path}")) {
        Some(asset) if asset.path != "/" => serve(asset, &request),
        _ => tributary_edge::error::ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no file /{path}"),
        )
        .into_response(),
    }
}
