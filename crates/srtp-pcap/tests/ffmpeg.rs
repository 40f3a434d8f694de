//! A real sender: ffmpeg sends a 440 Hz tone as SRTP (AES_CM_128_HMAC_SHA1_80, G.711 μ-law in
//! 20 ms packets, SRTCP sender reports) to sockets this test binds on 127.0.0.1; the test
//! records what arrives into a pcap (Ethernet + IPv4 + UDP headers built with etherparse),
//! runs `srtp-pcap decrypt` on it and checks that every packet decrypts and that the audio is
//! what ffmpeg sends for the same input without encryption.
//!
//! Needs the Debian package `ffmpeg` (`scripts/test.sh` installs it); fails without it.

mod common;

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Format, Link, Record};
use pcap_file::Endianness;
use srtp_core::sdes::CryptoAttribute;
use srtp_core::Profile;

/// How long ffmpeg may take to send 2 s of audio (it sends as fast as it can) before the test
/// kills it and fails.
const FFMPEG_DEADLINE: Duration = Duration::from_secs(30);
const RTP_HEADER: usize = 12;
const G711_20MS: usize = 160;

/// A datagram as it arrived.
struct Datagram {
    time: Duration,
    src: SocketAddr,
    dst: SocketAddr,
    payload: Vec<u8>,
}

/// Receives on `socket` until `stop` is set.
fn receive(socket: UdpSocket, stop: Arc<AtomicBool>) -> thread::JoinHandle<Vec<Datagram>> {
    thread::spawn(move || {
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let dst = socket.local_addr().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        let mut take = |socket: &UdpSocket| {
            let Ok((n, src)) = socket.recv_from(&mut buf) else {
                return false;
            };
            let time = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            got.push(Datagram {
                time,
                src,
                dst,
                payload: buf[..n].to_vec(),
            });
            true
        };
        while !stop.load(Ordering::Relaxed) {
            take(&socket);
        }
        // Whatever the sender sent is in the socket's queue by now (on loopback a datagram
        // is delivered when its send returns), however late this thread ran: drain it.
        socket.set_nonblocking(true).unwrap();
        while take(&socket) {}
        got
    })
}

/// Runs ffmpeg sending the tone to `scheme://127.0.0.1:PORT` (RTCP to the next socket), with
/// `extra` arguments before the URL; returns what arrived on the RTP and the RTCP socket.
fn ffmpeg_send(scheme: &str, extra: &[&str]) -> (Vec<Datagram>, Vec<Datagram>) {
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtcp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "{scheme}://127.0.0.1:{}?rtcpport={}&pkt_size=1200",
        rtp.local_addr().unwrap().port(),
        rtcp.local_addr().unwrap().port()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let rtp_rx = receive(rtp, stop.clone());
    let rtcp_rx = receive(rtcp, stop.clone());

    let mut args = vec![
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=2:sample_rate=8000",
        "-af",
        "asetnsamples=n=160:p=0",
        "-c:a",
        "pcm_mulaw",
        "-ar",
        "8000",
        "-ac",
        "1",
        "-payload_type",
        "0",
        "-f",
        "rtp",
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    let mut child = match Command::new("ffmpeg")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null()) // the SDP it prints
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run ffmpeg ({e}): install the Debian package `ffmpeg` \
             (scripts/test.sh installs it when it runs as root)"
        ),
    };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > FFMPEG_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            stop.store(true, Ordering::Relaxed);
            panic!("ffmpeg did not finish within {FFMPEG_DEADLINE:?}: killed");
        }
        thread::sleep(Duration::from_millis(20));
    };
    // Let the last datagrams land, then stop the receivers.
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (rtp, rtcp) = (rtp_rx.join().unwrap(), rtcp_rx.join().unwrap());
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "ffmpeg failed ({status}): {err}");
    (rtp, rtcp)
}

/// The μ-law payloads in arrival order, checking that the sequence numbers follow each other
/// and every packet is one 20 ms G.711 frame.
fn payloads(rtp: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut last: Option<u16> = None;
    rtp.iter()
        .map(|p| {
            assert_eq!(p.len(), RTP_HEADER + G711_20MS, "a 20 ms G.711 RTP packet");
            assert_eq!(
                (p[0] >> 6, p[1] & 0x7F),
                (2, 0),
                "RTP version 2, payload type 0 (PCMU)"
            );
            let seq = u16::from_be_bytes([p[2], p[3]]);
            if let Some(l) = last {
                assert_eq!(seq, l.wrapping_add(1), "packets in sequence");
            }
            last = Some(seq);
            p[RTP_HEADER..].to_vec()
        })
        .collect()
}

/// Sign changes of μ-law samples (bit 7 is the sign of the complemented code).
fn zero_crossings(samples: &[u8]) -> usize {
    samples
        .windows(2)
        .filter(|w| (w[0] ^ w[1]) & 0x80 != 0)
        .count()
}

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ffmpeg-{}-{name}", std::process::id()))
}

#[test]
fn ffmpeg_srtp_capture_decrypts_to_the_plain_stream() {
    let attr = CryptoAttribute::generate(1, Profile::Aes128CmHmacSha1_80).to_string();
    let b64 = attr.split("inline:").nth(1).unwrap().to_owned();

    let (srtp, srtcp) = ffmpeg_send(
        "srtp",
        &[
            "-srtp_out_suite",
            "AES_CM_128_HMAC_SHA1_80",
            "-srtp_out_params",
            &b64,
        ],
    );
    assert_eq!(srtp.len(), 100, "2 s of 20 ms packets arrived");
    assert!(!srtcp.is_empty(), "ffmpeg sent SRTCP sender reports");
    assert!(
        srtp.iter()
            .all(|d| d.payload.len() == RTP_HEADER + G711_20MS + 10),
        "80-bit tags"
    );

    // The capture: every datagram that arrived, in time order, as Ethernet + IPv4 + UDP.
    let mut all: Vec<&Datagram> = srtp.iter().chain(&srtcp).collect();
    all.sort_by_key(|d| d.time);
    let records: Vec<Record> = all
        .iter()
        .map(|d| {
            Record::new(
                d.time,
                common::udp_frame(Link::Ethernet, d.src, d.dst, &d.payload),
            )
        })
        .collect();
    let input = tmp("srtp.pcap");
    let output = tmp("rtp.pcap");
    fs::write(
        &input,
        common::write_capture(Format::Pcap, Link::Ethernet, Endianness::Little, &records),
    )
    .unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_srtp-pcap"))
        .args([
            "decrypt",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ])
        .args(["--key", &format!("AES_CM_128_HMAC_SHA1_80:{b64}")])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{summary}");
    let n = srtp.len() + srtcp.len();
    assert!(
        summary.contains(&format!(
            "{n} decrypted, 0 failed authentication, 0 replayed"
        )),
        "{summary}"
    );

    let decrypted = common::read_capture(&fs::read(&output).unwrap());
    assert_eq!(decrypted.len(), records.len());
    let rtp_port = srtp[0].dst.port();
    let mut rtp = Vec::new();
    for (r, d) in decrypted.iter().zip(&all) {
        assert_eq!(r.time, d.time, "timestamps kept");
        let (src, dst, payload) = common::udp_payload(Link::Ethernet, &r.data).expect("UDP");
        assert_eq!((src, dst), (d.src, d.dst));
        if dst.port() == rtp_port {
            rtp.push(payload);
        } else {
            assert_eq!(payload[1], 200, "a sender report");
            assert_eq!(
                payload.len(),
                4 * (usize::from(u16::from_be_bytes([payload[2], payload[3]])) + 1)
            );
        }
    }
    let decrypted = payloads(&rtp);

    // The same input sent in the clear: the audio must be the same, packet for packet.
    let (plain, _) = ffmpeg_send("rtp", &[]);
    let plain: Vec<Vec<u8>> = plain.into_iter().map(|d| d.payload).collect();
    let plain = payloads(&plain);
    assert_eq!(decrypted.len(), plain.len());
    for (i, (d, p)) in decrypted.iter().zip(&plain).enumerate() {
        assert_eq!(
            d, p,
            "packet {i}: decrypted audio differs from the plain stream"
        );
    }
    // And it is a 440 Hz tone: 880 zero crossings a second over 2 s.
    let samples: Vec<u8> = decrypted.concat();
    let crossings = zero_crossings(&samples);
    assert!(
        (1700..=1820).contains(&crossings),
        "{crossings} zero crossings"
    );
}
