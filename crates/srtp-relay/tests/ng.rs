//! The rtpengine ng protocol over UDP on loopback, driven the way Kamailio's rtpengine module
//! drives it, with realistic SDP from Lync / Skype for Business, Teams Direct Routing, a plain
//! SIP phone and an RFC 8643 OSRTP endpoint; after each offer/answer, media actually flows
//! through the allocated ports (SRTP with the offered keys, decrypted with the relay's keys).

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use srtp_relay::control::bencode::{dict, Value};
use srtp_relay::control::server::{ApiAuth, Server};
use support::{config, flows, session, socket};

/// Keys the endpoints offer (key||salt, 30 bytes, base64).
const KEY_A: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
const KEY_A2: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk";
const KEY_B: &str = "MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0";

struct Ng {
    server: Server,
    sock: UdpSocket,
    cookie: u32,
}

impl Ng {
    async fn start(ports: (u16, u16)) -> Self {
        Self::start_with(config(ports)).await
    }

    async fn start_with(mut c: srtp_relay::config::Config) -> Self {
        c.api.enabled = false;
        let server = Server::start(
            &c,
            &ApiAuth {
                files: None,
                roles: Default::default(),
            },
        )
        .await
        .unwrap();
        let sock = socket();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Self {
            server,
            sock,
            cookie: 0,
        }
    }

    /// A relay and two endpoints' media sockets.
    async fn with_peers(ports: (u16, u16)) -> (Self, UdpSocket, UdpSocket) {
        (Self::start(ports).await, socket(), socket())
    }

    /// Deletes `call` (which must exist) and stops the relay.
    async fn finish(mut self, call: &str) {
        assert_eq!(self.delete(call).get_str("result"), Some("ok"));
        assert!(self.server.control().relay().calls().is_empty());
        self.server.stop().await;
    }

    fn raw(&self, datagram: &[u8]) -> Vec<u8> {
        self.sock
            .send_to(datagram, self.server.ng_addr().unwrap())
            .unwrap();
        support::recv(&self.sock).expect("ng reply")
    }

    /// Sends a command; returns the reply dictionary.
    fn send(&mut self, entries: Vec<(&str, Value)>) -> Value {
        self.cookie += 1;
        let cookie = format!("{:x}_{}", self.cookie, std::process::id());
        let mut datagram = format!("{cookie} ").into_bytes();
        datagram.extend(dict(entries).encode());
        let reply = self.raw(&datagram);
        let rest = reply
            .strip_prefix(format!("{cookie} ").as_bytes())
            .expect("same cookie");
        Value::decode(rest).unwrap()
    }

    fn offer(&mut self, call: &str, sdp: &str, extra: Vec<(&str, Value)>) -> String {
        let mut e = vec![
            ("command", Value::str("offer")),
            ("call-id", Value::str(call)),
            ("from-tag", Value::str("tag-a")),
            ("sdp", Value::str(sdp)),
        ];
        e.extend(extra);
        sdp_of(&self.send(e))
    }

    fn answer(&mut self, call: &str, sdp: &str) -> Value {
        self.send(vec![
            ("command", Value::str("answer")),
            ("call-id", Value::str(call)),
            ("from-tag", Value::str("tag-a")),
            ("to-tag", Value::str("tag-b")),
            ("sdp", Value::str(sdp)),
        ])
    }

    fn answer_ok(&mut self, call: &str, sdp: &str) -> String {
        sdp_of(&self.answer(call, sdp))
    }

    /// A command of the transaction the callee started (its re-INVITE): the callee's tag
    /// as `from-tag`. Returns the SDP of the reply.
    fn callee_says(&mut self, command: &str, call: &str, sdp: &str) -> String {
        sdp_of(&self.send(vec![
            ("command", Value::str(command)),
            ("call-id", Value::str(call)),
            ("from-tag", Value::str("tag-b")),
            ("to-tag", Value::str("tag-a")),
            ("sdp", Value::str(sdp)),
        ]))
    }

    fn delete(&mut self, call: &str) -> Value {
        self.send(vec![
            ("command", Value::str("delete")),
            ("call-id", Value::str(call)),
            ("from-tag", Value::str("tag-a")),
        ])
    }

    /// Deletes `call`; returns the reply's per-section totals.
    fn delete_streams(&mut self, call: &str) -> Vec<Value> {
        match self.delete(call).get("streams") {
            Some(Value::List(streams)) => streams.clone(),
            other => panic!("no streams in the delete reply: {other:?}"),
        }
    }
}

/// The SDP of a successful reply.
fn sdp_of(reply: &Value) -> String {
    let reason = reply.get_str("error-reason");
    assert_eq!(reply.get_str("result"), Some("ok"), "{reason:?}");
    reply.get_str("sdp").unwrap().to_owned()
}

/// The relay's media address and port in an SDP it wrote.
fn media_addr(sdp: &str) -> SocketAddr {
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    SocketAddr::new(ip, port)
}

fn crypto_lines(sdp: &str) -> Vec<&str> {
    sdp.lines().filter(|l| l.starts_with("a=crypto:")).collect()
}

/// The SDP's only `a=crypto` line, checked to start and end as given.
fn only_line<'a>(sdp: &'a str, start: &str, end: &str) -> &'a str {
    let lines = crypto_lines(sdp);
    assert_eq!(lines.len(), 1, "{sdp}");
    assert!(
        lines[0].starts_with(start) && lines[0].ends_with(end),
        "{} should start {start:?} and end {end:?}",
        lines[0]
    );
    lines[0]
}

fn m_line(sdp: &str) -> &str {
    sdp.lines().find(|l| l.starts_with("m=audio")).unwrap()
}

fn port(s: &UdpSocket) -> u16 {
    s.local_addr().unwrap().port()
}

/// A Lync / Skype for Business client: optional SRTP the Microsoft way (RTP/AVP with
/// `a=crypto` and `a=encryption:optional`), the two `|2^31` lines with and without MKI.
fn lync_offer(p: u16) -> String {
    format!(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=session\r\nc=IN IP4 127.0.0.1\r\nb=CT:99980\r\nt=0 0\r\n\
         m=audio {p} RTP/AVP 0 8 101\r\n\
         a=candidate:1 1 UDP 2130706431 127.0.0.1 {p} typ host \r\n\
         a=x-candidate-ipv6:1 1 UDP 2130705919 ::1 {p} typ host\r\n\
         a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}|2^31|1:1\r\n\
         a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A2}|2^31\r\n\
         a=maxptime:200\r\na=rtcp:{r}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=encryption:optional\r\n\
         a=ptime:20\r\n",
        r = p + 1
    )
}

/// Lync's `a=crypto:2` line (with the 1-byte MKI) of [`lync_offer`].
fn lync_line() -> String {
    format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}|2^31|1:1")
}

/// A Lync call to an SRTP gateway through the relay, set up.
struct GatewayCall {
    /// The SDP toward the gateway and the relay's answer toward Lync.
    to_b: String,
    to_a: String,
    /// The relay's offered line without MKI, which the gateway accepted, and its tag.
    relay_to_b: String,
    tag: String,
    /// The gateway's answer line.
    gateway_line: String,
}

/// Lync (`a`) offers; the relay offers `RTP/SAVP` toward the gateway (`b`), which answers the
/// relay's line without MKI with `KEY_B` and `params` after it.
fn lync_calls_gateway(
    ng: &mut Ng,
    a: &UdpSocket,
    b: &UdpSocket,
    call: &str,
    params: &str,
) -> GatewayCall {
    let savp = vec![("transport-protocol", Value::str("RTP/SAVP"))];
    let to_b = ng.offer(call, &lync_offer(port(a)), savp);
    let offered = crypto_lines(&to_b);
    assert_eq!(offered.len(), 2, "one line per MKI form: {to_b}");
    let relay_to_b = offered
        .iter()
        .find(|l| l.ends_with("|2^31"))
        .unwrap()
        .to_string();
    let tag = relay_to_b["a=crypto:".len()..relay_to_b.find(' ').unwrap()].to_string();
    let gateway_line = format!("a=crypto:{tag} AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}{params}");
    let answer = format!("{}{gateway_line}\r\n", phone(port(b), "RTP/SAVP"));
    let to_a = ng.answer_ok(call, &answer);
    GatewayCall {
        to_b,
        to_a,
        relay_to_b,
        tag,
        gateway_line,
    }
}

/// SRTP both ways through a call, ten packets each way: endpoint `a` sends under its line
/// `sends[0]` to the relay address in the SDP toward it (`sdp[0]`) and `b` receives with the
/// relay's line toward it (`relay[1]`); then the same from `b` to `a`.
fn both_ways(ends: [&UdpSocket; 2], sdp: [&str; 2], sends: [&str; 2], relay: [&str; 2]) {
    for (from, to) in [(0, 1), (1, 0)] {
        let mut tx = session(sends[from]);
        let mut rx = session(relay[to]);
        let (at, ssrc) = (media_addr(sdp[from]), 0x0b0e_0000 + from as u32);
        flows(
            ends[from],
            Some(&mut tx),
            at,
            ends[to],
            Some(&mut rx),
            ssrc,
            10,
        );
    }
}

/// A plain SIP phone answering.
fn phone(p: u16, proto: &str) -> String {
    format!(
        "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {p} {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=sendrecv\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_list_malformed_and_retransmission() {
    let mut ng = Ng::start((46000, 46099)).await;
    let r = ng.send(vec![("command", Value::str("ping"))]);
    assert_eq!(r.get_str("result"), Some("pong"));
    let reply = ng.raw(b"c1 d7:command");
    assert!(String::from_utf8_lossy(&reply).contains("malformed"));
    let r = ng.send(vec![("command", Value::str("dance"))]);
    assert_eq!(r.get_str("result"), Some("error"));
    // A retransmitted offer (same cookie) is answered from the cache, not allocated again.
    let a = socket();
    let mut datagram = b"retx ".to_vec();
    datagram.extend(
        dict([
            ("command", Value::str("offer")),
            ("call-id", Value::str("retx-call")),
            ("from-tag", Value::str("x")),
            ("sdp", Value::str(&phone(port(&a), "RTP/AVP"))),
        ])
        .encode(),
    );
    let first = ng.raw(&datagram);
    assert_eq!(ng.raw(&datagram), first);
    // Only the peer the reply went to gets it again (it carries the relay's keys when the
    // call is SRTP): another peer with the same cookie is served afresh.
    let other = socket();
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let ping = dict([("command", Value::str("ping"))]).encode();
    let to = ng.server.ng_addr().unwrap();
    other
        .send_to(&[b"retx ".as_slice(), &ping].concat(), to)
        .unwrap();
    let got = support::recv(&other).expect("a reply");
    assert_eq!(got, [b"retx ".as_slice(), b"d6:result4:ponge"].concat());
    // A cookie longer than any client's (128 bytes) is not answered.
    other
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let long = [vec![b'c'; 129], b" ".to_vec(), ping.clone()].concat();
    other.send_to(&long, to).unwrap();
    assert!(support::recv(&other).is_none());
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let fine = [vec![b'c'; 128], b" ".to_vec(), ping].concat();
    other.send_to(&fine, to).unwrap();
    assert!(support::recv(&other).is_some());
    assert_eq!(ng.server.control().relay().calls().len(), 1);
    let r = ng.send(vec![("command", Value::str("list"))]);
    assert_eq!(r.get_strs("calls"), vec!["retx-call"]);
    assert_eq!(ng.delete("retx-call").get_str("result"), Some("ok"));
    assert_eq!(ng.delete("retx-call").get_str("result"), Some("error"));
    assert!(ng.server.control().relay().calls().is_empty());
    ng.server.stop().await;
}

/// Offers whose every section is rejected hold no port, so their number is capped (else a
/// stream of them would grow the relay's memory without end): past 1024 the one empty
/// longest is forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_media_are_capped() {
    let mut ng = Ng::start((45800, 45899)).await;
    let rejected = phone(0, "RTP/AVP");
    for n in 0..=1024 {
        let r = ng.send(vec![
            ("command", Value::str("offer")),
            ("call-id", Value::str(&format!("no-media-{n}"))),
            ("from-tag", Value::str("x")),
            ("sdp", Value::str(&rejected)),
        ]);
        assert_eq!(r.get_str("result"), Some("ok"), "offer {n}");
    }
    assert_eq!(ng.delete("no-media-0").get_str("result"), Some("error"));
    assert_eq!(ng.delete("no-media-1").get_str("result"), Some("ok"));
    assert_eq!(ng.delete("no-media-1024").get_str("result"), Some("ok"));
    // Calls with media do not count.
    let a = socket();
    ng.offer("with-media", &phone(port(&a), "RTP/AVP"), vec![]);
    ng.finish("with-media").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lync_optional_srtp_to_plain_phone() {
    let (mut ng, a, b) = Ng::with_peers((46100, 46199)).await;
    let to_b = ng.offer(
        "lync-1",
        &lync_offer(port(&a)),
        vec![("transport-protocol", Value::str("RTP/AVP"))],
    );
    // Toward the phone: plain RTP/AVP, no keys, no ICE, the relay's address.
    assert!(m_line(&to_b).contains(" RTP/AVP 0 8 101"), "{to_b}");
    assert!(
        crypto_lines(&to_b).is_empty() && !to_b.contains("candidate"),
        "{to_b}"
    );
    assert!(to_b.contains("a=rtpmap:101 telephone-event/8000"));
    assert!(
        !to_b.contains("a=encryption"),
        "Lync's a=encryption:optional says nothing about a plain leg: {to_b}"
    );
    let to_a = ng.answer_ok("lync-1", &phone(port(&b), "RTP/AVP"));
    // Toward Lync: the Microsoft form (RTP/SAVP), its tag 2 line with a symmetric MKI.
    assert!(m_line(&to_a).contains(" RTP/SAVP "), "{to_a}");
    let lines = crypto_lines(&to_a);
    assert_eq!(lines.len(), 1, "{to_a}");
    assert!(lines[0].starts_with("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert!(lines[0].ends_with("|2^31|1:1"), "{}", lines[0]);
    let key_a = format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}|2^31|1:1");
    let (mut a_tx, mut a_rx) = (session(&key_a), session(lines[0]));
    flows(
        &a,
        Some(&mut a_tx),
        media_addr(&to_a),
        &b,
        None,
        0x4c594e43,
        10,
    );
    flows(
        &b,
        None,
        media_addr(&to_b),
        &a,
        Some(&mut a_rx),
        0x50484f4e,
        10,
    );
    ng.finish("lync-1").await;
}

/// Lync's optional SRTP passed on optionally (`OSRTP-offer`) to a callee that declines it: the
/// callee answers RTP/AVP without `a=crypto`, its leg becomes plain and media flows SRTP
/// (Lync) ↔ RTP (callee).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_srtp_declined_by_the_callee_becomes_a_bridge() {
    let (mut ng, a, b) = Ng::with_peers((46900, 46999)).await;
    let to_b = ng.offer(
        "lync-decline",
        &lync_offer(port(&a)),
        vec![("flags", Value::List(vec![Value::str("OSRTP-offer")]))],
    );
    assert!(m_line(&to_b).contains(" RTP/AVP "), "{to_b}");
    assert!(
        !crypto_lines(&to_b).is_empty(),
        "optional SRTP offered on: {to_b}"
    );
    let to_a = ng.answer_ok("lync-decline", &phone(port(&b), "RTP/AVP"));
    let lines = crypto_lines(&to_a);
    assert_eq!(lines.len(), 1, "{to_a}");
    let key_a = format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}|2^31|1:1");
    let (mut a_tx, mut a_rx) = (session(&key_a), session(lines[0]));
    flows(
        &a,
        Some(&mut a_tx),
        media_addr(&to_a),
        &b,
        None,
        0x4445434c,
        10,
    );
    flows(
        &b,
        None,
        media_addr(&to_b),
        &a,
        Some(&mut a_rx),
        0x504c4149,
        10,
    );
    ng.finish("lync-decline").await;
}

/// Lync's optional SRTP passed on optionally (`OSRTP-offer`) to a callee that accepts it, in
/// either form real peers use: RFC 8643's `RTP/AVP` with `a=crypto`, and Microsoft's
/// `RTP/SAVP` with `a=crypto`. Its leg is keyed from its line and media flows SRTP both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_srtp_accepted_by_the_callee_in_either_form() {
    for (n, proto) in [(0u16, "RTP/AVP"), (1, "RTP/SAVP")] {
        let (mut ng, a, b) = Ng::with_peers((45600 + 100 * n, 45699 + 100 * n)).await;
        let call = format!("osrtp-accept-{n}");
        let osrtp = vec![("flags", Value::List(vec![Value::str("OSRTP-offer")]))];
        let to_b = ng.offer(&call, &lync_offer(port(&a)), osrtp);
        assert!(m_line(&to_b).contains(" RTP/AVP "), "{to_b}");
        let relay_to_b = crypto_lines(&to_b)
            .into_iter()
            .find(|l| l.ends_with("|2^31"))
            .unwrap_or_else(|| panic!("a line without MKI: {to_b}"))
            .to_string();
        let tag = &relay_to_b["a=crypto:".len()..relay_to_b.find(' ').unwrap()];
        let callee_line = format!("a=crypto:{tag} AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}");
        let answer = format!("{}{callee_line}\r\n", phone(port(&b), proto));
        let to_a = ng.answer_ok(&call, &answer);
        let relay_to_a = crypto_lines(&to_a);
        assert_eq!(relay_to_a.len(), 1, "{to_a}");
        both_ways(
            [&a, &b],
            [&to_a, &to_b],
            [&lync_line(), &callee_line],
            [relay_to_a[0], &relay_to_b],
        );
        ng.finish(&call).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teams_direct_routing_srtp_both_sides() {
    let (mut ng, a, b) = Ng::with_peers((46200, 46299)).await;
    let p = port(&a);
    let teams = format!(
        "v=0\r\no=- 1 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nb=CT:10000000\r\nt=0 0\r\n\
         m=audio {p} RTP/SAVP 104 9 111 18 0 8 103 97 13 118 101\r\n\
         a=rtcp:{p}\r\na=ice-ufrag:Y2Sb\r\na=ice-pwd:l6ffSUjNpqgB8OczPzp7Y4bA\r\n\
         a=rtcp-mux\r\n\
         a=candidate:1 1 UDP 2130706431 127.0.0.1 {p} typ host\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}|2^31\r\n\
         a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A2}|2^31\r\n\
         a=label:main-audio\r\na=rtpmap:104 SILK/16000\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    let to_b = ng.offer(
        "teams-1",
        &teams,
        vec![
            ("transport-protocol", Value::str("RTP/SAVP")),
            ("flags", Value::List(vec![Value::str("replace-origin")])),
            ("ICE", Value::str("remove")),
        ],
    );
    assert!(m_line(&to_b).contains(" RTP/SAVP "), "{to_b}");
    assert!(
        !to_b.contains("ice-ufrag") && !to_b.contains("rtcp-mux"),
        "{to_b}"
    );
    let offered = crypto_lines(&to_b);
    assert_eq!(offered.len(), 1, "{to_b}");
    assert!(offered[0].starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert!(!offered[0].contains(KEY_A), "the relay offers its own key");
    // The gateway answers tag 1 with its key.
    let gw = format!(
        "{}a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}\r\n",
        phone(port(&b), "RTP/SAVP")
    );
    let to_a = ng.answer_ok("teams-1", &gw);
    assert!(m_line(&to_a).contains(" RTP/SAVP "), "{to_a}");
    assert!(
        to_a.contains("a=rtcp-mux"),
        "rtcp-mux accepted toward Teams: {to_a}"
    );
    let answered = crypto_lines(&to_a);
    assert!(answered[0].starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert!(answered[0].ends_with("|2^31"), "no MKI: {}", answered[0]);

    let mut a_tx = session(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}|2^31"
    ));
    let mut a_rx = session(answered[0]);
    let mut b_tx = session(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}"
    ));
    let mut b_rx = session(offered[0]);
    flows(
        &a,
        Some(&mut a_tx),
        media_addr(&to_a),
        &b,
        Some(&mut b_rx),
        0x7ea3,
        10,
    );
    flows(
        &b,
        Some(&mut b_tx),
        media_addr(&to_b),
        &a,
        Some(&mut a_rx),
        0x6a7e,
        10,
    );

    // The gateway puts the call on hold with a re-INVITE and a new key (tag 5); the caller
    // answers with a new key on the relay's tag. Ports and the relay's keys stay.
    const KEY_B2: &str = "c2Vjb25kLWtleS1mb3ItdGhlLWdhdGV3YXktc2lk";
    const KEY_A3: &str = "dGhpcmQta2V5LWZvci10aGUtdGVhbXMtc2lkZS0x";
    let hold = format!(
        "{}a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B2}\r\n",
        phone(port(&b), "RTP/SAVP").replace("a=sendrecv", "a=sendonly")
    );
    let to_a2 = ng.callee_says("offer", "teams-1", &hold);
    assert_eq!(media_addr(&to_a2), media_addr(&to_a));
    assert_eq!(
        crypto_lines(&to_a2),
        answered,
        "the relay keeps its key toward Teams"
    );
    assert!(to_a2.contains("a=sendonly"), "{to_a2}");
    let teams_answer = format!(
        "{}a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A3}|2^31\r\n",
        phone(port(&a), "RTP/SAVP").replace("a=sendrecv", "a=recvonly")
    );
    let to_b2 = ng.callee_says("answer", "teams-1", &teams_answer);
    assert_eq!(media_addr(&to_b2), media_addr(&to_b));
    let relay_to_b = crypto_lines(&to_b2);
    assert_eq!(relay_to_b.len(), 1);
    assert_eq!(
        relay_to_b[0].replacen("crypto:5", "crypto:1", 1),
        offered[0],
        "the same key toward the gateway, on its new tag"
    );
    // The gateway's new key reaches Teams; Teams (recvonly) is not forwarded.
    let mut b_tx2 = session(&format!(
        "a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B2}"
    ));
    flows(
        &b,
        Some(&mut b_tx2),
        media_addr(&to_b),
        &a,
        Some(&mut a_rx),
        0x6a7f,
        5,
    );
    let mut a_tx2 = session(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A3}"
    ));
    a.send_to(
        &support::protect(&mut a_tx2, &support::rtp(1, 0x7ea4)),
        media_addr(&to_a),
    )
    .unwrap();
    b.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        support::recv(&b).is_none(),
        "held: nothing toward the gateway"
    );

    let q = ng.send(vec![
        ("command", Value::str("query")),
        ("call-id", Value::str("teams-1")),
    ]);
    assert_eq!(q.get_str("result"), Some("ok"));
    assert_eq!(q.get_str("to-tag"), Some("tag-b"));
    ng.finish("teams-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_phone_to_srtp_trunk() {
    let (mut ng, a, b) = Ng::with_peers((46300, 46399)).await;
    let to_b = ng.offer(
        "phone-1",
        &phone(port(&a), "RTP/AVP"),
        vec![
            (
                "flags",
                Value::List(vec![Value::str("SDES-no-AES_CM_128_HMAC_SHA1_32")]),
            ),
            ("transport-protocol", Value::str("RTP/SAVP")),
        ],
    );
    let offered = crypto_lines(&to_b);
    assert_eq!(offered.len(), 1, "{to_b}");
    assert!(offered[0].starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
    let gw = format!(
        "{}a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}\r\n",
        phone(port(&b), "RTP/SAVP")
    );
    let to_a = ng.answer_ok("phone-1", &gw);
    assert!(
        m_line(&to_a).contains(" RTP/AVP ") && crypto_lines(&to_a).is_empty(),
        "{to_a}"
    );
    let mut b_tx = session(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}"
    ));
    let mut b_rx = session(offered[0]);
    flows(&a, None, media_addr(&to_a), &b, Some(&mut b_rx), 0x1234, 10);
    flows(&b, Some(&mut b_tx), media_addr(&to_b), &a, None, 0x4321, 10);
    // An answer that refuses SRTP cannot be honoured on an already keyed leg.
    let (c, _d) = (socket(), socket());
    ng.offer(
        "phone-2",
        &phone(port(&c), "RTP/AVP"),
        vec![("transport-protocol", Value::str("RTP/SAVP"))],
    );
    let r = ng.answer("phone-2", &phone(port(&b), "RTP/AVP"));
    assert_eq!(r.get_str("result"), Some("error"));
    ng.delete("phone-1");
    ng.finish("phone-2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8643_osrtp_offer_is_answered_avp_with_crypto() {
    let (mut ng, a, b) = Ng::with_peers((46400, 46499)).await;
    let osrtp = format!(
        "v=0\r\no=- 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtcp-mux\r\n\
         a=crypto:1 AEAD_AES_256_GCM inline:{}\r\n\
         a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}\r\na=sendrecv\r\n",
        port(&a),
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWI="
    );
    let to_b = ng.offer("osrtp-1", &osrtp, vec![]);
    assert!(
        m_line(&to_b).contains(" RTP/AVP ") && crypto_lines(&to_b).is_empty(),
        "{to_b}"
    );
    let to_a = ng.answer_ok("osrtp-1", &phone(port(&b), "RTP/AVP"));
    // RFC 8643: the answer keeps RTP/AVP and carries a=crypto for the first usable line.
    assert!(m_line(&to_a).contains(" RTP/AVP "), "{to_a}");
    let answered = crypto_lines(&to_a);
    assert_eq!(answered.len(), 1);
    assert!(
        answered[0].starts_with("a=crypto:1 AEAD_AES_256_GCM inline:"),
        "{}",
        answered[0]
    );
    assert!(
        answered[0].ends_with('='),
        "padded base64 for baresip: {}",
        answered[0]
    );
    let mut a_tx = session(crypto_lines(&osrtp)[0]);
    let mut a_rx = session(answered[0]);
    flows(&a, Some(&mut a_tx), media_addr(&to_a), &b, None, 0x0505, 10);
    flows(&b, None, media_addr(&to_b), &a, Some(&mut a_rx), 0x0606, 10);
    // Hold by re-offer: the phone stops receiving.
    let held = osrtp.replace("a=sendrecv", "a=sendonly");
    let again = ng.offer("osrtp-1", &held, vec![]);
    assert_eq!(
        media_addr(&again),
        media_addr(&to_b),
        "a re-offer keeps the ports"
    );
    assert!(again.contains("a=sendonly"));
    ng.finish("osrtp-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_exhaustion_and_draining_are_error_replies() {
    // Room for exactly one call (two port pairs). Below the kernel's ephemeral ports (32768
    // on), so that no socket bound to port 0 elsewhere takes one of the four.
    let (mut ng, a, _b) = Ng::with_peers((31500, 31503)).await;
    ng.offer("one", &phone(port(&a), "RTP/AVP"), vec![]);
    let offer = |call: &str| {
        vec![
            ("command", Value::str("offer")),
            ("call-id", Value::str(call)),
            ("from-tag", Value::str("tag-a")),
            ("sdp", Value::str(&phone(port(&a), "RTP/AVP"))),
        ]
    };
    let r = ng.send(offer("two"));
    assert_eq!(r.get_str("result"), Some("error"));
    assert!(r
        .get_str("error-reason")
        .unwrap()
        .contains("no free media port"));
    ng.server.control().start_draining();
    let r = ng.send(offer("three"));
    assert!(r.get_str("error-reason").unwrap().contains("draining"));
    ng.finish("one").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_and_video_with_video_rejected_by_the_callee() {
    let (mut ng, a, b) = Ng::with_peers((46600, 46699)).await;
    let video = socket();
    let offer = format!(
        "{}m=video {v} RTP/AVP 122 121\r\na=x-caps:121 263:1920:1080:30.0:2000000:1\r\n\
         a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A2}|2^31|1:1\r\n\
         a=rtpmap:122 X-H264UC/90000\r\na=encryption:optional\r\n",
        lync_offer(port(&a)),
        v = port(&video)
    );
    let to_b = ng.offer(
        "av-1",
        &offer,
        vec![("transport-protocol", Value::str("RTP/AVP"))],
    );
    assert_eq!(
        ng.server.control().relay().calls().len(),
        2,
        "one relay call per section"
    );
    assert_eq!(to_b.matches("m=").count(), 2);
    assert!(
        to_b.contains("a=x-caps:121"),
        "unknown attributes are kept: {to_b}"
    );
    let answer = format!("{}m=video 0 RTP/AVP 122\r\n", phone(port(&b), "RTP/AVP"));
    let to_a = ng.answer_ok("av-1", &answer);
    assert!(to_a.contains("m=video 0 "), "{to_a}");
    assert_eq!(
        ng.server.control().relay().calls().len(),
        1,
        "the rejected section's call ended"
    );
    let lines = crypto_lines(&to_a);
    assert_eq!(lines.len(), 1, "keys only for the accepted section: {to_a}");
    let key_a = format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}|2^31|1:1");
    let mut a_tx = session(&key_a);
    flows(&a, Some(&mut a_tx), media_addr(&to_a), &b, None, 0x0a0d, 5);
    ng.finish("av-1").await;
}

/// A caller's re-INVITE with new keys, from a client that re-creates its SRTP context (its
/// sequence numbers and indices start again): the new key is applied on the caller's leg and
/// media flows at once. On the same tag and MKI form the relay keeps its own line; when the
/// re-offer keeps only the line without MKI, the relay answers on that tag without MKI
/// (symmetric MKI), with a fresh key of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_reoffer_with_new_keys_is_applied() {
    let (mut ng, a, b) = Ng::with_peers((46700, 46799)).await;
    let avp = || vec![("transport-protocol", Value::str("RTP/AVP"))];
    let to_b = ng.offer("rekey-1", &lync_offer(port(&a)), avp());
    let to_a = ng.answer_ok("rekey-1", &phone(port(&b), "RTP/AVP"));
    let relay_line = crypto_lines(&to_a)[0].to_string();
    let caller = |key: &str| format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31|1:1");
    let mut a_tx = session(&caller(KEY_A));
    flows(&a, Some(&mut a_tx), media_addr(&to_a), &b, None, 0x1111, 10);

    // New keys on the same tags.
    let rekeyed = lync_offer(port(&a)).replace(KEY_A, KEY_B);
    let again = ng.offer("rekey-1", &rekeyed, avp());
    assert_eq!(media_addr(&again), media_addr(&to_b), "same ports");
    let to_a2 = ng.answer_ok("rekey-1", &phone(port(&b), "RTP/AVP"));
    assert_eq!(crypto_lines(&to_a2), vec![relay_line.as_str()], "{to_a2}");
    let mut a_tx = session(&caller(KEY_B));
    flows(
        &a,
        Some(&mut a_tx),
        media_addr(&to_a2),
        &b,
        None,
        0x1111,
        10,
    );
    let mut a_rx = session(&relay_line);
    flows(&b, None, media_addr(&to_b), &a, Some(&mut a_rx), 0x2222, 10);

    // Only the line without MKI (tag 3), with yet another key. (A key used before would
    // bring back its replay window: a client that restarted its sequence numbers under it
    // would send replays, rightly dropped.)
    let no_mki: String = lync_offer(port(&a))
        .lines()
        .filter(|l| !l.starts_with("a=crypto:2 "))
        .map(|l| format!("{l}\r\n"))
        .collect();
    ng.offer("rekey-1", &no_mki, avp());
    let to_a3 = ng.answer_ok("rekey-1", &phone(port(&b), "RTP/AVP"));
    let line = only_line(
        &to_a3,
        "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:",
        "|2^31",
    );
    assert_ne!(line, relay_line);
    let mut a_tx = session(&format!(
        "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A2}|2^31"
    ));
    flows(
        &a,
        Some(&mut a_tx),
        media_addr(&to_a3),
        &b,
        None,
        0x1111,
        10,
    );
    let mut a_rx = session(line);
    flows(&b, None, media_addr(&to_b), &a, Some(&mut a_rx), 0x3333, 10);

    // A re-offer without a line in the call's suite is refused.
    let none: String = no_mki
        .lines()
        .filter(|l| !l.starts_with("a=crypto:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let r = ng.send(vec![
        ("command", Value::str("offer")),
        ("call-id", Value::str("rekey-1")),
        ("from-tag", Value::str("tag-a")),
        ("sdp", Value::str(&none)),
    ]);
    assert_eq!(r.get_str("result"), Some("error"), "{r:?}");
    ng.finish("rekey-1").await;
}

/// A callee that answered the relay's line without MKI re-offers only a line with a 1-byte
/// MKI: the relay answers on that tag with a key of its own in the same form (symmetric MKI),
/// and media flows both ways under the new keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_reoffer_in_another_mki_form_gets_a_symmetric_answer() {
    let (mut ng, a, b) = Ng::with_peers((46800, 46899)).await;
    let call = lync_calls_gateway(&mut ng, &a, &b, "mki-1", "");
    assert!(
        call.to_b.contains("a=encryption:required") && !call.to_b.contains("a=encryption:optional"),
        "a=encryption describes the RTP/SAVP leg: {}",
        call.to_b
    );
    let (to_a, to_b, plain_form, tag) = (
        call.to_a.as_str(),
        call.to_b.as_str(),
        &call.relay_to_b,
        &call.tag,
    );
    let mut a_tx = session(&lync_line());
    let mut b_rx = session(plain_form);
    flows(
        &a,
        Some(&mut a_tx),
        media_addr(to_a),
        &b,
        Some(&mut b_rx),
        0x0b01,
        5,
    );

    // The gateway re-offers only an MKI line.
    let reoffer = format!(
        "{}a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A2}|2^31|1:1\r\n",
        phone(port(&b), "RTP/SAVP")
    );
    let to_a2 = ng.callee_says("offer", "mki-1", &reoffer);
    assert_eq!(media_addr(&to_a2), media_addr(to_a));
    let lync_answer = format!("{}{}\r\n", phone(port(&a), "RTP/SAVP"), lync_line());
    let to_b2 = ng.callee_says("answer", "mki-1", &lync_answer);
    let answer = only_line(
        &to_b2,
        "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:",
        "|2^31|1:1",
    );
    assert_ne!(
        answer.replacen("crypto:7", &format!("crypto:{tag}"), 1),
        *plain_form
    );
    // Both ways under the new keys.
    let mut b_tx = session(&format!(
        "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A2}|2^31|1:1"
    ));
    let relay_to_a = crypto_lines(to_a)[0].to_string();
    let mut a_rx = session(&relay_to_a);
    flows(
        &b,
        Some(&mut b_tx),
        media_addr(to_b),
        &a,
        Some(&mut a_rx),
        0x0b02,
        5,
    );
    let mut b_rx = session(answer);
    flows(
        &a,
        Some(&mut a_tx),
        media_addr(to_a),
        &b,
        Some(&mut b_rx),
        0x0b03,
        5,
    );
    ng.finish("mki-1").await;
}

/// A callee whose answer line carries session parameters of its own (a key derivation rate,
/// RFC 4568 §6.3.1, declarative): its packets are received under them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_answer_with_a_key_derivation_rate() {
    let (mut ng, a, b) = Ng::with_peers((44000, 44099)).await;
    let call = lync_calls_gateway(&mut ng, &a, &b, "kdr-1", " KDR=2");
    // Ten packets: the gateway's session keys change every four.
    let (to_a, to_b) = (&call.to_a, &call.to_b);
    let mut b_tx = session(&call.gateway_line);
    let mut a_rx = session(crypto_lines(to_a)[0]);
    flows(
        &b,
        Some(&mut b_tx),
        media_addr(to_b),
        &a,
        Some(&mut a_rx),
        0x0c01,
        10,
    );
    let mut a_tx = session(&lync_line());
    let mut b_rx = session(&call.relay_to_b);
    flows(
        &a,
        Some(&mut a_tx),
        media_addr(to_a),
        &b,
        Some(&mut b_rx),
        0x0c02,
        10,
    );

    // The same answer again (a 200 after a 183): the leg's state stays, so a packet the
    // gateway sent before is still a replay.
    let answer = format!("{}{}\r\n", phone(port(&b), "RTP/SAVP"), call.gateway_line);
    ng.answer_ok("kdr-1", &answer);
    let old = support::protect(&mut session(&call.gateway_line), &support::rtp(3, 0x0c01));
    a.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    b.send_to(&old, media_addr(to_b)).unwrap();
    assert!(support::recv(&a).is_none(), "a replay is dropped");
    a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let fresh = support::protect(&mut b_tx, &support::rtp(11, 0x0c01));
    b.send_to(&fresh, media_addr(to_b)).unwrap();
    let mut got = support::recv(&a).expect("the next packet is relayed");
    assert_eq!(
        a_rx.unprotect_rtp(&mut got).unwrap(),
        &support::rtp(11, 0x0c01)[..]
    );
    // An answer that changes the parameters, or adds one the relay did not offer, is refused.
    for params in [" KDR=3", " KDR=2 UNAUTHENTICATED_SRTP"] {
        let line = call.gateway_line.replace(" KDR=2", params);
        let r = ng.answer(
            "kdr-1",
            &format!("{}{line}\r\n", phone(port(&b), "RTP/SAVP")),
        );
        assert_eq!(r.get_str("result"), Some("error"), "{params}: {r:?}");
    }
    // So is a caller re-offer that changes its line's parameters.
    let reoffer = lync_offer(port(&a)).replace("|2^31|1:1\r\n", "|2^31|1:1 KDR=4\r\n");
    let r = ng.send(vec![
        ("command", Value::str("offer")),
        ("call-id", Value::str("kdr-1")),
        ("from-tag", Value::str("tag-a")),
        ("sdp", Value::str(&reoffer)),
        ("transport-protocol", Value::str("RTP/SAVP")),
    ]);
    assert_eq!(r.get_str("result"), Some("error"), "{r:?}");
    ng.finish("kdr-1").await;
}

/// A DTLS-SRTP section (`UDP/TLS/RTP/SAVPF`, `a=fingerprint`, no `a=crypto`), which this
/// relay cannot key, is rejected with port 0 both ways while the SDES section beside it is
/// relayed; an offer with nothing but such a section fails, saying why, and leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtls_section_is_rejected_and_the_rest_relayed() {
    let (mut ng, a, b) = Ng::with_peers((44100, 44199)).await;
    let dtls = "m=video 50000 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n\
                a=fingerprint:sha-256 3F:8C:01:9D:AA:27:6B:5E:C0:41:12:9B:7D:E2:55:0A:\
                61:3C:88:D4:F0:1E:B7:29:46:93:AC:05:7B:DE:11:62\r\na=setup:actpass\r\n";
    // And a section the caller itself rejected, with keys in it.
    const KEY_R: &str = "cmVqZWN0ZWQtc2VjdGlvbi1rZXktbWF0ZXJpYWwx";
    let rejected =
        format!("m=video 0 RTP/SAVP 97\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_R}\r\n");
    let offer = format!("{}{dtls}{rejected}", lync_offer(port(&a)));
    let to_b = ng.offer(
        "dtls-1",
        &offer,
        vec![("transport-protocol", Value::str("RTP/AVP"))],
    );
    assert!(to_b.contains("m=video 0 UDP/TLS/RTP/SAVPF"), "{to_b}");
    assert!(to_b.contains("m=video 0 RTP/SAVP 97"), "{to_b}");
    // Rejected sections carry no keys, fingerprints or candidates of the caller's.
    assert!(
        !to_b.contains(KEY_R) && !to_b.contains("a=fingerprint"),
        "{to_b}"
    );
    assert_eq!(ng.server.control().relay().calls().len(), 1);
    let answer = format!(
        "{}m=video 0 UDP/TLS/RTP/SAVPF 96\r\nm=video 0 RTP/SAVP 97\r\n",
        phone(port(&b), "RTP/AVP")
    );
    let to_a = ng.answer_ok("dtls-1", &answer);
    assert!(to_a.contains("m=video 0 "), "{to_a}");
    let mut a_tx = session(&lync_line());
    flows(&a, Some(&mut a_tx), media_addr(&to_a), &b, None, 0x0d71, 5);
    assert_eq!(ng.delete("dtls-1").get_str("result"), Some("ok"));

    let only =
        format!("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{dtls}");
    let reply = ng.send(vec![
        ("command", Value::str("offer")),
        ("call-id", Value::str("dtls-2")),
        ("from-tag", Value::str("tag-a")),
        ("sdp", Value::str(&only)),
    ]);
    assert_eq!(reply.get_str("result"), Some("error"));
    let reason = reply.get_str("error-reason").unwrap_or_default();
    assert!(reason.contains("a=crypto"), "{reason}");
    assert!(ng.server.control().relay().calls().is_empty());
    ng.server.stop().await;
}

/// `SDES-no-<suite>` shapes only what the relay offers the callee (as in rtpengine): a caller
/// whose every line is in the excluded suite still has its leg keyed in that suite, the callee
/// is offered an allowed one, and the relay transcrypts between the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdes_flags_shape_only_the_offer_to_the_callee() {
    let (mut ng, a, b) = Ng::with_peers((44200, 44299)).await;
    let offer = lync_offer(port(&a)).replace("_SHA1_80", "_SHA1_32");
    let no_32 = Value::List(vec![Value::str("SDES-no-AES_CM_128_HMAC_SHA1_32")]);
    let savp = Value::str("RTP/SAVP");
    let to_b = ng.offer(
        "sdes-no-1",
        &offer,
        vec![("flags", no_32), ("transport-protocol", savp)],
    );
    let offered = crypto_lines(&to_b);
    assert_eq!(offered.len(), 1, "{to_b}");
    assert!(offered[0].contains(" AES_CM_128_HMAC_SHA1_80 "), "{to_b}");
    let tag = &offered[0]["a=crypto:".len()..offered[0].find(' ').unwrap()];
    let gateway_line = format!("a=crypto:{tag} AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}");
    let answer = format!("{}{gateway_line}\r\n", phone(port(&b), "RTP/SAVP"));
    let to_a = ng.answer_ok("sdes-no-1", &answer);
    let answered = crypto_lines(&to_a);
    assert_eq!(answered.len(), 1, "{to_a}");
    assert!(
        answered[0].starts_with("a=crypto:2 AES_CM_128_HMAC_SHA1_32 "),
        "{to_a}"
    );

    let a_line = lync_line().replace("_SHA1_80", "_SHA1_32");
    let sends = [a_line.as_str(), &gateway_line];
    both_ways([&a, &b], [&to_a, &to_b], sends, [answered[0], offered[0]]);
    // A NULL-cipher suite the flags exclude is never the caller's fallback: the section is
    // rejected, and an offer with nothing else fails.
    let null = format!(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/SAVP 0\r\na=crypto:1 NULL_HMAC_SHA1_80 inline:{KEY_A}\r\n",
        port(&a)
    );
    let no_null = Value::List(vec![Value::str("SDES-no-NULL_HMAC_SHA1_80")]);
    let reply = ng.send(vec![
        ("command", Value::str("offer")),
        ("call-id", Value::str("sdes-no-2")),
        ("from-tag", Value::str("tag-a")),
        ("sdp", Value::str(&null)),
        ("flags", no_null),
    ]);
    assert_eq!(reply.get_str("result"), Some("error"), "{reply:?}");
    ng.finish("sdes-no-1").await;
}

/// A re-INVITE that adds video to an audio call (RFC 3264 §8.1), as Lync escalates a call:
/// the new section becomes a relay call of its own and carries media, the audio section
/// keeps its ports; a re-offer that drops a section is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_reoffer_adding_video() {
    let (mut ng, a, b) = Ng::with_peers((44300, 44399)).await;
    let (video_a, video_b) = (socket(), socket());
    let avp = || vec![("transport-protocol", Value::str("RTP/AVP"))];
    let to_b = ng.offer("add-1", &lync_offer(port(&a)), avp());
    ng.answer_ok("add-1", &phone(port(&b), "RTP/AVP"));
    assert_eq!(ng.server.control().relay().calls().len(), 1);

    let offer = format!(
        "{}m=video {v} RTP/AVP 122\r\na=rtpmap:122 X-H264UC/90000\r\n\
         a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A2}|2^31|1:1\r\n",
        lync_offer(port(&a)),
        v = port(&video_a)
    );
    let to_b2 = ng.offer("add-1", &offer, avp());
    assert_eq!(to_b2.matches("m=").count(), 2, "{to_b2}");
    assert_eq!(ng.server.control().relay().calls().len(), 2);
    assert_eq!(
        media_addr(&to_b2),
        media_addr(&to_b),
        "audio keeps its ports"
    );
    let video_to_b = &to_b2[to_b2.find("m=video").unwrap()..];
    assert!(!video_to_b.starts_with("m=video 0 "), "{to_b2}");
    let answer = format!(
        "{}m=video {} RTP/AVP 122\r\na=rtpmap:122 X-H264UC/90000\r\n",
        phone(port(&b), "RTP/AVP"),
        port(&video_b)
    );
    let to_a2 = ng.answer_ok("add-1", &answer);
    let video_to_a = &to_a2[to_a2.find("m=video").unwrap()..];
    let answered = crypto_lines(video_to_a);
    assert_eq!(answered.len(), 1, "{to_a2}");
    let relay_video = SocketAddr::new(
        media_addr(&to_a2).ip(),
        video_to_a.split(' ').nth(1).unwrap().parse().unwrap(),
    );
    let key = format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A2}|2^31|1:1");
    let mut tx = session(&key);
    flows(
        &video_a,
        Some(&mut tx),
        relay_video,
        &video_b,
        None,
        0x71de,
        5,
    );

    // Dropping the video section again is not an RFC 3264 re-offer.
    let reply = ng.send(vec![
        ("command", Value::str("offer")),
        ("call-id", Value::str("add-1")),
        ("from-tag", Value::str("tag-a")),
        ("sdp", Value::str(&lync_offer(port(&a)))),
    ]);
    assert_eq!(reply.get_str("result"), Some("error"));
    assert_eq!(ng.server.control().relay().calls().len(), 2);
    // The video section removed (port 0): its packets still count in the call's totals.
    let to_b3 = ng.offer(
        "add-1",
        &offer.replace(&format!("m=video {}", port(&video_a)), "m=video 0"),
        avp(),
    );
    assert!(to_b3.contains("m=video 0 "), "{to_b3}");
    let q = ng.send(vec![
        ("command", Value::str("query")),
        ("call-id", Value::str("add-1")),
    ]);
    let Some(Value::List(listed)) = q.get("streams") else {
        panic!("{q:?}")
    };
    assert_eq!(listed.len(), 2, "one entry per section: {q:?}");
    assert_eq!(
        listed[1],
        Value::List(Vec::new()),
        "no legs for a removed section"
    );
    let streams = ng.delete_streams("add-1");
    assert_eq!(streams.len(), 2, "one entry per section");
    assert_eq!(
        streams[1].get("packets-in"),
        Some(&Value::Int(5)),
        "{streams:?}"
    );
    assert_eq!(
        streams[1].get("packets-out"),
        Some(&Value::Int(5)),
        "{streams:?}"
    );
    assert!(ng.server.control().relay().calls().is_empty());
    ng.server.stop().await;
}

/// The callee adds video in its own re-INVITE (RFC 3264 §8.1): the relay offers the caller
/// the new section in the callee's suite with a key of its own, keys the caller's leg from
/// its answer, answers the callee on its tag, and video flows both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_reoffer_adding_video() {
    let (mut ng, a, b) = Ng::with_peers((44400, 44499)).await;
    let (video_a, video_b) = (socket(), socket());
    let call = lync_calls_gateway(&mut ng, &a, &b, "cadd-1", "");
    const KEY_V: &str = "dmlkZW8ta2V5LWZyb20tdGhlLWdhdGV3YXktc2lk";
    let gateway_video = format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{KEY_V}");
    let reoffer = format!(
        "{}{}\r\nm=video {} RTP/SAVP 96\r\na=rtpmap:96 H264/90000\r\n{gateway_video}\r\n",
        phone(port(&b), "RTP/SAVP"),
        call.gateway_line,
        port(&video_b)
    );
    let to_a = ng.callee_says("offer", "cadd-1", &reoffer);
    assert_eq!(to_a.matches("m=").count(), 2, "{to_a}");
    let video_to_a = &to_a[to_a.find("m=video").unwrap()..];
    let relay_to_a = crypto_lines(video_to_a)[0].to_string();
    assert!(
        relay_to_a.starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 "),
        "{to_a}"
    );
    // Lync answers with a key derivation rate of its own: its leg is keyed from the whole line.
    let lync_video = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A2} KDR=2");
    let answer = format!(
        "{}{}\r\nm=video {} RTP/SAVP 96\r\n{lync_video}\r\n",
        phone(port(&a), "RTP/SAVP"),
        lync_line(),
        port(&video_a)
    );
    let to_b = ng.callee_says("answer", "cadd-1", &answer);
    let video_to_b = &to_b[to_b.find("m=video").unwrap()..];
    let relay_to_b = crypto_lines(video_to_b)[0].to_string();
    assert!(
        relay_to_b.starts_with("a=crypto:7 "),
        "on the callee's tag: {to_b}"
    );
    // Video both ways: Lync's key to the gateway's socket, the gateway's back.
    let ways = [
        (&video_a, &lync_video, video_to_a, &video_b, &relay_to_b),
        (&video_b, &gateway_video, video_to_b, &video_a, &relay_to_a),
    ];
    for (ssrc, (from, key, section, at, relay_key)) in (0x7a1d..).zip(ways) {
        let port = section.split(' ').nth(1).unwrap().parse().unwrap();
        let to = SocketAddr::new(media_addr(&to_a).ip(), port);
        let (mut tx, mut rx) = (session(key), session(relay_key));
        flows(from, Some(&mut tx), to, at, Some(&mut rx), ssrc, 5);
    }
    ng.finish("cadd-1").await;
}

/// A re-INVITE adding video that the callee refuses (488: no ng answer) leaves the call as
/// it was: the next re-offer, without the video section, is accepted and the unanswered
/// section's relay call ends. A later re-offer adds video again; one with the video port set
/// to 0 removes it (RFC 3264 §8.2), toward the callee too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reinvite_adding_video_leaves_the_call_as_it_was() {
    let (mut ng, a, b) = Ng::with_peers((44500, 44599)).await;
    let avp = || vec![("transport-protocol", Value::str("RTP/AVP"))];
    let calls = |ng: &Ng| ng.server.control().relay().calls().len();
    ng.offer("refused-1", &lync_offer(port(&a)), avp());
    ng.answer_ok("refused-1", &phone(port(&b), "RTP/AVP"));
    let video = |p: u16| {
        format!(
            "{}m=video {p} RTP/AVP 122\r\na=rtpmap:122 X-H264UC/90000\r\n\
             a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A2}|2^31|1:1\r\n",
            lync_offer(port(&a))
        )
    };
    ng.offer("refused-1", &video(port(&a) + 10), avp());
    assert_eq!(calls(&ng), 2);
    // 488: the caller puts the call on hold with the sections it had.
    let hold = lync_offer(port(&a)).replace("a=ptime:20", "a=sendonly");
    let to_b = ng.offer("refused-1", &hold, avp());
    assert_eq!(to_b.matches("m=").count(), 1, "{to_b}");
    assert_eq!(calls(&ng), 1, "the unanswered section's relay call ended");

    ng.offer("refused-1", &video(port(&a) + 10), avp());
    let answer = format!(
        "{}m=video {} RTP/AVP 122\r\n",
        phone(port(&b), "RTP/AVP"),
        port(&b) + 10
    );
    let to_a = ng.answer_ok("refused-1", &answer);
    assert!(!to_a.contains("m=video 0 "), "{to_a}");
    assert_eq!(calls(&ng), 2);
    let to_b = ng.offer("refused-1", &video(0), avp());
    assert!(to_b.contains("m=video 0 "), "{to_b}");
    assert_eq!(calls(&ng), 1, "the removed section's relay call ended");
    ng.finish("refused-1").await;
}

/// A section whose media stopped (its relay call ended after the inactivity time) does not
/// block the call: the caller's next re-offer re-opens it with a new relay call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_section_that_timed_out_is_reopened_by_a_reoffer() {
    let mut c = config((44600, 44699));
    c.media.inactivity_secs = 2;
    let mut ng = Ng::start_with(c).await;
    let (a, b) = (socket(), socket());
    let (va, vb) = (socket(), socket());
    let both = |p: u16, v: u16| {
        format!(
            "{}m=video {v} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
            phone(p, "RTP/AVP"),
        )
    };
    let to_b = ng.offer("stale-1", &both(port(&a), port(&va)), vec![]);
    let to_a = ng.answer_ok("stale-1", &both(port(&b), port(&vb)));
    assert_eq!(ng.server.control().relay().calls().len(), 2);
    // Video both ways three times, then audio alone until the video's relay call ends
    // (2-3 s: the inactivity time, then the next sweep), however slow the machine.
    let video = |sdp: &str| {
        let m = &sdp[sdp.find("m=video").unwrap()..];
        SocketAddr::new(
            media_addr(sdp).ip(),
            m.split(' ').nth(1).unwrap().parse().unwrap(),
        )
    };
    let (to_a_video, to_b_video) = (video(&to_a), video(&to_b));
    let packet = [0x80u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 1, 2, 3, 4];
    for _ in 0..3 {
        va.send_to(&packet, to_a_video).unwrap();
        vb.send_to(&packet, to_b_video).unwrap();
    }
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while ng.server.control().relay().calls().len() == 2 && std::time::Instant::now() < end {
        a.send_to(&packet, media_addr(&to_a)).unwrap();
        b.send_to(&packet, media_addr(&to_b)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        ng.server.control().relay().calls().len(),
        1,
        "the silent section's relay call ended, the audio's did not"
    );
    let again = ng.offer("stale-1", &both(port(&a), port(&va)), vec![]);
    assert_eq!(again.matches("m=").count(), 2, "{again}");
    assert!(!again.contains("m=video 0 "), "re-opened: {again}");
    assert_eq!(ng.server.control().relay().calls().len(), 2);
    // The video packets of the relay call that timed out stay in the section's totals.
    let streams = ng.delete_streams("stale-1");
    assert_eq!(streams.len(), 2, "one entry per section: {streams:?}");
    assert_eq!(
        streams[1].get("packets-in"),
        Some(&Value::Int(6)),
        "{streams:?}"
    );
    assert!(ng.server.control().relay().calls().is_empty());
    ng.server.stop().await;
}

/// A session from `line` with cryptex (RFC 9335) on.
fn cryptex_session(line: &str) -> srtp_core::Session {
    let attr: srtp_core::sdes::CryptoAttribute = line.parse().unwrap();
    let mut policy = attr.policy().unwrap();
    policy.cryptex = true;
    srtp_core::Session::new(&policy).unwrap()
}

/// An RTP packet with a CSRC and a one-byte header extension (an audio level).
fn rtp_with_extension(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = support::rtp(seq, ssrc);
    let payload = p.split_off(12);
    p[0] |= 0x10 | 1;
    p.extend([0, 0, 0, 9]);
    p.extend([0xBE, 0xDE, 0, 1, 0x10, 0x7f, 0, 0]);
    p.extend(payload);
    p
}

/// Both endpoints announce `a=cryptex` (RFC 9335): the attribute reaches each, the relay
/// decrypts what they send with it, and what the relay sends each is encrypted with it. A
/// re-offer without it, once answered, turns it off both ways; so does an answer without it
/// to an offer with it (the relay still takes cryptex packets from either side).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cryptex_is_used_both_ways_once_offer_and_answer_carry_it() {
    let (mut ng, a, b) = Ng::with_peers((46500, 46599)).await;
    let with = |p: u16, key: &str, cryptex: bool| {
        format!(
            "{}a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n{}",
            phone(p, "RTP/SAVP"),
            if cryptex { "a=cryptex\r\n" } else { "" }
        )
    };
    let to_b = ng.offer("cryptex-1", &with(port(&a), KEY_A, true), vec![]);
    assert!(to_b.contains("a=cryptex\r\n"), "{to_b}");
    let relay_to_b = crypto_lines(&to_b)[0].to_owned();
    let to_a = ng.answer_ok("cryptex-1", &with(port(&b), KEY_B, true));
    assert!(to_a.contains("a=cryptex\r\n"), "{to_a}");
    let relay_to_a = crypto_lines(&to_a)[0].to_owned();

    let mut a_tx = cryptex_session(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}"
    ));
    let mut b_tx = cryptex_session(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}"
    ));
    let mut a_rx = cryptex_session(&relay_to_a);
    let mut b_rx = cryptex_session(&relay_to_b);
    // Sends a cryptex packet each way; checks what arrives is marked (or not) and decrypts.
    let mut seq = 0;
    let mut both_ways = |marked: bool,
                         a_tx: &mut srtp_core::Session,
                         b_tx: &mut srtp_core::Session,
                         a_rx: &mut srtp_core::Session,
                         b_rx: &mut srtp_core::Session,
                         to_a: SocketAddr,
                         to_b: SocketAddr| {
        // The extension's profile sits after the fixed header and the one CSRC.
        let mark = |p: &[u8]| [p[16], p[17]];
        for (from, tx, to, at, rx) in [(&a, a_tx, to_a, &b, b_rx), (&b, b_tx, to_b, &a, a_rx)] {
            seq += 1;
            let plain = rtp_with_extension(seq, 0xc0de_0000 + u32::from(seq % 2));
            let sent = support::protect(tx, &plain);
            assert_eq!(mark(&sent), [0xC0, 0xDE]);
            from.send_to(&sent, to).unwrap();
            let mut got = support::recv(at).expect("relayed");
            if marked {
                assert_eq!(mark(&got), [0xC0, 0xDE], "the relay sends with cryptex");
                assert_ne!(got[12..16], plain[12..16], "the CSRC is encrypted");
            } else {
                assert_eq!(mark(&got), [0xBE, 0xDE], "the relay sends without cryptex");
                assert_eq!(got[12..16], plain[12..16]);
            }
            assert_eq!(rx.unprotect_rtp(&mut got).unwrap(), &plain[..]);
        }
    };
    let (ma, mb) = (media_addr(&to_a), media_addr(&to_b));
    both_ways(true, &mut a_tx, &mut b_tx, &mut a_rx, &mut b_rx, ma, mb);

    // The callee re-offers without the attribute; once the caller answers (with it), cryptex
    // is off both ways.
    ng.callee_says("offer", "cryptex-1", &with(port(&b), KEY_B, false));
    ng.callee_says("answer", "cryptex-1", &with(port(&a), KEY_A, true));
    both_ways(false, &mut a_tx, &mut b_tx, &mut a_rx, &mut b_rx, ma, mb);
    ng.finish("cryptex-1").await;

    // An offer with it, an answer without it: not negotiated.
    let (mut ng, a, b) = Ng::with_peers((46500, 46599)).await;
    let to_b = ng.offer("cryptex-2", &with(port(&a), KEY_A, true), vec![]);
    let to_a = ng.answer_ok("cryptex-2", &with(port(&b), KEY_B, false));
    assert!(!to_a.contains("a=cryptex"), "{to_a}");
    let mut a_tx = cryptex_session(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}"
    ));
    let mut b_tx = cryptex_session(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}"
    ));
    let mut a_rx = cryptex_session(crypto_lines(&to_a)[0]);
    let mut b_rx = cryptex_session(crypto_lines(&to_b)[0]);
    let mut seq = 100;
    let mark = |p: &[u8]| [p[16], p[17]];
    for (from, tx, to, at, rx) in [
        (&a, &mut a_tx, media_addr(&to_a), &b, &mut b_rx),
        (&b, &mut b_tx, media_addr(&to_b), &a, &mut a_rx),
    ] {
        seq += 1;
        let plain = rtp_with_extension(seq, 0xc0de_0002);
        from.send_to(&support::protect(tx, &plain), to).unwrap();
        let mut got = support::recv(at).expect("relayed");
        assert_eq!(mark(&got), [0xBE, 0xDE], "not negotiated: no cryptex");
        assert_eq!(rx.unprotect_rtp(&mut got).unwrap(), &plain[..]);
    }
    ng.finish("cryptex-2").await;
}
