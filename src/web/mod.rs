//! The topology GUI (SPEC §8): one page and its assets, built into the
//! binary, served on the operator listener. The page holds no data: it
//! fetches everything from `/api/v1` with its session cookie, so serving it
//! needs no token. Nothing is loaded from anywhere else (the
//! Content-Security-Policy says so to the browser too).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// `default-src 'self'` (SPEC §8), and no framing, no `<base>`, forms only
/// to ztpd itself.
pub const CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Every asset: path under `/assets/`, content type, bytes.
const ASSETS: [(&str, &str, &[u8]); 7] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/app.js"),
    ),
    (
        "twin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/twin.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/app.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("assets/icon.svg"),
    ),
    (
        "vendor/cytoscape.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/vendor/cytoscape.min.js"),
    ),
    (
        "vendor/cytoscape.LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("assets/vendor/cytoscape.LICENSE"),
    ),
    (
        "vendor/README.md",
        "text/plain; charset=utf-8",
        include_bytes!("assets/vendor/README.md"),
    ),
];

const INDEX: &[u8] = include_bytes!("assets/index.html");

pub fn routes() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/favicon.ico", get(|| asset(Path("icon.svg".to_string()))))
        .route("/assets/{*path}", get(asset))
}

fn page(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, ct, body)) => page(ct, body),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_assets_that_exist_and_no_other_host() {
        let html = std::str::from_utf8(INDEX).unwrap();
        for src in html
            .split("src=\"")
            .skip(1)
            .chain(html.split("href=\"").skip(1))
        {
            let url = &src[..src.find('"').unwrap()];
            assert!(url.starts_with('/'), "{url} is not on ztpd itself");
            if let Some(p) = url.strip_prefix("/assets/") {
                assert!(
                    ASSETS.iter().any(|(a, _, _)| *a == p),
                    "{url} is not served"
                );
            }
        }
        let js = std::str::from_utf8(ASSETS[0].2).unwrap();
        assert!(
            !js.contains("innerHTML"),
            "device strings must never be parsed as HTML"
        );
        assert!(!js.contains("http://") && !js.contains("https://"));
    }
}
