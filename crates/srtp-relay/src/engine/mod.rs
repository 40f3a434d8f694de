//! The sans-IO relay engine: packets and time in; transmits, events and the next deadline out.
//!
//! The engine owns no socket, reads no clock and spawns nothing. The I/O layer gives it each
//! received datagram with the local socket it arrived on, the source address and `now`; the
//! engine works on the datagram in place (verify, decrypt, encrypt) and says where to send the
//! result. Timers (inactivity, the relay's own RTCP toward SRTP sides) run from
//! [`Engine::handle_timeout`].
//!
//! ```
//! use std::time::Instant;
//! use srtp_relay::engine::{CallSpec, Engine, EngineConfig, LegSpec, Mode, Security, SocketId};
//!
//! let mut engine = Engine::new(EngineConfig::default(), Instant::now());
//! let leg = |s| LegSpec::new(SocketId(s), Security::Plain);
//! let call = engine
//!     .create_call(CallSpec { mode: Mode::PassThrough { verify: false }, legs: [leg(1), leg(2)] }, Instant::now())
//!     .unwrap();
//! assert_eq!(engine.calls().count(), 1);
//! # let _ = call;
//! ```

mod call;
mod policy;
mod ports;
mod rtcp;
mod stats;
mod table;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use srtp_core::{Error as SrtpError, Session, MAX_TRAILER_LEN};

pub use call::{
    CallId, CallSpec, Channel, Latching, LegSpec, LegUpdate, MediaDirection, Mode, Security,
    SocketId,
};
pub use policy::{gateway_media, EncryptionLevel, GatewayMedia, SrtpMode};
pub use ports::{PortPool, DEFAULT_PORT_GUARD};
pub use stats::{Counters, DropReason, Drops, LegStats};

use crate::EngineError;
use table::CallTable;

/// Bytes past a datagram that the engine may write into (the SRTP trailer when it encrypts).
pub const TAIL_ROOM: usize = MAX_TRAILER_LEN;

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// A leg that receives nothing for this long ends its call. Default 60 s.
    pub inactivity: Duration,
    /// Bridges and transcrypt calls send their own RTCP toward an SRTP leg (a bridge's client
    /// leg when neither is SRTP) when no RTCP was sent there for this long. Default 5 s
    /// (clients may end a call after 30 s without RTCP).
    pub bridge_rtcp_interval: Duration,
    /// How often timers are checked. Default 1 s.
    pub sweep_interval: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            inactivity: Duration::from_secs(60),
            bridge_rtcp_interval: Duration::from_secs(5),
            sweep_interval: Duration::from_secs(1),
        }
    }
}

/// Where to send a processed datagram: its bytes are the first `len` bytes of the buffer the
/// engine was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The local socket to send from.
    pub socket: SocketId,
    /// The destination.
    pub destination: SocketAddr,
    /// Length of the datagram.
    pub len: usize,
}

/// Where a socket's datagrams belong in the engine: the call's slot, the leg and what the
/// socket carries. A caller that keeps one per socket and passes it to
/// [`Engine::handle_routed`] spares each datagram the engine's socket table, whose lookup is
/// two cache misses per packet once thousands of calls outgrow the cache; the engine checks
/// the route against the leg it names (a live socket belongs to one leg of one call, so a
/// leg that holds the socket is the socket's) and looks the socket up only when the route is
/// new or stale, refreshing it then. `Route::default()` names nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Route(Option<(u32, u8, Channel)>);

/// A datagram the engine makes itself (the bridge's RTCP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedTransmit {
    /// The local socket to send from.
    pub socket: SocketId,
    /// The destination.
    pub destination: SocketAddr,
    /// The datagram.
    pub data: Vec<u8>,
}

/// Something the I/O layer or the operator should know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A leg learnt or changed its remote address.
    Latched {
        /// The call.
        call: CallId,
        /// 0 or 1.
        leg: usize,
        /// RTP or RTCP.
        channel: Channel,
        /// The new remote address.
        remote: SocketAddr,
    },
    /// A call ended by itself; its sockets are free to close.
    CallEnded {
        /// The call.
        call: CallId,
        /// Why.
        reason: EndReason,
        /// The local sockets the call used.
        sockets: Vec<SocketId>,
        /// The legs' final statistics.
        stats: [LegStats; 2],
    },
}

/// Why a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// A leg received nothing for the inactivity timeout.
    Inactivity {
        /// The silent leg.
        leg: usize,
    },
}

/// A snapshot of a call for queries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallInfo {
    /// The call.
    pub id: CallId,
    /// Its mode.
    pub mode: Mode,
    /// Per leg: the current remote RTP and RTCP addresses, direction, whether SRTP, stats.
    pub legs: [LegInfo; 2],
}

/// A snapshot of one leg. Never contains key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegInfo {
    /// Current remote RTP address.
    pub remote_rtp: Option<SocketAddr>,
    /// Current remote RTCP address.
    pub remote_rtcp: Option<SocketAddr>,
    /// The endpoint's media direction.
    pub direction: MediaDirection,
    /// Whether the leg carries SRTP.
    pub srtp: bool,
    /// Whether RTCP shares the RTP port.
    pub rtcp_mux: bool,
    /// Counters and last activity.
    pub stats: LegStats,
}

/// The relay engine: every call of one worker.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    calls: CallTable<Call>,
    /// Each call's socket: the call's slot in `calls`, the leg and what the socket carries.
    sockets: HashMap<SocketId, (usize, usize, Channel)>,
    events: VecDeque<Event>,
    transmits: VecDeque<OwnedTransmit>,
    next_id: u64,
    next_sweep: Instant,
    /// When each bridge or transcrypt call next sends its own RTCP (earliest first). One entry
    /// per call, checked against the call's own deadlines when it comes up, so that RTCP the
    /// other side sent in the meantime only postpones it, and a call that ended is dropped
    /// then.
    bridge_timers: BinaryHeap<Reverse<(Instant, CallId)>>,
    /// Counters of calls that ended, so process totals survive them.
    retired: Counters,
    /// Datagrams on sockets that belong to no call.
    unrouted: u64,
    /// Scratch space for verifying pass-through packets without touching them.
    scratch: Vec<u8>,
}

#[derive(Debug)]
struct Call {
    mode: Mode,
    legs: [Leg; 2],
    /// For bridges and transcrypt calls: when each leg gets the relay's own RTCP unless
    /// RTCP goes toward it before, and the SSRC to send as.
    bridge: Option<BridgeRtcp>,
}

#[derive(Debug)]
struct BridgeRtcp {
    /// Per leg: when the relay sends its own RTCP toward it, unless RTCP went there before.
    due: [Instant; 2],
    ssrc: u32,
}

impl BridgeRtcp {
    /// Bridge RTCP state for call `id`, its SSRC (until the gateway's is known) derived from
    /// the id. The first report is due between a quarter of `interval` and `interval` after
    /// `now`, at a point set by the id: calls set up together (a burst of call set-ups, a
    /// restart) then send their reports spread over the interval instead of all at once
    /// (RFC 3550 §6.3 randomises RTCP intervals for the same reason).
    fn new(id: CallId, now: Instant, interval: Duration) -> Self {
        let spread = id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40; // 24 bits
        let first = interval / 4 + interval * 3 / 4 * spread as u32 / (1 << 24);
        Self {
            due: [now + first; 2],
            ssrc: 0x5352_0000 ^ (id.0 as u32).wrapping_mul(0x9E37_79B9),
        }
    }

    /// The next report due among the legs `call` keeps alive.
    fn next(&self, legs: &[Leg; 2]) -> Instant {
        (0..2)
            .filter(|&l| kept_alive(legs, l))
            .map(|l| self.due[l])
            .min()
            .unwrap_or(self.due[0])
    }
}

/// Whether a call in `mode` sends RTCP of its own toward the legs it keeps alive.
fn makes_own_rtcp(mode: Mode) -> bool {
    matches!(mode, Mode::Bridge { .. } | Mode::Transcrypt)
}

/// The RTCP address an endpoint uses by default: its RTP address with rtcp-mux (`rtcp` socket
/// `None`), else RTP port + 1 (RFC 3550 §11).
fn default_rtcp(rtp: SocketAddr, rtcp: Option<SocketId>) -> SocketAddr {
    match rtcp {
        None => rtp,
        Some(_) => SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)),
    }
}

#[derive(Debug)]
struct Leg {
    rtp: SocketId,
    rtcp: Option<SocketId>,
    configured: Option<SocketAddr>,
    remote_rtp: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
    latching: Latching,
    /// A new source seen on a learning leg, and how many packets in a row came from it.
    candidate: Option<(SocketAddr, u32)>,
    crypto: Option<Crypto>,
    direction: MediaDirection,
    counters: Counters,
    last_activity: Instant,
    /// The last SSRC this leg received, for the bridge's own RTCP.
    last_ssrc: Option<u32>,
    /// The CNAME this leg's endpoint last gave in its RTCP (SDES) and the SSRC it named:
    /// the relay's own RTCP sent as that SSRC repeats it (RFC 3550 §6.5.1: one CNAME per
    /// source).
    cname: Option<(u32, Box<[u8]>)>,
}

struct Crypto {
    rx: Session,
    tx: Session,
    /// The endpoint receives under a key it also sends with (it echoed the relay's key):
    /// what the relay sends it would authenticate if replayed back, so packets of the SSRCs
    /// the relay sends toward it are refused on receive.
    reflects: bool,
}

impl Crypto {
    fn new(rx: Session, tx: Session) -> Self {
        let reflects = rx.shares_key_with(&tx);
        Self { rx, tx, reflects }
    }

    /// Whether `packet` (RTP, or RTCP if `rtcp`) carries an SSRC the relay sends under a key
    /// it also receives with: its own packet replayed back.
    fn reflected(&self, packet: &[u8], rtcp: bool) -> bool {
        let at = if rtcp { 4 } else { 8 };
        self.reflects
            && packet
                .get(at..at + 4)
                .is_some_and(|s| self.tx.sends(u32::from_be_bytes([s[0], s[1], s[2], s[3]])))
    }
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("profile", &self.rx.profile())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with no calls.
    pub fn new(config: EngineConfig, now: Instant) -> Self {
        Self {
            next_sweep: now + config.sweep_interval,
            bridge_timers: BinaryHeap::new(),
            config,
            calls: CallTable::default(),
            sockets: HashMap::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            next_id: 1,
            retired: Counters::default(),
            unrouted: 0,
            scratch: vec![0; 2048 + TAIL_ROOM],
        }
    }

    /// Creates a call on the given local sockets.
    ///
    /// # Errors
    /// [`EngineError::PolicyForbids`] or [`EngineError::LegSecurity`] when the legs' security
    /// does not fit the mode and policy; [`EngineError::Srtp`] for keys srtp-core refuses;
    /// [`EngineError::SocketInUse`] when a socket already serves a call.
    pub fn create_call(&mut self, spec: CallSpec, now: Instant) -> Result<CallId, EngineError> {
        check_security(
            spec.mode,
            spec.legs.each_ref().map(|l| l.security.is_srtp()),
        )?;
        check_encrypts(spec.mode, &spec.legs[0].security, 0)?;
        check_encrypts(spec.mode, &spec.legs[1].security, 1)?;
        let mut seen = Vec::with_capacity(4);
        for leg in &spec.legs {
            for s in std::iter::once(leg.rtp).chain(leg.rtcp) {
                if self.sockets.contains_key(&s) || seen.contains(&s) {
                    return Err(EngineError::SocketInUse(s));
                }
                seen.push(s);
            }
        }
        let mut legs = Vec::with_capacity(2);
        for (i, l) in spec.legs.into_iter().enumerate() {
            let crypto = crypto_for(&l.security, spec.mode, i)?;
            let remote_rtcp = l
                .remote_rtcp
                .or_else(|| l.remote.map(|r| default_rtcp(r, l.rtcp)));
            legs.push(Leg {
                rtp: l.rtp,
                rtcp: l.rtcp,
                configured: l.remote,
                remote_rtp: l.remote,
                remote_rtcp,
                latching: l.latching,
                candidate: None,
                crypto,
                direction: l.direction,
                counters: Counters::default(),
                last_activity: now,
                last_ssrc: None,
                cname: None,
            });
        }
        let legs: [Leg; 2] = legs.try_into().expect("two legs");
        let id = CallId(self.next_id);
        self.next_id += 1;
        let sockets: Vec<_> = legs
            .iter()
            .enumerate()
            .flat_map(|(i, leg)| {
                let rtcp = leg.rtcp.map(|s| (s, i, Channel::Rtcp));
                std::iter::once((leg.rtp, i, Channel::Rtp)).chain(rtcp)
            })
            .collect();
        let bridge = makes_own_rtcp(spec.mode).then(|| {
            let b = BridgeRtcp::new(id, now, self.config.bridge_rtcp_interval);
            self.bridge_timers.push(Reverse((b.due[0], id)));
            b
        });
        let slot = self.calls.insert(
            id,
            Call {
                mode: spec.mode,
                legs,
                bridge,
            },
        );
        for (socket, leg, channel) in sockets {
            self.sockets.insert(socket, (slot, leg, channel));
        }
        Ok(id)
    }

    /// Changes a leg of a running call: remote address, keys (streams continue without a
    /// restart of their index), direction.
    ///
    /// # Errors
    /// [`EngineError::UnknownCall`]; [`EngineError::LegSecurity`] for keys on a plain leg;
    /// [`EngineError::Srtp`] for keys srtp-core refuses (nothing changes then).
    pub fn update_call(
        &mut self,
        id: CallId,
        leg: usize,
        update: LegUpdate,
    ) -> Result<(), EngineError> {
        let call = self.calls.get_mut(id).ok_or(EngineError::UnknownCall(id))?;
        let l = call.legs.get_mut(leg).ok_or(EngineError::LegSecurity {
            leg,
            reason: "a call has legs 0 and 1",
        })?;
        if update.inbound_keys.is_some() || update.outbound_keys.is_some() {
            let Some(c) = l.crypto.as_mut() else {
                return Err(EngineError::LegSecurity {
                    leg,
                    reason: "keys given for a leg that does not decrypt",
                });
            };
            // Check both sets first, so that a refused one changes nothing.
            if let Some(k) = &update.inbound_keys {
                c.rx.check_keys(k)
                    .map_err(|source| EngineError::Srtp { leg, source })?;
            }
            if let Some(k) = &update.outbound_keys {
                c.tx.check_keys(k)
                    .map_err(|source| EngineError::Srtp { leg, source })?;
            }
            if let Some(k) = &update.inbound_keys {
                c.rx.rekey(k)
                    .map_err(|source| EngineError::Srtp { leg, source })?;
            }
            if let Some(k) = &update.outbound_keys {
                c.tx.rekey(k)
                    .map_err(|source| EngineError::Srtp { leg, source })?;
            }
            c.reflects = c.rx.shares_key_with(&c.tx);
        }
        if let Some(r) = update.remote {
            l.configured = Some(r);
            l.remote_rtp = Some(r);
            l.remote_rtcp = Some(default_rtcp(r, l.rtcp));
            l.candidate = None;
        }
        if let Some(r) = update.remote_rtcp {
            l.remote_rtcp = Some(r);
        }
        if let Some(d) = update.direction {
            l.direction = d;
        }
        if let (Some(on), Some(c)) = (update.outbound_cryptex, l.crypto.as_mut()) {
            c.tx.set_cryptex(on);
        }
        Ok(())
    }

    /// Replaces a leg's media security on a running call, and optionally the call's mode: for
    /// an answer that declined the offered SRTP (an optional-SRTP offer answered with plain
    /// RTP) or chose another suite. The leg keeps its sockets, remote address and counters; its
    /// streams start afresh under the new keys. Pass-through calls cannot change.
    ///
    /// # Errors
    /// [`EngineError::UnknownCall`]; [`EngineError::LegSecurity`] or
    /// [`EngineError::PolicyForbids`] when the result does not fit the mode and policy (the
    /// call is unchanged then); [`EngineError::Srtp`] for keys srtp-core refuses.
    pub fn change_security(
        &mut self,
        id: CallId,
        leg: usize,
        security: Security,
        mode: Option<Mode>,
    ) -> Result<(), EngineError> {
        let call = self.calls.get_mut(id).ok_or(EngineError::UnknownCall(id))?;
        if leg > 1 {
            return Err(EngineError::LegSecurity {
                leg,
                reason: "a call has legs 0 and 1",
            });
        }
        let mode = mode.unwrap_or(call.mode);
        if matches!(mode, Mode::PassThrough { .. }) || matches!(call.mode, Mode::PassThrough { .. })
        {
            return Err(EngineError::LegSecurity {
                leg,
                reason: "a pass-through call's legs cannot change security",
            });
        }
        let mut srtp = call.legs.each_ref().map(|l| l.crypto.is_some());
        srtp[leg] = security.is_srtp();
        check_security(mode, srtp)?;
        check_encrypts(mode, &security, leg)?;
        let crypto = crypto_for(&security, mode, leg)?;
        call.legs[leg].crypto = crypto;
        if makes_own_rtcp(mode) && call.bridge.is_none() {
            let b = BridgeRtcp::new(
                id,
                call.legs[0].last_activity,
                self.config.bridge_rtcp_interval,
            );
            self.bridge_timers.push(Reverse((b.due[0], id)));
            call.bridge = Some(b);
        } else if !makes_own_rtcp(mode) {
            call.bridge = None;
        }
        call.mode = mode;
        Ok(())
    }

    /// Ends a call and returns its local sockets (to close) and final statistics.
    ///
    /// # Errors
    /// [`EngineError::UnknownCall`].
    pub fn delete_call(
        &mut self,
        id: CallId,
    ) -> Result<(Vec<SocketId>, [LegStats; 2]), EngineError> {
        self.remove(id).ok_or(EngineError::UnknownCall(id))
    }

    /// A snapshot of a call.
    pub fn call(&self, id: CallId) -> Option<CallInfo> {
        let c = self.calls.get(id)?;
        Some(CallInfo {
            id,
            mode: c.mode,
            legs: [leg_info(&c.legs[0]), leg_info(&c.legs[1])],
        })
    }

    /// The ids of all calls.
    pub fn calls(&self) -> impl Iterator<Item = CallId> + '_ {
        self.calls.ids()
    }

    /// Process totals: every leg of every call, live or ended.
    pub fn totals(&self) -> Counters {
        let mut t = self.retired;
        for (_, c) in self.calls.iter() {
            for l in &c.legs {
                t.add(&l.counters);
            }
        }
        t
    }

    /// Where `socket`'s datagrams go: `route` if it still names the leg that has the socket,
    /// else the socket table's entry, which `route` then records.
    fn route(&self, route: &mut Route, socket: SocketId) -> Option<(usize, usize, Channel)> {
        if let Route(Some((slot, leg, channel))) = *route {
            let (slot, leg) = (slot as usize, usize::from(leg));
            let holds = self
                .calls
                .at(slot)
                .and_then(|(_, c)| c.legs.get(leg))
                .is_some_and(|l| match channel {
                    Channel::Rtp => l.rtp == socket,
                    Channel::Rtcp => l.rtcp == Some(socket),
                });
            if holds {
                return Some((slot, leg, channel));
            }
        }
        let found = self.sockets.get(&socket).copied();
        *route = Route(found.and_then(|(slot, leg, channel)| {
            Some((u32::try_from(slot).ok()?, u8::try_from(leg).ok()?, channel))
        }));
        found
    }

    /// The memory of the call `route` names (opaque: only its place and size are of use),
    /// for an I/O layer that asks the CPU to fetch it into the cache while it handles the
    /// datagram before: with thousands of calls, a call's state is a run of cache misses the
    /// first time a datagram touches it. `None` if the route names no slot.
    pub fn call_memory(&self, route: &Route) -> Option<&impl Sized> {
        let Route(Some((slot, _, _))) = *route else {
            return None;
        };
        self.calls.entry(slot as usize)
    }

    /// Asks the CPU to bring the SRTP keys a datagram on `route` will use into the cache (the
    /// receiving leg's and, when the other leg's packets are protected anew, the sending
    /// one's; see [`Session::prefetch_rtp_keys`]). Reads the call's own state, so it pays
    /// when that was fetched before ([`call_memory`](Self::call_memory)), a datagram earlier.
    pub fn prefetch_keys(&self, route: &Route) {
        let Route(Some((slot, leg, _))) = *route else {
            return;
        };
        let Some((_, call)) = self.calls.at(slot as usize) else {
            return;
        };
        let (leg, other) = (usize::from(leg), 1 - usize::from(leg).min(1));
        if let Some(c) = call.legs.get(leg).and_then(|l| l.crypto.as_ref()) {
            c.rx.prefetch_rtp_keys();
        }
        if !matches!(call.mode, Mode::PassThrough { .. }) {
            if let Some(c) = call.legs[other].crypto.as_ref() {
                c.tx.prefetch_rtp_keys();
            }
        }
    }

    /// Datagrams that arrived on sockets belonging to no call.
    pub fn unrouted(&self) -> u64 {
        self.unrouted
    }

    /// Processes one datagram received on `socket` from `from`: `buf[..len]` is the datagram
    /// and `buf` must have [`TAIL_ROOM`] bytes more, which encryption may use. Returns where
    /// to send the result (now in `buf`), or `None` when the packet is dropped (and counted).
    pub fn handle(
        &mut self,
        now: Instant,
        socket: SocketId,
        from: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Option<Transmit> {
        self.handle_routed(&mut Route::default(), now, socket, from, buf, len)
    }

    /// [`handle`](Self::handle) with the socket's [`Route`], which the caller keeps: checked
    /// against the leg it names and used if right, else the socket is looked up and `route`
    /// updated (to [`Route::default`] if the socket belongs to no call).
    pub fn handle_routed(
        &mut self,
        route: &mut Route,
        now: Instant,
        socket: SocketId,
        from: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Option<Transmit> {
        let Some((slot, i, channel)) = self.route(route, socket) else {
            self.unrouted += 1;
            return None;
        };
        let (id, call) = self.calls.at_mut(slot)?;
        let (first, second) = call.legs.split_at_mut(1);
        let (a, b) = if i == 0 {
            (&mut first[0], &mut second[0])
        } else {
            (&mut second[0], &mut first[0])
        };
        a.counters.packets_in += 1;
        a.counters.bytes_in += len as u64;
        let len = len.min(buf.len().saturating_sub(TAIL_ROOM));
        let packet = &buf[..len];

        let rtcp = match channel {
            Channel::Rtcp => true,
            Channel::Rtp => {
                a.rtcp.is_none() && packet.len() >= 2 && (192..=223).contains(&packet[1])
            }
        };
        let min = if rtcp { 8 } else { 12 };
        if packet.len() < min || packet[0] >> 6 != 2 {
            a.counters.drops.count(DropReason::Malformed);
            return None;
        }
        let channel = if rtcp { Channel::Rtcp } else { Channel::Rtp };

        // Inbound. A packet that cannot prove its sender (plain, or RTP under
        // UNAUTHENTICATED_SRTP) passes the source check first, so that one from elsewhere
        // changes nothing, not even the SRTP state its keys would move; one that can is
        // authenticated (and decrypted) first, and only then may it move the leg.
        let proves = a
            .crypto
            .as_ref()
            .is_some_and(|c| rtcp || c.rx.authenticates_rtp());
        let source = (!proves).then(|| a.judge_source(channel, from));
        if let Some(s @ (Source::Refused | Source::Candidate(_))) = source {
            a.settle_source(channel, from, s);
            a.counters.drops.count(DropReason::UnknownSource);
            return None;
        }
        let mut plain_len = len;
        let authenticated = match (&mut a.crypto, call.mode) {
            (Some(c), Mode::PassThrough { .. }) => {
                let Some(scratch) = self.scratch.get_mut(..len) else {
                    a.counters.drops.count(DropReason::Malformed);
                    return None;
                };
                scratch.copy_from_slice(&buf[..len]);
                let r = if rtcp {
                    c.rx.unprotect_rtcp(scratch).map(|_| ())
                } else {
                    c.rx.unprotect_rtp(scratch).map(|_| ())
                };
                if let Err(e) = r {
                    a.counters.drops.count(drop_reason(e));
                    return None;
                }
                true
            }
            (Some(c), _) => {
                if c.reflected(&buf[..len], rtcp) {
                    a.counters.drops.count(DropReason::Replay);
                    return None;
                }
                let r = if rtcp {
                    c.rx.unprotect_rtcp(&mut buf[..len]).map(|p| p.len())
                } else {
                    c.rx.unprotect_rtp(&mut buf[..len]).map(|p| p.len())
                };
                match r {
                    Ok(n) => plain_len = n,
                    Err(e) => {
                        a.counters.drops.count(drop_reason(e));
                        return None;
                    }
                }
                true
            }
            (None, _) => false,
        };
        // Only a packet let through moves the leg: one that authenticated, or one that
        // passed the source check and then unprotect (a replay or a bad MKI moves nothing).
        let moved = match source {
            Some(s) => {
                a.settle_source(channel, from, s);
                s == Source::Moves
            }
            None if authenticated && a.remote(channel) != Some(from) => {
                a.set_remote(channel, from);
                true
            }
            None => false,
        };
        if moved {
            self.events.push_back(Event::Latched {
                call: id,
                leg: i,
                channel,
                remote: from,
            });
        }
        a.last_activity = now;
        if !rtcp {
            a.last_ssrc = Some(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));
        }

        // Direction: RTP flows only from a sending to a receiving endpoint; RTCP always.
        let flows = a.direction.sends() && b.direction.receives();
        if !rtcp && !flows {
            a.counters.drops.count(DropReason::Policy);
            return None;
        }
        let Some(destination) = b.remote(channel) else {
            a.counters.drops.count(DropReason::Policy);
            return None;
        };

        // RTCP from the receiver of streams the relay re-based names them by the numbers
        // sent; upstream they go back into the numbering of their sender.
        if rtcp && !matches!(call.mode, Mode::PassThrough { .. }) {
            if let Some(c) = a.crypto.as_ref() {
                rtcp::translate(&mut buf[..plain_len], |ssrc| c.tx.sequence_offset(ssrc));
            }
            // The endpoint's CNAME, for the relay's own RTCP sent as its SSRC.
            if let Some((ssrc, name)) = rtcp::cname(&buf[..plain_len]) {
                if a.cname
                    .as_ref()
                    .is_none_or(|(s, n)| (*s, &n[..]) != (ssrc, name))
                {
                    a.cname = Some((ssrc, name.into()));
                }
            }
        }

        // Outbound.
        let out_len = match (&mut b.crypto, call.mode) {
            (Some(c), Mode::Transcrypt | Mode::Bridge { .. }) => {
                let r = if rtcp {
                    c.tx.protect_rtcp(&mut buf[..plain_len + TAIL_ROOM], plain_len)
                } else {
                    c.tx.protect_rtp(&mut buf[..plain_len + TAIL_ROOM], plain_len)
                };
                match r {
                    Ok(n) => n,
                    Err(_) => {
                        a.counters.drops.count(DropReason::Policy);
                        return None;
                    }
                }
            }
            _ => plain_len,
        };
        b.counters.packets_out += 1;
        b.counters.bytes_out += out_len as u64;
        if rtcp {
            if let Some(br) = call.bridge.as_mut() {
                // RTCP went toward the other leg: it needs none of the relay's for a while.
                br.due[1 - i] = now + self.config.bridge_rtcp_interval;
            }
        }
        Some(Transmit {
            socket: if rtcp { b.rtcp.unwrap_or(b.rtp) } else { b.rtp },
            destination,
            len: out_len,
        })
    }

    /// The next time [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Instant {
        match self.bridge_timers.peek() {
            Some(Reverse((due, _))) => self.next_sweep.min(*due),
            None => self.next_sweep,
        }
    }

    /// Runs the timers due at `now`: sends the bridges' own RTCP, ends inactive calls.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((due, id))) = self.bridge_timers.peek() {
            if due > now {
                break;
            }
            self.bridge_timers.pop();
            let interval = self.config.bridge_rtcp_interval;
            let Some(call) = self.calls.get_mut(id) else {
                continue; // ended
            };
            let Some(br) = call.bridge.as_mut() else {
                continue; // no longer makes its own
            };
            // A leg that had RTCP since waits until it has been quiet as long.
            for to in 0..2 {
                if !kept_alive(&call.legs, to) || br.due[to] > now {
                    continue;
                }
                br.due[to] = now + interval;
                let from = &call.legs[1 - to];
                let ssrc = from.last_ssrc.unwrap_or(br.ssrc);
                let cname = match &from.cname {
                    Some((s, name)) if *s == ssrc => name.to_vec(),
                    _ => format!("relay-{ssrc:08x}").into_bytes(),
                };
                let leg = &mut call.legs[to];
                if let Some(t) = bridge_receiver_report(leg, ssrc, &cname) {
                    leg.counters.packets_out += 1;
                    leg.counters.bytes_out += t.data.len() as u64;
                    self.transmits.push_back(t);
                }
            }
            self.bridge_timers.push(Reverse((br.next(&call.legs), id)));
        }
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + self.config.sweep_interval;
        let mut ended = Vec::new();
        for (id, call) in self.calls.iter_mut() {
            if let Some(leg) = (0..2).find(|&l| {
                now.saturating_duration_since(call.legs[l].last_activity) >= self.config.inactivity
            }) {
                ended.push((id, leg));
            }
        }
        for (id, leg) in ended {
            if let Some((sockets, stats)) = self.remove(id) {
                self.events.push_back(Event::CallEnded {
                    call: id,
                    reason: EndReason::Inactivity { leg },
                    sockets,
                    stats,
                });
            }
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next datagram the engine made itself, if any.
    pub fn poll_transmit(&mut self) -> Option<OwnedTransmit> {
        self.transmits.pop_front()
    }

    fn remove(&mut self, id: CallId) -> Option<(Vec<SocketId>, [LegStats; 2])> {
        let call = self.calls.remove(id)?;
        let mut sockets = Vec::new();
        for l in &call.legs {
            sockets.push(l.rtp);
            sockets.extend(l.rtcp);
            self.retired.add(&l.counters);
        }
        for s in &sockets {
            self.sockets.remove(s);
        }
        let stats = call.legs.map(|l| LegStats {
            counters: l.counters,
            last_activity: l.last_activity,
        });
        Some((sockets, stats))
    }
}

impl Leg {
    fn remote(&self, channel: Channel) -> Option<SocketAddr> {
        match channel {
            Channel::Rtp => self.remote_rtp,
            Channel::Rtcp => self.remote_rtcp,
        }
    }

    fn set_remote(&mut self, channel: Channel, addr: SocketAddr) {
        match channel {
            Channel::Rtp => {
                self.remote_rtp = Some(addr);
                if self.rtcp.is_none() {
                    self.remote_rtcp = Some(addr);
                }
            }
            Channel::Rtcp => self.remote_rtcp = Some(addr),
        }
    }

    /// The source check for a packet that cannot authenticate, deciding without changing
    /// anything (see [`settle_source`](Self::settle_source)).
    fn judge_source(&self, channel: Channel, from: SocketAddr) -> Source {
        let current = self.remote(channel);
        if current == Some(from) {
            return Source::Known;
        }
        match self.latching {
            Latching::Strict => Source::Refused,
            Latching::Learn { relatch_after } => {
                if current.is_none() {
                    return Source::Moves;
                }
                let count = match self.candidate {
                    Some((addr, n)) if addr == from => n + 1,
                    _ => 1,
                };
                if count >= relatch_after.max(1) {
                    Source::Moves
                } else {
                    Source::Candidate(count)
                }
            }
        }
    }

    /// Records what [`judge_source`](Self::judge_source) decided for a packet from `from`
    /// that is let through (or, for a candidate, counted).
    fn settle_source(&mut self, channel: Channel, from: SocketAddr, source: Source) {
        match source {
            Source::Known => self.candidate = None,
            Source::Candidate(n) => self.candidate = Some((from, n)),
            Source::Moves => {
                self.candidate = None;
                self.set_remote(channel, from);
            }
            Source::Refused => {}
        }
    }
}

/// What the source check makes of a packet that cannot authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// From the leg's remote address.
    Known,
    /// From elsewhere, on a strict leg: dropped.
    Refused,
    /// From a new source, the `n`-th in a row: dropped and counted.
    Candidate(u32),
    /// The remote moves to the source (the first one, or enough in a row).
    Moves,
}

/// Under `RequireEncryption` an SRTP leg must also encrypt: a NULL cipher or
/// `UNENCRYPTED_SRTP` does not count as encryption.
fn check_encrypts(mode: Mode, security: &Security, leg: usize) -> Result<(), EngineError> {
    let Mode::Bridge {
        level: EncryptionLevel::RequireEncryption,
        ..
    } = mode
    else {
        return Ok(());
    };
    let encrypts = |p: &srtp_core::Policy| {
        p.encrypt_rtp
            && !matches!(
                p.profile,
                srtp_core::Profile::NullHmacSha1_80 | srtp_core::Profile::NullHmacSha1_32
            )
    };
    match security {
        Security::Srtp { inbound, outbound } if !(encrypts(inbound) && encrypts(outbound)) => {
            Err(EngineError::LegSecurity {
                leg,
                reason: "RequireEncryption needs an encrypting SRTP profile (not NULL, not UNENCRYPTED_SRTP)",
            })
        }
        _ => Ok(()),
    }
}

/// The sessions a leg needs in `mode`: none for plain legs and for pass-through without
/// verification.
fn crypto_for(security: &Security, mode: Mode, leg: usize) -> Result<Option<Crypto>, EngineError> {
    let keep_keys = match mode {
        Mode::PassThrough { verify } => verify,
        Mode::Transcrypt | Mode::Bridge { .. } => true,
    };
    match (security, keep_keys) {
        (Security::Srtp { inbound, outbound }, true) => {
            // The relay re-protects what it forwards: an endpoint that restarts its sequence
            // numbers on one SSRC (hold and resume) must not make it re-use an index under
            // its key (refused, so the far end would go silent), so the numbers continue.
            let mut outbound = outbound.clone();
            outbound.sequence_continuity = !matches!(mode, Mode::PassThrough { .. });
            // Whatever its policy says, a leg with encrypting keys receives packets encrypted
            // with cryptex (RFC 9335): an endpoint that negotiated it through the SDP (which
            // the relay keeps) may use it on any packet, and a relay that refused those would
            // drop every packet with a header extension. What the relay sends follows
            // `outbound`.
            let mut inbound = inbound.clone();
            inbound.cryptex = true;
            Ok(Some(Crypto::new(
                Session::new(&inbound).map_err(|source| EngineError::Srtp { leg, source })?,
                Session::new(&outbound).map_err(|source| EngineError::Srtp { leg, source })?,
            )))
        }
        _ => Ok(None),
    }
}

fn leg_info(l: &Leg) -> LegInfo {
    LegInfo {
        remote_rtp: l.remote_rtp,
        remote_rtcp: l.remote_rtcp,
        direction: l.direction,
        srtp: l.crypto.is_some(),
        rtcp_mux: l.rtcp.is_none(),
        stats: LegStats {
            counters: l.counters,
            last_activity: l.last_activity,
        },
    }
}

fn drop_reason(e: SrtpError) -> DropReason {
    match e {
        SrtpError::AuthenticationFailed | SrtpError::UnknownMki => DropReason::Auth,
        SrtpError::Replayed | SrtpError::TooOld => DropReason::Replay,
        SrtpError::Malformed(_) | SrtpError::LengthOutOfBounds => DropReason::Malformed,
        _ => DropReason::Policy,
    }
}

/// Checks the legs' security (`srtp[i]`: leg `i` carries SRTP with keys) against the mode and,
/// for a bridge, the mediation policy.
fn check_security(mode: Mode, srtp: [bool; 2]) -> Result<(), EngineError> {
    match mode {
        Mode::PassThrough { verify: true } => {
            for (i, &is_srtp) in srtp.iter().enumerate() {
                if !is_srtp {
                    return Err(EngineError::LegSecurity {
                        leg: i,
                        reason: "verifying pass-through needs the endpoint's SRTP keys",
                    });
                }
            }
        }
        Mode::PassThrough { verify: false } => {}
        Mode::Transcrypt => {
            for (i, &is_srtp) in srtp.iter().enumerate() {
                if !is_srtp {
                    return Err(EngineError::LegSecurity {
                        leg: i,
                        reason: "transcrypting needs SRTP keys on both legs",
                    });
                }
            }
        }
        Mode::Bridge {
            level,
            gateway,
            gateway_tls,
        } => {
            match (level, srtp[0]) {
                (EncryptionLevel::RequireEncryption, false) => {
                    return Err(EngineError::LegSecurity {
                        leg: 0,
                        reason: "RequireEncryption needs SRTP toward the clients",
                    })
                }
                (EncryptionLevel::DoNotSupportEncryption, true) => {
                    return Err(EngineError::LegSecurity {
                        leg: 0,
                        reason: "DoNotSupportEncryption needs plain RTP toward the clients",
                    })
                }
                _ => {}
            }
            let want = gateway_media(level, gateway, gateway_tls, srtp[1])?;
            match (want, srtp[1]) {
                (GatewayMedia::Srtp, false) => {
                    return Err(EngineError::LegSecurity {
                        leg: 1,
                        reason: "the policy requires SRTP toward the gateway: give its keys",
                    })
                }
                (GatewayMedia::Rtp, true) => {
                    return Err(EngineError::LegSecurity {
                        leg: 1,
                        reason: "the policy allows only plain RTP toward this gateway",
                    })
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Whether leg `l` gets the relay's own RTCP when none went toward it for the interval: every
/// SRTP leg (the clients that end calls without RTCP: either side of a bridge, as ng puts
/// the caller on leg 0 whichever side that is, and both sides of a transcrypt call), or
/// leg 0, the clients' side by the bridge's definition, when no leg is SRTP.
fn kept_alive(legs: &[Leg; 2], l: usize) -> bool {
    match (legs[0].crypto.is_some(), legs[1].crypto.is_some()) {
        (false, false) => l == 0,
        _ => legs[l].crypto.is_some(),
    }
}

/// The relay's own RTCP from `ssrc`: a compound packet (RFC 3550 §6.1) of an empty receiver
/// report (§6.4.2) and an SDES chunk with the CNAME `cname` every compound packet carries
/// (§6.5.1), protected for the leg if it carries SRTP. Keeps a client's RTCP timeout from
/// ending a call whose other side is silent.
fn bridge_receiver_report(leg: &mut Leg, ssrc: u32, cname: &[u8]) -> Option<OwnedTransmit> {
    let destination = leg.remote_rtcp?;
    let mut data = rtcp::own_report(ssrc, cname);
    let report = data.len();
    data.resize(report + TAIL_ROOM, 0);
    let len = match leg.crypto.as_mut() {
        Some(c) => c.tx.protect_rtcp(&mut data, report).ok()?,
        None => report,
    };
    data.truncate(len);
    Some(OwnedTransmit {
        socket: leg.rtcp.unwrap_or(leg.rtp),
        destination,
        data,
    })
}
