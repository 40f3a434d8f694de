//! Bodies of the fuzz targets in `fuzz/`, kept here so that the normal test suite replays the
//! committed corpora through exactly the same code. Not part of the public API.

use crate::{
    sdes::CryptoAttribute, Backend, BatchPacket, Error, MasterKey, Mki, Policy, Profile, Session,
    MAX_TRAILER_LEN,
};

/// A session pair for the profile and options the first input byte selects, and the rest.
fn sessions(data: &[u8]) -> Option<(Session, Session, &[u8])> {
    let (&sel, rest) = data.split_first()?;
    let profile = Profile::ALL[usize::from(sel) % Profile::ALL.len()];
    let material: Vec<u8> = (0..profile.key_material_len() as u8).collect();
    let mut key = MasterKey::from_key_material(profile, &material).ok()?;
    if sel & 0x10 != 0 {
        key = key.with_mki(Mki::new(1, 1).ok()?);
    }
    let mut policy = Policy::new(profile, key);
    policy.encrypt_rtp = sel & 0x20 == 0;
    policy.encrypt_rtcp = sel & 0x40 == 0;
    if sel & 0x80 != 0 {
        policy.key_derivation_rate = Some(1);
    }
    // Low nibbles past the profile count (10–15) also turn on the sender's sequence
    // continuity, so batches are checked against single packets with it too; the last three
    // (13–15) cryptex as well (RFC 9335).
    policy.sequence_continuity = usize::from(sel & 0x0f) >= Profile::ALL.len();
    policy.cryptex = sel & 0x0f >= 13;
    Some((
        Session::new(&policy).ok()?,
        Session::new(&policy).ok()?,
        rest,
    ))
}

/// Unprotect arbitrary bytes as SRTP (must fail cleanly and change nothing), then protect them
/// as RTP and check that unprotect gives them back.
pub fn rtp(data: &[u8]) {
    round_trip(data, Session::protect_rtp, |s, b| {
        s.unprotect_rtp(b).map(|p| p.len())
    });
}

/// As [`rtp`], for SRTCP.
pub fn rtcp(data: &[u8]) {
    round_trip(data, Session::protect_rtcp, |s, b| {
        s.unprotect_rtcp(b).map(|p| p.len())
    });
}

type Protect = fn(&mut Session, &mut [u8], usize) -> Result<usize, Error>;
type Unprotect = fn(&mut Session, &mut [u8]) -> Result<usize, Error>;

fn round_trip(data: &[u8], protect: Protect, unprotect: Unprotect) {
    let Some((mut tx, mut rx, packet)) = sessions(data) else {
        return;
    };
    let mut buf = packet.to_vec();
    if unprotect(&mut rx, &mut buf).is_err() {
        assert_eq!(buf, packet, "failed unprotect changed the buffer");
        assert_eq!(rx.receive_streams(), 0, "failed unprotect created state");
    }
    let Some((_, mut rx, _)) = sessions(data) else {
        return;
    };
    let mut buf = packet.to_vec();
    buf.resize(packet.len() + MAX_TRAILER_LEN, 0);
    if let Ok(n) = protect(&mut tx, &mut buf, packet.len()) {
        let len = unprotect(&mut rx, &mut buf[..n]).expect("own packet must unprotect");
        if len == packet.len() {
            assert_eq!(&buf[..len], packet);
        } else {
            assert_eq!(&buf[..len], &with_empty_extension(packet)[..]);
        }
    }
}

/// An RTP packet with CSRCs and no header extension as a cryptex sender sends it (RFC 9335
/// §5.1) and its receiver gives it back: with an empty one-byte extension block.
fn with_empty_extension(packet: &[u8]) -> Vec<u8> {
    let at = 12 + 4 * usize::from(packet[0] & 0x0f);
    let mut out = packet[..at].to_vec();
    out[0] |= 0x10;
    out.extend_from_slice(&[0xBE, 0xDE, 0, 0]);
    out.extend_from_slice(&packet[at..]);
    out
}

/// Up to 64 packets through the batch API on every backend this CPU runs, against the
/// portable backend packet by packet: protect them as RTP, then unprotect a mix of what
/// protected and the raw bytes (hostile packets among good ones). Every result, length and
/// byte must match, and so must the sessions' state afterwards.
///
/// Each packet is a length and its bytes: one length byte below 0xF0, or 0xF0 + the high four
/// bits and a second byte (up to 4095 bytes, so that packets long enough for the widest AES
/// and SHA-1 paths are reachable).
pub fn rtp_batch(data: &[u8]) {
    let Some((_, _, mut rest)) = sessions(data) else {
        return;
    };
    let mut packets = Vec::new();
    while let Some((&n, mut tail)) = rest.split_first() {
        let mut n = usize::from(n);
        if n >= 0xF0 {
            let Some((&low, more)) = tail.split_first() else {
                break;
            };
            n = (n - 0xF0) << 8 | usize::from(low);
            tail = more;
        }
        let n = n.min(tail.len());
        packets.push(&tail[..n]);
        rest = &tail[n..];
        if packets.len() == 64 {
            break;
        }
    }
    let with = |backend| {
        let (mut tx, mut rx, _) = sessions(data).expect("sessions built once already");
        tx.set_backend(backend).expect("supported");
        rx.set_backend(backend).expect("supported");
        (tx, rx)
    };
    let padded = |p: &[u8]| {
        let mut b = p.to_vec();
        b.resize(p.len() + MAX_TRAILER_LEN, 0);
        b
    };
    let (mut tx_ref, mut rx_ref) = with(Backend::Portable);
    let mut want_tx: Vec<(Vec<u8>, Result<usize, Error>)> = packets
        .iter()
        .map(|p| {
            let mut b = padded(p);
            let r = tx_ref.protect_rtp(&mut b, p.len());
            (b, r)
        })
        .collect();
    // What goes to the receivers: every third packet raw, the others protected if they could be.
    let wire: Vec<Vec<u8>> = want_tx
        .iter()
        .zip(&packets)
        .enumerate()
        .map(|(i, ((b, r), raw))| match r {
            Ok(n) if i % 3 != 0 => b[..*n].to_vec(),
            _ => raw.to_vec(),
        })
        .collect();
    let want_rx: Vec<(Vec<u8>, Result<usize, Error>)> = wire
        .iter()
        .map(|w| {
            let mut b = w.clone();
            let r = rx_ref.unprotect_rtp(&mut b).map(|p| p.len());
            (b, r)
        })
        .collect();
    for backend in Backend::supported() {
        let (mut tx, mut rx) = with(backend);
        let mut bufs: Vec<Vec<u8>> = packets.iter().map(|p| padded(p)).collect();
        let mut batch: Vec<BatchPacket<'_>> = bufs
            .iter_mut()
            .zip(&packets)
            .map(|(b, p)| BatchPacket::new(b, p.len()))
            .collect();
        tx.protect_rtp_batch(&mut batch);
        for (got, (want, r)) in batch.iter().zip(&mut want_tx) {
            assert_eq!(got.result.map(|()| got.len), *r, "{backend:?}");
            if let Ok(n) = r {
                assert_eq!(got.buf[..*n], want[..*n], "{backend:?} protect");
            }
        }
        let mut bufs = wire.clone();
        let mut batch: Vec<BatchPacket<'_>> = bufs
            .iter_mut()
            .map(|b| {
                let n = b.len();
                BatchPacket::new(b, n)
            })
            .collect();
        rx.unprotect_rtp_batch(&mut batch);
        assert_eq!(
            rx.receive_streams(),
            rx_ref.receive_streams(),
            "{backend:?}"
        );
        assert_eq!(rx.key_usage(), rx_ref.key_usage(), "{backend:?}");
        assert_eq!(tx.key_usage(), tx_ref.key_usage(), "{backend:?}");
        for ssrc in rx_ref.receive_ssrcs() {
            assert_eq!(
                rx.receive_roc(ssrc),
                rx_ref.receive_roc(ssrc),
                "{backend:?}"
            );
        }
        for (got, (want, r)) in batch.iter().zip(&want_rx) {
            assert_eq!(got.result.map(|()| got.len), *r, "{backend:?}");
            assert_eq!(&got.buf[..], &want[..], "{backend:?} unprotect");
        }
    }
}

/// Parse arbitrary text as an `a=crypto` line; whatever parses must format and parse again
/// to the same thing.
pub fn sdes(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(attr) = text.parse::<CryptoAttribute>() {
        let line = attr.to_string();
        // The canonical form may be longer than the input (padding, spelled-out parameters);
        // past the parser's length cap it is refused by design, not by mistake.
        if line.len() <= crate::sdes::MAX_LINE_LEN {
            let again: CryptoAttribute = line.parse().expect("formatted line parses");
            assert_eq!(again.to_string(), line);
        }
        let _ = attr.policy();
    }
}
