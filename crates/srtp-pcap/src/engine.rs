//! The sans-IO core: one captured frame in, the frame to write (or nothing) out.
//!
//! [`Engine::process`] finds the UDP datagram in a frame, tells RTP from RTCP (RFC 5761 §4:
//! a second byte of 192..=223 is RTCP), picks the packets the filters select, decrypts (or
//! encrypts) them with srtp-core and rewrites the frame's headers to the new length. It keeps
//! the per-stream counters the summary prints. It does no I/O: [`crate::capture`] reads and
//! writes the capture around it.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::time::Duration;

use srtp_core::{Error as SrtpError, Session, MAX_TRAILER_LEN};

use crate::filter::FlowFilter;
use crate::keys::Key;
use crate::net::{self, Flow, LinkType};
use crate::report::{Kind, Outcome, Report, StreamKey};
use crate::Error;

/// What the tool does to SRTP (or RTP) packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// SRTP/SRTCP in, RTP/RTCP out.
    Decrypt,
    /// RTP/RTCP in, SRTP/SRTCP out.
    Encrypt,
}

/// What happens to a selected packet that could not be decrypted (or encrypted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Failed {
    /// Write it unchanged.
    #[default]
    Keep,
    /// Leave it out of the output.
    Drop,
}

/// What to do with a frame after [`Engine::process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Write the frame as it came.
    Keep,
    /// The frame was rewritten in place: write the new bytes with the record's timestamp, its
    /// captured and original lengths both set to the new length.
    Rewritten,
    /// Leave the record out.
    Drop,
}

/// Everything [`Engine`] needs to know.
#[derive(Clone, Debug)]
pub struct Config {
    /// Decrypt or encrypt.
    pub mode: Mode,
    /// Keys to try, in order (encrypt takes exactly one).
    pub keys: Vec<Key>,
    /// When not empty, only datagrams of these directions are worked on.
    pub filters: Vec<FlowFilter>,
    /// When not empty, only packets of these SSRCs are worked on.
    pub ssrcs: Vec<u32>,
    /// What to do with packets that fail.
    pub failed: Failed,
}

/// Decrypts or encrypts the RTP of a capture one frame at a time.
///
/// Each key has a receive (or send) session per direction (5-tuple): state such as rollover
/// counters and replay windows is then that of the receiver of that direction, and a packet
/// captured twice on two legs (before and after a relay) decrypts on both. Sessions are kept
/// only once a packet authenticated with them, so junk costs no memory. Per (5-tuple, SSRC) the
/// engine remembers which key authenticated and tries that one first.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    sessions: HashMap<(usize, Flow), Session>,
    owners: HashMap<(Flow, u32), usize>,
    report: Report,
    scratch: Vec<u8>,
    copies: Copies,
}

impl Engine {
    /// An engine for `config`.
    ///
    /// # Errors
    /// [`Error::NoKey`] without keys; [`Error::EncryptKeys`] when encrypting with more than one.
    pub fn new(config: Config) -> Result<Self, Error> {
        match (config.mode, config.keys.len()) {
            (_, 0) => return Err(Error::NoKey),
            (Mode::Encrypt, n) if n > 1 => return Err(Error::EncryptKeys(n)),
            _ => {}
        }
        Ok(Self {
            report: Report::new(config.mode),
            config,
            sessions: HashMap::new(),
            owners: HashMap::new(),
            scratch: Vec::new(),
            copies: Copies::default(),
        })
    }

    /// Works on one captured frame of link type `link`, captured whole (its captured length is
    /// its original length), rewriting it in place when it carries a selected packet.
    pub fn process(
        &mut self,
        link: LinkType,
        time: Option<Duration>,
        frame: &mut Vec<u8>,
    ) -> Verdict {
        self.report.record(time);
        let udp = match net::parse_udp(link, frame) {
            Ok(udp) => udp,
            Err(skip) => {
                self.report.skip(skip);
                return Verdict::Keep;
            }
        };
        let Some((kind, ssrc)) = frame.get(udp.payload.clone()).and_then(classify) else {
            self.report.not_rtp();
            return Verdict::Keep;
        };
        if !self.selects(&udp.flow, ssrc) {
            self.report.not_selected();
            return Verdict::Keep;
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(&frame[udp.payload.clone()]);
        let len = buf.len();
        buf.resize(len + MAX_TRAILER_LEN, 0);
        let result = match self.config.mode {
            Mode::Decrypt => self.decrypt(udp.flow, ssrc, kind, &mut buf[..len]),
            Mode::Encrypt => self.encrypt(udp.flow, kind, &mut buf, len),
        };
        let payload = udp.payload.clone();
        let outcome = match result {
            Ok(n) => {
                if self.config.mode == Mode::Decrypt {
                    self.copies.insert(&frame[payload], &buf[..n]);
                }
                rewrite(frame, &udp, &buf[..n], Outcome::Done)
            }
            // The same bytes as a packet decrypted before (captured twice): the plain packet
            // is known, and so is that these bytes authenticated.
            Err(Outcome::Replayed) => match self.copies.get(&frame[payload]) {
                Some(plain) => {
                    let plain = plain.to_vec();
                    rewrite(frame, &udp, &plain, Outcome::Duplicate)
                }
                None => Outcome::Replayed,
            },
            Err(outcome) => outcome,
        };
        self.scratch = buf;
        let key = StreamKey {
            ssrc,
            kind,
            flow: udp.flow,
        };
        self.report.count(key, time, outcome);
        match (outcome, self.config.failed) {
            (Outcome::Done | Outcome::Duplicate, _) => Verdict::Rewritten,
            (_, Failed::Keep) => Verdict::Keep,
            (_, Failed::Drop) => Verdict::Drop,
        }
    }

    /// Counts a record that was captured shorter than it was on the wire, which is written
    /// as it came.
    pub fn truncated(&mut self, time: Option<Duration>) {
        self.report.record(time);
        self.report.truncated();
    }

    /// The counters so far.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    fn selects(&self, flow: &Flow, ssrc: u32) -> bool {
        (self.config.filters.is_empty() || self.config.filters.iter().any(|f| f.matches(flow)))
            && (self.config.ssrcs.is_empty() || self.config.ssrcs.contains(&ssrc))
    }

    /// Tries the keys on an SRTP/SRTCP packet: the one that authenticated this stream before
    /// first, then the others. Returns the plain packet's length.
    fn decrypt(
        &mut self,
        flow: Flow,
        ssrc: u32,
        kind: Kind,
        packet: &mut [u8],
    ) -> Result<usize, Outcome> {
        let owner = self.owners.get(&(flow, ssrc)).copied();
        let order = owner
            .into_iter()
            .chain((0..self.config.keys.len()).filter(|&k| Some(k) != owner));
        let mut outcome = Outcome::Failed;
        for k in order {
            let result = match self.sessions.entry((k, flow)) {
                Entry::Occupied(mut e) => unprotect(e.get_mut(), kind, packet),
                Entry::Vacant(e) => {
                    let Some(mut session) = self.config.keys[k].session() else {
                        continue;
                    };
                    let result = unprotect(&mut session, kind, packet);
                    if result.is_ok() {
                        e.insert(session);
                    }
                    result
                }
            };
            match result {
                Ok(n) => {
                    self.owners.insert((flow, ssrc), k);
                    return Ok(n);
                }
                // The index was seen already (or is too old to check): a duplicate in the
                // capture, not a wrong key.
                Err(SrtpError::Replayed | SrtpError::TooOld) => outcome = Outcome::Replayed,
                Err(_) => {}
            }
        }
        Err(outcome)
    }

    /// Protects an RTP/RTCP packet with the (only) key. Returns the SRTP packet's length.
    fn encrypt(
        &mut self,
        flow: Flow,
        kind: Kind,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, Outcome> {
        let session = match self.sessions.entry((0, flow)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(
                self.config.keys[0]
                    .sending_session()
                    .ok_or(Outcome::Failed)?,
            ),
        };
        match kind {
            Kind::Rtp => session.protect_rtp(buf, len),
            Kind::Rtcp => session.protect_rtcp(buf, len),
        }
        .map_err(|_| Outcome::Failed)
    }
}

/// Writes `payload` into the frame; a frame that cannot take it counts as failed.
fn rewrite(frame: &mut Vec<u8>, udp: &net::UdpDatagram, payload: &[u8], ok: Outcome) -> Outcome {
    match net::replace_payload(frame, udp, payload) {
        Ok(()) => ok,
        Err(_) => Outcome::Failed,
    }
}

/// Packets decrypted lately, by their SRTP bytes: a capture often holds a packet twice (taken
/// on two interfaces, or on both sides of a bridge), and the second copy, refused by the
/// replay window, can still be written in the clear.
#[derive(Default)]
struct Copies {
    hasher: RandomState,
    map: HashMap<u64, Decrypted>,
    order: VecDeque<u64>,
}

/// A decrypted packet: its SRTP bytes and the plain packet.
type Decrypted = (Box<[u8]>, Box<[u8]>);

/// Decrypted packets remembered for their copies: some megabytes, and copies in a capture
/// follow their original closely.
const MAX_COPIES: usize = 8192;

/// Only the count: the packets are decrypted media.
impl std::fmt::Debug for Copies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Copies")
            .field("packets", &self.map.len())
            .finish()
    }
}

impl Copies {
    fn insert(&mut self, srtp: &[u8], plain: &[u8]) {
        let h = self.hasher.hash_one(srtp);
        if self.map.insert(h, (srtp.into(), plain.into())).is_none() {
            self.order.push_back(h);
            if self.order.len() > MAX_COPIES {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    fn get(&self, srtp: &[u8]) -> Option<&[u8]> {
        let (s, p) = self.map.get(&self.hasher.hash_one(srtp))?;
        (**s == *srtp).then_some(&**p)
    }
}

fn unprotect(session: &mut Session, kind: Kind, packet: &mut [u8]) -> Result<usize, SrtpError> {
    match kind {
        Kind::Rtp => session.unprotect_rtp(packet).map(|p| p.len()),
        Kind::Rtcp => session.unprotect_rtcp(packet).map(|p| p.len()),
    }
}

/// RTP or RTCP, and the SSRC, of a UDP payload; `None` for anything else (STUN, DTLS,
/// keep-alives): version 2 and long enough for the fixed header. RFC 5761 §4: with RTP and
/// RTCP on one port, a second byte of 192..=223 is RTCP (packet types 64..=95 are never used
/// by RTP for that reason).
pub fn classify(payload: &[u8]) -> Option<(Kind, u32)> {
    let first = *payload.first()?;
    if first >> 6 != 2 {
        return None;
    }
    let (kind, at) = match payload.get(1)? {
        192..=223 => (Kind::Rtcp, 4), // V/P/RC, PT, length, then the sender's SSRC
        _ => (Kind::Rtp, 8),          // V/P/X/CC, M/PT, sequence, timestamp, then the SSRC
    };
    let b = payload.get(at..at + 4)?;
    Some((kind, u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_tells_rtp_from_rtcp_and_refuses_other_udp() {
        let mut rtp = [0u8; 12];
        rtp[0] = 0x80;
        rtp[1] = 0;
        rtp[8..].copy_from_slice(&0xCAFE_BABE_u32.to_be_bytes());
        assert_eq!(classify(&rtp), Some((Kind::Rtp, 0xCAFE_BABE)));
        let mut rtcp = [0u8; 8];
        rtcp[0] = 0x80;
        rtcp[1] = 200;
        rtcp[4..].copy_from_slice(&7u32.to_be_bytes());
        assert_eq!(classify(&rtcp), Some((Kind::Rtcp, 7)));
        assert_eq!(classify(&rtp[..11]), None);
        assert_eq!(classify(&[0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42]), None); // STUN
        assert_eq!(classify(&[]), None);
    }
}
