//! The `srtp-pcap` binary: both subcommands end to end, exit codes, and clear messages (never a
//! panic) for bad input.

mod common;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Format, Link, Record};
use pcap_file::Endianness;

const KEY: &str = "AES_CM_128_HMAC_SHA1_80:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CB";
const OTHER_KEY: &str =
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^31";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_srtp-pcap"))
}

/// A path for this test in cargo's per-target temporary directory.
fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}-{name}", std::process::id()))
}

fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().expect("run srtp-pcap");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "srtp-pcap panicked: {stderr}");
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A plain capture: 50 RTP packets and 2 RTCP reports from one SSRC (rtcp-mux), and a DNS-like
/// datagram.
fn plain_records(link: Link) -> Vec<Record> {
    let a: SocketAddr = "192.0.2.1:16384".parse().unwrap();
    let b: SocketAddr = "192.0.2.2:16384".parse().unwrap();
    let t0 = Duration::new(1_600_000_000, 0);
    let mut records = Vec::new();
    for i in 0u16..50 {
        let mut rtp = vec![0x80, 0x00];
        rtp.extend_from_slice(&(1000 + i).to_be_bytes());
        rtp.extend_from_slice(&(u32::from(i) * 160).to_be_bytes());
        rtp.extend_from_slice(&0xABCD_0001u32.to_be_bytes());
        rtp.extend_from_slice(&[0xD5; 160]);
        let t = t0 + Duration::from_millis(20) * u32::from(i);
        records.push(Record::new(t, common::udp_frame(link, a, b, &rtp)));
        if i % 25 == 0 {
            let mut sr = vec![0x80, 200, 0, 6];
            sr.extend_from_slice(&0xABCD_0001u32.to_be_bytes());
            sr.extend_from_slice(&[0; 20]);
            records.push(Record::new(t, common::udp_frame(link, a, b, &sr)));
        }
    }
    let dns = common::udp_frame(
        link,
        a,
        "192.0.2.53:53".parse().unwrap(),
        &[0x12, 0x34, 1, 0],
    );
    records.push(Record::new(t0 + Duration::from_secs(1), dns));
    records
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = tmp(name);
    fs::write(&path, bytes).unwrap();
    path
}

/// An SRTP capture made with the binary's encrypt, and the plain records it came from.
fn srtp_capture(name: &str, format: Format) -> (PathBuf, Vec<Record>) {
    let plain = plain_records(Link::Ethernet);
    let input = write(
        &format!("{name}.plain"),
        &common::write_capture(format, Link::Ethernet, Endianness::Little, &plain),
    );
    let output = tmp(&format!("{name}.srtp"));
    let out = run(&[
        "encrypt",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--key",
        KEY,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("52 encrypted, 0 failed"),
        "{}",
        stderr(&out)
    );
    (output, plain)
}

#[test]
fn encrypt_then_decrypt_with_the_binary_in_both_formats() {
    for format in [Format::Pcap, Format::PcapNg] {
        let (srtp, plain) = srtp_capture(&format!("roundtrip-{format:?}"), format);
        let keys = write(
            "keys.txt",
            format!("# the call's key\n\n{OTHER_KEY}\n{KEY}\n").as_bytes(),
        );
        let back = tmp(&format!("roundtrip-{format:?}.back"));
        let out = run(&[
            "decrypt",
            srtp.to_str().unwrap(),
            "-o",
            back.to_str().unwrap(),
            "--key-file",
            keys.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let table = stderr(&out);
        assert!(table.contains("0xabcd0001  RTP "), "{table}");
        assert!(table.contains("0xabcd0001  RTCP"), "{table}");
        assert!(
            table.contains("52 decrypted, 0 failed authentication, 0 replayed"),
            "{table}"
        );
        assert!(table.contains("1 UDP but not RTP/RTCP"), "{table}");
        let got = common::read_capture(&fs::read(&back).unwrap());
        common::assert_records_eq(&got, &plain, &format!("{format:?}"));
    }
}

#[test]
fn summary_only_prints_the_table_on_standard_output() {
    let (srtp, _) = srtp_capture("summary", Format::Pcap);
    let out = run(&[
        "decrypt",
        srtp.to_str().unwrap(),
        "--summary-only",
        "--key",
        KEY,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    let header = table.lines().nth(1).unwrap();
    for column in [
        "SSRC",
        "KIND",
        "FLOW",
        "PACKETS",
        "DECRYPTED",
        "FAILED",
        "REPLAYED",
        "FIRST",
        "LAST",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(
        table.contains("192.0.2.1:16384 -> 192.0.2.2:16384"),
        "{table}"
    );
    assert!(
        table.contains("the first at 2020-09-13 12:26:40.000000 UTC"),
        "{table}"
    );
    assert!(table.contains("0.980000"), "{table}"); // the last RTP packet, 49 x 20 ms in
}

#[test]
fn standard_input_and_output_work_as_a_pipe() {
    let (srtp, plain) = srtp_capture("pipe", Format::PcapNg);
    let mut child = bin()
        .args(["decrypt", "-", "-o", "-", "--key", KEY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = fs::read(&srtp).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    common::assert_records_eq(&common::read_capture(&out.stdout), &plain, "pipe");
}

#[test]
fn nothing_decrypted_exits_with_code_3() {
    let (srtp, _) = srtp_capture("wrong-key", Format::Pcap);
    let dropped = tmp("wrong-key.out");
    let out = run(&[
        "decrypt",
        srtp.to_str().unwrap(),
        "-o",
        dropped.to_str().unwrap(),
        "--key",
        OTHER_KEY,
        "--failed",
        "drop",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no packet was decrypted"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("0 decrypted, 52 failed authentication"),
        "{}",
        stderr(&out)
    );
    // Dropped: only the datagram that is not RTP is left.
    assert_eq!(common::read_capture(&fs::read(&dropped).unwrap()).len(), 1);

    let out = run(&[
        "decrypt",
        srtp.to_str().unwrap(),
        "--summary-only",
        "-k",
        KEY,
        "--ssrc",
        "0x1234",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn bad_arguments_are_named_and_exit_with_code_1() {
    let (srtp, _) = srtp_capture("bad-args", Format::Pcap);
    let srtp = srtp.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--key", "garbage"], "key #1: expected an SDES line"),
        (
            &["--key", KEY, "--key", "AES_CM_128_HMAC_SHA1_80:c2hvcnQ="],
            "key #2: ",
        ),
        (
            &["--key", "AES_CM_999:AAAA"],
            "unknown profile 'AES_CM_999'",
        ),
        (
            &["--key", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:!!!!"],
            "key #1",
        ),
        (
            &["--key", KEY, "--filter", "10.0.0.1:5-"],
            "--filter '10.0.0.1:5-'",
        ),
        (&["--key", KEY, "--ssrc", "0xZZ"], "--ssrc '0xZZ'"),
        (
            &["--key-file", "/nonexistent/keys"],
            "cannot read the key file /nonexistent/keys",
        ),
        (&[], "no key given"),
    ];
    for (args, message) in cases {
        let mut all = vec!["decrypt", srtp, "--summary-only"];
        all.extend_from_slice(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("ZGVmZ2hp"),
            "a key was printed: {}",
            stderr(&out)
        );
    }
    let out = run(&[
        "encrypt",
        srtp,
        "--summary-only",
        "--key",
        KEY,
        "--key",
        OTHER_KEY,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("encrypt takes exactly one key, 2 were given"),
        "{}",
        stderr(&out)
    );
    // A usage error is clap's: code 2.
    assert_eq!(run(&["decrypt", srtp, "--key", KEY]).status.code(), Some(2));
    // The output may not be the input.
    let out = run(&["decrypt", srtp, "-o", srtp, "--key", KEY]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("it is the input capture"),
        "{}",
        stderr(&out)
    );
    assert!(
        fs::metadata(srtp).unwrap().len() > 1000,
        "the input was overwritten"
    );
}

#[test]
fn bad_captures_get_a_clear_message_and_exit_with_code_1() {
    let (srtp, _) = srtp_capture("bad-input", Format::Pcap);
    let good = fs::read(&srtp).unwrap();
    let mut unknown_link = good.clone();
    unknown_link[20..24].copy_from_slice(&105u32.to_le_bytes()); // IEEE 802.11
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "the input is empty"),
        (
            b"GET / HTTP/1.1\r\n".to_vec(),
            "not a pcap or pcapng capture: it starts with 47455420",
        ),
        (
            good[..10].to_vec(),
            "the pcap file header runs past the end of the input",
        ),
        (
            good[..24 + 16 + 100].to_vec(),
            "frame 1 runs past the end of the input",
        ),
        (
            good[..good.len() - 1].to_vec(),
            "frame 53 runs past the end of the input",
        ),
        (
            unknown_link,
            "link type 105 is not supported; supported are ETHERNET (1), LINUX_SLL (113)",
        ),
    ];
    for (i, (bytes, message)) in cases.into_iter().enumerate() {
        let input = write(&format!("bad-{i}"), &bytes);
        let out = run(&[
            "decrypt",
            input.to_str().unwrap(),
            "--summary-only",
            "--key",
            KEY,
        ]);
        assert_eq!(out.status.code(), Some(1), "case {i}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "case {i}: {}", stderr(&out));
    }
    // Cut short: what came before is still decrypted, written and summed up.
    let cut = write("cut", &good[..good.len() - 1]);
    let out_path = tmp("cut.out");
    let out = run(&[
        "decrypt",
        cut.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
        "--key",
        KEY,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("52 records"), "{}", stderr(&out));
    assert_eq!(
        common::read_capture(&fs::read(&out_path).unwrap()).len(),
        52
    );

    let missing = tmp("does-not-exist");
    let out = run(&[
        "decrypt",
        missing.to_str().unwrap(),
        "--summary-only",
        "--key",
        KEY,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot open"), "{}", stderr(&out));
    assert!(stderr(&out).contains("No such file"), "{}", stderr(&out));
}
