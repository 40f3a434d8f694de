//! Just enough SDP (RFC 8866) to put a relay in the media path: read each media section's
//! address, port, transport, direction, RTCP port (RFC 3605), rtcp-mux (RFC 5761) and SDES
//! `a=crypto` lines (RFC 4568), and write them back pointing at the relay.
//!
//! Everything the relay does not touch (codecs, `a=rtpmap`, `a=ptime`, bandwidth, Microsoft's
//! `a=x-` attributes) is kept as it was, in order. ICE and DTLS attributes are removed from
//! rewritten sections: the relay terminates the transport and speaks neither.

use std::fmt;
use std::net::IpAddr;

use crate::engine::MediaDirection;

/// A parsed session description. Its `Debug` output hides the keys of `a=crypto` lines.
#[derive(Clone, PartialEq, Eq)]
pub struct Sdp {
    /// Session-level lines (`v=`, `o=`, `s=`, `c=`, `t=`, `a=`), without line ends.
    pub session: Vec<String>,
    /// Media sections in order.
    pub media: Vec<Media>,
    /// The line end found in the input (`\r\n` unless the input used bare `\n`).
    eol: &'static str,
}

/// One `m=` section. Its `Debug` output hides the keys of `a=crypto` lines.
#[derive(Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, …
    pub kind: String,
    /// The port; 0 for a rejected or disabled stream.
    pub port: u16,
    /// The transport: `RTP/AVP`, `RTP/SAVP`, `RTP/AVPF`, `RTP/SAVPF`, …
    pub proto: String,
    /// The format list, as written.
    pub formats: String,
    /// The section's lines after `m=`.
    pub lines: Vec<String>,
}

/// Lines as `Debug` shows them: an `a=crypto` line's key parameters (`inline:…`) hidden.
struct Redacted<'a>(&'a [String]);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|l| match l.strip_prefix("a=crypto:") {
                Some(rest) => {
                    let kept: Vec<&str> = rest
                        .split(' ')
                        .map(|w| {
                            if w.contains("inline:") {
                                "inline:<redacted>"
                            } else {
                                w
                            }
                        })
                        .collect();
                    format!("a=crypto:{}", kept.join(" "))
                }
                None => l.clone(),
            }))
            .finish()
    }
}

impl fmt::Debug for Sdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sdp")
            .field("session", &Redacted(&self.session))
            .field("media", &self.media)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Media {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Media")
            .field("kind", &self.kind)
            .field("port", &self.port)
            .field("proto", &self.proto)
            .field("formats", &self.formats)
            .field("lines", &Redacted(&self.lines))
            .finish()
    }
}

/// Why a description could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// An `m=` line that does not read `m=<media> <port> <proto> <fmt …>`.
    #[error("malformed m= line")]
    BadMedia,
    /// No media section.
    #[error("no media section")]
    NoMedia,
    /// Larger than the relay accepts.
    #[error("session description too large")]
    TooLarge,
}

/// Largest description accepted, in bytes.
pub const MAX_SDP_LEN: usize = 64 * 1024;
/// Most media sections accepted.
pub const MAX_MEDIA: usize = 16;

impl Sdp {
    /// Parses `text`.
    ///
    /// # Errors
    /// [`SdpError`].
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        if text.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge);
        }
        let eol = if text.contains("\r\n") || !text.contains('\n') {
            "\r\n"
        } else {
            "\n"
        };
        let mut sdp = Sdp {
            session: Vec::new(),
            media: Vec::new(),
            eol,
        };
        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
            if let Some(m) = line.strip_prefix("m=") {
                if sdp.media.len() == MAX_MEDIA {
                    return Err(SdpError::TooLarge);
                }
                sdp.media.push(Media::parse_m(m)?);
            } else if let Some(m) = sdp.media.last_mut() {
                m.lines.push(line.to_owned());
            } else {
                sdp.session.push(line.to_owned());
            }
        }
        if sdp.media.is_empty() {
            return Err(SdpError::NoMedia);
        }
        Ok(sdp)
    }

    /// The connection address of media section `i` (its own `c=`, else the session's).
    pub fn address(&self, i: usize) -> Option<IpAddr> {
        let media = self.media.get(i)?;
        connection(&media.lines).or_else(|| connection(&self.session))
    }

    /// The direction of media section `i` (its own attribute, else the session's, else
    /// sendrecv; RFC 8866 §6.7).
    pub fn direction(&self, i: usize) -> MediaDirection {
        self.media
            .get(i)
            .and_then(|m| direction(&m.lines))
            .or_else(|| direction(&self.session))
            .unwrap_or_default()
    }

    /// Whether the session or section `i` carries `a=cryptex` (RFC 9335 §4): its author can
    /// receive packets whose CSRCs and header extensions are encrypted.
    pub fn cryptex(&self, i: usize) -> bool {
        let has = |lines: &[String]| lines.iter().any(|l| l == "a=cryptex");
        has(&self.session) || self.media.get(i).is_some_and(|m| has(&m.lines))
    }

    /// Whether the session or section `i` carries Microsoft's `a=encryption:` attribute
    /// ([MS-SDPEXT] 3.1.5.x), the sign of a peer using its optional-SRTP dialect.
    pub fn microsoft_encryption(&self, i: usize) -> bool {
        let has = |lines: &[String]| lines.iter().any(|l| l.starts_with("a=encryption:"));
        has(&self.session) || self.media.get(i).is_some_and(|m| has(&m.lines))
    }

    /// Points every connection line at `addr`; replaces the origin's address too when
    /// `origin` is set.
    pub fn set_address(&mut self, addr: IpAddr, origin: bool) {
        let c = connection_line(addr);
        let mut session_c = false;
        for l in &mut self.session {
            if l.starts_with("c=") {
                *l = c.clone();
                session_c = true;
            } else if origin && l.starts_with("o=") {
                let mut parts: Vec<&str> = l.split(' ').collect();
                if parts.len() == 6 {
                    let family = if addr.is_ipv4() { "IP4" } else { "IP6" };
                    let a = addr.to_string();
                    parts[4] = family;
                    parts[5] = &a;
                    *l = parts.join(" ");
                }
            }
        }
        for m in &mut self.media {
            let mut found = false;
            for l in &mut m.lines {
                if l.starts_with("c=") {
                    *l = c.clone();
                    found = true;
                }
            }
            if !found && !session_c {
                // RFC 8866 §5.7: a connection line is needed somewhere.
                m.lines.insert(0, c.clone());
            }
        }
    }

    /// Removes the session-level attributes the relay owns in every section it carries
    /// (ICE, DTLS, keys: `a=ice-pwd`, `a=fingerprint`, `a=key-mgmt`, a stray `a=crypto`):
    /// the relay terminates each leg's transport and keys, so one endpoint's must not reach
    /// the other.
    pub fn drop_session_transport(&mut self) {
        self.session.retain(|l| !relay_owned(l));
    }

    /// Writes the description with the input's line ends.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for l in &self.session {
            out.push_str(l);
            out.push_str(self.eol);
        }
        for m in &self.media {
            out.push_str(&format!(
                "m={} {} {} {}",
                m.kind, m.port, m.proto, m.formats
            ));
            out.push_str(self.eol);
            for l in &m.lines {
                out.push_str(l);
                out.push_str(self.eol);
            }
        }
        out
    }
}

impl Media {
    fn parse_m(m: &str) -> Result<Self, SdpError> {
        let mut parts = m.splitn(4, ' ');
        let kind = parts
            .next()
            .filter(|k| !k.is_empty())
            .ok_or(SdpError::BadMedia)?;
        let port = parts.next().ok_or(SdpError::BadMedia)?;
        // `port/count` (RFC 8866 §5.14): the relay handles one port pair per section.
        let port = port
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or(SdpError::BadMedia)?;
        let proto = parts.next().ok_or(SdpError::BadMedia)?;
        Ok(Self {
            kind: kind.to_owned(),
            port,
            proto: proto.to_owned(),
            formats: parts.next().unwrap_or("").to_owned(),
            lines: Vec::new(),
        })
    }

    /// Whether the transport is SRTP (`RTP/SAVP`, `RTP/SAVPF`, and the DTLS forms).
    pub fn is_savp(&self) -> bool {
        self.proto.contains("SAVP")
    }

    /// Whether rtcp-mux is offered or accepted (RFC 5761 §5.1.1).
    pub fn rtcp_mux(&self) -> bool {
        self.lines.iter().any(|l| l == "a=rtcp-mux")
    }

    /// The `a=rtcp:` port and address (RFC 3605).
    pub fn rtcp(&self) -> Option<(u16, Option<IpAddr>)> {
        let v = self.lines.iter().find_map(|l| l.strip_prefix("a=rtcp:"))?;
        let mut parts = v.split_whitespace();
        let port = parts.next()?.parse().ok()?;
        let addr = parts.nth(2).and_then(|a| a.parse().ok());
        Some((port, addr))
    }

    /// The `a=crypto:` lines, in order.
    pub fn crypto_lines(&self) -> impl Iterator<Item = &str> {
        self.lines
            .iter()
            .map(String::as_str)
            .filter(|l| l.starts_with("a=crypto:"))
    }

    /// Rewrites the section for a relay leg: port, transport, RTCP attributes and crypto
    /// lines; ICE and DTLS attributes removed; direction and codecs kept.
    ///
    /// Microsoft's `a=encryption:` ([MS-SDPEXT] 3.1.5.22) describes the leg it was written
    /// for, not this one: it is dropped from a plain leg, and on an SRTP leg it says what
    /// this leg does (`required` for `RTP/SAVP`, `optional` for SRTP offered in `RTP/AVP`),
    /// kept only where the section had one, so other peers see no new attribute.
    pub fn rewrite(&mut self, port: u16, rtcp_port: Option<u16>, proto: &str, crypto: &[String]) {
        self.port = port;
        self.proto = proto.to_owned();
        let had_encryption = self.lines.iter().any(|l| l.starts_with("a=encryption:"));
        self.lines
            .retain(|l| !relay_owned(l) && !l.starts_with("a=encryption:"));
        match rtcp_port {
            Some(p) => self.lines.push(format!("a=rtcp:{p}")),
            None => self.lines.push("a=rtcp-mux".into()),
        }
        self.lines.extend(crypto.iter().cloned());
        if had_encryption && !crypto.is_empty() {
            let level = if proto.contains("SAVP") {
                "required"
            } else {
                "optional"
            };
            self.lines.push(format!("a=encryption:{level}"));
        }
    }

    /// Rejects the section (RFC 3264 §6: port 0), keeping its transport and formats and
    /// dropping what the relay would own had it carried the section: keys, ICE and DTLS
    /// attributes (a caller's master keys must not reach the callee in a section the relay
    /// does not carry).
    pub fn reject(&mut self) {
        self.port = 0;
        self.lines
            .retain(|l| !relay_owned(l) && !l.starts_with("a=encryption:"));
    }
}

/// Attributes the relay replaces or drops in a section it rewrites.
fn relay_owned(line: &str) -> bool {
    const OWNED: [&str; 12] = [
        "a=crypto:",
        "a=key-mgmt:",
        "a=rtcp:",
        "a=rtcp-mux",
        "a=candidate:",
        "a=remote-candidates",
        "a=end-of-candidates",
        "a=ice-",
        "a=fingerprint:",
        "a=setup:",
        "a=tls-id:",
        "a=x-candidate",
    ];
    OWNED.iter().any(|p| line.starts_with(p))
}

fn connection(lines: &[String]) -> Option<IpAddr> {
    let c = lines.iter().find_map(|l| l.strip_prefix("c="))?;
    let addr = c.split_whitespace().nth(2)?;
    // Multicast forms carry `/ttl`; the relay uses the address alone.
    addr.split('/').next()?.parse().ok()
}

fn connection_line(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("c=IN IP4 {a}"),
        IpAddr::V6(a) => format!("c=IN IP6 {a}"),
    }
}

fn direction(lines: &[String]) -> Option<MediaDirection> {
    lines.iter().find_map(|l| match l.as_str() {
        "a=sendrecv" => Some(MediaDirection::SendRecv),
        "a=sendonly" => Some(MediaDirection::SendOnly),
        "a=recvonly" => Some(MediaDirection::RecvOnly),
        "a=inactive" => Some(MediaDirection::Inactive),
        _ => None,
    })
}

/// The `sdp_parse` fuzz target's body: parse arbitrary bytes (must not panic, whatever the
/// text); what parses must be readable section by section, print to text that parses back
/// to the same text, and stay parseable after the relay's rewrites (a section rewritten, one
/// rejected, the addresses replaced), keeping its sections.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut sdp) = Sdp::parse(text) else {
        return;
    };
    for i in 0..=sdp.media.len() {
        let _ = (
            sdp.address(i),
            sdp.direction(i),
            sdp.microsoft_encryption(i),
        );
    }
    for m in &sdp.media {
        let _ = (
            m.is_savp(),
            m.rtcp_mux(),
            m.rtcp(),
            m.crypto_lines().count(),
        );
    }
    let once = sdp.to_text();
    let again = Sdp::parse(&once).expect("printed text parses");
    assert_eq!(again.to_text(), once, "printing is a fixpoint");
    sdp.set_address(IpAddr::from([127, 0, 0, 1]), true);
    sdp.drop_session_transport();
    let crypto = ["a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x".to_owned()];
    sdp.media[0].rewrite(40000, Some(40001), "RTP/SAVP", &crypto);
    if let Some(m) = sdp.media.get_mut(1) {
        m.reject();
    }
    let out = Sdp::parse(&sdp.to_text()).expect("rewritten text parses");
    assert_eq!(out.media.len(), sdp.media.len());
    assert_eq!(
        (out.media[0].port, out.media[0].rtcp()),
        (40000, Some((40001, None)))
    );
    assert_eq!(out.address(0), Some(IpAddr::from([127, 0, 0, 1])));
    if let Some(m) = out.media.get(1) {
        assert_eq!((m.port, m.crypto_lines().count()), (0, 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n\
        t=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n\
        a=candidate:1 1 UDP 1 192.0.2.10 4000 typ host\r\n";

    #[test]
    fn reads_and_rewrites() {
        let mut sdp = Sdp::parse(PHONE).unwrap();
        assert_eq!(sdp.address(0), Some("192.0.2.10".parse().unwrap()));
        assert_eq!(sdp.direction(0), MediaDirection::SendOnly);
        assert_eq!(sdp.media[0].port, 4000);
        sdp.set_address("127.0.0.1".parse().unwrap(), true);
        sdp.media[0].rewrite(30000, Some(30001), "RTP/SAVP", &["a=crypto:1 X".into()]);
        let text = sdp.to_text();
        assert!(text.contains("o=- 1 1 IN IP4 127.0.0.1\r\n"), "{text}");
        assert!(text.contains("c=IN IP4 127.0.0.1\r\n"));
        assert!(text.contains("m=audio 30000 RTP/SAVP 0 101\r\n"));
        assert!(text.contains("a=sendonly\r\na=rtcp:30001\r\na=crypto:1 X\r\n"));
        assert!(!text.contains("candidate"));
    }

    #[test]
    fn rtcp_attribute() {
        let sdp =
            Sdp::parse("v=0\nm=audio 4000 RTP/AVP 0\na=rtcp:4005 IN IP4 192.0.2.7\n").unwrap();
        assert_eq!(
            sdp.media[0].rtcp(),
            Some((4005, Some("192.0.2.7".parse().unwrap())))
        );
        assert!(sdp.to_text().ends_with("a=rtcp:4005 IN IP4 192.0.2.7\n"));
    }

    #[test]
    fn keys_ice_and_dtls_never_pass_through() {
        let text = "v=0\r\na=ice-pwd:secret\r\na=fingerprint:sha-256 AA\r\na=tool:x\r\n\
            m=audio 4000 RTP/SAVP 0\r\na=key-mgmt:mikey AQ\r\na=crypto:1 X\r\n\
            m=video 4002 RTP/SAVP 96\r\na=key-mgmt:mikey AQ\r\na=crypto:1 Y\r\n";
        let mut sdp = Sdp::parse(text).unwrap();
        sdp.drop_session_transport();
        sdp.media[0].rewrite(30000, None, "RTP/SAVP", &[]);
        sdp.media[1].reject();
        let out = sdp.to_text();
        for gone in ["ice-pwd", "fingerprint", "key-mgmt", "a=crypto"] {
            assert!(!out.contains(gone), "{gone}: {out}");
        }
        assert!(out.contains("a=tool:x"), "{out}");
    }

    #[test]
    fn debug_hides_keys() {
        let text = "v=0\r\na=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:SESSIONKEY\r\n\
            m=audio 4000 RTP/SAVP 0\r\n\
            a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:MEDIAKEY|2^20|1:4;inline:OTHER KDR=1\r\n";
        let shown = format!("{:?}", Sdp::parse(text).unwrap());
        for secret in ["SESSIONKEY", "MEDIAKEY", "OTHER"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted> KDR=1"));
    }

    #[test]
    fn malformed_is_refused() {
        assert_eq!(Sdp::parse("v=0\r\n"), Err(SdpError::NoMedia));
        assert_eq!(Sdp::parse("m=audio x RTP/AVP 0"), Err(SdpError::BadMedia));
    }
}
