//! The implementations the benchmarks compare, behind one small trait, so that every peer is
//! measured through the same loop on the same packets.
#![allow(missing_debug_implementations)] // benchmark fixtures, never printed

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libsrtp2_ffi::{Api, Config, Direction, LibSrtp, Suite};
use srtp_core::{Backend, BatchPacket, MasterKey, Policy, Profile, Session, MAX_TRAILER_LEN};

/// RTP/RTCP protection by one implementation: a sender and a receiver keyed alike.
pub trait Peer {
    /// Name shown in the benchmark id.
    fn name(&self) -> &'static str;
    /// Protects `buf[..len]` in place (or as the implementation's API does) and returns the
    /// protected length.
    fn protect(&mut self, buf: &mut [u8], len: usize) -> usize;
    /// Unprotects the packet that fills `packet` and returns the plaintext length.
    fn unprotect(&mut self, packet: &mut [u8]) -> usize;
    /// As [`protect`](Self::protect) for RTCP.
    fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> usize;
    /// As [`unprotect`](Self::unprotect) for SRTCP.
    fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> usize;
    /// Protects the RTP packets `bufs[i][..lens[i]]` and sets each length to the protected
    /// one: one by one, unless the implementation has a batch API.
    fn protect_many(&mut self, bufs: &mut [Vec<u8>], lens: &mut [usize]) {
        for (b, l) in bufs.iter_mut().zip(lens) {
            *l = self.protect(b, *l);
        }
    }
    /// Unprotects the SRTP packets `bufs[i][..lens[i]]` and sets each length to the plaintext
    /// one: one by one, unless the implementation has a batch API.
    fn unprotect_many(&mut self, bufs: &mut [Vec<u8>], lens: &mut [usize]) {
        for (b, l) in bufs.iter_mut().zip(lens) {
            *l = self.unprotect(&mut b[..*l]);
        }
    }
    /// Protects RTP (or RTCP) so that the protected packet ends up in `buf`, as input for an
    /// unprotect measurement; untimed.
    fn protect_into(&mut self, buf: &mut [u8], len: usize, rtcp: bool) -> usize {
        if rtcp {
            self.protect_rtcp(buf, len)
        } else {
            self.protect(buf, len)
        }
    }
}

/// The profiles the benchmarks measure.
pub const PROFILES: [Profile; 6] = [
    Profile::Aes128CmHmacSha1_80,
    Profile::Aes128CmHmacSha1_32,
    Profile::Aes256CmHmacSha1_80,
    Profile::AeadAes128Gcm,
    Profile::AeadAes256Gcm,
    Profile::NullHmacSha1_80,
];

/// Deterministic key material for a profile.
pub fn material(profile: Profile) -> Vec<u8> {
    (0..profile.key_material_len() as u8)
        .map(|i| i.wrapping_mul(29) ^ 0x5a)
        .collect()
}

/// srtp-core, with a given SHA-1 backend, packet by packet or in batches.
pub struct Core {
    name: &'static str,
    tx: Session,
    rx: Session,
    batch: usize,
}

impl Core {
    /// A sender/receiver pair for `profile` with the backend this CPU gets by default, packet
    /// by packet.
    pub fn new(profile: Profile) -> Self {
        Self::with(profile, Backend::detect(), 1)
    }

    /// A sender/receiver pair for `profile` that computes SHA-1 with `backend` and protects
    /// and unprotects `batch` packets at a time through the batch API (1: packet by packet).
    /// Named `srtp-core[backend]`, with `xN` for batches.
    pub fn with(profile: Profile, backend: Backend, batch: usize) -> Self {
        let key = MasterKey::from_key_material(profile, &material(profile)).unwrap();
        let policy = Policy::new(profile, key);
        let mut tx = Session::new(&policy).unwrap();
        let mut rx = Session::new(&policy).unwrap();
        tx.set_backend(backend).unwrap();
        rx.set_backend(backend).unwrap();
        let name = if batch > 1 {
            format!("srtp-core[{}]x{batch}", backend.name())
        } else {
            format!("srtp-core[{}]", backend.name())
        };
        Self {
            name: Box::leak(name.into_boxed_str()),
            tx,
            rx,
            batch,
        }
    }

    /// Runs `op` over `bufs` in batches of `self.batch` packets.
    fn batched(
        &mut self,
        bufs: &mut [Vec<u8>],
        lens: &mut [usize],
        op: fn(&mut Session, &mut [BatchPacket<'_>]),
        protect: bool,
    ) {
        let session = if protect { &mut self.tx } else { &mut self.rx };
        match self.batch {
            8 => batched::<8>(session, bufs, lens, op),
            32 => batched::<32>(session, bufs, lens, op),
            n => panic!("batches of {n} are not measured"),
        }
    }
}

/// Runs `op` over `bufs` in batches of `N` packets, each batch a fixed array so that the
/// measurement allocates nothing.
fn batched<const N: usize>(
    session: &mut Session,
    bufs: &mut [Vec<u8>],
    lens: &mut [usize],
    op: fn(&mut Session, &mut [BatchPacket<'_>]),
) {
    for (bufs, lens) in bufs.chunks_mut(N).zip(lens.chunks_mut(N)) {
        let n = bufs.len();
        let mut it = bufs.iter_mut().zip(lens.iter());
        let mut batch: [BatchPacket<'_>; N] = core::array::from_fn(|_| match it.next() {
            Some((b, &l)) => BatchPacket::new(b, l),
            None => BatchPacket::new(&mut [], 0),
        });
        op(session, &mut batch[..n]);
        for (p, l) in batch[..n].iter().zip(lens.iter_mut()) {
            assert!(p.result.is_ok(), "{:?}", p.result);
            *l = p.len;
        }
    }
}

impl Peer for Core {
    fn name(&self) -> &'static str {
        self.name
    }
    fn protect_many(&mut self, bufs: &mut [Vec<u8>], lens: &mut [usize]) {
        if self.batch > 1 {
            self.batched(bufs, lens, Session::protect_rtp_batch, true);
        } else {
            for (b, l) in bufs.iter_mut().zip(lens) {
                *l = self.protect(b, *l);
            }
        }
    }
    fn unprotect_many(&mut self, bufs: &mut [Vec<u8>], lens: &mut [usize]) {
        if self.batch > 1 {
            self.batched(bufs, lens, Session::unprotect_rtp_batch, false);
        } else {
            for (b, l) in bufs.iter_mut().zip(lens) {
                *l = self.unprotect(&mut b[..*l]);
            }
        }
    }
    fn protect(&mut self, buf: &mut [u8], len: usize) -> usize {
        self.tx.protect_rtp(buf, len).unwrap()
    }
    fn unprotect(&mut self, packet: &mut [u8]) -> usize {
        self.rx.unprotect_rtp(packet).unwrap().len()
    }
    fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> usize {
        self.tx.protect_rtcp(buf, len).unwrap()
    }
    fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> usize {
        self.rx.unprotect_rtcp(packet).unwrap().len()
    }
}

/// libsrtp2: the system library (Debian's, built on NSS) or a build loaded beside it.
pub struct Lib {
    name: &'static str,
    tx: LibSrtp,
    rx: LibSrtp,
}

impl Lib {
    /// A sender/receiver pair for `profile` in the system libsrtp2.
    pub fn new(profile: Profile) -> Self {
        Self::with_api(profile, Api::system(), "libsrtp2-nss")
    }

    /// A sender/receiver pair for `profile` in libsrtp2 built on OpenSSL, if that build exists
    /// (`scripts/build-libsrtp2-openssl.sh`, or the path in `LIBSRTP2_OPENSSL`).
    pub fn openssl(profile: Profile) -> Option<Self> {
        openssl_api().map(|api| Self::with_api(profile, api, "libsrtp2-openssl"))
    }

    fn with_api(profile: Profile, api: &'static Api, name: &'static str) -> Self {
        let suite = Suite::try_from(profile).unwrap();
        let m = material(profile);
        Self {
            name,
            tx: LibSrtp::with_api(api, &Config::new(suite, Direction::Outbound, &m)).unwrap(),
            rx: LibSrtp::with_api(api, &Config::new(suite, Direction::Inbound, &m)).unwrap(),
        }
    }
}

/// Where the OpenSSL build of libsrtp2 is expected.
pub fn openssl_path() -> PathBuf {
    std::env::var_os("LIBSRTP2_OPENSSL").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/libsrtp2-openssl/libsrtp2.so.1"
            ))
        },
        PathBuf::from,
    )
}

/// The OpenSSL build of libsrtp2, loaded once; says on stderr, once, when it is missing.
fn openssl_api() -> Option<&'static Api> {
    static API: OnceLock<Option<&'static Api>> = OnceLock::new();
    *API.get_or_init(|| {
        let path = openssl_path();
        match Api::load(&path, "libsrtp2-openssl") {
            Ok(api) => {
                eprintln!("libsrtp2-openssl: {}", path.display());
                Some(api)
            }
            Err(e) => {
                eprintln!(
                    "libsrtp2-openssl not measured ({e}): run scripts/build-libsrtp2-openssl.sh"
                );
                None
            }
        }
    })
}

impl Peer for Lib {
    fn name(&self) -> &'static str {
        self.name
    }
    fn protect(&mut self, buf: &mut [u8], len: usize) -> usize {
        self.tx.protect_in_place(buf, len, None).unwrap()
    }
    fn unprotect(&mut self, packet: &mut [u8]) -> usize {
        self.rx.unprotect_in_place(packet).unwrap()
    }
    fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> usize {
        self.tx.protect_rtcp_in_place(buf, len, None).unwrap()
    }
    fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> usize {
        self.rx.unprotect_rtcp_in_place(packet).unwrap()
    }
}

/// webrtc-srtp (its API returns a freshly allocated `Bytes` per packet).
pub struct Webrtc {
    tx: webrtc_srtp::context::Context,
    rx: webrtc_srtp::context::Context,
}

impl Webrtc {
    /// A sender/receiver pair for `profile`, if webrtc-srtp supports it.
    pub fn new(profile: Profile) -> Option<Self> {
        use webrtc_srtp::protection_profile::ProtectionProfile as P;
        let p = match profile {
            Profile::Aes128CmHmacSha1_80 => P::Aes128CmHmacSha1_80,
            Profile::Aes128CmHmacSha1_32 => P::Aes128CmHmacSha1_32,
            Profile::Aes256CmHmacSha1_80 => P::Aes256CmHmacSha1_80,
            Profile::Aes256CmHmacSha1_32 => P::Aes256CmHmacSha1_32,
            Profile::AeadAes128Gcm => P::AeadAes128Gcm,
            Profile::AeadAes256Gcm => P::AeadAes256Gcm,
            _ => return None,
        };
        let m = material(profile);
        let (key, salt) = m.split_at(profile.master_key_len());
        let ctx = || webrtc_srtp::context::Context::new(key, salt, p, None, None).unwrap();
        Some(Self {
            tx: ctx(),
            rx: ctx(),
        })
    }
}

impl Peer for Webrtc {
    fn name(&self) -> &'static str {
        "webrtc-srtp"
    }
    fn protect(&mut self, buf: &mut [u8], len: usize) -> usize {
        self.tx.encrypt_rtp(&buf[..len]).unwrap().len()
    }
    fn unprotect(&mut self, packet: &mut [u8]) -> usize {
        self.rx.decrypt_rtp(packet).unwrap().len()
    }
    fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> usize {
        self.tx.encrypt_rtcp(&buf[..len]).unwrap().len()
    }
    fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> usize {
        self.rx.decrypt_rtcp(packet).unwrap().len()
    }
    fn protect_into(&mut self, buf: &mut [u8], len: usize, rtcp: bool) -> usize {
        let out = if rtcp {
            self.tx.encrypt_rtcp(&buf[..len])
        } else {
            self.tx.encrypt_rtp(&buf[..len])
        }
        .unwrap();
        buf[..out.len()].copy_from_slice(&out);
        out.len()
    }
}

/// Every implementation that supports `profile`: srtp-core first, with its default backend
/// packet by packet.
pub fn peers(profile: Profile) -> Vec<Box<dyn Peer>> {
    let mut v: Vec<Box<dyn Peer>> = vec![Box::new(Core::new(profile))];
    v.extend(others(profile));
    v
}

/// The implementations srtp-core is compared with: libsrtp2 (Debian's, and the OpenSSL build
/// when present) and webrtc-srtp.
pub fn others(profile: Profile) -> Vec<Box<dyn Peer>> {
    let mut v: Vec<Box<dyn Peer>> = vec![Box::new(Lib::new(profile))];
    if let Some(l) = Lib::openssl(profile) {
        v.push(Box::new(l));
    }
    if let Some(w) = Webrtc::new(profile) {
        v.push(Box::new(w));
    }
    v
}

/// An RTP packet of `len` bytes (12-byte header) with sequence number `seq`.
pub fn rtp_packet(buf: &mut [u8], len: usize, seq: u16) {
    buf[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in buf[12..len].iter_mut().enumerate() {
        *b = i as u8;
    }
}

/// An RTCP receiver report of `len` bytes (a multiple of 4).
pub fn rtcp_packet(buf: &mut [u8], len: usize) {
    let words = (len / 4 - 1) as u16;
    buf[..4].copy_from_slice(&[0x81, 201, 0, 0]);
    buf[2..4].copy_from_slice(&words.to_be_bytes());
    buf[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    for (i, b) in buf[8..len].iter_mut().enumerate() {
        *b = i as u8;
    }
}

/// Packets protected ahead of each timed unprotect run: few enough to stay in L1/L2.
const CHUNK: usize = 64;

/// Times `iters` unprotects of `len`-byte packets (RTCP if `rtcp`): packets are protected in
/// chunks outside the timed region, with ever increasing sequence numbers (and SRTCP
/// indices), so no replay check trips. `seq` carries on across calls.
pub fn timed_unprotect(
    peer: &mut dyn Peer,
    len: usize,
    seq: &mut u16,
    iters: u64,
    rtcp: bool,
) -> Duration {
    let mut bufs = vec![vec![0u8; len + MAX_TRAILER_LEN]; CHUNK];
    let mut lens = vec![0usize; CHUNK];
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let n = left.min(CHUNK);
        for (buf, l) in bufs.iter_mut().zip(&mut lens).take(n) {
            *seq = seq.wrapping_add(1);
            if rtcp {
                rtcp_packet(buf, len);
            } else {
                rtp_packet(buf, len, *seq);
            }
            *l = peer.protect_into(buf, len, rtcp);
        }
        let start = Instant::now();
        if rtcp {
            for (buf, &l) in bufs.iter_mut().zip(&lens).take(n) {
                std::hint::black_box(peer.unprotect_rtcp(&mut buf[..l]));
            }
        } else {
            peer.unprotect_many(&mut bufs[..n], &mut lens[..n]);
            std::hint::black_box(&lens);
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

/// Times `iters` protects of `len`-byte packets (RTCP if `rtcp`). RTP goes through
/// [`Peer::protect_many`] in chunks whose sequence numbers move on each time; RTCP protects
/// one packet over and over (SRTCP numbers its packets itself).
pub fn timed_protect(
    peer: &mut dyn Peer,
    len: usize,
    seq: &mut u16,
    iters: u64,
    rtcp: bool,
) -> Duration {
    if !rtcp {
        return timed_protect_many(peer, len, seq, iters);
    }
    let mut buf = vec![0u8; len + MAX_TRAILER_LEN];
    rtcp_packet(&mut buf, len);
    let start = Instant::now();
    for _ in 0..iters {
        std::hint::black_box(peer.protect_rtcp(&mut buf, len));
    }
    start.elapsed()
}

/// Packets protected per timed call: a multiple of every batch size measured.
const PROTECT_CHUNK: usize = 32;

/// Times `iters` RTP protects of `len`-byte packets, through [`Peer::protect_many`] on chunks
/// of 32 packets whose sequence numbers move on each time (the last chunk maybe shorter).
fn timed_protect_many(peer: &mut dyn Peer, len: usize, seq: &mut u16, iters: u64) -> Duration {
    let mut bufs = vec![vec![0u8; len + MAX_TRAILER_LEN]; PROTECT_CHUNK];
    let mut lens = [len; PROTECT_CHUNK];
    for b in &mut bufs {
        rtp_packet(b, len, 0);
    }
    let start = Instant::now();
    let mut left = iters as usize;
    while left > 0 {
        let n = left.min(PROTECT_CHUNK);
        for (b, l) in bufs.iter_mut().zip(&mut lens).take(n) {
            *seq = seq.wrapping_add(1);
            b[2..4].copy_from_slice(&seq.to_be_bytes());
            *l = len;
        }
        peer.protect_many(&mut bufs[..n], &mut lens[..n]);
        std::hint::black_box(&lens);
        left -= n;
    }
    start.elapsed()
}
