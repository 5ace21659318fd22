//! The file-service daemon of `files_http.rs` and `files_tftp.rs`: the
//! `files` fixture plus what is better made than stored (images of a size
//! the test picks, and a symlink out of `files/`).

use std::path::Path;

use super::daemon::Daemon;
use super::fixtures;

pub const IMAGE: &str = "images/EOS-4.30.1F.swi";
/// A multiple of both 512 and 1468: the transfer ends with an empty block.
pub const EVEN_IMAGE: &str = "images/even.bin";
/// The fixture's stored credential.
pub const CREDENTIAL_ID: &str = "24c319455312bcd559b333c986024211";

/// Start `ztpd run` on the `files` fixture with `access.configs = <access>`
/// and an image of `image_len` bytes.
pub fn start(access: &str, image_len: usize) -> Daemon {
    let root = fixtures::temp_root("files");
    let r = root.path();
    std::fs::create_dir_all(r.join("files/images")).expect("mkdir images");
    std::fs::write(r.join("files").join(IMAGE), pseudo_random(image_len, 7)).expect("image");
    std::fs::write(
        r.join("files").join(EVEN_IMAGE),
        pseudo_random(512 * 1468 * 4, 9),
    )
    .expect("image");
    std::os::unix::fs::symlink(r.join("secret.txt"), r.join("files/escape.txt")).expect("symlink");
    Daemon::builder()
        .owned_root(root)
        .broker("")
        .access(&format!("configs = \"{access}\""))
        .start()
}

/// Deterministic, incompressible test bytes.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}
