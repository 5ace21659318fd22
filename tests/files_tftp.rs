//! TFTP against the real `ztpd run` with third-party clients: curl, atftp
//! and tftp-hpa (`apt-get install curl atftp tftp-hpa`).

mod support;

use std::process::{Command, Stdio};

use support::files::{self, read, EVEN_IMAGE, IMAGE};
use support::Daemon;

const IMAGE_LEN: usize = 3 * 1024 * 1024 + 123;
/// curl's exit codes for TFTP error 1 and error 2.
const CURL_TFTP_NOT_FOUND: i32 = 68;
const CURL_TFTP_PERM: i32 = 69;

fn curl_tftp(d: &Daemon, path: &str, extra: &[&str]) -> (Option<i32>, Vec<u8>) {
    let out = d.path(&format!("out-{}", path.replace('/', "_")));
    support::curl::tftp(&d.tftp_url(path), &out, extra)
}

fn atftp(d: &Daemon, remote: &str, opts: &[&str]) -> (bool, String, Vec<u8>) {
    let local = d.path("atftp.out");
    let _ = std::fs::remove_file(&local);
    let port = d.tftp.port().to_string();
    let mut args: Vec<&str> = vec!["atftp"];
    for o in opts {
        args.extend_from_slice(&["--option", o]);
    }
    args.extend_from_slice(&[
        "-g",
        "-r",
        remote,
        "-l",
        local.to_str().expect("utf8"),
        "127.0.0.1",
        &port,
    ]);
    let out = support::tools::run(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let body = std::fs::read(&local).unwrap_or_default();
    (out.status.success() && !text.contains("error"), text, body)
}

#[test]
fn curl_fetches_config_and_images_with_and_without_blksize() {
    let d = files::start("open", IMAGE_LEN);
    let image = d.file(IMAGE);
    let even = d.file(EVEN_IMAGE);
    for extra in [
        &[][..],
        &["--tftp-blksize", "1468"][..],
        &["--tftp-no-options"][..],
    ] {
        let (code, body) = curl_tftp(&d, IMAGE, extra);
        assert_eq!(code, Some(0), "curl {extra:?}\n{}", d.log());
        assert!(body == image, "image differs with {extra:?}");
        let (code, body) = curl_tftp(&d, EVEN_IMAGE, extra);
        assert_eq!(code, Some(0));
        assert!(body == even, "even image differs with {extra:?}");
        let (code, body) = curl_tftp(&d, "configs/leaf1.cfg", extra);
        assert_eq!(code, Some(0));
        assert_eq!(
            String::from_utf8_lossy(&body),
            "hostname leaf1\n! serial JPE87654321\n"
        );
    }
    // By serial, too.
    let (code, body) = curl_tftp(&d, "configs/JPE87654321.cfg", &[]);
    assert_eq!(
        (code, body.starts_with(b"hostname leaf1\n")),
        (Some(0), true)
    );
    let (code, _) = curl_tftp(&d, "configs/nobody.cfg", &[]);
    assert_eq!(code, Some(CURL_TFTP_NOT_FOUND));
}

#[test]
fn atftp_with_blksize_windowsize_and_tsize_enable() {
    let d = files::start("open", IMAGE_LEN);
    let image = d.file(IMAGE);
    for opts in [
        &[][..],
        &["blksize 1468"][..],
        &["blksize 1468", "windowsize 8"][..],
        &["windowsize 8"][..],
        &["tsize enable", "blksize 1468", "timeout 1"][..],
    ] {
        let (ok, text, body) = atftp(&d, IMAGE, opts);
        assert!(ok, "atftp {opts:?}: {text}\n{}", d.log());
        assert!(body == image, "image differs with {opts:?}");
        let (ok, text, body) = atftp(&d, "configs/leaf1.cfg", opts);
        assert!(ok, "atftp {opts:?}: {text}");
        assert!(body.starts_with(b"hostname leaf1\n"));
    }
}

#[test]
fn tftp_hpa_plain_rfc1350_and_cisco_autoinstall_names() {
    let d = files::start("open", IMAGE_LEN);
    let port = d.tftp.port().to_string();
    let get = |remote: &str| {
        let local = d.path("hpa.out");
        let _ = std::fs::remove_file(&local);
        let cmd = format!("get {remote} {}", local.display());
        let out = support::tools::run(&[
            "tftp",
            "-m",
            "binary",
            "127.0.0.1",
            &port,
            "-c",
            "get",
            remote,
            local.to_str().expect("utf8"),
        ]);
        assert!(out.status.success(), "{cmd}: {out:?}");
        read(&local)
    };
    assert!(get(IMAGE) == d.file(IMAGE), "image differs over tftp-hpa");
    let hosts = String::from_utf8(get("network-confg")).expect("utf8");
    assert!(hosts.contains("ip host rtr1 10.10.0.21\n"), "{hosts}");
    assert!(!hosts.contains("leaf1"), "only cisco-ios devices: {hosts}");
    assert_eq!(
        get("rtr1-confg"),
        b"hostname rtr1\nip domain-name lab\nend\n"
    );
    // tftp-hpa's default mode is netascii: the copy equals the rendered text
    // (the CR LF on the wire is checked in the unit tests of files::tftp).
    let local = d.path("ascii.out");
    let out = support::tools::run(&[
        "tftp",
        "127.0.0.1",
        &port,
        "-c",
        "get",
        "rtr1-confg",
        local.to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(read(&local), b"hostname rtr1\nip domain-name lab\nend\n");
}

#[test]
fn traversal_probes_are_refused_with_error_2() {
    let d = files::start("open", 1024);
    for probe in [
        "../../etc/hostname",
        "/etc/hostname",
        "images/../../secret.txt",
        "escape.txt",
        "..\\secret.txt",
    ] {
        let (ok, text, body) = atftp(&d, probe, &[]);
        assert!(!ok && body.is_empty(), "{probe} served: {text}");
        assert!(text.contains("access violation"), "{probe}: {text}");
    }
    // curl strips `../` but sends an absolute path as given.
    let (code, _) = curl_tftp(&d, "/etc/hostname", &[]);
    assert_eq!(code, Some(CURL_TFTP_PERM));
    assert_eq!(
        d.metric("ztpd_files_refusals_total{proto=\"tftp\",reason=\"traversal\"}"),
        5
    );
    assert_eq!(
        d.metric("ztpd_files_refusals_total{proto=\"tftp\",reason=\"symlink_escape\"}"),
        1
    );
    assert!(
        d.log().contains("client=127.0.0.1:"),
        "refusals are logged with the client"
    );
}

#[test]
fn leased_mode_refuses_configs_and_credentials_to_an_unleased_client() {
    let d = files::start("leased", 1024);
    // 127.0.0.1 holds no lease: configs and credentials are refused...
    for p in ["configs/leaf1.cfg", "configs/JPE87654321.cfg", "rtr1-confg"] {
        assert_eq!(curl_tftp(&d, p, &[]).0, Some(CURL_TFTP_PERM), "{p}");
    }
    let cred = format!("credentials/device_{}.json", files::CREDENTIAL_ID);
    assert_eq!(curl_tftp(&d, &cred, &[]).0, Some(CURL_TFTP_PERM));
    // ...while images stay open to anyone.
    let (code, body) = curl_tftp(&d, IMAGE, &[]);
    assert_eq!(code, Some(0));
    assert!(body == d.file(IMAGE));
}

#[test]
fn many_parallel_transfers() {
    let d = files::start("open", IMAGE_LEN);
    let image = d.file(IMAGE);
    let children: Vec<_> = (0..24)
        .map(|i| {
            let out = d.path(&format!("par{i}"));
            let blk = if i % 2 == 0 { "512" } else { "1468" };
            let child = Command::new("curl")
                .args([
                    "-s",
                    "--tftp-blksize",
                    blk,
                    "-o",
                    out.to_str().expect("utf8"),
                    &d.tftp_url(IMAGE),
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
    d.wait_metrics("24 completed tftp transfers", 10, |d| {
        d.metric("ztpd_files_transfers_total{proto=\"tftp\",outcome=\"complete\"}") == 24
    });
}

#[test]
fn a_client_that_vanishes_mid_transfer_is_cleaned_up() {
    // 32 MiB in 512-byte lockstep takes seconds, so the client is killed mid-way.
    let d = files::start("open", 32 * 1024 * 1024);
    let port = d.tftp.port().to_string();
    let local = d.path("vanish.out");
    let mut child = Command::new("atftp")
        .args([
            "-g",
            "-r",
            IMAGE,
            "-l",
            local.to_str().expect("utf8"),
            "127.0.0.1",
            &port,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("atftp");
    d.wait_metrics(
        "a tftp transfer in progress with bytes acknowledged",
        20,
        |d| {
            d.metric("ztpd_files_transfers_active{proto=\"tftp\"}") == 1
                && d.metric("ztpd_files_bytes_total{proto=\"tftp\"}") > 0
        },
    );
    child.kill().expect("kill atftp");
    let _ = child.wait();
    d.wait_metrics("the vanished transfer to be aborted", 20, |d| {
        d.metric("ztpd_files_transfers_active{proto=\"tftp\"}") == 0
            && d.metric("ztpd_files_transfers_total{proto=\"tftp\",outcome=\"aborted\"}") == 1
    });
    assert!(d.metric("ztpd_files_bytes_total{proto=\"tftp\"}") < 32 * 1024 * 1024);
    // The server still serves.
    assert_eq!(curl_tftp(&d, "configs/leaf1.cfg", &[]).0, Some(0));
}

#[test]
fn a_file_removed_mid_transfer_arrives_whole_and_is_then_not_found() {
    let d = files::start("open", 16 * 1024 * 1024);
    let image = d.file(IMAGE);
    let port = d.tftp.port().to_string();
    let local = d.path("removed.out");
    let mut child = Command::new("atftp")
        .args([
            "-g",
            "-r",
            IMAGE,
            "-l",
            local.to_str().expect("utf8"),
            "127.0.0.1",
            &port,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("atftp");
    d.wait_metrics("a tftp transfer in progress", 20, |d| {
        d.metric("ztpd_files_transfers_active{proto=\"tftp\"}") == 1
            && d.metric("ztpd_files_bytes_total{proto=\"tftp\"}") > 0
    });
    std::fs::remove_file(d.path("files").join(IMAGE)).expect("remove image");
    assert!(child.wait().expect("wait").success());
    assert!(read(&local) == image, "the open transfer keeps its content");
    assert_eq!(curl_tftp(&d, IMAGE, &[]).0, Some(CURL_TFTP_NOT_FOUND));
}
