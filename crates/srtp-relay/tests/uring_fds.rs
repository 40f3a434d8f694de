//! On io_uring, a call's sockets hold no file descriptor: the ring holds them, so the number
//! of calls is not bounded by the process's open-file limit. (A test binary of its own, so
//! that no other test opens descriptors while these are counted.)

use std::net::UdpSocket;
use std::time::Duration;

use srtp_relay::engine::{Mode, Security};
use srtp_relay::io::{CallRequest, IoDriver, LegRequest, Relay, RelayConfig};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn sockets_on_io_uring_hold_no_descriptor() {
    let relay = Relay::start(RelayConfig {
        ports: 42000..=42999,
        workers: 1,
        io: IoDriver::Uring,
        ..RelayConfig::default()
    })
    .unwrap();
    let y = UdpSocket::bind("127.0.0.1:0").unwrap();
    y.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let before = open_fds();
    let mut calls = Vec::new();
    for _ in 0..200 {
        let mut legs = [
            LegRequest::new(Security::Plain),
            LegRequest::new(Security::Plain),
        ];
        for l in &mut legs {
            l.rtcp_mux = true;
        }
        legs[1].remote = Some(y.local_addr().unwrap());
        calls.push(
            relay
                .create_call(CallRequest {
                    mode: Mode::PassThrough { verify: false },
                    legs,
                })
                .unwrap(),
        );
    }
    let after = open_fds();
    assert!(
        after < before + 10,
        "400 sockets took {} descriptors",
        after - before
    );
    // And they relay.
    let x = UdpSocket::bind("127.0.0.1:0").unwrap();
    let packet = [0x80u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 1, 2, 3];
    for c in [&calls[0], &calls[199]] {
        x.send_to(&packet, c.legs[0].rtp).unwrap();
        let mut buf = [0u8; 64];
        let n = y.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &packet);
    }
    for c in calls {
        relay.delete_call(c.id).unwrap();
    }
    relay.shutdown();
}
