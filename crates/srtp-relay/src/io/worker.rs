//! A worker thread: one engine, its calls' sockets, a `mio` poller and a command queue.
//!
//! Receiving is batched: one `recvmmsg` (through `quinn-udp`) fills up to [`BATCH`] buffers
//! allocated once per worker, each large enough for a full GRO batch and with tail room for
//! the SRTP trailer, so every datagram is transformed where it landed and sent straight back
//! out, in order. A socket gets [`FAIR_SHARE`] receive calls per turn.

use std::collections::HashMap;
use std::io::{ErrorKind, IoSliceMut};
use std::net::UdpSocket as StdUdpSocket;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};

use super::{RelayError, Shared};
use crate::engine::{
    CallId, CallInfo, CallSpec, Counters, Engine, EngineConfig, Event, LegStats, LegUpdate, Mode,
    Security, SocketId, TAIL_ROOM,
};
use crate::EngineError;

const WAKER: Token = Token(usize::MAX);
/// Largest datagram relayed; larger ones are truncated by the kernel and then dropped as
/// malformed by the engine.
const MAX_DATAGRAM: usize = 2048;
/// Receive buffers filled per receive call.
const BATCH: usize = 8;
/// Datagrams the kernel may coalesce into one buffer (UDP GRO, which quinn-udp turns on).
const GRO_SEGMENTS: usize = 64;
/// One receive buffer: room for a full GRO batch of the largest datagrams, and the room
/// encryption may add after the last of them.
const SLOT: usize = GRO_SEGMENTS * MAX_DATAGRAM + TAIL_ROOM;
/// Receive calls on one socket per readiness event before the others get their turn; the
/// socket is then revisited on the next loop, so one flooded port cannot stall a worker.
const FAIR_SHARE: usize = 4;

/// Requests from the [`Relay`](super::Relay) handle.
pub(super) enum Command {
    Create {
        spec: Box<CallSpec>,
        sockets: Vec<(SocketId, StdUdpSocket)>,
        /// The relay-wide id, to free the call's ports when it ends by itself.
        relay_id: u64,
        reply: mpsc::Sender<Result<CallId, EngineError>>,
    },
    Update {
        call: CallId,
        leg: usize,
        update: LegUpdate,
        reply: mpsc::Sender<Result<(), EngineError>>,
    },
    ChangeSecurity {
        call: CallId,
        leg: usize,
        security: Box<Security>,
        mode: Option<Mode>,
        reply: mpsc::Sender<Result<(), EngineError>>,
    },
    Delete {
        call: CallId,
        reply: mpsc::Sender<Result<[LegStats; 2], EngineError>>,
    },
    Query {
        call: CallId,
        reply: mpsc::Sender<Option<CallInfo>>,
    },
    Totals {
        reply: mpsc::Sender<Counters>,
    },
    Stop,
}

/// The handle of a worker thread.
#[derive(Debug)]
pub(super) struct Worker {
    commands: mpsc::Sender<Command>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub(super) fn spawn(
        index: usize,
        config: EngineConfig,
        shared: Arc<Shared>,
    ) -> Result<Self, RelayError> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("relay-worker-{index}"))
            .spawn(move || Loop::new(poll, rx, config, shared).run())?;
        Ok(Self {
            commands: tx,
            waker,
            thread: Some(thread),
        })
    }

    pub(super) fn send(&self, c: Command) -> Result<(), RelayError> {
        self.commands.send(c).map_err(|_| RelayError::WorkerGone)?;
        self.waker.wake()?;
        Ok(())
    }

    pub(super) fn stop(mut self) {
        let _ = self.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Loop {
    poll: Poll,
    commands: mpsc::Receiver<Command>,
    engine: Engine,
    sockets: HashMap<SocketId, (UdpSocket, UdpSocketState)>,
    names: HashMap<CallId, u64>,
    shared: Arc<Shared>,
    /// `BATCH` receive buffers, each `MAX_DATAGRAM + TAIL_ROOM` long, back to back.
    bufs: Vec<u8>,
    meta: Vec<RecvMeta>,
    /// Sockets left with data after their fair share, to serve again before sleeping.
    backlog: Vec<SocketId>,
}

impl Loop {
    fn new(
        poll: Poll,
        commands: mpsc::Receiver<Command>,
        config: EngineConfig,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            poll,
            commands,
            engine: Engine::new(config, Instant::now()),
            sockets: HashMap::new(),
            names: HashMap::new(),
            shared,
            bufs: vec![0; BATCH * SLOT],
            meta: vec![RecvMeta::default(); BATCH],
            backlog: Vec::new(),
        }
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let timeout = if self.backlog.is_empty() {
                self.engine.poll_timeout().saturating_duration_since(now)
            } else {
                std::time::Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    return;
                }
            }
            for ev in events.iter() {
                if ev.token() == WAKER {
                    if !self.commands() {
                        return;
                    }
                } else {
                    self.receive(SocketId(ev.token().0 as u32));
                }
            }
            for id in std::mem::take(&mut self.backlog) {
                self.receive(id);
            }
            self.timers();
        }
    }

    /// Drains the socket in batches: every datagram through the engine, each result sent at
    /// once. A batch that comes back short means the socket is empty: a datagram arriving
    /// later raises a new readiness event.
    fn receive(&mut self, id: SocketId) {
        for _ in 0..FAIR_SHARE {
            let Some((socket, state)) = self.sockets.get(&id) else {
                return;
            };
            let n = {
                // On the stack: no allocation per receive.
                let mut chunks = self.bufs.chunks_mut(SLOT);
                let mut slices: [IoSliceMut<'_>; BATCH] = std::array::from_fn(|_| {
                    IoSliceMut::new(&mut chunks.next().expect("BATCH slots")[..SLOT - TAIL_ROOM])
                });
                match state.recv(UdpSockRef::from(socket), &mut slices, &mut self.meta) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                    Err(_) => continue, // ICMP errors surface here on Linux: skip
                }
            };
            let now = Instant::now();
            for i in 0..n {
                let meta = self.meta[i];
                let slot = &mut self.bufs[i * SLOT..(i + 1) * SLOT];
                // One datagram, or several coalesced (GRO) at `stride` intervals: each is
                // processed in place, in order; the bytes its trailer would overwrite (the
                // start of the next one) are saved and put back.
                let stride = meta
                    .stride
                    .clamp(1, MAX_DATAGRAM.max(meta.len.min(MAX_DATAGRAM)));
                let total = meta.len.min(SLOT - TAIL_ROOM);
                let mut start = 0;
                loop {
                    let end = (start + stride).min(total);
                    let mut saved = [0u8; TAIL_ROOM];
                    let keep = (total - end).min(TAIL_ROOM);
                    saved[..keep].copy_from_slice(&slot[end..end + keep]);
                    Self::forward(
                        &mut self.engine,
                        &self.sockets,
                        now,
                        id,
                        meta.addr,
                        &mut slot[start..end + TAIL_ROOM],
                        end - start,
                    );
                    slot[end..end + keep].copy_from_slice(&saved[..keep]);
                    start = end;
                    if start >= total {
                        break; // (an empty datagram is still handed over once, and counted)
                    }
                }
            }
            if n < BATCH {
                return;
            }
        }
        // Still data after a fair share: serve the other sockets first, then come back.
        self.backlog.push(id);
    }

    /// One datagram through the engine, and out.
    fn forward(
        engine: &mut Engine,
        sockets: &HashMap<SocketId, (UdpSocket, UdpSocketState)>,
        now: Instant,
        id: SocketId,
        from: std::net::SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) {
        if let Some(t) = engine.handle(now, id, from, buf, len) {
            if let Some((out, _)) = sockets.get(&t.socket) {
                let _ = out.send_to(&buf[..t.len], t.destination);
            }
        }
    }

    fn timers(&mut self) {
        self.engine.handle_timeout(Instant::now());
        while let Some(t) = self.engine.poll_transmit() {
            if let Some((out, _)) = self.sockets.get(&t.socket) {
                let _ = out.send_to(&t.data, t.destination);
            }
        }
        while let Some(e) = self.engine.poll_event() {
            if let Event::CallEnded { call, sockets, .. } = e {
                self.close(&sockets);
                if let Some(id) = self.names.remove(&call) {
                    super::call_ended(&self.shared, id);
                }
            }
        }
    }

    fn close(&mut self, sockets: &[SocketId]) {
        for s in sockets {
            if let Some((mut sock, _)) = self.sockets.remove(s) {
                let _ = self.poll.registry().deregister(&mut sock);
            }
        }
    }

    /// Handles queued commands; `false` when told to stop.
    fn commands(&mut self) -> bool {
        while let Ok(c) = self.commands.try_recv() {
            match c {
                Command::Create {
                    spec,
                    sockets,
                    relay_id,
                    reply,
                } => {
                    let ids: Vec<SocketId> = sockets.iter().map(|(id, _)| *id).collect();
                    let mut ok = true;
                    for (id, s) in sockets {
                        if s.set_nonblocking(true).is_err() {
                            ok = false;
                            continue;
                        }
                        let Ok(state) = UdpSocketState::new(UdpSockRef::from(&s)) else {
                            ok = false;
                            continue;
                        };
                        let mut s = UdpSocket::from_std(s);
                        if self
                            .poll
                            .registry()
                            .register(&mut s, Token(id.0 as usize), Interest::READABLE)
                            .is_err()
                        {
                            ok = false;
                        }
                        self.sockets.insert(id, (s, state));
                    }
                    let r = if ok {
                        self.engine.create_call(*spec, Instant::now())
                    } else {
                        Err(EngineError::LegSecurity {
                            leg: 0,
                            reason: "the sockets could not be registered",
                        })
                    };
                    match &r {
                        Ok(call) => {
                            self.names.insert(*call, relay_id);
                        }
                        Err(_) => self.close(&ids),
                    }
                    let _ = reply.send(r);
                }
                Command::Update {
                    call,
                    leg,
                    update,
                    reply,
                } => {
                    let _ = reply.send(self.engine.update_call(call, leg, update));
                }
                Command::ChangeSecurity {
                    call,
                    leg,
                    security,
                    mode,
                    reply,
                } => {
                    let _ = reply.send(self.engine.change_security(call, leg, *security, mode));
                }
                Command::Delete { call, reply } => {
                    let r = self.engine.delete_call(call).map(|(sockets, stats)| {
                        self.close(&sockets);
                        self.names.remove(&call);
                        stats
                    });
                    let _ = reply.send(r);
                }
                Command::Query { call, reply } => {
                    let _ = reply.send(self.engine.call(call));
                }
                Command::Totals { reply } => {
                    let _ = reply.send(self.engine.totals());
                }
                Command::Stop => return false,
            }
        }
        true
    }
}
