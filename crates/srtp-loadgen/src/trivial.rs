//! The floor: a trivial forwarder with one socket per call and epoll, no parsing, no crypto,
//! in a thread named `trivial-fwd` (so its CPU is read like srtp-relay's). What any
//! relay with this socket layout costs at least on this machine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use srtp_core::MasterKey;

use crate::cpu::CpuSource;
use crate::target::{CallSetup, Target};

/// The trivial forwarder: sockets are created per call before traffic starts.
pub struct Trivial {
    pending: Vec<(std::net::UdpSocket, SocketAddr)>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Trivial {
    /// No calls yet.
    pub fn new() -> Self {
        Self {
            pending: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }

    fn start_thread(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        let stop = Arc::clone(&self.stop);
        self.thread = Some(
            std::thread::Builder::new()
                .name("trivial-fwd".into())
                .spawn(move || forward(pending, &stop))
                .expect("thread"),
        );
    }
}

fn forward(sockets: Vec<(std::net::UdpSocket, SocketAddr)>, stop: &AtomicBool) {
    let mut poll = Poll::new().expect("poll");
    let mut table: HashMap<usize, (UdpSocket, SocketAddr)> = HashMap::new();
    for (i, (s, dest)) in sockets.into_iter().enumerate() {
        s.set_nonblocking(true).expect("nonblocking");
        let mut s = UdpSocket::from_std(s);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)
            .expect("register");
        table.insert(i, (s, dest));
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let _ = poll.poll(&mut events, Some(Duration::from_millis(50)));
        for ev in events.iter() {
            let Some((s, dest)) = table.get(&ev.token().0) else {
                continue;
            };
            while let Ok((n, _)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], *dest);
            }
        }
    }
}

impl Target for Trivial {
    fn name(&self) -> String {
        "trivial forwarder".into()
    }

    fn create(
        &mut self,
        _n: u32,
        _a: SocketAddr,
        b: SocketAddr,
        _a_key: Option<&MasterKey>,
    ) -> Result<CallSetup> {
        let s = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let a_target = s.local_addr()?;
        self.pending.push((s, b));
        Ok(CallSetup {
            a_target,
            b_policy: None,
        })
    }

    fn cpu(&self) -> CpuSource {
        CpuSource::OwnThreads("trivial-fwd")
    }

    fn start(&mut self) {
        self.start_thread();
    }

    fn teardown(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        Ok(())
    }
}
