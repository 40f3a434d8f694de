//! GStreamer's `srtpenc`/`srtpdec` (libsrtp inside) through the relay's mediation bridge:
//! AES_256_CM_HMAC_SHA1_80, AEAD_AES_128_GCM, and a 1-byte MKI, both directions. The plain
//! side is ffmpeg; the decoded audio must match the source by correlation.
//!
//! Needs Debian's gstreamer1.0-tools, -plugins-base, -plugins-good, -plugins-bad and ffmpeg
//! (scripts/test.sh installs them): the tests fail, not skip, without them.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use srtp_core::{MasterKey, Mki, Policy, Profile};
use srtp_relay::engine::{EncryptionLevel, Mode, Security, SrtpMode};
use srtp_relay::io::{CallRequest, LegRequest, Relay, RelayConfig};

const SSRC: u32 = 0x1234_5678;

fn tool(name: &str, version_flag: &str, package: &str) -> Command {
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

fn ffmpeg() -> Command {
    let mut c = tool("ffmpeg", "-version", "ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
    c
}

fn gst() -> Command {
    let check = Command::new("gst-inspect-1.0")
        .args(["srtpenc"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        check,
        "GStreamer's srtpenc is missing: install gstreamer1.0-tools gstreamer1.0-plugins-base \
         gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
    );
    tool("gst-launch-1.0", "--version", "gstreamer1.0-tools")
}

fn workdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srtp-relay-gst-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn free_port() -> u16 {
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port();
        if p % 2 == 0 && p < 65000 && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

fn source(dir: &Path) -> PathBuf {
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
    assert!(ok);
    wav
}

/// GStreamer's names for a profile's cipher and authentication.
fn gst_suite(p: Profile) -> (&'static str, &'static str) {
    match p {
        Profile::Aes256CmHmacSha1_80 => ("aes-256-icm", "hmac-sha1-80"),
        Profile::AeadAes128Gcm => ("aes-128-gcm", "null"),
        _ => ("aes-128-icm", "hmac-sha1-80"),
    }
}

fn hex(key: &MasterKey) -> String {
    let mut m = [0u8; 46];
    let n = key.write_key_material(&mut m);
    m[..n].iter().map(|b| format!("{b:02x}")).collect()
}

/// srtpenc sends `wav` to `to` as SRTP.
fn gst_send(wav: &Path, to: SocketAddr, p: Profile, key: &MasterKey) -> Child {
    let (cipher, auth) = gst_suite(p);
    let mki = key
        .mki()
        .map(|m| {
            format!(
                " mki={}",
                m.as_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )
        })
        .unwrap_or_default();
    let pipeline = format!(
        "filesrc location={wav} ! wavparse ! audioconvert ! audioresample ! \
         audio/x-raw,rate=8000,channels=1 ! mulawenc ! \
         rtppcmupay min-ptime=20000000 max-ptime=20000000 ssrc={SSRC} ! \
         srtpenc key={key} rtp-cipher={cipher} rtp-auth={auth} rtcp-cipher={cipher} \
         rtcp-auth={auth}{mki} ! udpsink host={host} port={port}",
        wav = wav.display(),
        key = hex(key),
        host = to.ip(),
        port = to.port(),
    );
    gst().args(pipeline.split_whitespace()).spawn().unwrap()
}

/// srtpdec receives SRTP on `port` and writes the decoded audio to `out`; ends on SIGINT (-e).
fn gst_receive(port: u16, p: Profile, key: &MasterKey, out: &Path) -> Child {
    let (cipher, auth) = gst_suite(p);
    let mki = key
        .mki()
        .map(|m| {
            format!(
                ",mki=(buffer){}",
                m.as_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )
        })
        .unwrap_or_default();
    let caps = format!(
        "application/x-srtp,media=(string)audio,clock-rate=(int)8000,encoding-name=(string)PCMU,\
         payload=(int)0,ssrc=(uint){SSRC},srtp-key=(buffer){key},srtp-cipher=(string){cipher},\
         srtp-auth=(string){auth},srtcp-cipher=(string){cipher},srtcp-auth=(string){auth}{mki}",
        key = hex(key)
    );
    let mut c = gst();
    c.arg("-e")
        .args(["udpsrc", &format!("port={port}"), &format!("caps={caps}")])
        .args([
            "!",
            "srtpdec",
            "!",
            "rtppcmudepay",
            "!",
            "mulawdec",
            "!",
            "audioconvert",
        ])
        .args([
            "!",
            "wavenc",
            "!",
            "filesink",
            &format!("location={}", out.display()),
        ]);
    c.spawn().unwrap()
}

fn ffmpeg_send(wav: &Path, to: SocketAddr) -> Child {
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
        &SSRC.to_string(),
        "-f",
        "rtp",
    ]);
    c.arg(format!("rtp://{to}?localrtpport={local}&pkt_size=1400"))
        .spawn()
        .unwrap()
}

fn ffmpeg_receive(dir: &Path, port: u16, out: &Path) -> Child {
    let sdp = format!(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    );
    let path = dir.join("recv.sdp");
    std::fs::write(&path, sdp).unwrap();
    let mut c = ffmpeg();
    c.args([
        "-protocol_whitelist",
        "file,udp,rtp",
        "-reorder_queue_size",
        "0",
        "-i",
    ])
    .arg(&path)
    .args(["-t", "2.6", "-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le"])
    .arg(out);
    c.spawn().unwrap()
}

fn wait(mut child: Child, limit: Duration) -> bool {
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

/// Asks gst-launch to end (SIGINT, so `-e` sends end-of-stream and the WAV is finalised).
fn interrupt(child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = wait(child, Duration::from_secs(5));
}

fn samples(path: &Path) -> Vec<f64> {
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

/// Best normalised correlation of one second of the source with `got`, over lags up to 1 s.
fn similarity(want: &[f64], got: &[f64]) -> f64 {
    if want.len() < 12000 || got.len() < 4000 {
        return 0.0;
    }
    let w = &want[4000..12000];
    let norm = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>().sqrt();
    (0..8000)
        .step_by(2)
        .filter_map(|lag| got.get(lag..lag + w.len()))
        .map(|g| w.iter().zip(g).map(|(a, b)| a * b).sum::<f64>() / (norm(w) * norm(g)).max(1e-9))
        .fold(0.0, f64::max)
}

/// GStreamer SRTP in, ffmpeg RTP out (`srtp_in`), or the reverse.
fn bridge(name: &str, profile: Profile, mki: bool, srtp_in: bool) -> f64 {
    let dir = workdir(name);
    let wav = source(&dir);
    let key = |m: u32| {
        let k = MasterKey::generate(profile);
        if mki {
            k.with_mki(Mki::new(m, 1).unwrap())
        } else {
            k
        }
    };
    let (inbound, outbound) = (key(1), key(2));
    let relay = Relay::start(RelayConfig {
        ports: 43000..=43099,
        workers: 1,
        ..RelayConfig::default()
    })
    .unwrap();
    let out_port = free_port();
    let to = SocketAddr::from(([127, 0, 0, 1], out_port));
    let mut client = LegRequest::new(Security::Srtp {
        inbound: Policy::new(profile, inbound.clone()),
        outbound: Policy::new(profile, outbound.clone()),
    });
    let mut gateway = LegRequest::new(Security::Plain);
    if srtp_in {
        gateway.remote = Some(to);
    } else {
        client.remote = Some(to);
    }
    let call = relay
        .create_call(CallRequest {
            mode: Mode::Bridge {
                level: EncryptionLevel::SupportEncryption,
                gateway: SrtpMode::NotSupported,
                gateway_tls: true,
            },
            legs: [client, gateway],
        })
        .unwrap();
    let out = dir.join("received.wav");
    let similarity = if srtp_in {
        let rx = ffmpeg_receive(&dir, out_port, &out);
        std::thread::sleep(Duration::from_millis(500));
        let tx = gst_send(&wav, call.legs[0].rtp, profile, &inbound);
        assert!(
            wait(tx, Duration::from_secs(20)),
            "{name}: gst-launch sender failed"
        );
        let _ = wait(rx, Duration::from_secs(10));
        similarity(&samples(&wav), &samples(&out))
    } else {
        let rx = gst_receive(out_port, profile, &outbound, &out);
        std::thread::sleep(Duration::from_millis(800));
        let tx = ffmpeg_send(&wav, call.legs[1].rtp);
        assert!(
            wait(tx, Duration::from_secs(20)),
            "{name}: ffmpeg sender failed"
        );
        std::thread::sleep(Duration::from_millis(300));
        interrupt(rx);
        similarity(&samples(&wav), &samples(&out))
    };
    let info = relay.call(call.id).unwrap();
    relay.shutdown();
    eprintln!(
        "{name}: similarity {similarity:.3}; client leg {:?}",
        info.legs[0].stats.counters
    );
    let _ = std::fs::remove_dir_all(&dir);
    similarity
}

#[test]
fn gstreamer_aes_256_cm_into_the_bridge() {
    let s = bridge("aes256-in", Profile::Aes256CmHmacSha1_80, false, true);
    assert!(s > 0.9, "similarity {s}");
}

#[test]
fn gstreamer_aes_256_cm_out_of_the_bridge() {
    let s = bridge("aes256-out", Profile::Aes256CmHmacSha1_80, false, false);
    assert!(s > 0.9, "similarity {s}");
}

#[test]
fn gstreamer_aead_aes_128_gcm_both_ways() {
    let s = bridge("gcm-in", Profile::AeadAes128Gcm, false, true);
    assert!(s > 0.9, "in: similarity {s}");
    let s = bridge("gcm-out", Profile::AeadAes128Gcm, false, false);
    assert!(s > 0.9, "out: similarity {s}");
}

#[test]
fn gstreamer_with_an_mki_both_ways() {
    let s = bridge("mki-in", Profile::Aes128CmHmacSha1_80, true, true);
    assert!(s > 0.9, "in: similarity {s}");
    let s = bridge("mki-out", Profile::Aes128CmHmacSha1_80, true, false);
    assert!(s > 0.9, "out: similarity {s}");
}
