//! The web pages, served from the binary: the **shop** (`GET /` and
//! `/shop/*`, on the public gateway, same origin as the API) and the
//! **operations console** (`GET /console` and `/console/*`, on the internal
//! listener only).
//!
//! The pages are plain ES modules with no build step (why: web/README.md):
//! the files under `web/shop/` and `web/console/` are the files a browser
//! runs, embedded here with `include_bytes!`, so the binary needs no asset
//! folder and no page reaches a CDN. Every answer carries a strict
//! Content-Security-Policy (only this origin), `nosniff`, no referrer and
//! no framing; assets are revalidated (`no-cache` + `ETag`, `304`).
//!
//! Layer: a leaf crate; imports axum only. The catalog service merges
//! [`shop_router`] into its public routes; the composition roots merge
//! [`console_router`] into their internal listeners.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file: its name under its page's prefix, type and bytes.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// FNV-1a of `body`, computed at compile time: the ETag.
    pub hash: u64,
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

macro_rules! asset {
    ($dir:literal, $name:literal, $ty:expr) => {
        Asset {
            name: $name,
            content_type: $ty,
            body: include_bytes!(concat!("../", $dir, "/", $name)),
            hash: fnv1a(include_bytes!(concat!("../", $dir, "/", $name))),
        }
    };
}

/// The shop's files (`/shop/<name>`; `index.html` is also `/`).
pub const SHOP: &[Asset] = &[
    asset!("shop", "index.html", HTML),
    asset!("shop", "style.css", CSS),
    asset!("shop", "app.js", JS),
    asset!("shop", "api.js", JS),
    asset!("shop", "messages.js", JS),
    asset!("shop", "seatmap.js", JS),
    asset!("shop", "stream.js", JS),
    asset!("shop", "checkout.js", JS),
    asset!("shop", "queue.js", JS),
    asset!("shop", "dom.js", JS),
];

/// The console's files (`/console/<name>`; `index.html` is also `/console`).
pub const CONSOLE: &[Asset] = &[
    asset!("console", "index.html", HTML),
    asset!("console", "console.js", JS),
    asset!("console", "console.css", CSS),
    asset!("shop", "dom.js", JS),
];

/// Only this origin, for everything; no inline script or style, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Public paths the shop answers (for the gateway's routing table and nginx).
pub const SHOP_PATHS: &[&str] = &["/", "/shop/"];
/// Internal paths the console answers.
pub const CONSOLE_PATHS: &[&str] = &["/console"];

/// FNV-1a, evaluated at compile time in [`SHOP`] and [`CONSOLE`].
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// `GET /` and `GET /shop/{name}`.
pub fn shop_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { serve(SHOP, "index.html", &h) }),
        )
        .route(
            "/shop/{name}",
            get(|Path(name): Path<String>, h: HeaderMap| async move { serve(SHOP, &name, &h) }),
        )
}

/// `GET /console` and `GET /console/{name}`.
pub fn console_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/console",
            get(|h: HeaderMap| async move { serve(CONSOLE, "index.html", &h) }),
        )
        .route(
            "/console/{name}",
            get(|Path(name): Path<String>, h: HeaderMap| async move { serve(CONSOLE, &name, &h) }),
        )
}

/// The asset `name` of `assets` (404 when there is none), or 304 when the
/// client's `If-None-Match` names its ETag.
pub fn serve(assets: &[Asset], name: &str, request: &HeaderMap) -> Response {
    let Some(asset) = assets.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, security_headers()).into_response();
    };
    let etag = format!("\"{:016x}\"", asset.hash);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    let mut headers = security_headers();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    (StatusCode::OK, headers, asset.body).into_response()
}

fn security_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    async fn get(router: Router, path: &str, etag: Option<&str>) -> Response {
        let mut req = Request::get(path);
        if let Some(t) = etag {
            req = req.header(header::IF_NONE_MATCH, t);
        }
        router
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_shop_page_is_served_at_the_root_with_a_strict_policy() {
        let r = get(shop_router(), "/", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], HTML);
        assert_eq!(
            r.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let page = String::from_utf8(body.to_vec()).unwrap();
        assert!(page.contains("/shop/app.js"), "{page}");
    }

    #[tokio::test]
    async fn an_asset_is_revalidated_by_its_etag() {
        let r = get(shop_router(), "/shop/app.js", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], JS);
        let etag = r.headers()[header::ETAG].to_str().unwrap().to_owned();
        let again = get(shop_router(), "/shop/app.js", Some(&etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let other = get(shop_router(), "/shop/app.js", Some("\"0\"")).await;
        assert_eq!(other.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_files_are_404_and_the_console_is_not_in_the_shop() {
        for path in ["/shop/nope.js", "/shop/..%2Fsrc%2Flib.rs", "/console"] {
            let r = get(shop_router(), path, None).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        }
        let r = get(console_router(), "/console", None).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[test]
    fn every_module_a_page_imports_is_served() {
        for (assets, dir) in [(SHOP, "/shop/"), (CONSOLE, "/console/")] {
            for a in assets {
                let text = std::str::from_utf8(a.body).unwrap();
                for import in text
                    .split("from '")
                    .skip(1)
                    .chain(text.split("src=\"").skip(1))
                {
                    let target = import.split(['\'', '"']).next().unwrap();
                    let name = target
                        .strip_prefix("./")
                        .or_else(|| target.strip_prefix(dir))
                        .unwrap_or(target);
                    assert!(
                        assets.iter().any(|x| x.name == name),
                        "{dir}{} imports {target}, which is not served",
                        a.name
                    );
                }
            }
        }
    }
}
