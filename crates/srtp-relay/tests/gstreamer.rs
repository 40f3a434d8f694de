//! GStreamer's `srtpenc`/`srtpdec` (libsrtp inside) through the relay's mediation bridge:
//! AES_256_CM_HMAC_SHA1_80, AEAD_AES_128_GCM, and a 1-byte MKI, both directions. The plain
//! side is ffmpeg; the decoded audio must match the source by correlation.
//!
//! Needs Debian's gstreamer1.0-tools, -plugins-base, -plugins-good, -plugins-bad and ffmpeg
//! (scripts/test.sh installs them): the tests fail, not skip, without them.

mod media;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use media::{ffmpeg_receive, ffmpeg_send, samples, similarity, source, tool, wait, workdir};
use srtp_core::{MasterKey, Mki, Policy, Profile};
use srtp_relay::engine::{EncryptionLevel, Mode, Security, SrtpMode};
use srtp_relay::io::{CallRequest, LegRequest, Relay, RelayConfig};

const SSRC: u32 = 0x1234_5678;

fn gst() -> Command {
    let check = tool("gst-inspect-1.0", "--version", "gstreamer1.0-tools")
        .arg("srtpenc")
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        check,
        "GStreamer's srtpenc is missing: install gstreamer1.0-tools gstreamer1.0-plugins-base \
         gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
    );
    tool("gst-launch-1.0", "--version", "gstreamer1.0-tools")
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
    let out_port = media::free_port();
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
        let mut rx = ffmpeg_receive(&dir, out_port, None, &out);
        if let Err(e) = media::wait_bound(out_port, &mut rx, Duration::from_secs(15)) {
            panic!(
                "{name}: ffmpeg: {e}; it said: {}",
                media::receiver_errors(&dir, out_port)
            );
        }
        let tx = gst_send(&wav, call.legs[0].rtp, profile, &inbound);
        assert!(
            wait(tx, Duration::from_secs(20)),
            "{name}: gst-launch sender failed"
        );
        let _ = media::finish(rx, Duration::from_secs(10));
        similarity(&samples(&wav), &samples(&out))
    } else {
        let mut rx = gst_receive(out_port, profile, &outbound, &out);
        if let Err(e) = media::wait_bound(out_port, &mut rx, Duration::from_secs(15)) {
            panic!("{name}: gst-launch: {e}");
        }
        let tx = ffmpeg_send(&wav, call.legs[1].rtp, None, SSRC);
        assert!(
            wait(tx, Duration::from_secs(20)),
            "{name}: ffmpeg sender failed"
        );
        std::thread::sleep(Duration::from_millis(300));
        // gst-launch ends on SIGINT (with `-e`, after finalising the WAV).
        media::finish(rx, Duration::ZERO);
        similarity(&samples(&wav), &samples(&out))
    };
    let info = relay.call(call.id).unwrap();
    relay.shutdown();
    eprintln!(
        "{name}: similarity {similarity:.3}; client leg {:?}; gateway leg {:?}",
        info.legs[0].stats.counters, info.legs[1].stats.counters
    );
    if similarity < 0.9 {
        eprintln!(
            "{name}: {} samples received; ffmpeg said: {}",
            samples(&out).len(),
            media::receiver_errors(&dir, out_port)
        );
    }
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
