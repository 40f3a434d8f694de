//! Real media through the relay, on the wire: ffmpeg sends G.711 audio as SRTP (or RTP) to one
//! leg, a second ffmpeg receives the other leg and decodes it to WAV, and the decoded audio
//! must match the source (by normalised cross-correlation: codecs and packet timing change
//! bytes, not the signal). Mediation bridge both ways, transcrypt and pass-through.
//!
//! Needs Debian's `ffmpeg` (scripts/test.sh installs it): the tests fail, not skip, without it.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use srtp_core::sdes::CryptoAttribute;
use srtp_core::{MasterKey, Policy, Profile};
use srtp_relay::engine::{EncryptionLevel, Mode, Security, SrtpMode};
use srtp_relay::io::{CallRequest, LegRequest, Relay, RelayConfig};

const PROFILE: Profile = Profile::Aes128CmHmacSha1_80;

fn ffmpeg() -> Command {
    let probe = Command::new("ffmpeg").arg("-version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "ffmpeg is missing: install Debian's `ffmpeg` package (scripts/test.sh does as root)"
    );
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn workdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srtp-relay-ffmpeg-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A free UDP port pair on loopback (even RTP port, RTCP above it).
fn free_port() -> u16 {
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port();
        if p % 2 == 0 && p < 65000 && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

/// A 3-second chirp at 8 kHz, mono 16-bit: distinctive enough that a correlation peak means
/// the right audio arrived in the right order.
fn source(dir: &Path) -> PathBuf {
    let wav = dir.join("source.wav");
    let status = ffmpeg()
        .args([
            "-f",
            "lavfi",
            "-i",
            "aevalsrc=0.5*sin(2*PI*(200+300*t)*t):s=8000:d=3",
        ])
        .args(["-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le"])
        .arg(&wav)
        .status()
        .unwrap();
    assert!(status.success());
    wav
}

fn b64(key: &MasterKey) -> String {
    let mut m = [0u8; 46];
    let n = key.write_key_material(&mut m);
    base64::engine::general_purpose::STANDARD.encode(&m[..n])
}

/// Sends `wav` as 20 ms G.711 μ-law packets to `to`, as SRTP with `key` or as RTP.
fn send(wav: &Path, to: SocketAddr, key: Option<&MasterKey>) -> Child {
    let local = free_port();
    let mut c = ffmpeg();
    c.args(["-re", "-i"]).arg(wav);
    c.args([
        "-af",
        "asetnsamples=n=160:p=0",
        "-c:a",
        "pcm_mulaw",
        "-ar",
        "8000",
        "-ac",
        "1",
    ]);
    c.args(["-payload_type", "0", "-f", "rtp"]);
    let url = match key {
        Some(k) => {
            c.args([
                "-srtp_out_suite",
                PROFILE.sdes_name(),
                "-srtp_out_params",
                &b64(k),
            ]);
            format!("srtp://{to}?localrtpport={local}&pkt_size=1400")
        }
        None => format!("rtp://{to}?localrtpport={local}&pkt_size=1400"),
    };
    c.arg(url).spawn().unwrap()
}

/// Receives G.711 on `port` (SRTP under `key`, or RTP) for `seconds`, decoded to `out`.
fn receive(dir: &Path, port: u16, key: Option<&MasterKey>, out: &Path, seconds: f64) -> Child {
    let (proto, crypto) = match key {
        Some(k) => (
            "RTP/SAVP",
            format!("a={}\r\n", CryptoAttribute::new(1, PROFILE, k.clone())),
        ),
        None => ("RTP/AVP", String::new()),
    };
    let sdp = format!(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\n{crypto}"
    );
    let sdp_path = dir.join(format!("recv-{port}.sdp"));
    std::fs::write(&sdp_path, sdp).unwrap();
    let mut c = ffmpeg();
    c.args(["-protocol_whitelist", "file,udp,rtp,srtp,crypto"]);
    c.args(["-reorder_queue_size", "0", "-i"]).arg(&sdp_path);
    c.args([
        "-t",
        &seconds.to_string(),
        "-ac",
        "1",
        "-ar",
        "8000",
        "-c:a",
        "pcm_s16le",
    ]);
    c.arg(out).spawn().unwrap()
}

/// Waits for `child`, killing it after `limit`.
fn finish(mut child: Child, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.success();
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The samples of a 16-bit mono WAV file.
fn samples(path: &Path) -> Vec<f64> {
    let b = std::fs::read(path).unwrap_or_default();
    let mut i = 12;
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes(b[i + 4..i + 8].try_into().unwrap()) as usize;
        if id == b"data" {
            let end = (i + 8 + len).min(b.len());
            return b[i + 8..end]
                .chunks_exact(2)
                .map(|s| f64::from(i16::from_le_bytes([s[0], s[1]])))
                .collect();
        }
        i += 8 + len + (len & 1);
    }
    Vec::new()
}

/// The best normalised correlation of `got` against `want` over lags up to a second.
fn similarity(want: &[f64], got: &[f64]) -> f64 {
    let n = 8000.min(want.len()).min(got.len().saturating_sub(0));
    if got.len() < 4000 || want.len() < 8000 {
        return 0.0;
    }
    let w = &want[4000..4000 + n.min(want.len() - 4000).min(12000)];
    let norm = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut best = 0.0f64;
    for lag in (0..8000).step_by(1) {
        let Some(g) = got.get(lag..lag + w.len()) else {
            break;
        };
        let dot: f64 = w.iter().zip(g).map(|(a, b)| a * b).sum();
        let c = dot / (norm(w) * norm(g)).max(1e-9);
        best = best.max(c);
    }
    best
}

fn relay() -> Relay {
    Relay::start(RelayConfig {
        ports: 42000..=42099,
        workers: 1,
        ..RelayConfig::default()
    })
    .unwrap()
}

fn srtp(inbound: &MasterKey, outbound: &MasterKey) -> Security {
    Security::Srtp {
        inbound: Policy::new(PROFILE, inbound.clone()),
        outbound: Policy::new(PROFILE, outbound.clone()),
    }
}

/// Runs the source through a call and returns the similarity of what came out. `a_key`: what
/// the sender protects with (None: RTP); `b_key`: what the receiver expects (None: RTP).
fn through(
    name: &str,
    mode: Mode,
    legs: [Security; 2],
    a_key: Option<&MasterKey>,
    b_key: Option<&MasterKey>,
    reverse: bool,
) -> f64 {
    let dir = workdir(name);
    let wav = source(&dir);
    let relay = relay();
    let out_port = free_port();
    let mut l0 = LegRequest::new(legs[0].clone());
    let mut l1 = LegRequest::new(legs[1].clone());
    // The receiving leg knows where to send; the sending leg learns its remote.
    let to = SocketAddr::from(([127, 0, 0, 1], out_port));
    if reverse {
        l0.remote = Some(to);
    } else {
        l1.remote = Some(to);
    }
    let call = relay
        .create_call(CallRequest {
            mode,
            legs: [l0, l1],
        })
        .unwrap();
    let out = dir.join("received.wav");
    let rx = receive(&dir, out_port, b_key, &out, 2.6);
    std::thread::sleep(Duration::from_millis(500));
    let entry = if reverse {
        call.legs[1].rtp
    } else {
        call.legs[0].rtp
    };
    let tx = send(&wav, entry, a_key);
    assert!(
        finish(tx, Duration::from_secs(20)),
        "{name}: the sender failed"
    );
    let _ = finish(rx, Duration::from_secs(10));
    let info = relay.call(call.id).unwrap();
    relay.shutdown();
    let s = similarity(&samples(&wav), &samples(&out));
    eprintln!(
        "{name}: similarity {s:.3}, relay legs {:?}",
        info.legs.map(|l| l.stats.counters)
    );
    let _ = std::fs::remove_dir_all(&dir);
    s
}

fn keys() -> [MasterKey; 4] {
    [(); 4].map(|_| MasterKey::generate(PROFILE))
}

const BRIDGE: Mode = Mode::Bridge {
    level: EncryptionLevel::SupportEncryption,
    gateway: SrtpMode::NotSupported,
    gateway_tls: true,
};

#[test]
fn ffmpeg_srtp_to_rtp_through_the_bridge() {
    let [a, b, ..] = keys();
    let s = through(
        "bridge-srtp-rtp",
        BRIDGE,
        [srtp(&a, &b), Security::Plain],
        Some(&a),
        None,
        false,
    );
    assert!(s > 0.9, "similarity {s}");
}

#[test]
fn ffmpeg_rtp_to_srtp_through_the_bridge() {
    let [a, b, ..] = keys();
    let s = through(
        "bridge-rtp-srtp",
        BRIDGE,
        [srtp(&a, &b), Security::Plain],
        None,
        Some(&b),
        true,
    );
    assert!(s > 0.9, "similarity {s}");
}

#[test]
fn ffmpeg_srtp_transcrypted_to_other_keys() {
    let [a, b, c, d] = keys();
    let s = through(
        "transcrypt",
        Mode::Transcrypt,
        [srtp(&a, &b), srtp(&c, &d)],
        Some(&a),
        Some(&d),
        false,
    );
    assert!(s > 0.9, "similarity {s}");
}

#[test]
fn ffmpeg_srtp_passed_through_untouched() {
    let [a, ..] = keys();
    let s = through(
        "pass-through",
        Mode::PassThrough { verify: false },
        [Security::Plain, Security::Plain],
        Some(&a),
        Some(&a),
        false,
    );
    assert!(s > 0.9, "similarity {s}");
}

/// The measure can fail: the source against silence, against itself reversed, and against
/// itself delayed by a second (the search window ends there).
#[test]
fn similarity_tells_other_audio_apart() {
    let dir = workdir("control");
    let want = samples(&source(&dir));
    assert!(similarity(&want, &want) > 0.99);
    let reversed: Vec<f64> = want.iter().rev().copied().collect();
    assert!(similarity(&want, &reversed) < 0.5);
    assert!(similarity(&want, &vec![0.0; want.len()]) < 0.1);
    let mut late = vec![0.0; 9000];
    late.extend(&want);
    assert!(similarity(&want, &late) < 0.5);
    let _ = std::fs::remove_dir_all(&dir);
}
