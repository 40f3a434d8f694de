//! A worker thread: one engine, its calls' sockets, a `mio` poller and a command queue.
//!
//! Receiving is batched: one `recvmmsg` (through `quinn-udp`) takes up to [`BATCH`] datagrams
//! from a ready socket into buffers allocated once per worker, each with tail room for the
//! SRTP trailer, so every datagram is transformed where it landed and sent straight back out.

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
    CallId, CallInfo, CallSpec, Counters, Engine, EngineConfig, Event, LegStats, LegUpdate,
    SocketId, TAIL_ROOM,
};
use crate::EngineError;

const WAKER: Token = Token(usize::MAX);
/// Largest datagram relayed; larger ones are truncated by the kernel and then dropped as
/// malformed by the engine.
const MAX_DATAGRAM: usize = 2048;
/// Datagrams taken from a socket per receive call.
const BATCH: usize = 32;
/// One receive buffer: the largest datagram and the room encryption may add.
const SLOT: usize = MAX_DATAGRAM + TAIL_ROOM;

/// Requests from the [`Relay`](super::Relay) handle.
pub(super) enum Command {
    Create {
        spec: Box<CallSpec>,
        sockets: Vec<(SocketId, StdUdpSocket)>,
        reply: mpsc::Sender<Result<CallId, EngineError>>,
    },
    /// Tells the worker the relay-wide id of a call, for when it ends by itself.
    Name {
        engine: CallId,
        relay: u64,
    },
    Update {
        call: CallId,
        leg: usize,
        update: LegUpdate,
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
        }
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let timeout = self.engine.poll_timeout().saturating_duration_since(now);
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
            self.timers();
        }
    }

    /// Drains the socket in batches: every datagram through the engine, each result sent at
    /// once. A batch that comes back short means the socket is empty: a datagram arriving
    /// later raises a new readiness event.
    fn receive(&mut self, id: SocketId) {
        loop {
            let Some((socket, state)) = self.sockets.get(&id) else {
                return;
            };
            let n = {
                // On the stack: no allocation per receive.
                let mut chunks = self.bufs.chunks_mut(SLOT);
                let mut slices: [IoSliceMut<'_>; BATCH] = std::array::from_fn(|_| {
                    IoSliceMut::new(&mut chunks.next().expect("BATCH slots")[..MAX_DATAGRAM])
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
                let stride = meta.stride.max(1);
                if meta.len <= stride {
                    Self::forward(
                        &mut self.engine,
                        &self.sockets,
                        now,
                        id,
                        meta.addr,
                        slot,
                        meta.len,
                    );
                    continue;
                }
                // Coalesced segments (GRO): last first, so that each one's trailer only
                // overwrites segments already sent.
                let segments = meta.len.div_ceil(stride);
                for s in (0..segments).rev() {
                    let start = s * stride;
                    let len = stride.min(meta.len - start);
                    let room = (start + len + TAIL_ROOM).min(slot.len());
                    if room < start + len + TAIL_ROOM {
                        continue; // no tail room for the last segment of a full slot: drop
                    }
                    Self::forward(
                        &mut self.engine,
                        &self.sockets,
                        now,
                        id,
                        meta.addr,
                        &mut slot[start..room],
                        len,
                    );
                }
            }
            if n < BATCH {
                return;
            }
        }
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
                    if r.is_err() {
                        self.close(&ids);
                    }
                    let _ = reply.send(r);
                }
                Command::Name { engine, relay } => {
                    self.names.insert(engine, relay);
                }
                Command::Update {
                    call,
                    leg,
                    update,
                    reply,
                } => {
                    let _ = reply.send(self.engine.update_call(call, leg, update));
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
