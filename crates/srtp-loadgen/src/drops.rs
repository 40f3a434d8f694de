//! Where datagrams were lost: the kernel counts, per UDP socket, the datagrams it dropped
//! because the socket's receive buffer was full (`/proc/net/udp`, last column), and the same
//! over the whole machine (`RcvbufErrors` in `/proc/net/snmp`). Loss past the load
//! generator's own receive socket was the relay's (its sockets, or its forwarding).

use std::fs;

/// Datagrams the kernel dropped for a full receive buffer, over all UDP sockets.
pub fn rcvbuf_errors() -> u64 {
    let snmp = fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Datagrams the kernel dropped at the IPv4 UDP socket bound to local `port`.
pub fn socket_drops(port: u16) -> u64 {
    let table = fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let want = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .find_map(|l| {
            let mut fields = l.split_whitespace();
            let local = fields.nth(1)?;
            local
                .ends_with(&want)
                .then(|| l.split_whitespace().last()?.parse().ok())?
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket whose buffer overflows shows its drops in both counters.
    #[test]
    fn counts_a_full_socket() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rx.local_addr().unwrap().port();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (own, all) = (socket_drops(port), rcvbuf_errors());
        assert_eq!(own, 0);
        // Far more than a default receive buffer holds, never read.
        for _ in 0..5000 {
            let _ = tx.send_to(&[0u8; 1000], rx.local_addr().unwrap());
        }
        let dropped = socket_drops(port);
        assert!(dropped > 0, "no drops counted at port {port}");
        assert!(rcvbuf_errors() >= all + dropped);
    }
}
