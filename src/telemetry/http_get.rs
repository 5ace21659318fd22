//! A minimal HTTP/1.1 GET for credential refreshes from ztpd's own HTTP
//! listener (plain HTTP on the device network; SPEC §7 URLs are absolute
//! `http://`). Bounded in size and time; no redirects.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(10);

pub async fn get(url: &str, max: usize) -> Result<Vec<u8>, String> {
    tokio::time::timeout(TIMEOUT, fetch(url, max))
        .await
        .map_err(|_| format!("GET {url}: timed out after {TIMEOUT:?}"))?
}

async fn fetch(url: &str, max: usize) -> Result<Vec<u8>, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}`: only http:// URLs are supported"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nAccept: application/json\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let mut buf = Vec::new();
    (&mut s)
        .take((max + 16 * 1024) as u64)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("GET {url}: malformed response"))?;
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let body = &buf[split + 4..];
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body).ok_or_else(|| format!("GET {url}: malformed chunked body"))?
    } else {
        body.to_vec()
    };
    if body.len() > max {
        return Err(format!("GET {url}: response larger than {max} bytes"));
    }
    Ok(body)
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(
            super::dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert!(super::dechunk(b"zz\r\n").is_none());
    }
}
