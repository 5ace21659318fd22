//! The one HTTP/1.1 client of ztpd (one request per connection, plain
//! `http://`, bounded in size and time, no redirects): the operator CLI, the
//! switch simulator and the telemetry simulator's credential refresh all
//! talk to ztpd's own listener with it, so none needs a client dependency.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response [`request`] reads (a big topology fits many times over).
const MAX_RESPONSE: usize = 64 << 20;
/// Response head allowed on top of a body limit.
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct Url {
    pub host: String,
    pub port: u16,
    pub path: String,
}

/// Parse `http://host[:port][/path]`.
pub fn parse_url(url: &str) -> anyhow::Result<Url> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("{url}: only http:// URLs are supported"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    // `[2001:db8::1]:8080`: an IPv6 host is bracketed (RFC 3986), and kept
    // without the brackets.
    let (host, port) = match hostport.strip_prefix('[').and_then(|h| h.split_once(']')) {
        Some((h, "")) => (h, 80),
        Some((h, p)) => match p.strip_prefix(':') {
            Some(p) => (h, p.parse().with_context(|| format!("{url}: bad port"))?),
            None => bail!("{url}: bad host"),
        },
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().with_context(|| format!("{url}: bad port"))?),
            None => (hostport, 80),
        },
    };
    if host.is_empty() {
        bail!("{url}: no host");
    }
    Ok(Url {
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&self.body).into())
        })
    }
}

/// One request; `headers` are extra `Name: value` pairs.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> anyhow::Result<Response> {
    tokio::time::timeout(
        timeout,
        request_inner(method, url, headers, body, MAX_RESPONSE),
    )
    .await
    .map_err(|_| anyhow!("{method} {url}: no answer within {timeout:?}"))?
}

/// GET a body of at most `max` bytes that must come with status 200.
pub async fn get(url: &str, max: usize, timeout: Duration) -> anyhow::Result<Vec<u8>> {
    get_with(url, &[], max, timeout).await
}

/// [`get`] with extra `Name: value` headers (e.g. `Authorization`).
pub async fn get_with(
    url: &str,
    headers: &[(&str, &str)],
    max: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<u8>> {
    let mut all = vec![("Accept", "application/json")];
    all.extend_from_slice(headers);
    let r = tokio::time::timeout(timeout, request_inner("GET", url, &all, None, max))
        .await
        .map_err(|_| anyhow!("GET {url}: timed out after {timeout:?}"))??;
    if r.status != 200 {
        bail!("GET {url}: HTTP {}", r.status);
    }
    if r.body.len() > max {
        bail!("GET {url}: response larger than {max} bytes");
    }
    Ok(r.body)
}

async fn request_inner(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    max: usize,
) -> anyhow::Result<Response> {
    let u = parse_url(url)?;
    let mut s = TcpStream::connect((u.host.as_str(), u.port))
        .await
        .with_context(|| format!("cannot connect to {}:{}", u.host, u.port))?;
    let host = if u.host.contains(':') {
        format!("[{}]", u.host)
    } else {
        u.host.clone()
    };
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {host}:{}\r\nConnection: close\r\n",
        u.path, u.port
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await?;
    if let Some(b) = body {
        s.write_all(b).await?;
    }
    let mut buf = Vec::new();
    s.take((max + MAX_HEAD) as u64)
        .read_to_end(&mut buf)
        .await?;
    parse_response(&buf).with_context(|| format!("{method} {url}"))
}

fn parse_response(buf: &[u8]) -> anyhow::Result<Response> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("incomplete HTTP response"))?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let status = head
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad status line"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let raw = &buf[end + 4..];
    let body = if chunked { dechunk(raw)? } else { raw.to_vec() };
    Ok(Response { status, body })
}

fn dechunk(mut raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("bad chunk"))?;
        let size_text = String::from_utf8_lossy(&raw[..nl]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| anyhow!("bad chunk size"))?;
        raw = &raw[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_chunked_bodies() {
        let u = parse_url("http://127.0.0.1:8080/ztp/v1/hello").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/ztp/v1/hello")
        );
        assert_eq!(parse_url("http://h").unwrap().path, "/");
        let v6 = parse_url("http://[2001:db8::1]:8080/files/x").unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.port, v6.path.as_str()),
            ("2001:db8::1", 8080, "/files/x")
        );
        assert_eq!(parse_url("http://[2001:db8::1]/").unwrap().port, 80);
        assert!(parse_url("https://h").is_err());
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        assert!(dechunk(b"zz\r\n").is_err());
        assert!(
            dechunk(b"5\r\nab").is_err(),
            "a truncated chunk is an error"
        );
    }
}
