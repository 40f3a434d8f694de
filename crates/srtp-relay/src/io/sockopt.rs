//! Receive-side socket options that `quinn-udp` turns on for QUIC and the relay never reads.
//!
//! `UdpSocketState::new` asks the kernel for each datagram's destination address
//! (`IP_PKTINFO`, `IPV6_RECVPKTINFO`), traffic class (`IP_RECVTOS`, `IPV6_RECVTCLASS`) and a
//! receive timestamp (`SO_TIMESTAMPNS`). Each becomes a control message that the kernel builds
//! and `recvmmsg` copies out for every datagram: a few percent of the epoll driver's time per
//! packet. The relay uses none of them (the engine needs only the source address), so they
//! are turned off again. The options are flags read by the kernel alone; turning them off
//! changes only which control messages arrive.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;

/// The options, as (level, name).
const OPTIONS: [(libc::c_int, libc::c_int); 5] = [
    (libc::IPPROTO_IP, libc::IP_PKTINFO),
    (libc::IPPROTO_IP, libc::IP_RECVTOS),
    (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO),
    (libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS),
    (libc::SOL_SOCKET, libc::SO_TIMESTAMPNS),
];

/// Turns the options off on `socket`. An option the socket's family lacks (an IPv4 option
/// on an IPv6 socket) fails and is skipped: best effort, as the cost is only speed.
pub(super) fn quiet_receive(socket: &impl AsRawFd) {
    let off: libc::c_int = 0;
    for (level, name) in OPTIONS {
        // SAFETY: `setsockopt` reads `size_of::<c_int>()` bytes from a pointer to `off`, a
        // live `c_int` on this stack frame; the descriptor belongs to `socket`, borrowed for
        // the call, and the kernel checks it and the option.
        let _ = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                level,
                name,
                (&off as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads an integer socket option back.
    fn get(socket: &impl AsRawFd, level: libc::c_int, name: libc::c_int) -> Option<libc::c_int> {
        let mut v: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `getsockopt` writes at most `len` bytes to `v`, a live `c_int`, and the
        // length back to `len`.
        let r = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                level,
                name,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (r == 0).then_some(v)
    }

    #[test]
    fn options_quinn_udp_turns_on_are_off_again() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        quinn_udp::UdpSocketState::new(quinn_udp::UdpSockRef::from(&s)).unwrap();
        assert_eq!(get(&s, libc::IPPROTO_IP, libc::IP_PKTINFO), Some(1));
        quiet_receive(&s);
        for (level, name) in [
            (libc::IPPROTO_IP, libc::IP_PKTINFO),
            (libc::IPPROTO_IP, libc::IP_RECVTOS),
            (libc::SOL_SOCKET, libc::SO_TIMESTAMPNS),
        ] {
            assert_eq!(get(&s, level, name), Some(0), "option {level}/{name}");
        }
    }
}
