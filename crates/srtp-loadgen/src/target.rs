//! The relays the load generator drives: srtp-relay in this process (its library API), or
//! rtpengine in its own process through its ng control protocol (bencode over UDP).

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use srtp_core::{sdes::CryptoAttribute, MasterKey, Policy, Profile};
use srtp_relay::engine::{EncryptionLevel, Mode as RelayMode, Security, SrtpMode};
use srtp_relay::io::{CallRequest, LegRequest, Relay, RelayConfig};

use crate::cpu::CpuSource;

/// What the calls carry, from the sending side A to the receiving side B.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Media {
    /// Plain RTP in, plain RTP out.
    RtpRtp,
    /// SRTP in, plain RTP out (the mediation bridge).
    SrtpRtp,
    /// SRTP in, SRTP out under other keys (transcrypt).
    SrtpSrtp,
}

/// One call as set up: where side A sends, and the keys side B decrypts with (if SRTP).
pub struct CallSetup {
    /// The relay's address facing side A.
    pub a_target: SocketAddr,
    /// What B's packets are protected with, for SRTP out.
    pub b_policy: Option<Policy>,
}

/// A relay under test.
pub trait Target {
    /// Name for the report.
    fn name(&self) -> String;
    /// Sets up call `n`: A sends from `a` with `a_key` (if SRTP in), B receives on `b`.
    fn create(
        &mut self,
        n: u32,
        a: SocketAddr,
        b: SocketAddr,
        a_key: Option<&MasterKey>,
    ) -> Result<CallSetup>;
    /// Whose CPU time counts.
    fn cpu(&self) -> CpuSource;
    /// Called once every call is set up, before traffic starts.
    fn start(&mut self) {}
    /// Ends every call.
    fn teardown(&mut self) -> Result<()>;
}

pub const PROFILE: Profile = Profile::Aes128CmHmacSha1_80;

/// srtp-relay, in this process.
pub struct InProcess {
    relay: Option<Relay>,
    media: Media,
    calls: Vec<u64>,
}

impl InProcess {
    /// Starts a relay with `workers` threads (named `relay-worker-N`).
    pub fn start(media: Media, workers: usize) -> Result<Self> {
        let relay = Relay::start(RelayConfig {
            workers,
            ports: 10000..=65534,
            ..RelayConfig::default()
        })?;
        Ok(Self {
            relay: Some(relay),
            media,
            calls: Vec::new(),
        })
    }
}

impl Target for InProcess {
    fn name(&self) -> String {
        match &self.relay {
            Some(r) => format!("srtp-relay ({})", r.io_driver().name()),
            None => "srtp-relay".into(),
        }
    }

    fn create(
        &mut self,
        _n: u32,
        a: SocketAddr,
        b: SocketAddr,
        a_key: Option<&MasterKey>,
    ) -> Result<CallSetup> {
        let relay = self.relay.as_ref().ok_or_else(|| anyhow!("stopped"))?;
        let srtp = |inbound: &MasterKey| Security::Srtp {
            inbound: Policy::new(PROFILE, inbound.clone()),
            outbound: Policy::new(PROFILE, MasterKey::generate(PROFILE)),
        };
        let mut b_policy = None;
        let (mode, l0, l1) = match self.media {
            Media::RtpRtp => (
                RelayMode::PassThrough { verify: false },
                Security::Plain,
                Security::Plain,
            ),
            Media::SrtpRtp => (
                RelayMode::Bridge {
                    level: EncryptionLevel::SupportEncryption,
                    gateway: SrtpMode::NotSupported,
                    gateway_tls: true,
                },
                srtp(a_key.ok_or_else(|| anyhow!("no key"))?),
                Security::Plain,
            ),
            Media::SrtpSrtp => {
                let out = MasterKey::generate(PROFILE);
                b_policy = Some(Policy::new(PROFILE, out.clone()));
                (
                    RelayMode::Transcrypt,
                    srtp(a_key.ok_or_else(|| anyhow!("no key"))?),
                    Security::Srtp {
                        inbound: Policy::new(PROFILE, MasterKey::generate(PROFILE)),
                        outbound: Policy::new(PROFILE, out),
                    },
                )
            }
        };
        let leg = |security, remote| {
            let mut l = LegRequest::new(security);
            l.remote = Some(remote);
            l.rtcp_mux = true;
            l
        };
        let created = relay.create_call(CallRequest {
            mode,
            legs: [leg(l0, a), leg(l1, b)],
        })?;
        self.calls.push(created.id);
        Ok(CallSetup {
            a_target: created.legs[0].rtp,
            b_policy,
        })
    }

    fn cpu(&self) -> CpuSource {
        CpuSource::OwnThreads("relay-worker")
    }

    fn teardown(&mut self) -> Result<()> {
        if let Some(relay) = self.relay.take() {
            for id in self.calls.drain(..) {
                let _ = relay.delete_call(id);
            }
            relay.shutdown();
        }
        Ok(())
    }
}

/// A relay in its own process driven through the ng protocol: rtpengine, or `srtp-relay serve`.
pub struct Rtpengine {
    ng: SocketAddr,
    sock: UdpSocket,
    pid: u32,
    media: Media,
    calls: Vec<String>,
}

impl Rtpengine {
    /// Connects to the ng port of the rtpengine with process id `pid`.
    pub fn connect(ng: SocketAddr, pid: u32, media: Media) -> Result<Self> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut t = Self {
            ng,
            sock,
            pid,
            media,
            calls: Vec::new(),
        };
        let r = t.command(&[("command", "ping")])?;
        if r.get("result").map(String::as_str) != Some("pong") {
            bail!("rtpengine at {ng} did not answer ping");
        }
        Ok(t)
    }

    fn command(&mut self, items: &[(&str, &str)]) -> Result<BTreeMap<String, String>> {
        // rtpengine caches replies by cookie: make them unique across runs and across the
        // targets one run creates one after another.
        static COOKIE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let cookie = COOKIE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut msg = format!("{}-{cookie} ", std::process::id()).into_bytes();
        let dict: BTreeMap<&str, &str> = items.iter().copied().collect();
        msg.push(b'd');
        for (k, v) in dict {
            for s in [k, v] {
                msg.extend(format!("{}:", s.len()).as_bytes());
                msg.extend(s.as_bytes());
            }
        }
        msg.push(b'e');
        self.sock.send_to(&msg, self.ng)?;
        let mut buf = vec![0u8; 65536];
        let n = self.sock.recv(&mut buf).context("ng reply")?;
        let reply = &buf[..n];
        let space = reply
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| anyhow!("bad ng reply"))?;
        decode_flat_dict(&reply[space + 1..])
    }
}

impl Target for Rtpengine {
    fn name(&self) -> String {
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", self.pid)).unwrap_or_default();
        format!("{} (ng, pid {})", comm.trim(), self.pid)
    }

    fn create(
        &mut self,
        n: u32,
        a: SocketAddr,
        b: SocketAddr,
        a_key: Option<&MasterKey>,
    ) -> Result<CallSetup> {
        let call_id = format!("loadgen-{}-{n}", std::process::id());
        let (a_proto, b_proto) = match self.media {
            Media::RtpRtp => ("RTP/AVP", "RTP/AVP"),
            Media::SrtpRtp => ("RTP/SAVP", "RTP/AVP"),
            Media::SrtpSrtp => ("RTP/SAVP", "RTP/SAVP"),
        };
        let crypto = a_key.map(|k| CryptoAttribute::new(1, PROFILE, k.clone()).to_string());
        let offer = sdp(a, a_proto, crypto.as_deref());
        let r = self.command(&[
            ("command", "offer"),
            ("call-id", &call_id),
            ("from-tag", "a"),
            ("sdp", &offer),
            ("transport-protocol", b_proto),
            ("replace", "origin"),
        ])?;
        let to_b = r
            .get("sdp")
            .ok_or_else(|| anyhow!("offer failed: {r:?}"))?
            .clone();
        // What rtpengine will protect B's packets with, from the SDP it offers B.
        let b_policy = match self.media {
            Media::SrtpSrtp => {
                let line = to_b
                    .lines()
                    .find(|l| l.starts_with("a=crypto:") && l.contains(PROFILE.sdes_name()))
                    .ok_or_else(|| {
                        anyhow!("no {} crypto line offered to B", PROFILE.sdes_name())
                    })?;
                Some(line.trim().parse::<CryptoAttribute>()?.policy()?)
            }
            _ => None,
        };
        let b_key = (self.media == Media::SrtpSrtp).then(|| MasterKey::generate(PROFILE));
        let b_crypto = b_key.map(|k| CryptoAttribute::new(1, PROFILE, k).to_string());
        let answer = sdp(b, b_proto, b_crypto.as_deref());
        let r = self.command(&[
            ("command", "answer"),
            ("call-id", &call_id),
            ("from-tag", "a"),
            ("to-tag", "b"),
            ("sdp", &answer),
        ])?;
        let to_a = r
            .get("sdp")
            .ok_or_else(|| anyhow!("answer failed: {r:?}"))?;
        let port: u16 = to_a
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("no port in answer SDP"))?;
        self.calls.push(call_id);
        Ok(CallSetup {
            a_target: SocketAddr::new(a.ip(), port),
            b_policy,
        })
    }

    fn cpu(&self) -> CpuSource {
        CpuSource::Process(self.pid)
    }

    fn teardown(&mut self) -> Result<()> {
        for c in std::mem::take(&mut self.calls) {
            let _ = self.command(&[("command", "delete"), ("call-id", &c), ("from-tag", "a")]);
        }
        Ok(())
    }
}

fn sdp(at: SocketAddr, proto: &str, crypto: Option<&str>) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ip = at.ip(),
        port = at.port()
    );
    if let Some(c) = crypto {
        s.push_str("a=");
        s.push_str(c);
        s.push_str("\r\n");
    }
    s
}

/// Decodes the top-level dictionary of an ng reply, keeping its string (and integer) values.
fn decode_flat_dict(b: &[u8]) -> Result<BTreeMap<String, String>> {
    fn string(b: &[u8], i: &mut usize) -> Result<String> {
        let colon = b[*i..]
            .iter()
            .position(|&c| c == b':')
            .ok_or_else(|| anyhow!("bencode"))?
            + *i;
        let len: usize = std::str::from_utf8(&b[*i..colon])?.parse()?;
        let s = b
            .get(colon + 1..colon + 1 + len)
            .ok_or_else(|| anyhow!("bencode"))?;
        *i = colon + 1 + len;
        Ok(String::from_utf8_lossy(s).into_owned())
    }
    fn skip(b: &[u8], i: &mut usize) -> Result<Option<String>> {
        match b.get(*i) {
            Some(b'i') => {
                let e = b[*i..]
                    .iter()
                    .position(|&c| c == b'e')
                    .ok_or_else(|| anyhow!("bencode"))?
                    + *i;
                let v = String::from_utf8_lossy(&b[*i + 1..e]).into_owned();
                *i = e + 1;
                Ok(Some(v))
            }
            Some(b'l') | Some(b'd') => {
                *i += 1;
                while b.get(*i) != Some(&b'e') {
                    if b.get(*i).is_none() {
                        bail!("bencode");
                    }
                    skip(b, i)?;
                }
                *i += 1;
                Ok(None)
            }
            Some(_) => string(b, i).map(Some),
            None => bail!("bencode"),
        }
    }
    let mut out = BTreeMap::new();
    if b.first() != Some(&b'd') {
        bail!("ng reply is not a dictionary");
    }
    let mut i = 1;
    while b.get(i) != Some(&b'e') {
        let k = string(b, &mut i)?;
        if let Some(v) = skip(b, &mut i)? {
            out.insert(k, v);
        }
    }
    Ok(out)
}
