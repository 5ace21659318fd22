//! `/files/{*path}` on the shared HTTP listener: the same tree and access
//! hook as TFTP, with Range (206/416), ETag/If-None-Match (304), HEAD and
//! content types. Bodies are streamed from disk, never read whole.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures_util::Stream;

use super::access::Refusal;
use super::ledger::{Proto, TransferHandle};
use super::vfs::{Content, Kind};
use super::FileService;
use super::{OpenError, Served};

/// Disk read size per body chunk: large chunks keep the blocking-pool hops
/// per byte low, which is what bounds throughput against nginx's sendfile;
/// with one chunk read ahead, a download holds at most two.
const CHUNK: usize = 256 * 1024;

/// The file routes; the state is the file service alone.
pub fn routes() -> Router<std::sync::Arc<FileService>> {
    Router::new().route("/files/{*path}", get(get_file))
}

async fn get_file(
    State(files): State<std::sync::Arc<FileService>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let raw = uri.path().strip_prefix("/files/").unwrap_or_default();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // An escape that decodes to a separator, dot, backslash or NUL is a
    // traversal attempt; give the hook the raw text so it refuses and counts it.
    let Some(path) = percent_decode(raw) else {
        files.refuse(
            Proto::Http,
            client,
            raw,
            Refusal::Traversal,
            &"encoded separator, dot or NUL",
        );
        return (StatusCode::FORBIDDEN, "forbidden\n").into_response();
    };
    let served = match files.open(&path, client, auth, Proto::Http).await {
        Ok(s) => s,
        Err(OpenError::NotFound) => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
        Err(OpenError::Refused(_)) => {
            return (StatusCode::FORBIDDEN, "forbidden\n").into_response()
        }
    };
    respond(served, &method, &headers, files.ledger.clone(), client)
}

fn respond(
    served: Served,
    method: &Method,
    headers: &HeaderMap,
    ledger: std::sync::Arc<super::ledger::Ledger>,
    client: SocketAddr,
) -> Response {
    let len = served.len;
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&served)),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Configs change on reload: clients may cache but must revalidate.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&served.etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(m) = served.modified {
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(m)) {
            h.insert(header::LAST_MODIFIED, v);
        }
    }
    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        if etag_matches(inm, &served.etag) {
            return (StatusCode::NOT_MODIFIED, h).into_response();
        }
    }
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == served.etag);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) if if_range_ok => parse_range(r, len),
        _ => ByteRange::Full,
    };
    let (status, start, count) = match range {
        ByteRange::Full => (StatusCode::OK, 0, len),
        ByteRange::Part(a, b) => {
            let cr = format!("bytes {a}-{b}/{len}");
            if let Ok(v) = HeaderValue::from_str(&cr) {
                h.insert(header::CONTENT_RANGE, v);
            }
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
        ByteRange::Unsatisfiable => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
            return (StatusCode::RANGE_NOT_SATISFIABLE, h).into_response();
        }
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if method == Method::HEAD {
        return (status, h).into_response();
    }
    let handle = served.begin(&ledger, client, Proto::Http, count);
    let body = match served.content {
        Content::Memory(b) => {
            let part = b.slice(start as usize..(start + count) as usize);
            Body::from_stream(Counted::new(
                futures_util::stream::iter([Ok(part)]),
                handle,
                count,
            ))
        }
        Content::Disk(f) => Body::from_stream(Counted::new(
            super::file_chunks::FileChunks::new(f, start, count, CHUNK),
            handle,
            count,
        )),
    };
    (status, h, body).into_response()
}

fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|t| {
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag.strip_prefix("W/").unwrap_or(etag)
    })
}

#[derive(Debug, PartialEq, Eq)]
enum ByteRange {
    Full,
    /// Inclusive start and end.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range (RFC 9110 §14). Multiple ranges and malformed headers
/// are ignored (the whole file is served), as the RFC permits.
fn parse_range(h: &str, len: u64) -> ByteRange {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        (true, false) => match num(b) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if len == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Part(len.saturating_sub(n), len - 1),
            None => ByteRange::Full,
        },
        (false, _) => {
            let Some(start) = num(a) else {
                return ByteRange::Full;
            };
            let end = if b.is_empty() { Some(u64::MAX) } else { num(b) };
            match end {
                None => ByteRange::Full,
                Some(end) if end < start => ByteRange::Full,
                Some(_) if start >= len => ByteRange::Unsatisfiable,
                Some(end) => ByteRange::Part(start, end.min(len - 1)),
            }
        }
        (true, true) => ByteRange::Full,
    }
}

/// Decode `%XX` escapes. `None` when an escape decodes to `/`, `.`, `\` or
/// NUL (a traversal trick), or the result is not UTF-8.
pub fn percent_decode(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let c = (h * 16 + l) as u8;
                if matches!(c, b'/' | b'.' | b'\\' | 0) {
                    return None;
                }
                out.push(c);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn content_type(s: &Served) -> &'static str {
    let p = s.path.to_ascii_lowercase();
    let ext = p.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match (&s.kind, ext) {
        (Kind::Config { .. }, _) => "text/plain; charset=utf-8",
        (Kind::Credential { .. }, _) | (_, "json") => "application/json",
        (_, "sh") => "text/x-shellscript; charset=utf-8",
        (_, "py") => "text/x-python; charset=utf-8",
        (_, "cfg" | "conf" | "txt" | "ini" | "cmd") => "text/plain; charset=utf-8",
        (_, "xml") => "application/xml",
        (_, "gz" | "tgz") => "application/gzip",
        (_, "tar") => "application/x-tar",
        (_, "zip") => "application/zip",
        (_, "iso") => "application/x-iso9660-image",
        (Kind::Bootstrap, _) => "text/plain; charset=utf-8",
        _ if p.ends_with("-confg") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Counts streamed bytes into the ledger; complete once every byte of the
/// body went out (hyper stops polling at Content-Length, so the end of the
/// stream is not a signal), aborted by the handle's drop when the client
/// goes away first.
struct Counted<S> {
    inner: S,
    handle: Option<TransferHandle>,
    remaining: u64,
}

impl<S> Counted<S> {
    fn new(inner: S, handle: TransferHandle, len: u64) -> Self {
        let mut c = Counted {
            inner,
            handle: Some(handle),
            remaining: len,
        };
        if len == 0 {
            c.finish();
        }
        c
    }

    fn finish(&mut self) {
        if let Some(h) = self.handle.take() {
            h.complete();
        }
    }
}

impl<S: Stream<Item = std::io::Result<Bytes>> + Unpin> Stream for Counted<S> {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let r = Pin::new(&mut self.inner).poll_next(cx);
        match &r {
            Poll::Ready(Some(Ok(b))) => {
                let n = b.len() as u64;
                if let Some(h) = &self.handle {
                    h.add_bytes(n);
                }
                self.remaining = self.remaining.saturating_sub(n);
                if self.remaining == 0 {
                    self.finish();
                }
            }
            Poll::Ready(None) => self.finish(),
            _ => {}
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use ByteRange::*;
        assert_eq!(parse_range("bytes=0-9", 100), Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-1000", 100), Part(0, 99));
        assert_eq!(parse_range("bytes=50-5000", 100), Part(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Full);
        assert_eq!(parse_range("bytes=9-1", 100), Full);
        assert_eq!(parse_range("items=0-1", 100), Full);
        assert_eq!(parse_range("bytes=x-1", 100), Full);
    }

    #[test]
    fn decoding_refuses_encoded_separators() {
        assert_eq!(
            percent_decode("images/a%20b.bin").as_deref(),
            Some("images/a b.bin")
        );
        assert_eq!(percent_decode("%2e%2e/etc/passwd"), None);
        assert_eq!(percent_decode("a%2Fb"), None);
        assert_eq!(percent_decode("a%5cb"), None);
        assert_eq!(percent_decode("a%00b"), None);
        // Double encoding survives one decode and is refused by the tree.
        assert_eq!(percent_decode("%252e%252e").as_deref(), Some("%2e%2e"));
        assert_eq!(percent_decode("50%").as_deref(), Some("50%"));
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"a\", \"b\"", "\"b\""));
        assert!(etag_matches("*", "\"b\""));
        assert!(etag_matches("W/\"b\"", "\"b\""));
        assert!(!etag_matches("\"c\"", "\"b\""));
    }
}
