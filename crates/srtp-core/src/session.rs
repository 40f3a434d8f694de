//! Protect and unprotect SRTP and SRTCP packets in place (RFC 3711 §3, RFC 7714 §§8–9).

use std::collections::VecDeque;

use subtle::ConstantTimeEq;

use crate::backend::{Backend, LANES};
use crate::cipher::aes_cm::AesCm;
use crate::cipher::aes_gcm::TAG_LEN as GCM_TAG_LEN;
use crate::cipher::hmac_sha1::{mac_lanes, Absorbed, LaneJob};
#[cfg(doc)]
use crate::cipher::HmacSha1;
use crate::index::{estimate_roc, index};
use crate::kdf::{self, PacketCipher, SessionKeys, LABEL_RTCP_ENCRYPTION, LABEL_RTP_ENCRYPTION};
use crate::packet::{cryptex, rtcp, rtp};
use crate::policy::{MAX_SRTCP_LIFETIME, MAX_SRTP_LIFETIME};
use crate::replay::{ReplayWindow, MAX_REPLAY_WINDOW};
use crate::stream::{Continued, RtpRx, RxStream, StreamTable, TxStream};
use crate::{Error, Malformed, MasterKey, Mki, Policy, PolicyError, Profile};

/// The shortest packet (without its trailer) whose AES-CM payload is decrypted behind the
/// hash, where the backend can ([`HmacSha1::absorb_decrypting`]): five whole SHA-1 blocks.
/// With fewer the overlap does not pay for the kernel's single-block AES (measured: 7%
/// slower at 172 bytes, even at 300, 2–8% faster from 320 to 1212).
const FUSED_MIN: usize = 5 * 64;

/// The most bytes protect appends to a packet: a 16-byte tag, an MKI of up to
/// [`MAX_MKI_LEN`](crate::MAX_MKI_LEN) bytes and, for SRTCP, the 4-byte E flag and index (for
/// SRTP with cryptex, the 4-byte empty extension block a packet with CSRCs and no extension
/// gains instead). A buffer with this much room past the packet always suffices; without an
/// MKI, 20 bytes do ([`Session::rtp_trailer_len`] and [`Session::rtcp_trailer_len`] give a
/// session's own).
pub const MAX_TRAILER_LEN: usize = 16 + crate::MAX_MKI_LEN + 4;

/// A stream that has accepted fewer packets than this may still be re-synchronised to a
/// rollover counter of zero (recovery from a wrong initial rollover counter).
const YOUNG_STREAM_PACKETS: u64 = 64;

/// What [`Session::protect_rtp_inner`] did: the protected length, the rollover counter, the
/// header length and, when it left the encryption to its caller, the counter block the
/// payload's keystream starts from.
struct Protected {
    len: usize,
    roc: u32,
    header: usize,
    iv: Option<[u8; 16]>,
    /// Encrypted and tagged already (a cryptex packet is, even when the caller deferred).
    tagged: bool,
}

/// An accepted SRTP packet whose AES-CM decryption a batch does later: the counter block its
/// keystream starts from, its header length and its key slot.
#[derive(Clone, Copy)]
struct Decrypt {
    iv: [u8; 16],
    header: usize,
    slot: usize,
}

/// A batch packet's full HMAC, computed in vector lanes before the packets are checked one by
/// one, with what was found on the way: its header, its key slot, the rollover counter the
/// MAC covers (the one estimated then) and where its authenticated part ends.
#[derive(Clone, Copy)]
struct Premac {
    hdr: rtp::Header,
    slot: usize,
    roc: u32,
    body_end: usize,
    mac: [u8; 20],
}

/// One master key with its derived session keys and usage counters.
struct KeySlot {
    master: MasterKey,
    rtp: SessionKeys,
    rtp_r: u64,
    rtcp: SessionKeys,
    rtcp_r: u64,
    rtp_limit: u64,
    rtcp_limit: u64,
    rtp_used: u64,
    rtcp_used: u64,
    backend: Backend,
}

impl KeySlot {
    fn new(profile: Profile, master: MasterKey, backend: Backend) -> Self {
        let lifetime = master.lifetime().unwrap_or(u64::MAX);
        Self {
            rtp: kdf::derive(profile, &master, LABEL_RTP_ENCRYPTION, 0, backend),
            rtp_r: 0,
            rtcp: kdf::derive(profile, &master, LABEL_RTCP_ENCRYPTION, 0, backend),
            rtcp_r: 0,
            rtp_limit: lifetime.min(MAX_SRTP_LIFETIME),
            rtcp_limit: lifetime.min(MAX_SRTCP_LIFETIME),
            rtp_used: 0,
            rtcp_used: 0,
            master,
            backend,
        }
    }
}

/// How much of the sender's master key lifetime is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyUsage {
    /// The MKI of the sender's key, if any.
    pub mki: Option<Mki>,
    /// SRTP packets protected or accepted under this key.
    pub rtp_packets: u64,
    /// SRTCP packets protected or accepted under this key.
    pub rtcp_packets: u64,
    /// SRTP packets the key may protect in all.
    pub rtp_limit: u64,
    /// SRTCP packets the key may protect in all.
    pub rtcp_limit: u64,
}

impl KeyUsage {
    /// Whether the key is close to its lifetime: fewer than 1/8 of it, or 2^16 packets,
    /// whichever is smaller, remain. Time to re-key.
    pub fn needs_rekey(&self) -> bool {
        let near = |used: u64, limit: u64| limit - used.min(limit) <= (limit / 8).min(1 << 16);
        near(self.rtp_packets, self.rtp_limit) || near(self.rtcp_packets, self.rtcp_limit)
    }
}

/// One packet of a batch: the buffer, the length of the packet in it, and the outcome.
///
/// Protect reads `len` as the packet length and sets it to the protected length; unprotect
/// reads it as the protected length and sets it to the plaintext length. `result` says
/// whether that packet succeeded; one packet's failure affects no other.
#[derive(Debug)]
pub struct BatchPacket<'a> {
    /// The packet buffer, with room for [`MAX_TRAILER_LEN`] more bytes when protecting.
    pub buf: &'a mut [u8],
    /// Length of the packet in `buf`.
    pub len: usize,
    /// The outcome of the operation on this packet.
    pub result: Result<(), Error>,
}

impl<'a> BatchPacket<'a> {
    /// A batch entry for the first `len` bytes of `buf`.
    pub fn new(buf: &'a mut [u8], len: usize) -> Self {
        Self {
            buf,
            len,
            result: Ok(()),
        }
    }
}

/// The SRTP and SRTCP cryptographic context for one direction: protect what you send with
/// one session, unprotect what you receive with another (RFC 3711 §3.2).
///
/// One session serves any number of SSRCs under its keys, as Microsoft clients send many video
/// streams under one key ([MS-SRTP] §3.1.3.2): each SSRC gets its own rollover counter,
/// replay window and SRTCP index, created for received streams only once a packet of that
/// SSRC authenticates.
///
/// Every operation works in place on the caller's buffer without allocating (a new stream's
/// replay window is the one allocation, made once the stream's first packet authenticates).
///
/// ```
/// use srtp_core::{MasterKey, Policy, Profile, Session, MAX_TRAILER_LEN};
///
/// let key = MasterKey::generate(Profile::Aes128CmHmacSha1_80);
/// let mut sender = Session::new(&Policy::new(Profile::Aes128CmHmacSha1_80, key.clone()))?;
/// let mut receiver = Session::new(&Policy::new(Profile::Aes128CmHmacSha1_80, key))?;
///
/// let rtp = [0x80, 0, 0, 1, 0, 0, 0, 0, 0xca, 0xfe, 0xba, 0xbe, b'h', b'i'];
/// let mut buf = [0u8; 14 + MAX_TRAILER_LEN];
/// buf[..14].copy_from_slice(&rtp);
/// let len = sender.protect_rtp(&mut buf, 14)?;
/// assert_eq!(len, 14 + 10);
/// let plain = receiver.unprotect_rtp(&mut buf[..len])?;
/// assert_eq!(plain, &rtp);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Session {
    profile: Profile,
    keys: Vec<KeySlot>,
    sender: usize,
    mki_len: usize,
    rtp_tag_len: usize,
    rtcp_tag_len: usize,
    encrypt_rtp: bool,
    pub(crate) encrypt_rtcp: bool,
    kdr: Option<u8>,
    replay_window: usize,
    roc_recovery: bool,
    allow_repeat_tx: bool,
    sequence_continuity: bool,
    /// Cryptex (RFC 9335) on: [`Policy::cryptex`] with encryption on.
    cryptex: bool,
    tx: StreamTable<TxStream>,
    rx: StreamTable<RxStream>,
    /// Key generations earlier re-keys replaced, oldest first, with their receive state.
    retired: VecDeque<Retired>,
    backend: Backend,
}

/// The outcome of [`Session::unprotect_rtp_quick`]: the packet accepted (its plaintext
/// length), or left to the full path with what the quick one hashed.
enum Quick {
    Accepted(usize),
    Undecided(Option<Tried>),
}

/// What a one-packet unprotect's first try hashed before its tag failed: the rollover
/// counter tried, the MAC under it and the packet absorbed into the MAC, for the full path's
/// other tries.
struct Tried {
    roc: u32,
    mac: [u8; 20],
    absorbed: Absorbed,
}

/// How many replaced key generations a session remembers (see [`Session::rekey`]).
const RETIRED_GENERATIONS: usize = 4;

/// Master keys a re-key replaced, with their usage counts (RTP, RTCP) and the receive state
/// they had: if the keys come back (a re-key undone, as after a refused re-INVITE), so do
/// their replay windows, and no packet received under them is accepted again.
struct Retired {
    keys: Vec<(MasterKey, u64, u64)>,
    rx: StreamTable<RxStream>,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("profile", &self.profile)
            .field("keys", &self.keys.len())
            .field("tx_streams", &self.tx.len())
            .field("rx_streams", &self.rx.len())
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Builds a session: checks the policy and derives every master key's session keys once.
    ///
    /// # Errors
    /// A [`PolicyError`] naming what does not fit the profile.
    pub fn new(policy: &Policy) -> Result<Self, PolicyError> {
        let profile = policy.profile;
        let mki_len = check_keys(profile, &policy.keys)?;
        let w = policy.replay_window;
        if !(64..=MAX_REPLAY_WINDOW).contains(&w) || !w.is_multiple_of(64) {
            return Err(PolicyError::ReplayWindow(w));
        }
        if let Some(n) = policy.key_derivation_rate.filter(|&n| n > 24) {
            return Err(PolicyError::KeyDerivationRate(n));
        }
        if policy.max_streams == 0 {
            return Err(PolicyError::ZeroStreamLimit);
        }
        if profile.is_aead() && !policy.authenticate_rtp {
            return Err(PolicyError::UnauthenticatedAead);
        }
        if profile.is_aead() && !policy.encrypt_rtp {
            return Err(PolicyError::UnencryptedAead);
        }
        let backend = Backend::detect();
        Ok(Self {
            profile,
            keys: policy
                .keys
                .iter()
                .map(|k| KeySlot::new(profile, k.clone(), backend))
                .collect(),
            sender: 0,
            mki_len,
            rtp_tag_len: if policy.authenticate_rtp {
                profile.rtp_tag_len()
            } else {
                0
            },
            rtcp_tag_len: profile.rtcp_tag_len(),
            encrypt_rtp: policy.encrypt_rtp,
            encrypt_rtcp: policy.encrypt_rtcp,
            kdr: policy.key_derivation_rate,
            replay_window: w,
            roc_recovery: policy.roc_recovery,
            allow_repeat_tx: policy.danger_allow_repeat_tx,
            sequence_continuity: policy.sequence_continuity,
            cryptex: policy.cryptex && policy.encrypt_rtp,
            tx: StreamTable::new(policy.max_streams),
            rx: StreamTable::new(policy.max_streams),
            retired: VecDeque::new(),
            backend,
        })
    }

    /// The session's protection profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The code that computes the session's HMAC-SHA1: [`Backend::detect`] when the session
    /// was built, unless [`set_backend`](Self::set_backend) chose another.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Computes HMAC-SHA1 with `backend` from now on (to compare backends on one machine).
    /// Results do not change, only speed.
    ///
    /// # Errors
    /// [`PolicyError::UnsupportedBackend`] if this CPU cannot run `backend`; the session is
    /// unchanged then.
    pub fn set_backend(&mut self, backend: Backend) -> Result<(), PolicyError> {
        if !backend.is_supported() {
            return Err(PolicyError::UnsupportedBackend(backend));
        }
        self.backend = backend;
        for slot in &mut self.keys {
            slot.backend = backend;
            for keys in [&mut slot.rtp, &mut slot.rtcp] {
                if let Some(mac) = &mut keys.auth {
                    mac.set_backend(backend);
                }
            }
        }
        Ok(())
    }

    /// Whether SRTP packets carry an authentication tag (false with `UNAUTHENTICATED_SRTP`):
    /// only then does a successful unprotect prove who sent the packet.
    pub fn authenticates_rtp(&self) -> bool {
        self.rtp_tag_len > 0
    }

    /// Checks that `keys` would be accepted by [`rekey`](Self::rekey), without changing
    /// anything.
    ///
    /// # Errors
    /// As [`rekey`](Self::rekey).
    pub fn check_keys(&self, keys: &[MasterKey]) -> Result<(), PolicyError> {
        check_keys(self.profile, keys).map(drop)
    }

    /// Turns cryptex (RFC 9335, [`Policy::cryptex`]) on or off from the next packet on: for
    /// a sender, whether it encrypts CSRCs and header extensions; for a receiver, whether it
    /// accepts packets so encrypted. For a session without encryption it stays off. Streams
    /// and keys are unchanged (an answer that adds or drops `a=cryptex` needs no re-key).
    pub fn set_cryptex(&mut self, on: bool) {
        self.cryptex = on && self.encrypt_rtp;
    }

    /// Whether cryptex is on (see [`set_cryptex`](Self::set_cryptex)).
    pub fn cryptex(&self) -> bool {
        self.cryptex
    }

    /// Bytes protect appends to an SRTP packet (MKI and tag).
    pub fn rtp_trailer_len(&self) -> usize {
        self.mki_len + self.rtp_tag_len
    }

    /// Bytes protect appends to an SRTCP packet (index word, MKI and tag).
    pub fn rtcp_trailer_len(&self) -> usize {
        rtcp::INDEX_LEN + self.mki_len + self.rtcp_tag_len
    }

    // ---------------------------------------------------------------- SRTP

    /// Protects the RTP packet in `buf[..len]` in place and returns the SRTP packet's length.
    ///
    /// `buf` needs [`rtp_trailer_len`](Self::rtp_trailer_len) bytes of room past `len`
    /// ([`MAX_TRAILER_LEN`] always suffices). With [`Policy::cryptex`], a packet with CSRCs and
    /// no header extension gains an empty extension block (RFC 9335 §5.1), 4 bytes more; a
    /// packet whose extension is not RFC 8285's goes out without cryptex, as §5.1 requires.
    ///
    /// # Errors
    /// [`Error::Malformed`] for a packet that is not RTP, [`Error::NoRoom`] without room for
    /// the trailer, [`Error::KeyExhausted`] when the sender's key reached its lifetime,
    /// [`Error::Replayed`] (or [`Error::TooOld`]) for an index this session already protected
    /// (or one behind its window), [`Error::StreamLimit`] for one SSRC too many. The buffer
    /// and the session are unchanged on error, but for one thing: under
    /// [`Policy::sequence_continuity`] the first packet of a restart is refused and
    /// remembered, so that the next one confirms the restart.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        self.protect_rtp_inner(buf, len, false).map(|p| p.len)
    }

    /// Protects as [`protect_rtp`](Self::protect_rtp); with `defer` (HMAC profiles only)
    /// leaves the AES-CM encryption and the tag to the caller, as batches do: it then returns
    /// the counter block the payload's keystream starts from (if the payload is encrypted),
    /// for the caller to apply to `buf[header..len]`, and the tag is the MAC over the result
    /// and the rollover counter. Returns the protected length, the rollover counter, the header
    /// length and that counter block.
    fn protect_rtp_inner(
        &mut self,
        buf: &mut [u8],
        len: usize,
        defer: bool,
    ) -> Result<Protected, Error> {
        let packet = buf.get(..len).ok_or(Error::LengthOutOfBounds)?;
        let mut hdr = rtp::parse(packet)?;
        // A NULL cipher encrypts nothing, so it marks nothing either.
        let plan = if self.cryptex && self.profile.encrypts() {
            cryptex::Plan::new(packet)
        } else {
            None
        };
        let grown = len + plan.map_or(0, cryptex::Plan::growth);
        let needed = grown + self.rtp_trailer_len();
        if buf.len() < needed {
            return Err(Error::NoRoom { needed });
        }
        let slot = &mut self.keys[self.sender];
        if slot.rtp_used >= slot.rtp_limit {
            return Err(Error::KeyExhausted);
        }
        let stream = self
            .tx
            .entry_no_evict(hdr.ssrc, TxStream::default)
            .ok_or(Error::StreamLimit)?;
        let (seq, continued) = if self.sequence_continuity {
            match stream.continued(hdr.seq, self.replay_window) {
                Continued::Send { seq, offset } => (seq, Some(offset)),
                Continued::Probation => {
                    // The one change a refused packet makes: the restart it may begin.
                    stream.restart = Some(hdr.seq);
                    return Err(Error::TooOld);
                }
            }
        } else {
            (hdr.seq, None)
        };
        let roc = match stream.rtp {
            None => 0,
            Some((roc, s_l)) => {
                let v = estimate_roc(roc, s_l, seq);
                u32::try_from(v).map_err(|_| {
                    if v < 0 {
                        Error::TooOld
                    } else {
                        Error::KeyExhausted
                    }
                })?
            }
        };
        let idx = index(roc, seq);
        // Never protect one index twice: a second payload under the same keystream (or GCM
        // nonce) gives both away (RFC 3711 §9.1; libsrtp refuses it too).
        if let (Some(w), false) = (&stream.sent, self.allow_repeat_tx) {
            w.check(idx)?;
        }
        match &mut stream.sent {
            Some(w) => w.accept(idx),
            None => stream.sent = Some(ReplayWindow::new(self.replay_window, idx)),
        }
        match stream.rtp {
            Some((r, s)) if index(r, s) >= idx => {}
            _ => stream.rtp = Some((roc, seq)),
        }
        if let Some(offset) = continued {
            stream.commit(offset);
        }
        slot.rtp_used += 1;
        let keys = cached_keys(self.profile, self.kdr, slot, false, idx);

        if seq != hdr.seq {
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
        }
        // Cryptex: the packet marked (and grown, if it gets an empty extension block), then,
        // while it is encrypted, laid out with its encrypted bytes after the first 16.
        let layout = plan.map(|p| {
            hdr.len += p.growth();
            p.mark(buf, len)
        });
        let len = grown;
        let (packet, trailer) = buf[..needed].split_at_mut(len);
        if let Some(l) = layout {
            l.apply(packet);
        }
        let encrypted_from = layout.map_or(hdr.len, |_| cryptex::START);
        let defer = defer && layout.is_none();
        let (header, payload) = packet.split_at_mut(encrypted_from);
        let mut deferred_iv = None;
        match &keys.cipher {
            PacketCipher::Gcm(gcm) => {
                let nonce = gcm_rtp_nonce(&keys.salt, hdr.ssrc, roc, seq);
                let tag = if self.encrypt_rtp {
                    gcm.seal(&nonce, header, payload)
                } else {
                    gcm.seal(&nonce, packet, &mut [])
                };
                trailer[..GCM_TAG_LEN].copy_from_slice(&tag);
                if let Some(l) = layout {
                    l.undo(packet);
                }
            }
            cipher => {
                if let (PacketCipher::Cm(aes), true) = (cipher, self.encrypt_rtp) {
                    let iv = cm_iv(&keys.salt, hdr.ssrc, idx);
                    if defer {
                        deferred_iv = Some(iv);
                    } else {
                        aes.apply_keystream(&iv, payload);
                    }
                }
                if let Some(l) = layout {
                    l.undo(packet);
                }
                if let (Some(mac), false) = (&keys.auth, defer) {
                    let tag = mac.mac(packet, &roc.to_be_bytes());
                    trailer[self.mki_len..].copy_from_slice(&tag[..self.rtp_tag_len]);
                }
            }
        }
        self.write_mki(&mut buf[len..needed], 0);
        Ok(Protected {
            len: needed,
            roc,
            header: hdr.len,
            iv: deferred_iv,
            tagged: !defer,
        })
    }

    /// Verifies and decrypts the SRTP packet that fills `packet`, in place, and returns the
    /// RTP packet (a prefix of `packet`).
    ///
    /// A packet encrypted with cryptex (RFC 9335) comes back with its CSRCs and header
    /// extensions decrypted and its extension profile RFC 8285's again (`0xBEDE` or `0x1000`).
    ///
    /// # Errors
    /// [`Error::AuthenticationFailed`], [`Error::Replayed`], [`Error::TooOld`],
    /// [`Error::UnknownMki`], [`Error::Malformed`], [`Error::KeyExhausted`] or, for a cryptex
    /// packet without [`Policy::cryptex`], [`Error::CryptexNotNegotiated`]. On error neither
    /// `packet` nor the session has changed: the next good packet is accepted as if this one
    /// never arrived.
    pub fn unprotect_rtp<'a>(&mut self, packet: &'a mut [u8]) -> Result<&'a mut [u8], Error> {
        let tried = match self.unprotect_rtp_quick(packet) {
            Quick::Accepted(len) => return Ok(&mut packet[..len]),
            Quick::Undecided(tried) => tried,
        };
        let (len, _) = match tried {
            Some(Tried { roc, mac, absorbed }) => {
                self.unprotect_rtp_len(packet, Some((roc, mac)), Some(absorbed), false)?
            }
            None => self.unprotect_rtp_len(packet, None, None, false)?,
        };
        Ok(&mut packet[..len])
    }

    /// The common case of one packet, short: an HMAC profile without a key derivation rate,
    /// a stream that already receives, the packet's index under the estimated rollover counter
    /// inside the replay window and its tag right. The packet is then decrypted and accepted
    /// exactly as [`unprotect_rtp_len`](Self::unprotect_rtp_len) would (whose first try is
    /// that same counter), and its plaintext length returned. Anything else changes nothing
    /// and returns what it hashed, if it got that far, which the full path then reuses rather
    /// than hashing the packet again.
    fn unprotect_rtp_quick(&mut self, packet: &mut [u8]) -> Quick {
        let tag_len = self.rtp_tag_len;
        if self.kdr.is_some() || self.profile.is_aead() || tag_len == 0 {
            return Quick::Undecided(None);
        }
        let Ok(hdr) = rtp::parse(packet) else {
            return Quick::Undecided(None);
        };
        let layout = cryptex::received(packet);
        if layout.is_some() && !self.cryptex {
            return Quick::Undecided(None);
        }
        let trailer = tag_len + self.mki_len;
        if packet.len() < hdr.len + trailer {
            return Quick::Undecided(None);
        }
        let body_end = packet.len() - trailer;
        let Ok(slot_i) = self.find_key(&packet[body_end..body_end + self.mki_len]) else {
            return Quick::Undecided(None);
        };
        let slot = &self.keys[slot_i];
        let Some(RxStream { rtp: Some(st), .. }) = self.rx.get(hdr.ssrc) else {
            return Quick::Undecided(None);
        };
        let Ok(roc) = u32::try_from(estimate_roc(st.roc, st.s_l, hdr.seq)) else {
            return Quick::Undecided(None);
        };
        let idx = index(roc, hdr.seq);
        let (Some(mac), true) = (&slot.rtp.auth, slot.rtp_used < slot.rtp_limit) else {
            return Quick::Undecided(None);
        };
        if st.window.check(idx).is_err() {
            return Quick::Undecided(None);
        }
        let cm = match (&slot.rtp.cipher, self.encrypt_rtp) {
            (PacketCipher::Cm(aes), true) => Some((aes, cm_iv(&slot.rtp.salt, hdr.ssrc, idx))),
            _ => None,
        };
        // A long payload is decrypted behind the hash where the backend runs the two together
        // (undone if the tag fails); `decrypted` is how far.
        let fused = match cm {
            Some((aes, iv)) if layout.is_none() && body_end >= FUSED_MIN => {
                mac.absorb_decrypting(&mut packet[..body_end], hdr.len, aes, &iv)
            }
            _ => None,
        };
        let (absorbed, decrypted) =
            fused.unwrap_or_else(|| (mac.absorb(&packet[..body_end]), hdr.len));
        let full = mac.finish(&absorbed, &roc.to_be_bytes());
        let tag_at = body_end + self.mki_len;
        if !tags_equal(&full[..tag_len], &packet[tag_at..tag_at + tag_len]) {
            if let Some((aes, iv)) = cm.filter(|_| decrypted > hdr.len) {
                aes.apply_keystream(&iv, &mut packet[hdr.len..decrypted]);
            }
            return Quick::Undecided(Some(Tried {
                roc,
                mac: full,
                absorbed,
            }));
        }
        if let Some((aes, iv)) = cm {
            if decrypted > hdr.len {
                let counter = ((decrypted - hdr.len) / 16) as u16;
                aes.apply_keystream_from(&iv, counter, &mut packet[decrypted..body_end]);
            } else {
                decrypt_cm(aes, &iv, &mut packet[..body_end], hdr.len, layout);
            }
        }
        if let Some(l) = layout {
            l.unmark(packet);
        }
        self.accept_rtp(slot_i, hdr.ssrc, hdr.seq, roc, idx);
        Quick::Accepted(body_end)
    }

    /// Unprotects as [`unprotect_rtp`](Self::unprotect_rtp) and returns the plaintext length.
    /// `premac` is a full HMAC of the packet computed beforehand (in a batch's vector lanes)
    /// for one rollover counter: used if that counter is the one tried, computed here if not.
    /// `absorbed` is the packet already absorbed into the MAC of its key, if the caller did.
    /// With `defer` (batches, no key derivation rate) an AES-CM payload is left encrypted and
    /// the counter block its keystream starts from returned, with the header length and the
    /// key slot, for the caller to decrypt; the packet is accepted and the state updated all
    /// the same.
    fn unprotect_rtp_len(
        &mut self,
        packet: &mut [u8],
        premac: Option<(u32, [u8; 20])>,
        mut absorbed: Option<Absorbed>,
        defer: bool,
    ) -> Result<(usize, Option<Decrypt>), Error> {
        let hdr = rtp::parse(packet)?;
        let layout = cryptex::received(packet);
        if layout.is_some() && !self.cryptex {
            return Err(Error::CryptexNotNegotiated);
        }
        let tag_len = self.rtp_tag_len;
        let trailer = tag_len + self.mki_len;
        if packet.len() < hdr.len + trailer {
            return Err(Malformed::TooShort.into());
        }
        let body_end = packet.len() - trailer;
        let aead = self.profile.is_aead();
        let mki_at = if aead { body_end + tag_len } else { body_end };
        let slot_i = self.find_key(&packet[mki_at..mki_at + self.mki_len])?;
        let slot = &self.keys[slot_i];
        if slot.rtp_used >= slot.rtp_limit {
            return Err(Error::KeyExhausted);
        }

        // Candidate rollover counters: the estimate first, then the recovery guesses.
        let stream = self.rx.get(hdr.ssrc);
        let state = stream.and_then(|s| s.rtp.as_ref());
        let estimate = estimate_rx_roc(stream, hdr.seq);
        let young = state.is_none_or(|st| st.received < YOUNG_STREAM_PACKETS);
        if let Some(st) = state {
            let first = u32::try_from(estimate).map_err(|_| Error::TooOld)?;
            st.window.check(index(first, hdr.seq))?;
        }
        // Recovery: one rollover ahead (the receiver missed a wrap, or joined late); while the
        // stream is young, also one behind and zero (its rollover counter was a guess). Every
        // candidate must pass the replay window, so an old packet is never accepted as new.
        let mut candidates = [Some(estimate), None, None, None];
        if self.roc_recovery && tag_len > 0 {
            candidates[1] = Some(estimate + 1);
            if young {
                candidates[2] = Some(estimate - 1);
                candidates[3] = (estimate > 1).then_some(0);
            }
        }

        let tag_at = if aead {
            body_end
        } else {
            body_end + self.mki_len
        };
        let mut tag = [0u8; GCM_TAG_LEN];
        tag[..tag_len].copy_from_slice(&packet[tag_at..tag_at + tag_len]);
        let tag = &tag[..tag_len];
        // The packet absorbed into the MAC once, for every rollover counter tried (`absorbed`,
        // if the caller already did).

        let mut accepted = None;
        let mut deferred = None;
        // Keys re-derived for a key derivation rate, kept only if the packet authenticates.
        let mut fresh: Option<SessionKeys> = None;
        for roc in candidates.into_iter().flatten() {
            let Ok(roc) = u32::try_from(roc) else {
                continue;
            };
            let idx = index(roc, hdr.seq);
            // Every candidate passes the replay window: a packet that authenticates only under
            // an older cycle is an old packet, never a reason to move the window back.
            if roc as i64 != estimate && state.is_some_and(|st| st.window.check(idx).is_err()) {
                continue;
            }
            let derived = rederive(self.profile, self.kdr, slot, false, idx);
            let keys = derived.as_ref().unwrap_or(&slot.rtp);
            let ok = match &keys.cipher {
                PacketCipher::Gcm(gcm) => {
                    let nonce = gcm_rtp_nonce(&keys.salt, hdr.ssrc, roc, hdr.seq);
                    let body = &mut packet[..body_end];
                    if let Some(l) = layout {
                        l.apply(body);
                        let (header, payload) = body.split_at_mut(cryptex::START);
                        let ok = gcm.open(&nonce, header, payload, tag).is_ok();
                        l.undo(body);
                        ok
                    } else if self.encrypt_rtp {
                        let (header, payload) = body.split_at_mut(hdr.len);
                        gcm.open(&nonce, header, payload, tag).is_ok()
                    } else {
                        gcm.open(&nonce, body, &mut [], tag).is_ok()
                    }
                }
                _ => match &keys.auth {
                    None => true,
                    Some(mac) => {
                        let full = match premac {
                            Some((r, full)) if r == roc && derived.is_none() => full,
                            // Without a key derivation rate every try uses the same key: the
                            // packet is hashed once, then only its end and the counter per try.
                            _ if self.kdr.is_none() => {
                                let a =
                                    absorbed.get_or_insert_with(|| mac.absorb(&packet[..body_end]));
                                mac.finish(a, &roc.to_be_bytes())
                            }
                            _ => mac.mac(&packet[..body_end], &roc.to_be_bytes()),
                        };
                        tags_equal(&full[..tag_len], tag)
                    }
                },
            };
            if ok {
                if let (PacketCipher::Cm(aes), true) = (&keys.cipher, self.encrypt_rtp) {
                    let iv = cm_iv(&keys.salt, hdr.ssrc, idx);
                    if defer && self.kdr.is_none() && layout.is_none() {
                        deferred = Some(Decrypt {
                            iv,
                            header: hdr.len,
                            slot: slot_i,
                        });
                    } else {
                        decrypt_cm(aes, &iv, &mut packet[..body_end], hdr.len, layout);
                    }
                }
                if derived.is_some() {
                    fresh = derived;
                }
                accepted = Some((roc, idx));
                break;
            }
        }
        let Some((roc, idx)) = accepted else {
            return Err(Error::AuthenticationFailed);
        };

        // Authenticated: now, and only now, update the state.
        // (Matched one at a time: a tuple would copy the kilobyte of keys even when None.)
        if let Some(n) = self.kdr {
            if let Some(k) = fresh {
                let slot = &mut self.keys[slot_i];
                slot.rtp = k;
                slot.rtp_r = idx >> n;
            }
        }
        if let Some(l) = layout {
            l.unmark(packet);
        }
        self.accept_rtp(slot_i, hdr.ssrc, hdr.seq, roc, idx);
        Ok((body_end, deferred))
    }

    /// Writes the sender key's MKI, if it has one, into a packet's `trailer`: after `skip`
    /// bytes (SRTCP's E flag and index) and, for AEAD profiles, after the tag. The MKI is
    /// outside the authenticated part (RFC 3711 §3.1, §3.4), so it is written last, and
    /// borrowed, not copied.
    fn write_mki(&self, trailer: &mut [u8], skip: usize) {
        if let Some(m) = self.keys[self.sender].master.mki_ref() {
            let at = skip
                + if self.profile.is_aead() {
                    GCM_TAG_LEN
                } else {
                    0
                };
            trailer[at..at + m.len()].copy_from_slice(m.as_bytes());
        }
    }

    /// Records an SRTP packet that authenticated: one more use of its key, and its stream's
    /// rollover counter, highest sequence number and replay window moved on (RFC 3711 §3.3.1).
    fn accept_rtp(&mut self, slot: usize, ssrc: u32, seq: u16, roc: u32, idx: u64) {
        self.keys[slot].rtp_used += 1;
        let window = self.replay_window;
        let stream = self.rx.entry(ssrc, RxStream::default);
        match &mut stream.rtp {
            None => {
                stream.roc_hint = None;
                stream.rtp = Some(RtpRx {
                    roc,
                    s_l: seq,
                    window: ReplayWindow::new(window, idx),
                    received: 1,
                });
            }
            Some(st) => {
                if idx > st.window.top() {
                    st.roc = roc;
                    st.s_l = seq;
                }
                st.window.accept(idx);
                st.received += 1;
            }
        }
    }

    /// The common case of a batch packet, short: its MAC, computed in lanes for the rollover
    /// counter estimated then, is still for the counter estimated now, the index passes the
    /// replay window and the tag matches. Then the packet is accepted exactly as
    /// [`unprotect_rtp_len`](Self::unprotect_rtp_len) would accept it (its decryption left to
    /// the batch) and returns its plaintext length and decryption; anything else returns
    /// `None`, having changed nothing, for the full path to decide.
    fn unprotect_rtp_premac(&mut self, packet: &[u8], pre: &Premac) -> Option<(usize, Decrypt)> {
        debug_assert!(self.kdr.is_none() && !self.profile.is_aead());
        let slot = &self.keys[pre.slot];
        if slot.rtp_used >= slot.rtp_limit {
            return None;
        }
        let stream = self.rx.get(pre.hdr.ssrc);
        let st = stream.and_then(|s| s.rtp.as_ref());
        let estimate = estimate_rx_roc(stream, pre.hdr.seq);
        if estimate != i64::from(pre.roc) {
            return None;
        }
        let idx = index(pre.roc, pre.hdr.seq);
        if st.is_some_and(|st| st.window.check(idx).is_err()) {
            return None;
        }
        let tag_at = pre.body_end + self.mki_len;
        let tag = packet.get(tag_at..tag_at + self.rtp_tag_len)?;
        if self.rtp_tag_len == 0 || !tags_equal(&pre.mac[..self.rtp_tag_len], tag) {
            return None;
        }
        let decrypt = Decrypt {
            iv: cm_iv(&slot.rtp.salt, pre.hdr.ssrc, idx),
            header: pre.hdr.len,
            slot: pre.slot,
        };
        self.accept_rtp(pre.slot, pre.hdr.ssrc, pre.hdr.seq, pre.roc, idx);
        Some((pre.body_end, decrypt))
    }

    // ---------------------------------------------------------------- SRTCP

    /// Protects the RTCP compound packet in `buf[..len]` in place and returns the SRTCP
    /// packet's length. SRTCP is always authenticated; it is encrypted (E=1) unless the policy
    /// says `encrypt_rtcp = false`.
    ///
    /// # Errors
    /// As [`protect_rtp`](Self::protect_rtp); [`Error::KeyExhausted`] also when the stream's
    /// SRTCP index reached 2^31.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let packet = buf.get(..len).ok_or(Error::LengthOutOfBounds)?;
        let ssrc = rtcp::parse(packet)?;
        let needed = len + self.rtcp_trailer_len();
        if buf.len() < needed {
            return Err(Error::NoRoom { needed });
        }
        let slot = &mut self.keys[self.sender];
        if slot.rtcp_used >= slot.rtcp_limit {
            return Err(Error::KeyExhausted);
        }
        let stream = self
            .tx
            .entry_no_evict(ssrc, TxStream::default)
            .ok_or(Error::StreamLimit)?;
        let srtcp_index = stream.rtcp_index;
        if srtcp_index > 0x7fff_ffff {
            return Err(Error::KeyExhausted);
        }
        stream.rtcp_index += 1;
        slot.rtcp_used += 1;
        let keys = cached_keys(self.profile, self.kdr, slot, true, u64::from(srtcp_index));

        let encrypt = self.encrypt_rtcp && !matches!(keys.cipher, PacketCipher::Null);
        let word = (srtcp_index | if encrypt { rtcp::E_FLAG } else { 0 }).to_be_bytes();
        let (packet, trailer) = buf[..needed].split_at_mut(len);
        match &keys.cipher {
            PacketCipher::Gcm(gcm) => {
                let nonce = gcm_rtcp_nonce(&keys.salt, ssrc, srtcp_index);
                let tag = if encrypt {
                    let (header, body) = packet.split_at_mut(rtcp::HEADER_LEN);
                    gcm.seal(&nonce, &rtcp_aad(header, word), body)
                } else {
                    // The AAD is the whole packet followed by the index word: lay the word
                    // out after the packet, seal, then move it behind the tag.
                    let all = &mut buf[..len + rtcp::INDEX_LEN];
                    all[len..].copy_from_slice(&word);
                    gcm.seal(&nonce, all, &mut [])
                };
                let trailer = &mut buf[len..needed];
                trailer[..GCM_TAG_LEN].copy_from_slice(&tag);
                trailer[GCM_TAG_LEN..GCM_TAG_LEN + 4].copy_from_slice(&word);
            }
            cipher => {
                if let (PacketCipher::Cm(aes), true) = (cipher, encrypt) {
                    let iv = cm_iv(&keys.salt, ssrc, u64::from(srtcp_index));
                    aes.apply_keystream(&iv, &mut packet[rtcp::HEADER_LEN..]);
                }
                trailer[..4].copy_from_slice(&word);
                let mac = keys.auth.as_ref().expect("HMAC profiles have an auth key");
                let tag = mac.mac(&buf[..len + 4], &[]);
                let tag_at = len + 4 + self.mki_len;
                buf[tag_at..needed].copy_from_slice(&tag[..self.rtcp_tag_len]);
            }
        }
        self.write_mki(&mut buf[len..needed], rtcp::INDEX_LEN);
        Ok(needed)
    }

    /// Verifies and (if its E flag is set) decrypts the SRTCP packet that fills `packet`, in
    /// place, and returns the RTCP packet. A packet with E=0 is still authenticated.
    ///
    /// # Errors
    /// As [`unprotect_rtp`](Self::unprotect_rtp); nothing changes on error.
    pub fn unprotect_rtcp<'a>(&mut self, packet: &'a mut [u8]) -> Result<&'a mut [u8], Error> {
        let len = self.unprotect_rtcp_len(packet)?;
        Ok(&mut packet[..len])
    }

    fn unprotect_rtcp_len(&mut self, packet: &mut [u8]) -> Result<usize, Error> {
        let ssrc = rtcp::parse(packet)?;
        let tag_len = self.rtcp_tag_len;
        let trailer = rtcp::INDEX_LEN + self.mki_len + tag_len;
        if packet.len() < rtcp::HEADER_LEN + trailer {
            return Err(Malformed::TooShort.into());
        }
        let end = packet.len() - trailer;
        let aead = self.profile.is_aead();
        let (word_at, mki_at, tag_at) = if aead {
            (end + tag_len, end + tag_len + 4, end)
        } else {
            (end, end + 4, end + 4 + self.mki_len)
        };
        let word = u32::from_be_bytes(packet[word_at..word_at + 4].try_into().expect("4 bytes"));
        let encrypted = word & rtcp::E_FLAG != 0;
        let srtcp_index = word & !rtcp::E_FLAG;
        let slot_i = self.find_key(&packet[mki_at..mki_at + self.mki_len])?;
        let slot = &self.keys[slot_i];
        if slot.rtcp_used >= slot.rtcp_limit {
            return Err(Error::KeyExhausted);
        }
        if let Some(w) = self.rx.get(ssrc).and_then(|s| s.rtcp.as_ref()) {
            w.check(u64::from(srtcp_index))?;
        }
        let fresh = rederive(self.profile, self.kdr, slot, true, u64::from(srtcp_index));
        let keys = fresh.as_ref().unwrap_or(&slot.rtcp);
        let mut tag = [0u8; GCM_TAG_LEN];
        tag[..tag_len].copy_from_slice(&packet[tag_at..tag_at + tag_len]);
        let tag = &tag[..tag_len];
        let ok = match &keys.cipher {
            PacketCipher::Gcm(gcm) => {
                let nonce = gcm_rtcp_nonce(&keys.salt, ssrc, srtcp_index);
                if encrypted {
                    let (header, body) = packet[..end].split_at_mut(rtcp::HEADER_LEN);
                    let aad = rtcp_aad(header, word.to_be_bytes());
                    gcm.open(&nonce, &aad, body, tag).is_ok()
                } else {
                    // Make the AAD (packet || index word) contiguous where the tag sits, then
                    // put the tag back so the buffer is unchanged whatever the outcome.
                    packet[end..end + 4].copy_from_slice(&word.to_be_bytes());
                    let ok = gcm.open(&nonce, &packet[..end + 4], &mut [], tag).is_ok();
                    packet[tag_at..tag_at + tag_len].copy_from_slice(tag);
                    ok
                }
            }
            cipher => {
                let mac = keys.auth.as_ref().expect("HMAC profiles have an auth key");
                let full = mac.mac(&packet[..end + 4], &[]);
                let ok = tags_equal(&full[..tag_len], tag);
                if let (true, true, PacketCipher::Cm(aes)) = (ok, encrypted, cipher) {
                    let iv = cm_iv(&keys.salt, ssrc, u64::from(srtcp_index));
                    aes.apply_keystream(&iv, &mut packet[rtcp::HEADER_LEN..end]);
                }
                ok
            }
        };
        if !ok {
            return Err(Error::AuthenticationFailed);
        }
        let slot = &mut self.keys[slot_i];
        slot.rtcp_used += 1;
        if let Some(n) = self.kdr {
            if let Some(k) = fresh {
                slot.rtcp = k;
                slot.rtcp_r = u64::from(srtcp_index) >> n;
            }
        }
        let window = self.replay_window;
        let stream = self.rx.entry(ssrc, RxStream::default);
        match &mut stream.rtcp {
            Some(w) => w.accept(u64::from(srtcp_index)),
            None => stream.rtcp = Some(ReplayWindow::new(window, u64::from(srtcp_index))),
        }
        Ok(end)
    }

    // ---------------------------------------------------------------- batches

    /// Protects each RTP packet of `batch` as [`protect_rtp`](Self::protect_rtp) would, with
    /// the same results bit for bit; one packet's failure affects no other.
    ///
    /// With HMAC-SHA1 profiles and a [`Backend`] that hashes in vector lanes, the tags of up
    /// to eight packets are computed together, which is where batches are faster than one
    /// packet at a time: hand over what one `recvmmsg` brought in, for instance.
    ///
    /// ```
    /// use srtp_core::{BatchPacket, MasterKey, Policy, Profile, Session, MAX_TRAILER_LEN};
    ///
    /// let key = MasterKey::generate(Profile::Aes128CmHmacSha1_80);
    /// let mut tx = Session::new(&Policy::new(Profile::Aes128CmHmacSha1_80, key.clone()))?;
    /// let mut rx = Session::new(&Policy::new(Profile::Aes128CmHmacSha1_80, key))?;
    ///
    /// // Eight 172-byte G.711 packets, each with room for its trailer.
    /// let mut bufs = [[0u8; 172 + MAX_TRAILER_LEN]; 8];
    /// for (seq, b) in bufs.iter_mut().enumerate() {
    ///     b[0] = 0x80;
    ///     b[3] = seq as u8;
    /// }
    /// let mut batch = bufs.each_mut().map(|b| BatchPacket::new(b, 172));
    /// tx.protect_rtp_batch(&mut batch);
    /// assert!(batch.iter().all(|p| p.result.is_ok() && p.len == 172 + 10));
    ///
    /// // The receiver's side: one packet forged on the way fails alone.
    /// batch[3].buf[20] ^= 1;
    /// rx.unprotect_rtp_batch(&mut batch);
    /// for (i, p) in batch.iter().enumerate() {
    ///     assert_eq!(p.result.is_ok(), i != 3);
    /// }
    /// assert_eq!(batch[0].len, 172);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn protect_rtp_batch(&mut self, batch: &mut [BatchPacket<'_>]) {
        let min = self.rtp_lanes();
        for chunk in batch.chunks_mut(LANES) {
            if min.is_some_and(|m| chunk.len() >= m) {
                self.protect_rtp_lanes(chunk);
            } else {
                for p in chunk {
                    p.result = self.protect_rtp(p.buf, p.len).map(|n| p.len = n);
                }
            }
        }
    }

    /// Unprotects each SRTP packet of `batch` as [`unprotect_rtp`](Self::unprotect_rtp)
    /// would, with the same results bit for bit; a packet that fails (forged, replayed,
    /// malformed) affects no other.
    ///
    /// As for [`protect_rtp_batch`](Self::protect_rtp_batch), the tags of up to eight packets
    /// are computed together where the backend can.
    pub fn unprotect_rtp_batch(&mut self, batch: &mut [BatchPacket<'_>]) {
        let min = self.rtp_lanes();
        for chunk in batch.chunks_mut(LANES) {
            let mut premacs = [None; LANES];
            let lanes = min.is_some_and(|m| chunk.len() >= m);
            if lanes {
                self.premac_rtp_lanes(chunk, &mut premacs);
            }
            let mut decrypts = [None; LANES];
            for ((p, pre), d) in chunk.iter_mut().zip(&premacs).zip(&mut decrypts) {
                let Some(packet) = p.buf.get_mut(..p.len) else {
                    p.result = Err(Error::LengthOutOfBounds);
                    continue;
                };
                if let Some((n, decrypt)) = pre
                    .as_ref()
                    .and_then(|pre| self.unprotect_rtp_premac(packet, pre))
                {
                    p.len = n;
                    // Encryption off: nothing to decrypt, only the length to cut.
                    *d = self.encrypt_rtp.then_some(decrypt);
                    p.result = Ok(());
                    continue;
                }
                let premac = pre.as_ref().map(|pre| (pre.roc, pre.mac));
                p.result =
                    self.unprotect_rtp_len(packet, premac, None, lanes)
                        .map(|(n, decrypt)| {
                            p.len = n;
                            *d = decrypt;
                        });
            }
            self.decrypt_rtp_lanes(chunk, &decrypts);
        }
    }

    /// Decrypts the payloads whose decryption [`unprotect_rtp_len`](Self::unprotect_rtp_len)
    /// deferred, the keystreams of all the packets under one key together.
    fn decrypt_rtp_lanes(
        &self,
        chunk: &mut [BatchPacket<'_>],
        decrypts: &[Option<Decrypt>; LANES],
    ) {
        let mut done = [false; LANES];
        for first in 0..LANES {
            let Some(Decrypt { slot, .. }) = decrypts[first] else {
                continue;
            };
            if done[first] {
                continue;
            }
            let PacketCipher::Cm(aes) = &self.keys[slot].rtp.cipher else {
                continue;
            };
            let mut jobs: [Option<(&[u8; 16], &mut [u8])>; LANES] = Default::default();
            for (i, ((job, p), d)) in jobs
                .iter_mut()
                .zip(chunk.iter_mut())
                .zip(decrypts)
                .enumerate()
            {
                if let Some(d) = d.as_ref().filter(|d| d.slot == slot) {
                    *job = Some((&d.iv, &mut p.buf[d.header..p.len]));
                    done[i] = true;
                }
            }
            aes.apply_keystreams(&mut jobs);
        }
    }

    /// The fewest packets worth hashing together for SRTP, or `None` when this session never
    /// does: lanes serve HMAC-SHA1 tags under keys fixed for the whole batch (no key
    /// derivation rate).
    fn rtp_lanes(&self) -> Option<usize> {
        let eligible = !self.profile.is_aead() && self.rtp_tag_len > 0 && self.kdr.is_none();
        self.backend.min_lanes().filter(|_| eligible)
    }

    /// Protects up to eight packets: everything but the tags one by one, in order (so the
    /// state moves exactly as packet by packet), then the tags together.
    fn protect_rtp_lanes(&mut self, chunk: &mut [BatchPacket<'_>]) {
        // The sender's keys must stay the same through the chunk (no key derivation rate).
        debug_assert!(self.kdr.is_none());
        let mut done = [None; LANES];
        let trailer = self.rtp_trailer_len();
        for (p, d) in chunk.iter_mut().zip(&mut done) {
            p.result = match self.protect_rtp_inner(p.buf, p.len, true) {
                Ok(done) => {
                    // Where the MAC's message ends: the packet's end, after any growth. A
                    // packet already tagged (cryptex) needs nothing more.
                    let end = done.len - trailer;
                    *d = (!done.tagged).then_some((
                        end,
                        done.roc.to_be_bytes(),
                        done.header,
                        done.iv,
                    ));
                    p.len = done.len;
                    Ok(())
                }
                Err(e) => Err(e),
            };
        }
        let keys = &self.keys[self.sender].rtp;
        // The payloads' keystreams in one pass over the chunk, then the tags.
        if let PacketCipher::Cm(aes) = &keys.cipher {
            let mut jobs: [Option<(&[u8; 16], &mut [u8])>; LANES] = Default::default();
            for ((job, p), d) in jobs.iter_mut().zip(chunk.iter_mut()).zip(&done) {
                if let Some((len, _, header, Some(iv))) = d {
                    *job = Some((iv, &mut p.buf[*header..*len]));
                }
            }
            aes.apply_keystreams(&mut jobs);
        }
        let Some(mac) = keys.auth.as_ref() else {
            return;
        };
        let mut tags = [[0u8; 20]; LANES];
        {
            let jobs: [Option<LaneJob<'_>>; LANES] = core::array::from_fn(|i| {
                let (len, roc, ..) = done[i].as_ref()?;
                Some(LaneJob {
                    key: mac,
                    msg: &chunk[i].buf[..*len],
                    suffix: roc,
                })
            });
            mac_lanes(self.backend, &jobs, &mut tags);
        }
        let (mki_len, tag_len) = (self.mki_len, self.rtp_tag_len);
        for ((p, d), tag) in chunk.iter_mut().zip(done).zip(tags) {
            if let Some((len, ..)) = d {
                let at = len + mki_len;
                p.buf[at..at + tag_len].copy_from_slice(&tag[..tag_len]);
            }
        }
    }

    /// Computes, together, the full HMAC of each packet of `chunk` under its key and the
    /// rollover counter the receiver would estimate now. Changes nothing: the packets are then
    /// unprotected one by one, in order, each using its precomputed MAC only if it checks the
    /// same rollover counter under the same key (a packet earlier in the batch may have moved
    /// the stream on).
    fn premac_rtp_lanes(&self, chunk: &[BatchPacket<'_>], premacs: &mut [Option<Premac>; LANES]) {
        debug_assert!(self.kdr.is_none());
        for (p, pre) in chunk.iter().zip(premacs.iter_mut()) {
            *pre = p.buf.get(..p.len).and_then(|b| self.rtp_lane_job(b));
        }
        let rocs: [[u8; 4]; LANES] =
            core::array::from_fn(|i| premacs[i].as_ref().map_or(0, |p| p.roc).to_be_bytes());
        let jobs: [Option<LaneJob<'_>>; LANES] = core::array::from_fn(|i| {
            let pre = premacs[i].as_ref()?;
            Some(LaneJob {
                key: self.keys[pre.slot].rtp.auth.as_ref()?,
                msg: &chunk[i].buf[..pre.body_end],
                suffix: &rocs[i],
            })
        });
        let mut macs = [[0u8; 20]; LANES];
        mac_lanes(self.backend, &jobs, &mut macs);
        let computed: [bool; LANES] = core::array::from_fn(|i| jobs[i].is_some());
        for ((pre, mac), computed) in premacs.iter_mut().zip(macs).zip(computed) {
            match pre {
                Some(p) if computed => p.mac = mac,
                _ => *pre = None,
            }
        }
    }

    /// For a received SRTP packet: its header, key slot, the rollover counter the receiver
    /// estimates for it now and where its authenticated part ends (the MAC still to be
    /// computed); `None` if it would fail before its tag is checked.
    fn rtp_lane_job(&self, packet: &[u8]) -> Option<Premac> {
        let hdr = rtp::parse(packet).ok()?;
        // Cryptex packets are decrypted as they are accepted, by the one-packet path.
        if cryptex::received(packet).is_some() {
            return None;
        }
        let trailer = self.rtp_tag_len + self.mki_len;
        let body_end = packet.len().checked_sub(trailer)?;
        if body_end < hdr.len {
            return None;
        }
        let slot = self
            .find_key(&packet[body_end..body_end + self.mki_len])
            .ok()?;
        let roc = u32::try_from(estimate_rx_roc(self.rx.get(hdr.ssrc), hdr.seq)).ok()?;
        Some(Premac {
            hdr,
            slot,
            roc,
            body_end,
            mac: [0; 20],
        })
    }

    /// Protects each RTCP packet of `batch` as [`protect_rtcp`](Self::protect_rtcp) would.
    pub fn protect_rtcp_batch(&mut self, batch: &mut [BatchPacket<'_>]) {
        for p in batch {
            p.result = self.protect_rtcp(p.buf, p.len).map(|n| p.len = n);
        }
    }

    /// Unprotects each SRTCP packet of `batch` as [`unprotect_rtcp`](Self::unprotect_rtcp)
    /// would.
    pub fn unprotect_rtcp_batch(&mut self, batch: &mut [BatchPacket<'_>]) {
        for p in batch {
            p.result = match p.buf.get_mut(..p.len) {
                Some(packet) => self.unprotect_rtcp_len(packet).map(|n| p.len = n),
                None => Err(Error::LengthOutOfBounds),
            };
        }
    }

    // ---------------------------------------------------------------- keys and streams

    /// Adds a master key (with an MKI of the session's MKI length) that received packets may
    /// name and that [`select_sender_key`](Self::select_sender_key) may choose.
    ///
    /// # Errors
    /// [`PolicyError`] if the key does not fit the profile or its MKI clashes.
    pub fn add_master_key(&mut self, key: MasterKey) -> Result<(), PolicyError> {
        let mut all: Vec<MasterKey> = self.keys.iter().map(|s| s.master.clone()).collect();
        all.push(key.clone());
        self.mki_len = check_keys(self.profile, &all)?;
        self.keys
            .push(KeySlot::new(self.profile, key, self.backend));
        Ok(())
    }

    /// Chooses the master key that protects outgoing packets from now on.
    ///
    /// # Errors
    /// [`PolicyError::NoSuchKey`] if no key has that MKI.
    pub fn select_sender_key(&mut self, mki: Mki) -> Result<(), PolicyError> {
        self.sender = self
            .keys
            .iter()
            .position(|s| s.master.mki() == Some(mki))
            .ok_or(PolicyError::NoSuchKey)?;
        Ok(())
    }

    /// Replaces all master keys (re-keying).
    ///
    /// Sending continues every stream's rollover counter, sequence number and SRTCP index
    /// (RFC 3711 §3.3.1: the rollover counter is per stream, not per key), so the peer's
    /// receiver carries on seamlessly and no index is protected twice.
    ///
    /// Receiving depends on the keys. While one of the new keys has the key and salt of one
    /// of the old ones (the same keys given again, as a re-INVITE for hold repeats them, or a
    /// key added beside the one in use), every stream's replay window stays, so no packet
    /// already received is accepted again. When every key is new, the peer may have started
    /// its sending afresh under them, as libsrtp-based stacks do when they re-key (their
    /// SRTCP index from 0, their rollover counter from 0): the replay windows start again
    /// with the first packet that authenticates under the new keys, and the rollover counter
    /// reached so far is kept as the first guess, with the recovery guesses of a new stream
    /// (one more, one less, zero) behind it. Packets under the old keys no longer
    /// authenticate, so the fresh windows let no old packet back in; and should old keys come
    /// back (a re-key undone, as after a refused re-INVITE), their receive state comes back
    /// with them, for the last four key generations.
    ///
    /// A key given again keeps its count of packets protected and received against its
    /// lifetime (RFC 3711 §9.2), so repeating a key never stretches its life.
    ///
    /// # Errors
    /// [`PolicyError`] if the keys do not fit the profile; the session is unchanged then.
    pub fn rekey(&mut self, keys: &[MasterKey]) -> Result<(), PolicyError> {
        self.mki_len = check_keys(self.profile, keys)?;
        let known = |set: &[(MasterKey, u64, u64)]| {
            keys.iter()
                .any(|k| set.iter().any(|(m, _, _)| m.same_material(k)))
        };
        let current: Vec<(MasterKey, u64, u64)> = self
            .keys
            .iter()
            .map(|s| (s.master.clone(), s.rtp_used, s.rtcp_used))
            .collect();
        // Where the new keys' usage counts come from: the keys in use, or a generation an
        // earlier re-key retired (whose receive state comes back with it), or nowhere.
        let counts = if known(&current) {
            current
        } else {
            let back = self.retired.iter().position(|r| known(&r.keys));
            let rx = match back.and_then(|i| self.retired.remove(i)) {
                Some(r) => {
                    let rx = core::mem::replace(&mut self.rx, r.rx);
                    self.retire(current.clone(), rx);
                    return self.install(keys, &r.keys);
                }
                None => self.fresh_rx(),
            };
            let old = core::mem::replace(&mut self.rx, rx);
            self.retire(current, old);
            Vec::new()
        };
        self.install(keys, &counts)
    }

    /// Installs `keys` as the session's master keys, each with the usage counts `counts` has
    /// for the same key and salt (none: a new key), the first one sending.
    fn install(
        &mut self,
        keys: &[MasterKey],
        counts: &[(MasterKey, u64, u64)],
    ) -> Result<(), PolicyError> {
        self.keys = keys
            .iter()
            .map(|k| {
                let mut slot = KeySlot::new(self.profile, k.clone(), self.backend);
                // A key given again keeps its count of packets against its lifetime.
                if let Some((_, rtp, rtcp)) = counts.iter().find(|(m, _, _)| m.same_material(k)) {
                    slot.rtp_used = *rtp;
                    slot.rtcp_used = *rtcp;
                }
                slot
            })
            .collect();
        self.sender = 0;
        Ok(())
    }

    /// Receive state for keys that replace every old one: no replay window yet, and each
    /// stream's rollover counter so far kept as its first guess.
    fn fresh_rx(&self) -> StreamTable<RxStream> {
        let mut rx = StreamTable::new(self.rx.cap());
        for (ssrc, old) in self.rx.iter() {
            let hint = old.rtp.as_ref().map(|st| (st.roc, st.s_l)).or(old.roc_hint);
            rx.entry(ssrc, RxStream::default).roc_hint = hint;
        }
        rx
    }

    /// Keeps the receive state `rx` of the keys `keys` (with their usage counts) for a re-key
    /// that brings them back; the oldest generation goes beyond [`RETIRED_GENERATIONS`].
    fn retire(&mut self, keys: Vec<(MasterKey, u64, u64)>, rx: StreamTable<RxStream>) {
        if self.retired.len() == RETIRED_GENERATIONS {
            self.retired.pop_front();
        }
        self.retired.push_back(Retired { keys, rx });
    }

    /// Usage of the sender's current master key against its lifetime.
    pub fn key_usage(&self) -> KeyUsage {
        let s = &self.keys[self.sender];
        KeyUsage {
            mki: s.master.mki(),
            rtp_packets: s.rtp_used,
            rtcp_packets: s.rtcp_used,
            rtp_limit: s.rtp_limit,
            rtcp_limit: s.rtcp_limit,
        }
    }

    /// The rollover counter and highest sequence number received on `ssrc`, once a packet of
    /// it authenticated.
    pub fn receive_roc(&self, ssrc: u32) -> Option<(u32, u16)> {
        let st = self.rx.get(ssrc)?.rtp.as_ref()?;
        Some((st.roc, st.s_l))
    }

    /// The rollover counter and highest sequence number sent on `ssrc`.
    pub fn send_roc(&self, ssrc: u32) -> Option<(u32, u16)> {
        self.tx.get(ssrc)?.rtp
    }

    /// Asks the CPU to bring the keys of this session's next RTP packet into the cache
    /// (the cipher's key schedule, the HMAC states and the salt of the key that sends, and of
    /// the first key, which receives unless an MKI names another). For a caller that handles the
    /// packets of many sessions in turn, such as a relay: called for the next packet's
    /// session while the current packet is processed, it turns the first reads of keys that
    /// fell out of the cache into hits. A hint only: nothing changes, and no key material
    /// is read.
    pub fn prefetch_rtp_keys(&self) {
        // The whole of each direction's keys, by address: choosing the lines by the cipher
        // would read the very memory that is not in the cache yet.
        let sender = self.keys.get(self.sender).filter(|_| self.sender != 0);
        for slot in self.keys.first().into_iter().chain(sender) {
            crate::backend::prefetch(&slot.rtp);
        }
    }

    /// Whether this session has sent on `ssrc` (protected RTP or RTCP of it, or was told
    /// where it continues).
    pub fn sends(&self, ssrc: u32) -> bool {
        self.tx.get(ssrc).is_some()
    }

    /// Whether one of this session's master keys is also one of `other`'s (same key and
    /// salt, whatever the MKI), compared in constant time. Keying both directions of a leg
    /// alike is allowed while the SSRCs differ (RFC 3711 §9.1), but then a packet sent one
    /// way authenticates when replayed the other way: a forwarder that finds its receive and
    /// send sessions keyed alike refuses, on receive, the SSRCs it sends itself
    /// ([`sends`](Self::sends)).
    pub fn shares_key_with(&self, other: &Session) -> bool {
        self.keys
            .iter()
            .any(|a| other.keys.iter().any(|b| a.master.same_material(&b.master)))
    }

    /// What sequence continuity adds to the sequence numbers handed in for `ssrc` to get the
    /// ones sent: zero until a restart re-based the stream (see
    /// [`Policy::sequence_continuity`]). A forwarder subtracts it from the numbers the
    /// receiver's RTCP names (a receiver report's extended highest sequence number, a NACK's
    /// packet ids) before passing that RTCP upstream, whose numbering it is not.
    pub fn sequence_offset(&self, ssrc: u32) -> u16 {
        self.tx.get(ssrc).map_or(0, |s| s.seq_offset)
    }

    /// Sets where the sender of `ssrc` continues: its rollover counter and last sequence
    /// number, and the next SRTCP index. Used to carry a stream across sessions (a relay that
    /// re-creates a leg) without restarting its index under the same key.
    pub fn set_send_state(&mut self, ssrc: u32, roc: u32, last_seq: u16, next_rtcp_index: u32) {
        let Some(s) = self.tx.entry_no_evict(ssrc, TxStream::default) else {
            return;
        };
        s.rtp = Some((roc, last_seq));
        s.sent = None;
        s.rtcp_index = next_rtcp_index;
    }

    /// Number of SSRCs with receive state.
    pub fn receive_streams(&self) -> usize {
        self.rx.len()
    }

    /// Number of SSRCs with send state.
    pub fn send_streams(&self) -> usize {
        self.tx.len()
    }

    /// The SSRCs with receive state, in no particular order.
    pub fn receive_ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.rx.ssrcs()
    }

    /// Forgets `ssrc` in both directions (an ended stream), freeing its state.
    ///
    /// Sending on `ssrc` again afterwards restarts its index at zero under the same key, which
    /// reuses keystream: re-key before a removed SSRC sends again.
    pub fn remove_stream(&mut self, ssrc: u32) {
        self.rx.remove(ssrc);
        self.tx.remove(ssrc);
    }

    /// Replaces the first key's session keys, for vectors that give session keys.
    #[cfg(test)]
    pub(crate) fn replace_session_keys_for_test(&mut self, rtp: SessionKeys, rtcp: SessionKeys) {
        self.keys[0].rtp = rtp;
        self.keys[0].rtcp = rtcp;
    }

    fn find_key(&self, mki: &[u8]) -> Result<usize, Error> {
        if self.mki_len == 0 {
            return Ok(0);
        }
        self.keys
            .iter()
            .position(|s| s.master.mki_ref().is_some_and(|m| m.as_bytes() == mki))
            .ok_or(Error::UnknownMki)
    }
}

/// Checks master keys against the profile and each other; returns the MKI length.
fn check_keys(profile: Profile, keys: &[MasterKey]) -> Result<usize, PolicyError> {
    let first = keys.first().ok_or(PolicyError::NoMasterKey)?;
    let mki_len = first.mki().map_or(0, |m| m.len());
    for (i, k) in keys.iter().enumerate() {
        k.check(profile)?;
        if k.mki().map_or(0, |m| m.len()) != mki_len || (keys.len() > 1 && mki_len == 0) {
            return Err(PolicyError::InconsistentMki);
        }
        if keys[..i].iter().any(|o| o.mki() == k.mki()) {
            return Err(PolicyError::DuplicateMki);
        }
    }
    Ok(mki_len)
}

/// Session keys freshly derived for `idx` when a key derivation rate moved `r` past the
/// cached keys; `None` (the common case) means the cached keys apply. Changes nothing.
fn rederive(
    profile: Profile,
    kdr: Option<u8>,
    slot: &KeySlot,
    rtcp: bool,
    idx: u64,
) -> Option<SessionKeys> {
    let n = kdr?;
    let (cached_r, label) = if rtcp {
        (slot.rtcp_r, LABEL_RTCP_ENCRYPTION)
    } else {
        (slot.rtp_r, LABEL_RTP_ENCRYPTION)
    };
    (idx >> n != cached_r)
        .then(|| kdf::derive(profile, &slot.master, label, idx >> n, slot.backend))
}

/// Replaces `keys` with the session keys for `label` at `r` (a key derivation rate's next
/// period). Out of line: the new keys are built in this function's frame, not in that of the
/// packet path, which stays small for every packet that does not re-derive.
#[cold]
#[inline(never)]
fn rederive_into(
    keys: &mut SessionKeys,
    profile: Profile,
    master: &MasterKey,
    label: u8,
    r: u64,
    backend: Backend,
) {
    *keys = kdf::derive(profile, master, label, r, backend);
}

/// The session keys for `idx`, re-deriving into the slot when a key derivation rate moved `r`
/// on (the sender's path).
fn cached_keys(
    profile: Profile,
    kdr: Option<u8>,
    slot: &mut KeySlot,
    rtcp: bool,
    idx: u64,
) -> &SessionKeys {
    if let Some(n) = kdr {
        let r = idx >> n;
        let label = if rtcp {
            LABEL_RTCP_ENCRYPTION
        } else {
            LABEL_RTP_ENCRYPTION
        };
        let (keys, cached_r) = if rtcp {
            (&mut slot.rtcp, &mut slot.rtcp_r)
        } else {
            (&mut slot.rtp, &mut slot.rtp_r)
        };
        if *cached_r != r {
            rederive_into(keys, profile, &slot.master, label, r, slot.backend);
            *cached_r = r;
        }
    }
    if rtcp {
        &slot.rtcp
    } else {
        &slot.rtp
    }
}

/// The rollover counter a receiver estimates for sequence number `seq` of `stream` (RFC 3711
/// §3.3.1): from the stream's state, else from where it stood before a re-key that replaced
/// every key (see [`Session::rekey`]), else 0. Negative when the estimate is one before 0.
/// Takes the stream already looked up, so the packet path looks it up once.
fn estimate_rx_roc(stream: Option<&RxStream>, seq: u16) -> i64 {
    match stream {
        Some(RxStream { rtp: Some(st), .. }) => estimate_roc(st.roc, st.s_l, seq),
        Some(RxStream {
            roc_hint: Some((roc, s_l)),
            ..
        }) => estimate_roc(*roc, *s_l, seq),
        _ => 0,
    }
}

/// Decrypts an accepted AES-CM packet `body` (the packet without its trailer) whose header
/// is `header` bytes long: the payload, or with cryptex (`layout`) everything after the fixed
/// header but the extension preamble.
fn decrypt_cm(
    aes: &AesCm,
    iv: &[u8; 16],
    body: &mut [u8],
    header: usize,
    layout: Option<cryptex::Layout>,
) {
    match layout {
        None => aes.apply_keystream(iv, &mut body[header..]),
        Some(l) => {
            l.apply(body);
            aes.apply_keystream(iv, &mut body[cryptex::START..]);
            l.undo(body);
        }
    }
}

/// The AES-CM IV (RFC 3711 §4.1.1): `(k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)`.
fn cm_iv(salt: &[u8; 14], ssrc: u32, idx: u64) -> [u8; 16] {
    // As one 128-bit number, so that the block is built in registers and stored whole: built
    // byte by byte, the 16-byte load that follows it stalled on the narrow stores.
    let mut padded = [0u8; 16];
    padded[..14].copy_from_slice(salt);
    let iv = u128::from_be_bytes(padded)
        ^ (u128::from(ssrc) << 64)
        ^ (u128::from(idx & 0xFFFF_FFFF_FFFF) << 16);
    iv.to_be_bytes()
}

/// Whether two tags of the same length are equal, in time that does not depend on where they
/// differ: every byte's difference is folded into one word, branch-free, and only that word
/// is compared, through `subtle` (whose one optimisation barrier costs one load, where
/// comparing byte by byte with `subtle` paid one per byte).
fn tags_equal(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    bool::from(diff.ct_eq(&0)) && a.len() == b.len()
}

/// The AES-GCM SRTP IV (RFC 7714 §8.1): `(00 00 || SSRC || ROC || SEQ) XOR salt`.
fn gcm_rtp_nonce(salt: &[u8; 14], ssrc: u32, roc: u32, seq: u16) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[2..6].copy_from_slice(&ssrc.to_be_bytes());
    n[6..10].copy_from_slice(&roc.to_be_bytes());
    n[10..12].copy_from_slice(&seq.to_be_bytes());
    for (b, s) in n.iter_mut().zip(salt) {
        *b ^= s;
    }
    n
}

/// The AES-GCM SRTCP IV (RFC 7714 §9.1): `(00 00 || SSRC || 00 00 || 0 || index) XOR salt`.
fn gcm_rtcp_nonce(salt: &[u8; 14], ssrc: u32, srtcp_index: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[2..6].copy_from_slice(&ssrc.to_be_bytes());
    n[8..12].copy_from_slice(&srtcp_index.to_be_bytes());
    for (b, s) in n.iter_mut().zip(salt) {
        *b ^= s;
    }
    n
}

/// The AES-GCM SRTCP AAD for an encrypted packet (RFC 7714 §9.2): the first eight octets and
/// the E flag with index.
fn rtcp_aad(header: &[u8], word: [u8; 4]) -> [u8; 12] {
    let mut aad = [0u8; 12];
    aad[..8].copy_from_slice(header);
    aad[8..].copy_from_slice(&word);
    aad
}
