//! Captures written by the test's own SRTP sender (srtp-core, one sending session per
//! direction as a real endpoint has), for every profile, link type, format and IP version:
//! decrypt must give back exactly the plain frames, keep every other record byte for byte and
//! count what it did; encrypt then decrypt must round-trip.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Format, Link, Record};
use pcap_file::Endianness;
use srtp_core::sdes::CryptoAttribute;
use srtp_core::{MasterKey, Mki, Profile, Session, MAX_TRAILER_LEN};
use srtp_pcap::{capture, Config, Engine, Failed, Key, Kind, Mode, Report, StreamKey};

const SSRC_A: u32 = 0x1111_1111; // forward flow, key 1, crosses a sequence rollover
const SSRC_B: u32 = 0x2222_2222; // forward flow, key 1, every other packet time
const SSRC_C: u32 = 0x3333_3333; // reverse flow, key 2 (with an MKI)
const PACKETS: u16 = 80;
const FORGED_AT: u16 = 30;
const REPLAYED_AT: u16 = 40;

/// The two keys of a call: key 1 as `PROFILE:BASE64`, key 2 as an SDES line with a lifetime
/// and a 2-byte MKI.
struct Keys {
    one: String,
    two: String,
}

impl Keys {
    fn new(profile: Profile) -> Self {
        let material = |seed: u8| -> Vec<u8> {
            (0..profile.key_material_len() as u8)
                .map(|i| i.wrapping_mul(7).wrapping_add(seed))
                .collect()
        };
        let one = MasterKey::from_key_material(profile, &material(1)).unwrap();
        let line = CryptoAttribute::new(1, profile, one).to_string();
        let b64 = line.split("inline:").nth(1).unwrap();
        let two = MasterKey::from_key_material(profile, &material(99))
            .unwrap()
            .with_lifetime(1 << 20)
            .with_mki(Mki::new(7, 2).unwrap());
        Self {
            one: format!("{}:{b64}", profile.sdes_name()),
            two: format!("a={}", CryptoAttribute::new(2, profile, two)),
        }
    }

    /// A sending session for a key given as the tool takes it.
    fn sender(text: &str) -> Session {
        let attr: CryptoAttribute = match text.split_once(':') {
            Some((name, b64)) if !text.starts_with("a=") => {
                format!("1 {name} inline:{b64}").parse().unwrap()
            }
            _ => text.parse().unwrap(),
        };
        Session::new(&attr.policy().unwrap()).unwrap()
    }
}

/// What a record of the test call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    /// SRTP or SRTCP that decrypts to the plain frame.
    Secure,
    /// SRTP with a flipped payload bit: fails authentication.
    Forged,
    /// A second copy of an earlier SRTP packet (captured twice): replayed, written decrypted.
    Copy,
    /// An earlier packet's index with other bytes: replayed, kept or dropped.
    Replayed,
    /// Not RTP at all: kept byte for byte.
    Other,
}

struct Call {
    /// The capture as sent (SRTP).
    secure: Vec<Record>,
    /// The same records with every decryptable packet in the clear.
    plain: Vec<Record>,
    what: Vec<What>,
    forward: (SocketAddr, SocketAddr),
}

fn rtp(ssrc: u32, seq: u16, ts: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..160u32).map(|i| (i as u8) ^ (seq as u8) ^ (ssrc as u8)));
    p
}

fn sender_report(ssrc: u32, n: u32) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&ssrc.to_be_bytes());
    for word in [0xE000_0000 + n, n << 16, n * 160, n, n * 160] {
        p.extend_from_slice(&word.to_be_bytes());
    }
    p
}

fn protect(session: &mut Session, plain: &[u8], rtcp: bool) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + MAX_TRAILER_LEN, 0);
    let n = if rtcp {
        session.protect_rtcp(&mut buf, plain.len()).unwrap()
    } else {
        session.protect_rtp(&mut buf, plain.len()).unwrap()
    };
    buf.truncate(n);
    buf
}

/// A call: SSRCs A and B one way under key 1, C the other way under key 2, rtcp-mux sender
/// reports both ways, a forged and a replayed packet, and records that are not RTP.
fn call(link: Link, v6: bool, keys: &Keys) -> Call {
    let (a, b): (SocketAddr, SocketAddr) = if v6 {
        (
            "[fd00::1]:40000".parse().unwrap(),
            "[fd00::2]:5004".parse().unwrap(),
        )
    } else {
        (
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:5004".parse().unwrap(),
        )
    };
    let mut tx_forward = Keys::sender(&keys.one);
    let mut tx_reverse = Keys::sender(&keys.two);
    let mut call = Call {
        secure: Vec::new(),
        plain: Vec::new(),
        what: Vec::new(),
        forward: (a, b),
    };
    let start = Duration::new(1_700_000_000, 123_456_789);
    let push = |call: &mut Call, t: Duration, secure: Vec<u8>, plain: Vec<u8>, what: What| {
        call.secure.push(Record::new(t, secure));
        call.plain.push(Record::new(t, plain));
        call.what.push(what);
    };
    let (mut last_a, mut last_plain_a) = (Vec::new(), Vec::new());
    for i in 0..PACKETS {
        let t = start + Duration::from_millis(20) * u32::from(i);
        let seq_a = 65_500u16.wrapping_add(i);
        let plain_a = rtp(SSRC_A, seq_a, 160 * u32::from(i));
        let srtp_a = protect(&mut tx_forward, &plain_a, false);
        if i == FORGED_AT {
            let mut forged = srtp_a.clone();
            forged[20] ^= 0x01;
            let f = common::udp_frame(link, a, b, &forged);
            push(&mut call, t, f.clone(), f, What::Forged);
        }
        if i == REPLAYED_AT {
            let copy = common::udp_frame(link, a, b, &last_a);
            let plain = common::udp_frame(link, a, b, &last_plain_a);
            push(&mut call, t, copy, plain, What::Copy);
            let mut replayed = last_a.clone();
            replayed[20] ^= 0x01;
            let f = common::udp_frame(link, a, b, &replayed);
            push(&mut call, t, f.clone(), f, What::Replayed);
        }
        push(
            &mut call,
            t,
            common::udp_frame(link, a, b, &srtp_a),
            common::udp_frame(link, a, b, &plain_a),
            What::Secure,
        );
        (last_a, last_plain_a) = (srtp_a, plain_a);
        if i % 2 == 0 {
            let plain_b = rtp(SSRC_B, 1000 + i, 90 * u32::from(i));
            let srtp_b = protect(&mut tx_forward, &plain_b, false);
            push(
                &mut call,
                t,
                common::udp_frame(link, a, b, &srtp_b),
                common::udp_frame(link, a, b, &plain_b),
                What::Secure,
            );
        }
        let plain_c = rtp(SSRC_C, 30_000 + i, 160 * u32::from(i));
        let srtp_c = protect(&mut tx_reverse, &plain_c, false);
        let (mut sf, mut pf) = (
            common::udp_frame(link, b, a, &srtp_c),
            common::udp_frame(link, b, a, &plain_c),
        );
        if link == Link::Ethernet {
            (sf, pf) = (common::vlan_tagged(&sf), common::vlan_tagged(&pf));
        }
        push(&mut call, t, sf, pf, What::Secure);
        if i % 20 == 5 {
            for (ssrc, tx, src, dst) in [
                (SSRC_A, &mut tx_forward, a, b),
                (SSRC_C, &mut tx_reverse, b, a),
            ] {
                let sr = sender_report(ssrc, u32::from(i));
                let srtcp = protect(tx, &sr, true);
                push(
                    &mut call,
                    t,
                    common::udp_frame(link, src, dst, &srtcp),
                    common::udp_frame(link, src, dst, &sr),
                    What::Secure,
                );
            }
        }
        let other = match i {
            10 => Some(common::udp_frame(
                link,
                a,
                b,
                &[0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4],
            )),
            15 => Some(common::tcp_frame(
                link,
                a,
                b,
                b"INVITE sip:bob@example.com SIP/2.0\r\n",
            )),
            20 => common::arp_frame(link),
            25 => Some(common::udp_frame(link, b, a, &[0x12; 40])),
            _ => None,
        };
        if let Some(f) = other {
            push(&mut call, t, f.clone(), f, What::Other);
        }
    }
    call
}

fn config(mode: Mode, keys: &[&str], failed: Failed) -> Config {
    Config {
        mode,
        keys: keys.iter().map(|k| Key::parse(k).unwrap()).collect(),
        filters: Vec::new(),
        ssrcs: Vec::new(),
        failed,
    }
}

fn run(config: Config, input: &[u8]) -> (Vec<u8>, Report) {
    let mut engine = Engine::new(config).unwrap();
    let mut out = Vec::new();
    capture::run(&mut engine, input, &mut out).unwrap();
    (out, engine.report().clone())
}

fn stream(
    report: &Report,
    ssrc: u32,
    kind: Kind,
    src: SocketAddr,
    dst: SocketAddr,
) -> (u64, u64, u64, u64) {
    let flow = srtp_pcap::net::Flow { src, dst };
    let s = report
        .stream(&StreamKey { ssrc, kind, flow })
        .unwrap_or_else(|| panic!("no row for {ssrc:#x} {kind} {src} -> {dst}:\n{report}"));
    (s.packets, s.done, s.failed, s.replayed)
}

/// Decrypts the call in one format and checks everything.
fn check_decrypt(profile: Profile, link: Link, format: Format, v6: bool, endianness: Endianness) {
    let keys = Keys::new(profile);
    let call = call(link, v6, &keys);
    let input = common::write_capture(format, link, endianness, &call.secure);
    let what = format!("{profile:?} {link:?} {format:?} v6={v6}");

    for failed in [Failed::Keep, Failed::Drop] {
        // Key 2 first: the engine must find key 1 for the forward streams all the same.
        let (out, report) = run(
            config(Mode::Decrypt, &[&keys.two, &keys.one], failed),
            &input,
        );
        let got = common::read_capture(&out);
        let expected: Vec<Record> = call
            .plain
            .iter()
            .zip(&call.what)
            .filter(|(_, w)| {
                failed == Failed::Keep || matches!(w, What::Secure | What::Copy | What::Other)
            })
            .map(|(r, _)| r.clone())
            .collect();
        common::assert_records_eq(&got, &expected, &format!("{what} {failed:?}"));
        for g in &got {
            // Every UDP frame written has right checksums (etherparse checks them).
            let _ = common::udp_payload(link, &g.data);
        }

        let (a, b) = call.forward;
        let n = u64::from(PACKETS);
        assert_eq!(
            stream(&report, SSRC_A, Kind::Rtp, a, b),
            (n + 3, n, 1, 2),
            "{what}"
        );
        assert_eq!(
            stream(&report, SSRC_B, Kind::Rtp, a, b),
            (n / 2, n / 2, 0, 0),
            "{what}"
        );
        assert_eq!(
            stream(&report, SSRC_C, Kind::Rtp, b, a),
            (n, n, 0, 0),
            "{what}"
        );
        assert_eq!(
            stream(&report, SSRC_A, Kind::Rtcp, a, b),
            (4, 4, 0, 0),
            "{what}"
        );
        assert_eq!(
            stream(&report, SSRC_C, Kind::Rtcp, b, a),
            (4, 4, 0, 0),
            "{what}"
        );
        let others = if link == Link::Raw { 3 } else { 4 };
        assert_eq!(report.other(), others, "{what}\n{report}");
        assert_eq!(report.records(), call.secure.len() as u64, "{what}");
        let table = report.to_string();
        assert!(table.contains("0x11111111  RTP "), "{table}");
        assert!(
            table.contains("1 failed authentication, 2 replayed (1 of them copies of decrypted"),
            "{table}"
        );
    }
}

#[test]
fn decrypt_gives_back_the_plain_frames_for_every_profile() {
    let links = Link::ALL;
    for (i, profile) in Profile::ALL.into_iter().enumerate() {
        let format = if i % 2 == 0 {
            Format::Pcap
        } else {
            Format::PcapNg
        };
        let endianness = if i % 3 == 0 {
            Endianness::Big
        } else {
            Endianness::Little
        };
        check_decrypt(
            profile,
            links[i % links.len()],
            format,
            i % 2 == 1,
            endianness,
        );
    }
}

#[test]
fn decrypt_gives_back_the_plain_frames_for_every_link_format_and_ip_version() {
    for link in Link::ALL {
        for format in [Format::Pcap, Format::PcapNg] {
            for v6 in [false, true] {
                check_decrypt(
                    Profile::Aes128CmHmacSha1_80,
                    link,
                    format,
                    v6,
                    Endianness::Little,
                );
            }
        }
    }
}

#[test]
fn encrypt_then_decrypt_round_trips() {
    for (i, profile) in Profile::ALL.into_iter().enumerate() {
        let link = Link::ALL[(i + 1) % Link::ALL.len()];
        let format = if i % 2 == 0 {
            Format::PcapNg
        } else {
            Format::Pcap
        };
        let keys = Keys::new(profile);
        let call = call(link, i % 3 == 0, &keys);
        let plain: Vec<Record> = call
            .plain
            .iter()
            .zip(&call.what)
            .filter(|(_, w)| matches!(w, What::Secure | What::Other))
            .map(|(r, _)| r.clone())
            .collect();
        let input = common::write_capture(format, link, Endianness::Big, &plain);
        for key in [&keys.one, &keys.two] {
            let (secure, report) = run(config(Mode::Encrypt, &[key], Failed::Keep), &input);
            let t = report.totals();
            assert_eq!((t.done, t.failed), (t.packets, 0), "{profile:?}\n{report}");
            let encrypted = common::read_capture(&secure);
            assert_eq!(encrypted.len(), plain.len());
            let grown = encrypted
                .iter()
                .zip(&plain)
                .filter(|(e, p)| e.data.len() > p.data.len());
            assert_eq!(
                grown.count() as u64,
                t.done,
                "{profile:?}: every RTP packet grew"
            );

            let (back, report) = run(config(Mode::Decrypt, &[key], Failed::Keep), &secure);
            assert_eq!(report.totals().done, t.done, "{profile:?}\n{report}");
            let what = format!("{profile:?} {link:?} {format:?}");
            common::assert_records_eq(&common::read_capture(&back), &plain, &what);
        }
    }
}

#[test]
fn filters_and_ssrcs_select_what_is_decrypted() {
    let keys = Keys::new(Profile::AeadAes256Gcm);
    let call = call(Link::Ethernet, false, &keys);
    let input = common::write_capture(
        Format::Pcap,
        Link::Ethernet,
        Endianness::Little,
        &call.secure,
    );
    let (a, b) = call.forward;

    let mut c = config(Mode::Decrypt, &[&keys.one, &keys.two], Failed::Keep);
    c.filters = vec![format!("{a}-{b}").parse().unwrap()];
    let (_, report) = run(c, &input);
    assert_eq!(report.streams().count(), 3, "{report}"); // A, B and A's RTCP
    assert_eq!(
        report.not_selected_count(),
        u64::from(PACKETS) + 4,
        "{report}"
    );

    let mut c = config(Mode::Decrypt, &[&keys.one, &keys.two], Failed::Drop);
    c.ssrcs = vec![SSRC_C];
    let (out, report) = run(c, &input);
    assert_eq!(report.totals().done, u64::from(PACKETS) + 4);
    // Nothing failed among the selected, so nothing was dropped.
    assert_eq!(common::read_capture(&out).len(), call.secure.len());
}

#[test]
fn a_wrong_key_decrypts_nothing_and_keeps_every_record() {
    let keys = Keys::new(Profile::Aes256CmHmacSha1_32);
    let other = Keys::new(Profile::Aes128CmHmacSha1_80);
    let call = call(Link::Sll2, true, &keys);
    let input = common::write_capture(Format::PcapNg, Link::Sll2, Endianness::Big, &call.secure);
    let (out, report) = run(config(Mode::Decrypt, &[&other.one], Failed::Keep), &input);
    assert!(report.nothing_done());
    common::assert_records_eq(&common::read_capture(&out), &call.secure, "wrong key");
}

#[test]
fn records_captured_short_are_kept_and_counted() {
    let keys = Keys::new(Profile::Aes128CmHmacSha1_80);
    let call = call(Link::Raw, false, &keys);
    let mut records = call.secure.clone();
    for r in records.iter_mut().step_by(3) {
        r.orig_len += 100; // as if the snapshot length had cut 100 bytes
    }
    for format in [Format::Pcap, Format::PcapNg] {
        let mut input = common::write_capture(format, Link::Raw, Endianness::Little, &records);
        if format == Format::Pcap {
            input[16..20].copy_from_slice(&u32::MAX.to_le_bytes()); // a snaplen that allows it
        }
        let (out, report) = run(
            config(Mode::Decrypt, &[&keys.one, &keys.two], Failed::Keep),
            &input,
        );
        assert_eq!(report.truncated_count(), records.len().div_ceil(3) as u64);
        let got = common::read_capture(&out);
        for (g, r) in got.iter().zip(&records).step_by(3) {
            assert_eq!(g, r);
        }
    }
}

#[test]
fn simple_and_obsolete_packet_blocks_decrypt_too() {
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    use pcap_file::pcapng::blocks::packet::PacketBlock;
    use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
    use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
    use std::borrow::Cow;

    let keys = Keys::new(Profile::Aes192CmHmacSha1_80);
    let call = call(Link::Raw, false, &keys);
    for endianness in [Endianness::Big, Endianness::Little] {
        let mut w = PcapNgWriter::with_endianness(Vec::new(), endianness).unwrap();
        let idb = InterfaceDescriptionBlock::new(pcap_file::DataLink::RAW, 0);
        w.write_block(&Block::InterfaceDescription(idb)).unwrap();
        for (i, r) in call.secure.iter().enumerate() {
            let block = if i % 2 == 0 {
                Block::SimplePacket(SimplePacketBlock {
                    original_len: r.orig_len,
                    data: Cow::Borrowed(&r.data),
                })
            } else {
                // Microseconds (the default resolution); pcap-file writes the two 32-bit halves
                // as one u64 in the section's byte order.
                let ticks = r.time.as_micros() as u64;
                Block::Packet(PacketBlock {
                    interface_id: 0,
                    drop_count: 0,
                    timestamp: match endianness {
                        Endianness::Big => ticks,
                        Endianness::Little => ticks.rotate_left(32),
                    },
                    captured_len: r.orig_len,
                    original_len: r.orig_len,
                    data: Cow::Borrowed(&r.data),
                    options: vec![],
                })
            };
            w.write_block(&block).unwrap();
        }
        let input = w.into_inner();
        let (out, report) = run(
            config(Mode::Decrypt, &[&keys.one, &keys.two], Failed::Keep),
            &input,
        );
        assert_eq!(
            report.totals().done,
            u64::from(PACKETS) * 5 / 2 + 8,
            "{report}"
        );
        // The packet blocks' timestamps read right (in both byte orders).
        let last = report.streams().filter_map(|(_, s)| s.last).max().unwrap();
        let expected = call.secure.last().unwrap().time;
        assert_eq!(last.as_micros(), expected.as_micros(), "{endianness:?}");

        let mut r = PcapNgReader::new(&out[..]).unwrap();
        let mut got = Vec::new();
        while let Some(block) = r.next_block() {
            match block.unwrap() {
                Block::SimplePacket(b) => got.push(b.data[..b.original_len as usize].to_vec()),
                Block::Packet(b) => got.push(b.data.to_vec()),
                _ => {}
            }
        }
        let expected: Vec<Vec<u8>> = call
            .plain
            .iter()
            .zip(&call.what)
            .map(|(r, _)| r.data.clone())
            .collect();
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!(g == e, "{endianness:?}: record {i} differs");
        }
    }
}

/// A capture of packets encrypted with cryptex (RFC 9335 Appendix A.1.1 and A.1.3: a one-byte
/// extension, then CSRCs and one) decrypts to the plain packets, CSRCs and extensions in
/// clear; encrypting the plain capture again leaves them in clear (the tool sends RFC 3711).
#[test]
fn cryptex_captures_decrypt_and_encrypting_leaves_headers_in_clear() {
    let unhex = |s: &str| -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    };
    let plain = [
        unhex("900f1235decafbadcafebabe bede0001 51000200 abababababababababababababababab"),
        unhex(
            "920f1238decafbadcafebabe 0001e2400000b26e bede0001 51000200 \
             abababababababababababababababab",
        ),
    ];
    let sent = [
        unhex(
            "900f1235decafbadcafebabe c0de0001 eb92365251c3e036f8de27e9c27ee3e0b4651d9f \
             bc4218a70244522f34a5",
        ),
        unhex(
            "920f1238decafbadcafebabe 8bb6e12b5cff16dd c0de0001 92838c8c09e58393e1de3a9a \
             74734d6745671338c3acf11da2df8423bee0",
        ),
    ];
    let key = MasterKey::new(
        &unhex("e1f97a0d3e018be0d64fa32c06de4139"),
        &unhex("0ec675ad498afeebb6960b3aabe6"),
    )
    .unwrap();
    let key = format!(
        "a={}",
        CryptoAttribute::new(1, Profile::Aes128CmHmacSha1_80, key)
    );
    let (a, b): (SocketAddr, SocketAddr) = (
        "10.0.0.1:4000".parse().unwrap(),
        "10.0.0.2:5000".parse().unwrap(),
    );
    let records = |packets: &[Vec<u8>]| -> Vec<Record> {
        packets
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let frame = common::udp_frame(Link::Ethernet, a, b, p);
                Record::new(Duration::from_millis(20 * i as u64), frame)
            })
            .collect()
    };
    let payloads = |out: &[u8]| -> Vec<Vec<u8>> {
        common::read_capture(out)
            .iter()
            .map(|r| common::udp_payload(Link::Ethernet, &r.data).unwrap().2)
            .collect()
    };
    let input = common::write_capture(
        Format::Pcap,
        Link::Ethernet,
        Endianness::Little,
        &records(&sent),
    );
    let (out, report) = run(config(Mode::Decrypt, &[&key], Failed::Keep), &input);
    assert_eq!(payloads(&out), plain, "{report}");
    assert_eq!(report.totals().done, 2, "{report}");

    let input = common::write_capture(
        Format::Pcap,
        Link::Ethernet,
        Endianness::Little,
        &records(&plain),
    );
    let (out, _) = run(config(Mode::Encrypt, &[&key], Failed::Keep), &input);
    for (got, p) in payloads(&out).iter().zip(&plain) {
        let header = p.len() - 16;
        assert_eq!(got[..header], p[..header], "headers in clear");
        assert_ne!(got[header..p.len()], p[header..], "payload encrypted");
    }
}
