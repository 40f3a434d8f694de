//! Shared by the real-media tests: external tools, a test signal, WAV samples, and the
//! correlation that decides whether the audio that came out is the audio that went in.
#![allow(dead_code)] // each test file uses its own subset

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use srtp_core::sdes::CryptoAttribute;
use srtp_core::{MasterKey, Profile};

/// A command for `name`, after checking it runs (`version_flag`); fails, naming the Debian
/// package, when it does not.
pub fn tool(name: &str, version_flag: &str, package: &str) -> Command {
    let ok = Command::new(name)
        .arg(version_flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{name} is missing: install Debian's {package} (scripts/test.sh does as root)"
    );
    let mut c = Command::new(name);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Fails, naming the Debian package, unless `program` is on the PATH.
pub fn require(program: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{program} is missing: install Debian's {package} (scripts/test.sh does as root)"
    );
}

/// ffmpeg, quiet.
pub fn ffmpeg() -> Command {
    let mut c = tool("ffmpeg", "-version", "ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
    c
}

/// A fresh scratch folder for one test.
pub fn workdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srtp-relay-media-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A free even UDP port on loopback whose odd neighbour is free too, never one this process
/// handed out before: tests run in parallel, and two peers given the same port would see each
/// other's media. The ports come from 26000–30999, below the kernel's ephemeral range
/// (32768 on), so no socket bound to port 0 (another test's, or a tool's own) can take one
/// between this check and the peer's bind; and outside 40000–49999, where the tests' relays
/// allocate (a relay picking the port meanwhile would send to itself).
pub fn free_port() -> u16 {
    const FIRST: u16 = 26_000;
    const END: u16 = 31_000;
    static NEXT: Mutex<u16> = Mutex::new(FIRST);
    let mut next = NEXT.lock().unwrap();
    for _ in 0..(END - FIRST) / 2 {
        let p = *next;
        *next = if p + 2 >= END { FIRST } else { p + 2 };
        if UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port pair left in {FIRST}..{END}");
}

/// Waits until some socket on this host is bound to UDP `port` (read from `/proc/net/udp*`,
/// so the check never takes the port itself), at most `limit`, while `peer`, the process
/// that is to bind it, runs. A receiving peer's start-up time varies with the machine's load,
/// and media sent before it binds is lost. Says why on failure: the peer ended (it could not
/// bind, or failed otherwise) or the time ran out.
pub fn wait_bound(port: u16, peer: &mut Child, limit: Duration) -> Result<(), String> {
    // `local_address` reads `0100007F:659A`: the port in four hex digits after the colon.
    let want = format!(":{port:04X}");
    let end = Instant::now() + limit;
    loop {
        let bound = ["/proc/net/udp", "/proc/net/udp6"].iter().any(|f| {
            std::fs::read_to_string(f).is_ok_and(|t| {
                t.lines()
                    .skip(1)
                    .filter_map(|l| l.split_whitespace().nth(1))
                    .any(|local| local.ends_with(&want))
            })
        });
        if bound {
            return Ok(());
        }
        if let Ok(Some(status)) = peer.try_wait() {
            return Err(format!(
                "the peer ended ({status}) before binding port {port}"
            ));
        }
        if Instant::now() > end {
            return Err(format!("port {port} not bound after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a receiving `child` that ends by itself, at most `limit`; past that it is asked
/// to stop (SIGINT, so ffmpeg and gst-launch `-e` still finalise their WAV) and then killed.
/// Whether it exited by itself, successfully.
pub fn finish(mut child: Child, limit: Duration) -> bool {
    if let Some(ok) = ended(&mut child, limit) {
        return ok;
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = wait(child, Duration::from_secs(15));
    false
}

/// A 3-second chirp at 8 kHz, mono 16-bit: distinctive enough that a correlation peak means
/// the right audio arrived in the right order.
pub fn source(dir: &Path) -> PathBuf {
    let wav = dir.join("source.wav");
    let ok = ffmpeg()
        .args([
            "-f",
            "lavfi",
            "-i",
            "aevalsrc=0.5*sin(2*PI*(200+300*t)*t):s=8000:d=3",
        ])
        .args(["-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le"])
        .arg(&wav)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ffmpeg could not make the test signal");
    wav
}

/// ffmpeg sends `wav` to `to` as 20 ms G.711 μ-law packets from SSRC `ssrc`: SRTP with
/// `key` (AES_CM_128_HMAC_SHA1_80), or RTP.
pub fn ffmpeg_send(wav: &Path, to: SocketAddr, key: Option<&MasterKey>, ssrc: u32) -> Child {
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
    c.args([
        "-payload_type",
        "0",
        "-ssrc",
        &ssrc.to_string(),
        "-f",
        "rtp",
    ]);
    let url = match key {
        Some(k) => {
            let mut m = [0u8; 46];
            let n = k.write_key_material(&mut m);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&m[..n]);
            let suite = Profile::Aes128CmHmacSha1_80.sdes_name();
            c.args(["-srtp_out_suite", suite, "-srtp_out_params", &b64]);
            format!("srtp://{to}?localrtpport={local}&pkt_size=1400")
        }
        None => format!("rtp://{to}?localrtpport={local}&pkt_size=1400"),
    };
    c.arg(url).spawn().unwrap()
}

/// ffmpeg receives G.711 on `port` (SRTP under `key`, AES_CM_128_HMAC_SHA1_80, or RTP) for
/// 2.6 s of audio, decoded to `out`.
pub fn ffmpeg_receive(dir: &Path, port: u16, key: Option<&MasterKey>, out: &Path) -> Child {
    let (proto, crypto) = match key {
        Some(k) => (
            "RTP/SAVP",
            format!(
                "a={}\r\n",
                CryptoAttribute::new(1, Profile::Aes128CmHmacSha1_80, k.clone())
            ),
        ),
        None => ("RTP/AVP", String::new()),
    };
    let sdp = format!(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\n{crypto}"
    );
    let path = dir.join(format!("recv-{port}.sdp"));
    std::fs::write(&path, sdp).unwrap();
    let mut c = ffmpeg();
    c.args(["-protocol_whitelist", "file,udp,rtp,srtp,crypto"]);
    c.args(["-reorder_queue_size", "0", "-i"]).arg(&path);
    c.args(["-t", "2.6", "-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le"]);
    c.stderr(std::fs::File::create(receiver_log(dir, port)).unwrap());
    c.arg(out).spawn().unwrap()
}

/// Where a receiver on `port` writes its errors, for the report of a failed test.
pub fn receiver_log(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("recv-{port}.log"))
}

/// What the receiver on `port` printed, for the message of a test whose audio did not match.
pub fn receiver_errors(dir: &Path, port: u16) -> String {
    std::fs::read_to_string(receiver_log(dir, port)).unwrap_or_default()
}

/// Waits for `child`, killing it after `limit`; whether it exited successfully.
pub fn wait(mut child: Child, limit: Duration) -> bool {
    if let Some(ok) = ended(&mut child, limit) {
        return ok;
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// Polls `child` for at most `limit`: whether it exited successfully, or `None` if it still
/// runs.
fn ended(child: &mut Child, limit: Duration) -> Option<bool> {
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s.success());
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The samples of a 16-bit mono WAV file (empty if it is missing or has no data chunk).
pub fn samples(path: &Path) -> Vec<f64> {
    let b = std::fs::read(path).unwrap_or_default();
    let mut i = 12;
    while i + 8 <= b.len() {
        let len = u32::from_le_bytes(b[i + 4..i + 8].try_into().unwrap()) as usize;
        if &b[i..i + 4] == b"data" {
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

/// The best normalised correlation of one second of the source (from 0.5 s in) with `got`,
/// over lags up to one second.
pub fn similarity(want: &[f64], got: &[f64]) -> f64 {
    similarity_within(want, got, 8000)
}

/// As [`similarity`], over lags up to `max_lag` samples.
pub fn similarity_within(want: &[f64], got: &[f64], max_lag: usize) -> f64 {
    if want.len() < 12000 || got.len() < 4000 {
        return 0.0;
    }
    let w = &want[4000..12000];
    let norm = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>().sqrt();
    let nw = norm(w);
    (0..max_lag)
        .step_by(2)
        .filter_map(|lag| got.get(lag..lag + w.len()))
        .map(|g| w.iter().zip(g).map(|(a, b)| a * b).sum::<f64>() / (nw * norm(g)).max(1e-9))
        .fold(0.0, f64::max)
}
