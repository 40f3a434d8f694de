//! Real media through the relay, on the wire: ffmpeg sends G.711 audio as SRTP (or RTP) to one
//! leg, a second ffmpeg receives the other leg and decodes it to WAV, and the decoded audio
//! must match the source (by normalised cross-correlation: codecs and packet timing change
//! bytes, not the signal). Mediation bridge both ways, transcrypt and pass-through.
//!
//! Needs Debian's `ffmpeg` (scripts/test.sh installs it): the tests fail, not skip, without it.

mod media;

use std::net::SocketAddr;
use std::time::Duration;

use media::{ffmpeg_receive, ffmpeg_send, samples, similarity, source, wait, workdir};
use srtp_core::{MasterKey, Policy, Profile};
use srtp_relay::engine::{EncryptionLevel, Mode, Security, SrtpMode};
use srtp_relay::io::{CallRequest, LegRequest, Relay, RelayConfig};

const PROFILE: Profile = Profile::Aes128CmHmacSha1_80;
const SSRC: u32 = 0x0102_0304;

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
    let out_port = media::free_port();
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
    let mut rx = ffmpeg_receive(&dir, out_port, b_key, &out);
    if let Err(e) = media::wait_bound(out_port, &mut rx, Duration::from_secs(15)) {
        panic!(
            "{name}: the receiver: {e}; it said: {}",
            media::receiver_errors(&dir, out_port)
        );
    }
    let entry = if reverse {
        call.legs[1].rtp
    } else {
        call.legs[0].rtp
    };
    let tx = ffmpeg_send(&wav, entry, a_key, SSRC);
    assert!(
        wait(tx, Duration::from_secs(20)),
        "{name}: the sender failed"
    );
    let _ = media::finish(rx, Duration::from_secs(10));
    let info = relay.call(call.id).unwrap();
    relay.shutdown();
    let s = similarity(&samples(&wav), &samples(&out));
    eprintln!(
        "{name}: similarity {s:.3}, relay legs {:?}",
        info.legs.map(|l| l.stats.counters)
    );
    if s < 0.9 {
        eprintln!(
            "{name}: {} samples received; the receiver said: {}",
            samples(&out).len(),
            media::receiver_errors(&dir, out_port)
        );
    }
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
