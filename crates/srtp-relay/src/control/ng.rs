//! The rtpengine ng control protocol, so that Kamailio's and OpenSIPS's `rtpengine` modules
//! drive the relay unchanged: `<cookie> <bencoded dictionary>` over UDP, answered with the same
//! cookie and a dictionary whose `result` is `ok`, `pong` or `error` (`error-reason`).
//!
//! Commands: `ping`, `offer`, `answer`, `delete`, `query`, `list`. An `offer` carries the
//! caller's SDP (leg 0, tagged `from-tag`); the relay allocates both legs of every media
//! section and returns the SDP for the callee (leg 1) pointing at the relay. The `answer`
//! carries the callee's SDP and returns the SDP for the caller.
//!
//! SRTP (SDES, RFC 4568) per leg:
//! - The caller's leg is SRTP when it offers `RTP/SAVP(F)` with `a=crypto`, or `RTP/AVP` with
//!   `a=crypto` (optional SRTP). The relay takes the first line it supports and answers with
//!   its own key: same tag and suite, and an MKI only when the chosen line had one. An optional
//!   offer is answered `RTP/AVP` with `a=crypto` (RFC 8643, OSRTP), or `RTP/SAVP` when the
//!   offer carries Microsoft's `a=encryption:` attribute or the flag `OSRTP-accept-legacy`.
//! - The callee's leg follows `transport-protocol` (or a flag `RTP/AVP`, `RTP/SAVP`, …), else
//!   the caller's transport. SRTP toward the callee offers the caller's chosen suite, one line
//!   per MKI form the caller offered; `OSRTP-offer` offers `RTP/AVP` with `a=crypto`. Both
//!   `RTP/SAVP` and `RTP/AVP` answers with `a=crypto` are accepted.
//! - `SDES-off`, `SDES-no-<suite>`, `SDES-only-<suite>` (as flags or in an `SDES` list) limit
//!   the suites the relay offers the callee. The caller's leg takes its first line of an
//!   allowed suite, or, when there is none, its first usable line (as rtpengine does).
//!
//! Re-offers (re-INVITE: hold, resume, a moved endpoint, new keys) from either side keep the
//! ports and the relay's keys and apply the new address, direction and keys. A re-offer may
//! add sections (RFC 3264 §8.1), a caller's also re-open a rejected one; each becomes a relay
//! call of its own.
//!
//! A callee that answers an optional SRTP offer (RTP/AVP with `a=crypto`) in plain RTP gets a
//! plain leg: the call becomes a bridge. Limits: a callee that answers a mandatory SRTP offer
//! (RTP/SAVP) in plain RTP, or picks a suite that was not offered, gets an error. The protocol has no authentication: bind it to
//! loopback or a private signalling network.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use srtp_core::sdes::{CryptoAttribute, SessionParams};
use srtp_core::{MasterKey, Policy, Profile};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::bencode::{dict, Value};
use super::sdp::{Media, Sdp};
use super::{answer_line, Control, CreateError};
use crate::engine::{EncryptionLevel, LegUpdate, Mode, Security, SrtpMode};
use crate::io::{CallRequest, LegRequest, LocalPorts, RelayError};

/// Most calls kept whose every media section is rejected: they hold no port, so nothing
/// else bounds them; past this the one empty longest is forgotten.
const MAX_CALLS_WITHOUT_MEDIA: usize = 1024;

/// How long a reply is kept to answer a retransmitted command with the same cookie.
const REPLY_CACHE_TIME: Duration = Duration::from_secs(30);
/// Most replies kept.
const REPLY_CACHE_LEN: usize = 1024;
/// Most bytes of replies kept (an offer's reply carries a whole SDP).
const REPLY_CACHE_BYTES: usize = 16 << 20;
/// The longest cookie answered. rtpengine's modules send a few dozen bytes; a longer one is
/// not a client's, and every reply repeats it.
const MAX_COOKIE: usize = 128;

/// A reply kept for retransmissions: when, to whom, the cookie, the datagram. A reply is
/// repeated only to the peer it went to: it may carry the relay's SRTP keys.
type CachedReply = (Instant, SocketAddr, Vec<u8>, Vec<u8>);

/// The ng listener and its calls.
#[derive(Debug)]
pub struct Ng {
    control: Arc<Control>,
    calls: Mutex<HashMap<String, NgCall>>,
    replies: Mutex<VecDeque<CachedReply>>,
}

/// A call driven over ng: one relay call per media section.
#[derive(Debug)]
struct NgCall {
    from_tag: String,
    to_tag: Option<String>,
    created: Instant,
    /// Since when no section has had a relay call (all rejected: in the offer, the answer or
    /// a re-offer), if so.
    emptied: Option<Instant>,
    streams: Vec<Stream>,
    /// The callee sent a re-offer (re-INVITE from its side); the next answer is the caller's.
    callee_reoffer: bool,
}

/// One media section of an ng call. Holds the relay's own `a=crypto` lines (with keys) for
/// the life of the call so that re-offers repeat them; they zeroize on drop.
#[derive(Debug)]
struct Stream {
    /// `None` for a section that was rejected (port 0).
    relay: Option<u64>,
    ports: [LocalPorts; 2],
    /// The relay's answer line toward the caller, when leg 0 is SRTP.
    caller_line: Option<CryptoAttribute>,
    /// The session parameters of the caller's line (a re-offer may not change them).
    caller_params: SessionParams,
    /// The session parameters of the callee's answer, once it answered (later answers and
    /// re-offers may not change them).
    callee_params: Option<SessionParams>,
    /// The caller's transport, and whether it offered optional SRTP Microsoft style.
    caller_proto: String,
    caller_legacy_osrtp: bool,
    caller_mux: bool,
    /// The relay's offered lines toward the callee, when leg 1 is SRTP.
    callee_lines: Vec<CryptoAttribute>,
    callee_proto: String,
    /// Which of `callee_lines` the callee accepted.
    callee_chosen: usize,
    /// The relay's answer line to a re-offer from the callee.
    callee_answer: Option<CryptoAttribute>,
    /// Added by a re-offer not answered yet: dropped again if the next offer comes without
    /// it (the re-INVITE was refused, so the section never existed).
    pending: bool,
    /// Packets in and out of the relay calls this section had that ended (removed with
    /// port 0, rejected in an answer), for `delete`'s totals.
    ended: (u64, u64),
    /// The latest offer of this section (from either side) carried `a=cryptex` (RFC 9335):
    /// if its answer does too, cryptex is negotiated and the relay sends with it both ways.
    offered_cryptex: bool,
}

impl NgCall {
    /// Whether no section of the call has a relay call (all rejected, or ended).
    fn carries_nothing(&self) -> bool {
        self.streams.iter().all(|s| s.relay.is_none())
    }
}

/// Forgets the calls without media that have been so longest, beyond
/// [`MAX_CALLS_WITHOUT_MEDIA`], never `keep` (the call a command is working on).
fn cap_without_media(calls: &mut HashMap<String, NgCall>, keep: Option<&str>) {
    let empty = calls.values().filter(|c| c.emptied.is_some()).count();
    if empty <= MAX_CALLS_WITHOUT_MEDIA {
        return;
    }
    let mut oldest: Vec<(Instant, String)> = calls
        .iter()
        .filter(|(id, _)| Some(id.as_str()) != keep)
        .filter_map(|(id, c)| c.emptied.map(|t| (t, id.clone())))
        .collect();
    oldest.sort_unstable();
    for (_, id) in oldest.iter().take(empty - MAX_CALLS_WITHOUT_MEDIA) {
        calls.remove(id);
    }
}

impl Stream {
    /// A section with no relay call (yet), its transports toward the caller and the callee.
    fn unrelayed(caller_proto: &str, callee_proto: &str) -> Self {
        let unused = LocalPorts {
            rtp: SocketAddr::from(([0, 0, 0, 0], 0)),
            rtcp: None,
        };
        Self {
            relay: None,
            ports: [unused, unused],
            caller_line: None,
            caller_params: SessionParams::default(),
            callee_params: None,
            caller_proto: caller_proto.to_owned(),
            caller_legacy_osrtp: false,
            caller_mux: false,
            callee_lines: Vec::new(),
            callee_proto: callee_proto.to_owned(),
            callee_chosen: 0,
            callee_answer: None,
            pending: false,
            ended: (0, 0),
            offered_cryptex: false,
        }
    }
}

/// A command's failure, sent back as `error-reason`.
type NgResult = Result<Value, String>;

impl Ng {
    /// A listener over `control`.
    pub fn new(control: Arc<Control>) -> Arc<Self> {
        Arc::new(Self {
            control,
            calls: Mutex::new(HashMap::new()),
            replies: Mutex::new(VecDeque::new()),
        })
    }

    /// Answers datagrams until `shutdown` turns true.
    pub async fn serve(self: Arc<Self>, socket: UdpSocket, mut shutdown: watch::Receiver<bool>) {
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, peer) = tokio::select! {
                r = socket.recv_from(&mut buf) => match r {
                    Ok(r) => r,
                    Err(_) => continue,
                },
                _ = shutdown.changed() => return,
            };
            if let Some(reply) = self.handle(&buf[..n], peer) {
                let _ = socket.send_to(&reply, peer).await;
            }
        }
    }

    /// Handles one datagram from `peer`; `None` when it has no cookie.
    pub fn handle(&self, datagram: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
        let space = datagram.iter().position(|&b| b == b' ')?;
        let (cookie, rest) = (&datagram[..space], &datagram[space + 1..]);
        if cookie.len() > MAX_COOKIE {
            self.control
                .metrics
                .ng_malformed
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, len = cookie.len(), "ng cookie too long: not answered");
            return None;
        }
        if let Some(cached) = self.cached(peer, cookie) {
            return Some(cached);
        }
        let reply = match Value::decode(rest) {
            Ok(msg) => {
                self.control
                    .metrics
                    .ng_commands
                    .fetch_add(1, Ordering::Relaxed);
                let command = msg.get_str("command").unwrap_or("");
                let result = self.command(command, &msg);
                tracing::info!(
                    %peer,
                    command,
                    call_id = msg.get_str("call-id").unwrap_or("-"),
                    result = if result.is_ok() { "ok" } else { "error" },
                    "ng command"
                );
                result.unwrap_or_else(|reason| {
                    dict([
                        ("result", Value::str("error")),
                        ("error-reason", Value::Bytes(reason.into_bytes())),
                    ])
                })
            }
            Err(e) => {
                self.control
                    .metrics
                    .ng_malformed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%peer, error = %e, "ng message malformed");
                dict([
                    ("result", Value::str("error")),
                    ("error-reason", Value::str("malformed message")),
                ])
            }
        };
        let mut out = cookie.to_vec();
        out.push(b' ');
        out.extend(reply.encode());
        self.remember(peer, cookie, &out);
        Some(out)
    }

    fn cached(&self, peer: SocketAddr, cookie: &[u8]) -> Option<Vec<u8>> {
        let mut replies = self.replies.lock().ok()?;
        let now = Instant::now();
        while replies
            .front()
            .is_some_and(|(t, ..)| now.duration_since(*t) > REPLY_CACHE_TIME)
        {
            replies.pop_front();
        }
        replies
            .iter()
            .find(|(_, p, c, _)| *p == peer && c == cookie)
            .map(|(.., r)| r.clone())
    }

    fn remember(&self, peer: SocketAddr, cookie: &[u8], reply: &[u8]) {
        if let Ok(mut replies) = self.replies.lock() {
            replies.push_back((Instant::now(), peer, cookie.to_vec(), reply.to_vec()));
            let mut bytes: usize = replies.iter().map(|(.., r)| r.len()).sum();
            while replies.len() > REPLY_CACHE_LEN || bytes > REPLY_CACHE_BYTES {
                let Some((.., r)) = replies.pop_front() else {
                    break;
                };
                bytes -= r.len();
            }
        }
    }

    fn command(&self, command: &str, msg: &Value) -> NgResult {
        match command {
            "ping" => Ok(dict([("result", Value::str("pong"))])),
            "offer" => self.offer(msg),
            "answer" => self.answer(msg),
            "delete" => self.delete(msg),
            "query" => self.query(msg),
            "list" => Ok(self.list()),
            _ => Err(format!("unknown command {:?}", truncate(command))),
        }
    }

    fn offer(&self, msg: &Value) -> NgResult {
        let (call_id, from_tag, sdp_text) = required(msg, "from-tag")?;
        let flags = Flags::of(msg);
        let mut sdp = Sdp::parse(sdp_text).map_err(|e| e.to_string())?;
        let mut calls = self.calls.lock().map_err(|_| "internal error")?;
        self.forget_ended(&mut calls, Some(call_id));
        if let Some(call) = calls.get_mut(call_id) {
            // A re-offer (re-INVITE, hold): same ports and lines, new remote and direction;
            // either side may add sections (RFC 3264 §8.1: video added to a call), never
            // remove one.
            if sdp.media.len() < call.streams.len() {
                // Only sections a refused re-offer added may be missing (the dialog never
                // had them); anything else is not an RFC 3264 §8 re-offer.
                if !call.streams[sdp.media.len()..].iter().all(|s| s.pending) {
                    return Err("a re-offer must keep the media sections (RFC 3264 §8)".into());
                }
                for s in call.streams.drain(sdp.media.len()..) {
                    if let Some(id) = s.relay {
                        let _ = self.control.relay().delete_call(id);
                    }
                }
            }
            if call.from_tag == from_tag {
                self.reoffer_from_caller(call, &sdp, &flags)?;
                let out = render_callee(call, &mut sdp, &self.control, flags.replace_origin, |s| {
                    s.callee_lines.iter().collect()
                });
                return Ok(ok_sdp(&out));
            }
            if call.to_tag.as_deref() == Some(from_tag) {
                self.reoffer_from_callee(call, &sdp)?;
                call.callee_reoffer = true;
                let out = render_caller(call, &mut sdp, &self.control, flags.replace_origin);
                return Ok(ok_sdp(&out));
            }
            return Err("call-id exists with other tags".into());
        }
        let mut streams = Vec::with_capacity(sdp.media.len());
        let result = (|| {
            let mut unusable = Vec::new();
            for i in 0..sdp.media.len() {
                let (stream, why) = self.offer_stream(&sdp, i, &flags)?;
                unusable.extend(why);
                streams.push(stream);
            }
            // Sections the relay cannot carry are rejected one by one; an offer left with
            // none to carry fails, naming why.
            if !unusable.is_empty() && streams.iter().all(|s| s.relay.is_none()) {
                return Err(unusable.join("; "));
            }
            Ok::<_, String>(())
        })();
        if let Err(e) = result {
            for s in &streams {
                if let Some(id) = s.relay {
                    let _ = self.control.relay().delete_call(id);
                }
            }
            return Err(e);
        }
        let call = NgCall {
            from_tag: from_tag.to_owned(),
            to_tag: None,
            created: Instant::now(),
            emptied: streams.iter().all(|s| s.relay.is_none()).then(Instant::now),
            streams,
            callee_reoffer: false,
        };
        let out = render_callee(&call, &mut sdp, &self.control, flags.replace_origin, |s| {
            s.callee_lines.iter().collect()
        });
        calls.insert(call_id.to_owned(), call);
        cap_without_media(&mut calls, Some(call_id));
        Ok(ok_sdp(&out))
    }

    /// Creates the relay call for media section `i` of an offer. A secure section with no
    /// `a=crypto` line the relay can take (DTLS-SRTP's `UDP/TLS/RTP/SAVPF`, or only suites
    /// refused here) is not relayed: it is returned without a relay call, with the reason,
    /// and rendered with port 0 both ways, as an answerer rejects a stream whose keys it
    /// cannot use (RFC 3264 §6, RFC 4568 §7.1.2).
    fn offer_stream(
        &self,
        sdp: &Sdp,
        i: usize,
        flags: &Flags,
    ) -> Result<(Stream, Option<String>), String> {
        let m = &sdp.media[i];
        let callee_proto = flags.transport.clone().unwrap_or_else(|| m.proto.clone());
        let mut stream = Stream::unrelayed(&m.proto, &callee_proto);
        stream.offered_cryptex = sdp.cryptex(i);
        stream.caller_legacy_osrtp =
            sdp.microsoft_encryption(i) || flags.has("OSRTP-accept-legacy");
        stream.caller_mux = m.rtcp_mux();
        if m.port == 0 {
            return Ok((stream, None));
        }
        // The caller's SRTP: the first line whose keys work and whose suite the SDES flags
        // allow. The flags shape what the relay offers the callee; when they leave none of the
        // caller's lines, the caller's first usable line that encrypts still keys its leg (as
        // rtpengine keeps the top-most suite for its answer to the offerer; a NULL-cipher
        // suite the flags excluded is never taken).
        let usable: Vec<CryptoAttribute> = m
            .crypto_lines()
            .filter_map(|l| l.parse::<CryptoAttribute>().ok())
            .filter(|a| a.policy().is_ok())
            .collect();
        let offered: Vec<CryptoAttribute> = usable
            .iter()
            .filter(|a| flags.suite_allowed(a.profile))
            .cloned()
            .collect();
        let chosen = offered
            .first()
            .or_else(|| usable.iter().find(|a| a.profile.encrypts()));
        if m.is_savp() && chosen.is_none() {
            let why = format!(
                "media {i}: {} offered without a usable a=crypto line",
                m.proto
            );
            return Ok((stream, Some(why)));
        }
        let caller = match chosen {
            Some(attr) => {
                let own = answer_line(attr);
                let security = srtp(attr, &own)?;
                stream.caller_line = Some(own);
                stream.caller_params = attr.params.clone();
                security
            }
            None => Security::Plain,
        };
        // The callee's SRTP: the caller's suite (or the first allowed), one line per MKI
        // form the caller used.
        let callee_srtp =
            !flags.sdes_off && (callee_proto.contains("SAVP") || flags.has("OSRTP-offer"));
        let callee = if callee_srtp {
            let profile = offered
                .first()
                .map(|a| a.profile)
                .or_else(|| Profile::ALL.into_iter().find(|p| flags.suite_allowed(*p)))
                .ok_or("SDES flags leave no suite")?;
            stream.callee_lines = callee_lines(&offered, profile);
            let placeholder = Policy::new(profile, MasterKey::generate(profile));
            Security::Srtp {
                inbound: placeholder,
                outbound: stream.callee_lines[0].policy().map_err(|e| e.to_string())?,
            }
        } else {
            Security::Plain
        };
        let mode = match (caller.is_srtp(), callee.is_srtp()) {
            (true, true) => Mode::Transcrypt,
            (false, false) => Mode::PassThrough { verify: false },
            // One side SRTP, the other plain: a bridge whose policy allows either.
            _ => Mode::Bridge {
                level: EncryptionLevel::SupportEncryption,
                gateway: SrtpMode::Optional,
                gateway_tls: true,
            },
        };
        let mut leg0 = LegRequest::new(caller);
        leg0.rtcp_mux = stream.caller_mux;
        leg0.direction = sdp.direction(i);
        (leg0.remote, leg0.remote_rtcp) = remotes(sdp, i);
        let leg1 = LegRequest::new(callee);
        let created = self
            .control
            .create_call(CallRequest {
                mode,
                legs: [leg0, leg1],
            })
            .map_err(|e| create_error(&e))?;
        stream.relay = Some(created.id);
        stream.ports = created.legs;
        Ok((stream, None))
    }

    /// Creates the relay call for section `i`, which the callee adds in a re-offer
    /// (RFC 3264 §8.1): a first offer with the roles mirrored. The callee's leg is keyed from
    /// its first usable line and answered in that line's suite, tag and MKI form; the caller
    /// is offered the same transport and suite in a line of the relay's own, and its leg is
    /// keyed when it answers. A plain section is plain on both legs; a secure one without a
    /// usable line is rejected (port 0 both ways).
    fn callee_offer_stream(&self, sdp: &Sdp, i: usize) -> Result<Stream, String> {
        let m = &sdp.media[i];
        let mut stream = Stream::unrelayed(&m.proto, &m.proto);
        stream.offered_cryptex = sdp.cryptex(i);
        let theirs = m
            .crypto_lines()
            .filter_map(|l| l.parse::<CryptoAttribute>().ok())
            .find(|a| a.policy().is_ok());
        if m.port == 0 || (m.is_savp() && theirs.is_none()) {
            return Ok(stream);
        }
        let (callee, caller, mode) = match theirs {
            Some(theirs) => {
                let answer = answer_line(&theirs);
                let callee = srtp(&theirs, &answer)?;
                let offer = CryptoAttribute::generate(1, theirs.profile);
                let caller = Security::Srtp {
                    inbound: Policy::new(theirs.profile, MasterKey::generate(theirs.profile)),
                    outbound: offer.policy().map_err(|e| e.to_string())?,
                };
                stream.callee_params = Some(theirs.params.clone());
                stream.callee_lines = vec![answer.clone()];
                stream.callee_answer = Some(answer);
                stream.caller_line = Some(offer);
                (callee, caller, Mode::Transcrypt)
            }
            None => (
                Security::Plain,
                Security::Plain,
                Mode::PassThrough { verify: false },
            ),
        };
        let mut leg1 = LegRequest::new(callee);
        leg1.rtcp_mux = m.rtcp_mux();
        leg1.direction = sdp.direction(i);
        (leg1.remote, leg1.remote_rtcp) = remotes(sdp, i);
        let created = self
            .control
            .create_call(CallRequest {
                mode,
                legs: [LegRequest::new(caller), leg1],
            })
            .map_err(|e| create_error(&e))?;
        stream.relay = Some(created.id);
        stream.ports = created.legs;
        stream.pending = true;
        Ok(stream)
    }

    fn answer(&self, msg: &Value) -> NgResult {
        let (call_id, from_tag, sdp_text) = required(msg, "from-tag")?;
        let to_tag = msg.get_str("to-tag").unwrap_or("");
        let mut sdp = Sdp::parse(sdp_text).map_err(|e| e.to_string())?;
        let mut calls = self.calls.lock().map_err(|_| "internal error")?;
        let call = calls.get_mut(call_id).ok_or("unknown call-id")?;
        if sdp.media.len() != call.streams.len() {
            return Err("the answer's media sections do not match the offer's".into());
        }
        if call.callee_reoffer && call.to_tag.as_deref() == Some(from_tag) {
            // The caller answers the callee's re-offer.
            self.caller_answers(call, &sdp)?;
            call.callee_reoffer = false;
            let out = render_callee(call, &mut sdp, &self.control, false, |s| {
                s.callee_answer.iter().collect()
            });
            return Ok(ok_sdp(&out));
        }
        if call.from_tag != from_tag {
            return Err("from-tag does not match the offer".into());
        }
        for (i, stream) in call.streams.iter_mut().enumerate() {
            let Some(id) = stream.relay else { continue };
            let m = &sdp.media[i];
            if m.port == 0 {
                // The callee rejected this stream.
                self.end_relay(stream);
                continue;
            }
            let mut update = sdp_update(&sdp, i);
            let declined = m.crypto_lines().next().is_none() && !m.is_savp();
            if !stream.callee_lines.is_empty() && declined && !stream.callee_proto.contains("SAVP")
            {
                // The relay offered SRTP optionally (RTP/AVP with a=crypto) and the callee
                // answered plain RTP: its leg drops the keys and the call becomes a bridge.
                let bridge = Mode::Bridge {
                    level: EncryptionLevel::SupportEncryption,
                    gateway: SrtpMode::Optional,
                    gateway_tls: true,
                };
                self.control
                    .relay()
                    .change_security(id, 1, Security::Plain, Some(bridge))
                    .map_err(|e| e.to_string())?;
                stream.callee_lines.clear();
            } else if !stream.callee_lines.is_empty() {
                let (chosen, answered) = callee_keys(stream, m.crypto_lines())?;
                let p = &answered.params;
                // UNENCRYPTED_* and UNAUTHENTICATED_SRTP are negotiated (RFC 4568 §6.3.2,
                // §6.3.3): an answer may only repeat them, and the relay offered none.
                if p.unencrypted_srtp || p.unencrypted_srtcp || p.unauthenticated_srtp {
                    return Err(format!(
                        "media {i}: the answer adds UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP or \
                         UNAUTHENTICATED_SRTP, which the relay did not offer"
                    ));
                }
                match &stream.callee_params {
                    Some(before) if !same_params(before, p) => {
                        return Err(format!(
                            "media {i}: a later answer cannot change the session parameters"
                        ));
                    }
                    None if p.kdr.is_some() || p.wsh.is_some() => {
                        // Declarative parameters of the callee's own (a key derivation rate,
                        // a replay window): its leg is keyed from the whole line. This is
                        // the first answer: nothing was sent to the callee yet (its address
                        // comes with it), so the leg's sessions can start here.
                        let security = srtp(&answered, &stream.callee_lines[chosen])?;
                        self.control
                            .relay()
                            .change_security(id, 1, security, None)
                            .map_err(|e| e.to_string())?;
                    }
                    _ => {
                        update.inbound_keys = Some(answered.keys.clone());
                        update.outbound_keys = Some(stream.callee_lines[chosen].keys.clone());
                    }
                }
                stream.callee_chosen = chosen;
                stream.callee_params = Some(answered.params);
            } else if m.crypto_lines().next().is_some() && m.is_savp() {
                return Err(format!("media {i}: SRTP answer to a plain offer"));
            }
            let cryptex = stream.offered_cryptex && sdp.cryptex(i);
            update.outbound_cryptex = Some(cryptex);
            self.apply(id, 1, update)?;
            self.apply(id, 0, cryptex_update(cryptex))?;
        }
        call.to_tag = Some(to_tag.to_owned());
        for s in &mut call.streams {
            s.pending = false;
        }
        Ok(ok_sdp(&render_caller(call, &mut sdp, &self.control, false)))
    }

    /// A re-offer from the callee: its new address, direction and keys for leg 1; the
    /// relay's answer keeps its key for the callee under the tag the callee now chose.
    fn reoffer_from_callee(&self, call: &mut NgCall, sdp: &Sdp) -> Result<(), String> {
        // Every existing section is checked first, then the added ones become relay calls,
        // then the changes apply: a refused re-offer changes nothing (and deletes what it
        // made).
        let mut changes = Vec::with_capacity(call.streams.len());
        for (i, stream) in call.streams.iter().enumerate() {
            let Some(id) = stream.relay else { continue };
            let m = &sdp.media[i];
            if m.port == 0 {
                // The section is removed (RFC 3264 §8.2).
                changes.push((i, id, None, None));
                continue;
            }
            let mut update = sdp_update(sdp, i);
            let mut lines = None;
            if let Some(ours) = stream.callee_lines.get(stream.callee_chosen) {
                // A line in the MKI form of the relay's key if there is one (symmetric MKI),
                // else the first, answered with a fresh key in its form.
                let before = stream.callee_params.clone().unwrap_or_default();
                let theirs = &reoffered_line(
                    m,
                    i,
                    ours,
                    &before,
                    |_| true,
                    |a| mki_len(a) == mki_len(ours),
                )?;
                let mut own = ours.clone();
                if mki_len(theirs) != mki_len(ours) {
                    own = answer_line(theirs);
                    own.params = Default::default();
                    update.outbound_keys = Some(own.keys.clone());
                }
                let mut answer = own.clone();
                answer.tag = theirs.tag;
                update.inbound_keys = Some(theirs.keys.clone());
                lines = Some((own, answer));
            }
            changes.push((i, id, Some(update), lines));
        }
        let mut added = Vec::new();
        for i in call.streams.len()..sdp.media.len() {
            match self.callee_offer_stream(sdp, i) {
                Ok(stream) => added.push(stream),
                Err(e) => return Err(self.undo(&added, e)),
            }
        }
        for (i, id, update, lines) in changes {
            let stream = &mut call.streams[i];
            let Some(update) = update else {
                self.end_relay(stream);
                continue;
            };
            if let Err(e) = self.apply(id, 1, update) {
                return Err(self.undo(&added, e));
            }
            stream.offered_cryptex = sdp.cryptex(i);
            if let Some((own, answer)) = lines {
                stream.callee_lines[stream.callee_chosen] = own;
                stream.callee_answer = Some(answer);
            }
        }
        call.streams.extend(added);
        Ok(())
    }

    /// Ends the relay call of `stream`, if it has one, keeping its packet counts.
    fn end_relay(&self, stream: &mut Stream) {
        if let Some(Ok(stats)) = stream
            .relay
            .take()
            .map(|id| self.control.relay().delete_call(id))
        {
            stream.ended.0 += stats.iter().map(|l| l.counters.packets_in).sum::<u64>();
            stream.ended.1 += stats.iter().map(|l| l.counters.packets_out).sum::<u64>();
        }
    }

    /// Deletes the relay calls of `made` (sections a failed re-offer added) and returns
    /// `error`.
    fn undo<'a>(&self, made: impl IntoIterator<Item = &'a Stream>, error: String) -> String {
        for id in made.into_iter().filter_map(|s| s.relay) {
            let _ = self.control.relay().delete_call(id);
        }
        error
    }

    /// The caller's answer to the callee's re-offer: its address, direction and (possibly
    /// new) key on the relay's tag, for leg 0.
    fn caller_answers(&self, call: &mut NgCall, sdp: &Sdp) -> Result<(), String> {
        for (i, stream) in call.streams.iter_mut().enumerate() {
            let Some(id) = stream.relay else { continue };
            if sdp.media[i].port == 0 {
                // The caller rejected this stream (one the callee added, say).
                self.end_relay(stream);
                continue;
            }
            let mut update = sdp_update(sdp, i);
            if let Some(ours) = &stream.caller_line {
                let theirs = sdp.media[i]
                    .crypto_lines()
                    .filter_map(|l| l.parse::<CryptoAttribute>().ok())
                    .find(|a| a.tag == ours.tag && a.profile == ours.profile)
                    .ok_or_else(|| format!("media {i}: the answer drops the SRTP line"))?;
                theirs.policy().map_err(|e| e.to_string())?;
                let p = &theirs.params;
                if stream.pending {
                    // A section the callee added: this is the caller's first answer on it,
                    // to a line of the relay's own with no session parameters.
                    if p.unencrypted_srtp || p.unencrypted_srtcp || p.unauthenticated_srtp {
                        return Err(format!(
                            "media {i}: the answer adds UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP \
                             or UNAUTHENTICATED_SRTP, which the relay did not offer"
                        ));
                    }
                    if p.kdr.is_some() || p.wsh.is_some() {
                        // Its own key derivation rate or replay window: the leg is keyed
                        // from the whole line, before anything was sent to the caller.
                        let security = srtp(&theirs, ours)?;
                        self.control
                            .relay()
                            .change_security(id, 0, security, None)
                            .map_err(|e| e.to_string())?;
                    } else {
                        update.inbound_keys = Some(theirs.keys.clone());
                    }
                    stream.caller_params = theirs.params.clone();
                } else {
                    update.inbound_keys = Some(theirs.keys);
                }
            }
            let cryptex = stream.offered_cryptex && sdp.cryptex(i);
            update.outbound_cryptex = Some(cryptex);
            self.apply(id, 0, update)?;
            self.apply(id, 1, cryptex_update(cryptex))?;
            stream.pending = false;
        }
        Ok(())
    }

    /// Applies `update` to leg `leg` of relay call `id`.
    fn apply(&self, id: u64, leg: usize, update: LegUpdate) -> Result<(), String> {
        self.control
            .relay()
            .update_call(id, leg, update)
            .map_err(|e| e.to_string())
    }

    /// A re-offer from the caller (re-INVITE: hold, resume, a moved endpoint, new keys): its
    /// address and direction for leg 0 and, where leg 0 is SRTP, its keys: the line on the
    /// tag the relay answered before if the re-offer still has it in the same suite, else the
    /// first usable line of that suite. The relay keeps its own key unless the chosen line's
    /// tag or MKI form changed; then its answer line follows the new line (a fresh key, in
    /// the same MKI form, symmetric MKI), and the leg's streams carry on under it.
    ///
    /// Sections added after the existing ones, and rejected sections offered again with a
    /// port (RFC 3264 §8.1, §8.2), become new relay calls as in a first offer.
    fn reoffer_from_caller(
        &self,
        call: &mut NgCall,
        sdp: &Sdp,
        flags: &Flags,
    ) -> Result<(), String> {
        // Every section is checked before any is applied, then new sections become relay
        // calls, then the changes apply: a refused re-offer changes nothing (and deletes
        // what it made).
        let mut changes = Vec::with_capacity(call.streams.len());
        for (i, stream) in call.streams.iter().enumerate() {
            let Some(id) = stream.relay else { continue };
            let m = &sdp.media[i];
            if m.port == 0 {
                // The section is removed (RFC 3264 §8.2).
                changes.push((i, id, None, None));
                continue;
            }
            let mut update = sdp_update(sdp, i);
            let mut line = None;
            if let Some(ours) = &stream.caller_line {
                let theirs = &reoffered_line(
                    m,
                    i,
                    ours,
                    &stream.caller_params,
                    // The caller's leg keeps its suite whatever the flags say (see
                    // `offer_stream`); they shape only the relay's offers.
                    |_| true,
                    |a| a.tag == ours.tag,
                )?;
                if theirs.tag != ours.tag || mki_len(theirs) != mki_len(ours) {
                    let own = answer_line(theirs);
                    update.outbound_keys = Some(own.keys.clone());
                    line = Some(own);
                }
                update.inbound_keys = Some(theirs.keys.clone());
            }
            changes.push((i, id, Some(update), line));
        }
        let reopened = |i: usize| {
            call.streams
                .get(i)
                .is_none_or(|s| s.relay.is_none() && sdp.media[i].port != 0)
        };
        let mut fresh: Vec<(usize, Stream)> = Vec::new();
        for i in (0..sdp.media.len()).filter(|&i| reopened(i)) {
            match self.offer_stream(sdp, i, flags) {
                Ok((mut stream, _)) => {
                    stream.pending = true;
                    fresh.push((i, stream));
                }
                Err(e) => {
                    return Err(self.undo(fresh.iter().map(|(_, s)| s), e));
                }
            }
        }
        for (i, id, update, line) in changes {
            let Some(update) = update else {
                self.end_relay(&mut call.streams[i]);
                continue;
            };
            if let Err(e) = self.apply(id, 0, update) {
                return Err(self.undo(fresh.iter().map(|(_, s)| s), e));
            }
            if let Some(own) = line {
                call.streams[i].caller_line = Some(own);
            }
            call.streams[i].offered_cryptex = sdp.cryptex(i);
        }
        for (i, mut stream) in fresh {
            match call.streams.get_mut(i) {
                Some(s) => {
                    stream.ended = s.ended;
                    *s = stream;
                }
                None => call.streams.push(stream),
            }
        }
        Ok(())
    }

    fn delete(&self, msg: &Value) -> NgResult {
        let call_id = msg.get_str("call-id").ok_or("missing call-id")?;
        let mut call = self
            .calls
            .lock()
            .map_err(|_| "internal error")?
            .remove(call_id)
            .ok_or("unknown call-id")?;
        // One entry per media section, in order: the packets of its relay call and of the
        // ones it had before (a section removed, then re-opened).
        let mut totals = Vec::new();
        for stream in &mut call.streams {
            self.end_relay(stream);
            let (packets_in, packets_out) = stream.ended;
            totals.push(dict([
                ("packets-in", int(packets_in)),
                ("packets-out", int(packets_out)),
            ]));
        }
        Ok(dict([
            ("result", Value::str("ok")),
            ("streams", Value::List(totals)),
        ]))
    }

    fn query(&self, msg: &Value) -> NgResult {
        let call_id = msg.get_str("call-id").ok_or("missing call-id")?;
        let calls = self.calls.lock().map_err(|_| "internal error")?;
        let call = calls.get(call_id).ok_or("unknown call-id")?;
        // One entry per media section, in order; a section without a relay call (rejected,
        // removed, ended) has no legs.
        let mut streams = Vec::new();
        for s in &call.streams {
            let Some(info) = s.relay.and_then(|id| self.control.relay().call(id).ok()) else {
                streams.push(Value::List(Vec::new()));
                continue;
            };
            let legs = info
                .legs
                .iter()
                .zip(&s.ports)
                .map(|(l, p)| {
                    dict([
                        ("local", Value::str(&p.rtp.to_string())),
                        (
                            "remote",
                            Value::str(&l.remote_rtp.map(|a| a.to_string()).unwrap_or_default()),
                        ),
                        ("srtp", int(u64::from(l.srtp))),
                        ("packets-in", int(l.stats.counters.packets_in)),
                        ("packets-out", int(l.stats.counters.packets_out)),
                        ("drops", int(l.stats.counters.drops.total())),
                    ])
                })
                .collect();
            streams.push(Value::List(legs));
        }
        Ok(dict([
            ("result", Value::str("ok")),
            ("from-tag", Value::str(&call.from_tag)),
            ("to-tag", Value::str(call.to_tag.as_deref().unwrap_or(""))),
            ("age", int(call.created.elapsed().as_secs())),
            ("streams", Value::List(streams)),
        ]))
    }

    fn list(&self) -> Value {
        let ids: Vec<Value> = self
            .calls
            .lock()
            .map(|mut c| {
                self.forget_ended(&mut c, None);
                c.keys().map(|k| Value::str(k)).collect()
            })
            .unwrap_or_default();
        dict([("result", Value::str("ok")), ("calls", Value::List(ids))])
    }
}

impl Ng {
    /// Drops calls all of whose relay calls have ended by themselves (inactivity), with
    /// their keys, and the calls without media beyond the cap (never `working_on`, the call
    /// the command is about).
    fn forget_ended(&self, calls: &mut HashMap<String, NgCall>, working_on: Option<&str>) {
        let running = self.control.relay().calls();
        let live = |id: u64| running.binary_search(&id).is_ok();
        calls.retain(|_, c| {
            // A call whose every section is rejected (port 0 in the offer or the answer) is
            // kept for a re-offer that opens one, or its delete (capped below).
            let keep = c.carries_nothing() || c.streams.iter().filter_map(|s| s.relay).any(live);
            if !keep {
                // Collected, so the relay does not keep their final figures for nobody.
                for s in &mut c.streams {
                    self.end_relay(s);
                }
            }
            keep
        });
        // In the calls kept, a section whose relay call ended (its media stopped for the
        // inactivity time) counts as rejected from now on: a caller's re-offer re-opens it
        // with a new relay call instead of failing on one that is gone. Its packets stay in
        // the section's totals for `delete`.
        for s in calls.values_mut().flat_map(|c| &mut c.streams) {
            if s.relay.is_some_and(|id| !live(id)) {
                self.end_relay(s);
            }
        }
        let now = Instant::now();
        for c in calls.values_mut() {
            c.emptied = if c.carries_nothing() {
                c.emptied.or(Some(now))
            } else {
                None
            };
        }
        cap_without_media(calls, working_on);
    }
}

/// The ng flags that matter to the relay.
#[derive(Debug, Default)]
struct Flags {
    all: Vec<String>,
    transport: Option<String>,
    sdes_off: bool,
    sdes_no: Vec<String>,
    sdes_only: Vec<String>,
    replace_origin: bool,
}

impl Flags {
    fn of(msg: &Value) -> Self {
        let mut f = Flags {
            all: msg
                .get_strs("flags")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            transport: msg.get_str("transport-protocol").map(str::to_owned),
            ..Flags::default()
        };
        let sdes = msg
            .get_strs("SDES")
            .into_iter()
            .map(str::to_owned)
            .chain(
                f.all
                    .iter()
                    .filter_map(|x| x.strip_prefix("SDES-").map(str::to_owned)),
            )
            .collect::<Vec<_>>();
        for s in sdes {
            if s == "off" || s == "no" {
                f.sdes_off = true;
            } else if let Some(suite) = s.strip_prefix("no-") {
                f.sdes_no.push(suite.to_owned());
            } else if let Some(suite) = s.strip_prefix("only-") {
                f.sdes_only.push(suite.to_owned());
            }
        }
        for x in &f.all {
            if x.starts_with("RTP/") && f.transport.is_none() {
                f.transport = Some(x.clone());
            }
        }
        f.replace_origin = f.has("replace-origin") || msg.get_strs("replace").contains(&"origin");
        f
    }

    fn has(&self, flag: &str) -> bool {
        self.all.iter().any(|x| x.eq_ignore_ascii_case(flag))
    }

    fn suite_allowed(&self, p: Profile) -> bool {
        let name = p.sdes_name();
        !self.sdes_no.iter().any(|n| n.eq_ignore_ascii_case(name))
            && (self.sdes_only.is_empty()
                || self.sdes_only.iter().any(|n| n.eq_ignore_ascii_case(name)))
    }
}

/// The call-id, a tag and the SDP of a command.
fn required<'a>(msg: &'a Value, tag: &str) -> Result<(&'a str, &'a str, &'a str), String> {
    let call_id = msg.get_str("call-id").ok_or("missing call-id")?;
    let tag = msg.get_str(tag).ok_or_else(|| format!("missing {tag}"))?;
    let sdp = msg.get_str("sdp").ok_or("missing sdp")?;
    Ok((call_id, tag, sdp))
}

/// A leg's SRTP: what the endpoint sends under its line, what the relay sends under its own
/// (cryptex, if any, comes with the answer: [`cryptex_update`]).
fn srtp(endpoint: &CryptoAttribute, own: &CryptoAttribute) -> Result<Security, String> {
    Ok(Security::Srtp {
        inbound: endpoint.policy().map_err(|e| e.to_string())?,
        outbound: own.policy().map_err(|e| e.to_string())?,
    })
}

/// The line of re-offered section `m` (number `i`) that re-keys a leg whose relay line is
/// `ours`: among the section's usable lines in `ours`'s suite (that `allowed` lets through),
/// the first that `prefer` picks, else the first; refused if none, or if its session
/// parameters differ from `params`, the leg's.
fn reoffered_line(
    m: &Media,
    i: usize,
    ours: &CryptoAttribute,
    params: &SessionParams,
    allowed: impl Fn(Profile) -> bool,
    prefer: impl Fn(&CryptoAttribute) -> bool,
) -> Result<CryptoAttribute, String> {
    let offered: Vec<CryptoAttribute> = m
        .crypto_lines()
        .filter_map(|l| l.parse::<CryptoAttribute>().ok())
        .filter(|a| a.profile == ours.profile && allowed(a.profile) && a.policy().is_ok())
        .collect();
    let theirs = offered
        .iter()
        .position(prefer)
        .or((!offered.is_empty()).then_some(0))
        .map(|k| offered[k].clone())
        .ok_or_else(|| {
            format!(
                "media {i}: the re-offer has no a=crypto line in {}",
                ours.profile.sdes_name()
            )
        })?;
    if !same_params(&theirs.params, params) {
        return Err(format!(
            "media {i}: a re-offer cannot change the session parameters"
        ));
    }
    Ok(theirs)
}

/// Whether two lines' session parameters key a leg alike: the key derivation rate, the
/// replay window and the negotiated cleartext and tagless flags (`FEC_ORDER` and extensions
/// do not matter to the relay).
fn same_params(a: &SessionParams, b: &SessionParams) -> bool {
    (
        a.kdr,
        a.wsh,
        a.unencrypted_srtp,
        a.unencrypted_srtcp,
        a.unauthenticated_srtp,
    ) == (
        b.kdr,
        b.wsh,
        b.unencrypted_srtp,
        b.unencrypted_srtcp,
        b.unauthenticated_srtp,
    )
}

/// The MKI length of a line's first key (`None` without an MKI): its MKI form.
fn mki_len(a: &CryptoAttribute) -> Option<usize> {
    a.keys.first().and_then(MasterKey::mki).map(|m| m.len())
}

/// The relay's lines toward the callee: for each MKI form (with, without) the caller offered
/// in `profile`, a fresh line of that form; one line without MKI when the caller had none.
fn callee_lines(offered: &[CryptoAttribute], profile: Profile) -> Vec<CryptoAttribute> {
    let mut lines: Vec<CryptoAttribute> = Vec::new();
    for a in offered.iter().filter(|a| a.profile == profile) {
        let has_mki = a.keys.first().and_then(MasterKey::mki).is_some();
        if lines
            .iter()
            .any(|l| l.keys.first().and_then(MasterKey::mki).is_some() == has_mki)
        {
            continue;
        }
        let mut line = answer_line(a);
        line.tag = lines.len() as u32 + 1;
        // An offer of the relay's own: full SRTP, whatever the caller negotiated on its leg.
        line.params = Default::default();
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(CryptoAttribute::generate(1, profile));
    }
    lines
}

/// Which of the relay's offered lines the callee chose, and the callee's line answering it.
fn callee_keys<'a>(
    stream: &Stream,
    answer: impl Iterator<Item = &'a str>,
) -> Result<(usize, CryptoAttribute), String> {
    for line in answer {
        let Ok(a) = line.parse::<CryptoAttribute>() else {
            continue;
        };
        let Some((index, ours)) = stream
            .callee_lines
            .iter()
            .enumerate()
            .find(|(_, l)| l.tag == a.tag)
        else {
            continue;
        };
        if a.profile != ours.profile {
            return Err(format!(
                "the answer chose {} for tag {}, offered {}",
                a.profile.sdes_name(),
                a.tag,
                ours.profile.sdes_name()
            ));
        }
        a.policy().map_err(|e| e.to_string())?;
        return Ok((index, a));
    }
    Err("the answer accepts none of the offered a=crypto lines (a plain answer to an SRTP offer is not supported)".into())
}

/// What section `i` of an offer or answer changes on its endpoint's leg: address and
/// direction.
fn sdp_update(sdp: &Sdp, i: usize) -> LegUpdate {
    let (remote, remote_rtcp) = remotes(sdp, i);
    LegUpdate {
        remote,
        remote_rtcp,
        direction: Some(sdp.direction(i)),
        ..LegUpdate::default()
    }
}

/// A leg's cryptex (RFC 9335) after an answer: on when the offer and the answer both carried
/// `a=cryptex` (§4), for what the relay sends either endpoint.
fn cryptex_update(on: bool) -> LegUpdate {
    LegUpdate {
        outbound_cryptex: Some(on),
        ..LegUpdate::default()
    }
}

/// The remote RTP and RTCP addresses of section `i`; none for a held (0.0.0.0) address.
fn remotes(sdp: &Sdp, i: usize) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let Some(ip) = sdp.address(i).filter(|ip| !ip.is_unspecified()) else {
        return (None, None);
    };
    let m = &sdp.media[i];
    let rtp = SocketAddr::new(ip, m.port);
    let rtcp = if m.rtcp_mux() {
        Some(rtp)
    } else {
        m.rtcp()
            .map(|(port, addr)| SocketAddr::new(addr.unwrap_or(ip), port))
    };
    (Some(rtp), rtcp)
}

/// The description toward the callee (leg 1), with the relay lines `lines` picks.
fn render_callee(
    call: &NgCall,
    sdp: &mut Sdp,
    control: &Control,
    replace_origin: bool,
    lines: impl Fn(&Stream) -> Vec<&CryptoAttribute>,
) -> String {
    sdp.set_address(control.media_address(), replace_origin);
    sdp.drop_session_transport();
    for (m, s) in sdp.media.iter_mut().zip(&call.streams) {
        if s.relay.is_none() {
            m.reject();
            continue;
        }
        let lines: Vec<String> = lines(s).iter().map(|l| format!("a={l}")).collect();
        let p = s.ports[1];
        m.rewrite(
            p.rtp.port(),
            p.rtcp.map(|a| a.port()),
            &s.callee_proto,
            &lines,
        );
    }
    sdp.to_text()
}

/// The description toward the caller (leg 0): the relay's answer line on the caller's tag.
fn render_caller(call: &NgCall, sdp: &mut Sdp, control: &Control, replace_origin: bool) -> String {
    sdp.set_address(control.media_address(), replace_origin);
    sdp.drop_session_transport();
    for (m, s) in sdp.media.iter_mut().zip(&call.streams) {
        if s.relay.is_none() {
            m.reject();
            continue;
        }
        let proto = match &s.caller_line {
            // Optional SRTP accepted: RFC 8643 keeps RTP/AVP; Microsoft's peers expect SAVP.
            Some(_) if !s.caller_proto.contains("SAVP") && s.caller_legacy_osrtp => {
                s.caller_proto.replace("RTP/AVP", "RTP/SAVP")
            }
            _ => s.caller_proto.clone(),
        };
        let lines: Vec<String> = s.caller_line.iter().map(|l| format!("a={l}")).collect();
        let p = s.ports[0];
        let rtcp = if s.caller_mux {
            None
        } else {
            p.rtcp.map(|a| a.port())
        };
        m.rewrite(p.rtp.port(), rtcp, &proto, &lines);
    }
    sdp.to_text()
}

fn ok_sdp(sdp: &str) -> Value {
    dict([("result", Value::str("ok")), ("sdp", Value::str(sdp))])
}

fn int(v: u64) -> Value {
    Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

fn create_error(e: &CreateError) -> String {
    match e {
        CreateError::Relay(RelayError::PortsExhausted) => {
            "no free media port left in the configured range".into()
        }
        other => other.to_string(),
    }
}

fn truncate(s: &str) -> &str {
    s.get(..32).unwrap_or(s)
}
