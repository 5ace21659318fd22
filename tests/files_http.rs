//! `/files/...` over HTTP against the real `ztpd run`, with curl.

mod support;

use std::process::{Command, Stdio};

use support::curl::{curl, header};
use support::files::{self, read, CREDENTIAL_ID, IMAGE};
use support::Daemon;

const IMAGE_LEN: usize = 3 * 1024 * 1024 + 123;

/// (status, headers, body) of one curl request.
fn get(d: &Daemon, path: &str, extra: &[&str]) -> (u16, String, Vec<u8>) {
    support::curl::fetch(&d.http_url(path), extra)
}

#[test]
fn fetches_config_and_image_with_range_etag_and_head() {
    let d = files::start("open", IMAGE_LEN);
    let image = d.file(IMAGE);
    let url = format!("/files/{IMAGE}");

    let (code, h, body) = get(&d, &url, &[]);
    assert_eq!(code, 200);
    assert!(body == image, "image differs");
    assert_eq!(
        header(&h, "content-length"),
        Some(IMAGE_LEN.to_string().as_str())
    );
    assert_eq!(header(&h, "content-type"), Some("application/octet-stream"));
    let etag = header(&h, "etag").expect("etag").to_string();

    let (code, h, body) = get(&d, &url, &["-r", "1000-1999"]);
    assert_eq!(code, 206);
    assert_eq!(body, &image[1000..2000]);
    assert_eq!(
        header(&h, "content-range"),
        Some(format!("bytes 1000-1999/{IMAGE_LEN}").as_str())
    );
    let (code, _, body) = get(&d, &url, &["-r", "-100"]);
    assert_eq!((code, body.as_slice()), (206, &image[IMAGE_LEN - 100..]));
    let (code, h, _) = get(&d, &url, &["-r", &format!("{IMAGE_LEN}-")]);
    assert_eq!(code, 416);
    assert_eq!(
        header(&h, "content-range"),
        Some(format!("bytes */{IMAGE_LEN}").as_str())
    );

    let inm = format!("If-None-Match: {etag}");
    let (code, _, body) = get(&d, &url, &["-H", &inm]);
    assert_eq!((code, body.len()), (304, 0));
    let (code, _, _) = get(&d, &url, &["-H", "If-None-Match: \"other\""]);
    assert_eq!(code, 200);

    // curl -I prints the headers as its output; a body would make it fail.
    let (code, h, _) = get(&d, &url, &["-I"]);
    assert_eq!(code, 200);
    assert_eq!(
        header(&h, "content-length"),
        Some(IMAGE_LEN.to_string().as_str())
    );

    let (code, h, body) = get(&d, "/files/configs/leaf1.cfg", &[]);
    assert_eq!(code, 200);
    assert_eq!(
        String::from_utf8_lossy(&body),
        "hostname leaf1\n! serial JPE87654321\n"
    );
    assert_eq!(
        header(&h, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    let (code, _, body) = get(&d, "/files/configs/leaf1.cfg", &["-r", "0-7"]);
    assert_eq!((code, body.as_slice()), (206, &b"hostname"[..]));

    // Resuming an interrupted download with curl -C.
    let part = d.path("resume.bin");
    std::fs::write(&part, &image[..IMAGE_LEN / 2]).expect("write part");
    let out = curl(&[
        "-s",
        "-C",
        "-",
        "-o",
        part.to_str().expect("utf8"),
        &d.http_url(&url),
    ]);
    assert!(out.status.success());
    assert!(read(&part) == image, "resumed image differs");
}

#[test]
fn traversal_probes_are_refused_with_403() {
    let d = files::start("open", 1024);
    for probe in [
        "/files/../../etc/passwd",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/%2E%2E%2Fsecret.txt",
        "/files/images/..%2f..%2fsecret.txt",
        "/files/%252e%252e/secret.txt",
        "/files/..%5csecret.txt",
        "/files/top%00.bin",
        "/files/escape.txt",
        "/files/images/",
    ] {
        let (code, _, body) = get(&d, probe, &["--path-as-is"]);
        assert_eq!(code, 403, "{probe}");
        assert!(!String::from_utf8_lossy(&body).contains("SECRET"));
    }
    // Directories are never listed.
    let (code, _, _) = get(&d, "/files/images", &[]);
    assert_eq!(code, 404);
    assert_eq!(get(&d, "/files/nope.bin", &[]).0, 404);
    assert_eq!(
        d.metric("ztpd_files_refusals_total{proto=\"http\",reason=\"traversal\"}"),
        8
    );
    assert_eq!(
        d.metric("ztpd_files_refusals_total{proto=\"http\",reason=\"symlink_escape\"}"),
        1
    );
}

#[test]
fn leased_mode_refuses_configs_and_credentials_need_lease_or_sas() {
    let d = files::start("leased", 1024);
    assert_eq!(get(&d, "/files/configs/leaf1.cfg", &[]).0, 403);
    assert_eq!(get(&d, "/files/rtr1-confg", &[]).0, 403);
    assert_eq!(get(&d, "/files/configs/nobody.cfg", &[]).0, 404);
    let cred = format!("/files/credentials/device_{CREDENTIAL_ID}.json");
    assert_eq!(get(&d, &cred, &[]).0, 403);
    let sas = "Authorization: SharedAccessSignature sr=hub%2Fdevices%2Fx&sig=bad&se=1";
    assert_eq!(get(&d, &cred, &["-H", sas]).0, 403);
    assert_eq!(
        d.metric("ztpd_files_refusals_total{proto=\"http\",reason=\"bad_sas\"}"),
        1
    );
    // Open paths stay open.
    assert_eq!(get(&d, &format!("/files/{IMAGE}"), &[]).0, 200);
}

#[test]
fn open_mode_serves_configs_to_anyone() {
    let d = files::start("open", 1024);
    assert_eq!(get(&d, "/files/configs/JPE87654321.cfg", &[]).0, 200);
    assert_eq!(get(&d, "/files/network-confg", &[]).0, 200);
}

#[test]
fn many_parallel_downloads() {
    let d = files::start("open", IMAGE_LEN);
    let image = d.file(IMAGE);
    let children: Vec<_> = (0..24)
        .map(|i| {
            let out = d.path(&format!("par{i}"));
            let child = Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    out.to_str().expect("utf8"),
                    &d.http_url(&format!("/files/{IMAGE}")),
                ])
                .spawn()
                .expect("curl");
            (child, out)
        })
        .collect();
    for (mut c, out) in children {
        assert!(c.wait().expect("wait").success());
        assert!(read(&out) == image, "parallel copy differs");
    }
    d.wait_metrics("24 complete http transfers", 10, |d| {
        d.metric("ztpd_files_transfers_total{proto=\"http\",outcome=\"complete\"}") == 24
    });
}

#[test]
fn an_abandoned_download_is_recorded_as_aborted() {
    // Bigger than what loopback socket buffers absorb, so the body is still
    // being written when the slow client is killed.
    let d = files::start("open", 48 * 1024 * 1024);
    let mut slow = Command::new("curl")
        .args([
            "-s",
            "--limit-rate",
            "64k",
            "-o",
            "/dev/null",
            &d.http_url(&format!("/files/{IMAGE}")),
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("curl");
    d.wait_metrics("the slow download in progress", 10, |d| {
        d.metric("ztpd_files_transfers_active{proto=\"http\"}") == 1
    });
    slow.kill().expect("kill");
    let _ = slow.wait();
    d.wait_metrics("the abandoned download aborted", 10, |d| {
        d.metric("ztpd_files_transfers_total{proto=\"http\",outcome=\"aborted\"}") == 1
            && d.metric("ztpd_files_transfers_active{proto=\"http\"}") == 0
    });
}
