//! Fuzz the TFTP packet parser and the path normaliser behind it: any bytes
//! from the network must parse or fail with an error, never panic, and
//! accepted options must stay inside the bounds the server relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztpd::files::tftp_packet::{self, Packet, MAX_BLKSIZE, MAX_WINDOWSIZE, MIN_BLKSIZE};
use ztpd::files::vfs;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = tftp_packet::parse(data) else {
        return;
    };
    if let Packet::Read(req) | Packet::Write(req) = packet {
        let o = &req.options;
        if let Some(b) = o.blksize {
            assert!((MIN_BLKSIZE..=MAX_BLKSIZE).contains(&b));
        }
        if let Some(w) = o.windowsize {
            assert!((1..=MAX_WINDOWSIZE).contains(&w));
        }
        if let Some(t) = o.timeout {
            assert!(t >= 1);
        }
        if let Ok(parts) = vfs::normalise(&req.filename) {
            for p in parts {
                assert!(!p.is_empty() && p != ".." && p != "." && !p.contains('\\'));
            }
        }
    }
});
