//! The rtpengine ng control protocol: `<cookie> <bencoded dictionary>` over UDP.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::bencode::{dict, Value};
use super::Control;

/// The ng listener.
#[derive(Debug)]
pub struct Ng {
    control: Arc<Control>,
}

impl Ng {
    /// A listener over `control`.
    pub fn new(control: Arc<Control>) -> Arc<Self> {
        Arc::new(Self { control })
    }

    /// Answers datagrams until `shutdown` turns true.
    pub async fn serve(self: Arc<Self>, socket: UdpSocket, mut shutdown: watch::Receiver<bool>) {
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, peer) = tokio::select! {
                r = socket.recv_from(&mut buf) => match r { Ok(r) => r, Err(_) => continue },
                _ = shutdown.changed() => return,
            };
            if let Some(reply) = self.handle(&buf[..n]) {
                let _ = socket.send_to(&reply, peer).await;
            }
        }
    }

    /// Handles one datagram; `None` when it has no cookie.
    pub fn handle(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        let space = datagram.iter().position(|&b| b == b' ')?;
        let (cookie, rest) = (&datagram[..space], &datagram[space + 1..]);
        let reply = match Value::decode(rest) {
            Ok(msg) => {
                self.control
                    .metrics
                    .ng_commands
                    .fetch_add(1, Ordering::Relaxed);
                match msg.get_str("command") {
                    Some("ping") => dict([("result", Value::str("pong"))]),
                    _ => dict([
                        ("result", Value::str("error")),
                        ("error-reason", Value::str("unknown command")),
                    ]),
                }
            }
            Err(_) => {
                self.control
                    .metrics
                    .ng_malformed
                    .fetch_add(1, Ordering::Relaxed);
                dict([
                    ("result", Value::str("error")),
                    ("error-reason", Value::str("malformed message")),
                ])
            }
        };
        let mut out = cookie.to_vec();
        out.push(b' ');
        out.extend(reply.encode());
        Some(out)
    }
}
