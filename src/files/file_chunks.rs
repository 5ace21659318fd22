//! A disk file as a stream of body chunks for HTTP: each chunk is read with
//! `pread` straight into the buffer that goes to the socket (one copy from
//! the page cache, where `tokio::fs::File` + `ReaderStream` made two), on
//! the blocking pool, and the next chunk is already being read while the
//! current one is written (one read ahead).
//!
//! Memory is bounded across downloads: a chunk is [`READ_BUDGET`] divided by
//! the downloads in progress, between [`MIN_CHUNK`] and the caller's chunk,
//! so a fleet downloading at once holds at most about twice the budget
//! (each download one chunk being written and one read ahead), whatever
//! the concurrency: one download alone still reads in large chunks.

use std::future::Future;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::task::JoinHandle;

/// Bytes of chunks the downloads in progress read at once, all together.
pub const READ_BUDGET: usize = 32 * 1024 * 1024;
/// The smallest chunk, however many downloads run.
pub const MIN_CHUNK: usize = 16 * 1024;

/// Downloads in progress (streams not yet dropped).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// The chunk for one more read with `active` downloads in progress: `max`
/// alone, less as downloads add up.
fn chunk_size(active: usize, max: usize) -> usize {
    (READ_BUDGET / active.max(1)).clamp(MIN_CHUNK.min(max), max)
}

pub struct FileChunks {
    file: Arc<std::fs::File>,
    /// Where the next read starts, and the bytes left to read from there.
    offset: u64,
    left: u64,
    chunk: usize,
    reading: Option<JoinHandle<std::io::Result<Bytes>>>,
}

impl FileChunks {
    /// `len` bytes of `file` from `start`, `chunk` bytes at a time.
    pub fn new(file: std::fs::File, start: u64, len: u64, chunk: usize) -> FileChunks {
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        let mut c = FileChunks {
            file: Arc::new(file),
            offset: start,
            left: len,
            chunk,
            reading: None,
        };
        c.read_ahead();
        c
    }

    fn read_ahead(&mut self) {
        if self.left == 0 || self.reading.is_some() {
            return;
        }
        let chunk = chunk_size(ACTIVE.load(Ordering::Relaxed), self.chunk);
        let n = self.left.min(chunk as u64) as usize;
        let (file, at) = (self.file.clone(), self.offset);
        self.offset += n as u64;
        self.left -= n as u64;
        // Allocated here, on a runtime worker, not on the blocking thread:
        // a fleet downloading at once runs hundreds of blocking threads, and
        // buffers allocated there would stay in each thread's own heap.
        let mut buf = BytesMut::zeroed(n);
        self.reading = Some(tokio::task::spawn_blocking(move || {
            let mut got = 0;
            while got < n {
                match file.read_at(&mut buf[got..], at + got as u64) {
                    Ok(0) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the file became shorter while it was served",
                        ))
                    }
                    Ok(k) => got += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(buf.freeze())
        }));
    }
}

impl Stream for FileChunks {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(reading) = self.reading.as_mut() else {
            return Poll::Ready(None);
        };
        let r = match Pin::new(reading).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r,
        };
        self.reading = None;
        let chunk = r.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if chunk.is_ok() {
            self.read_ahead();
        }
        Poll::Ready(Some(chunk))
    }
}

impl Drop for FileChunks {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
        // A read ahead for a client that went away is not waited for.
        if let Some(r) = self.reading.take() {
            r.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::io::Write;

    #[tokio::test]
    async fn a_range_comes_back_whole_in_chunks() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        let mut s = FileChunks::new(f, 10, 99_000, 4096);
        let mut got = Vec::new();
        while let Some(c) = s.next().await {
            let c = c.unwrap();
            assert!(c.len() <= 4096);
            got.extend_from_slice(&c);
        }
        assert_eq!(got, &data[10..99_010]);
    }

    #[test]
    fn chunks_shrink_as_downloads_add_up() {
        let max = 256 * 1024;
        assert_eq!(chunk_size(0, max), max);
        assert_eq!(chunk_size(1, max), max);
        assert_eq!(chunk_size(128, max), max);
        assert_eq!(chunk_size(256, max), 128 * 1024);
        assert_eq!(chunk_size(100_000, max), MIN_CHUNK);
        // never above what the caller asked for
        assert_eq!(chunk_size(1, 4096), 4096);
        // the budget holds: chunks of every download add up to at most it
        for active in [1, 300, 2048, 16_384] {
            let c = chunk_size(active, max);
            assert!(c * active <= READ_BUDGET || c == MIN_CHUNK, "{active}: {c}");
        }
    }

    #[tokio::test]
    async fn a_file_cut_short_is_an_error_not_a_short_body() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[1u8; 1000]).unwrap();
        let mut s = FileChunks::new(f, 0, 5000, 4096);
        let mut results = Vec::new();
        while let Some(c) = s.next().await {
            results.push(c.is_ok());
        }
        assert_eq!(results, [false]);
    }
}
