//! A worker thread: one engine, its calls' sockets, an I/O driver and a command queue.
//!
//! The engine, the commands and the timers are the same for every driver ([`Core`]); what
//! differs is how datagrams come in and go out ([`Driver`]): `mio` with batched receive here
//! ([`Loop`]), or io_uring on Linux ([`super::uring`]).
//!
//! With `mio`, receiving is batched: one `recvmmsg` (through `quinn-udp`) fills up to [`BATCH`]
//! buffers allocated once per worker, each large enough for a full GRO batch and with tail room for
//! the SRTP trailer, so every datagram is transformed where it landed and sent straight back out,
//! in order. A socket gets [`FAIR_SHARE`] receive calls per turn.

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
    Route, Security, SocketId, TAIL_ROOM,
};
use crate::EngineError;

const WAKER: Token = Token(usize::MAX);
/// Largest datagram relayed; longer ones are dropped and counted as malformed.
pub(super) const MAX_DATAGRAM: usize = 2048;
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

/// How a worker's datagrams come in and go out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoDriver {
    /// io_uring where the kernel offers what it needs (Linux 6.0 or later, and not
    /// disabled), `mio` otherwise. The default.
    #[default]
    Auto,
    /// `mio` (epoll) with batched receive (`recvmmsg`) and one `sendto` per datagram.
    Epoll,
    /// io_uring: every socket's datagrams arrive through one multishot receive into a ring of
    /// buffers the worker provides, and are sent back out from the same buffer, so that a
    /// worker enters the kernel once per batch instead of two or three times per datagram.
    /// Starting the relay fails where the kernel cannot.
    Uring,
}

impl IoDriver {
    /// The driver's name: `auto`, `epoll` or `uring`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Epoll => "epoll",
            Self::Uring => "uring",
        }
    }

    /// The driver called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Auto, Self::Epoll, Self::Uring]
            .into_iter()
            .find(|d| d.name() == name)
    }
}

/// The handle of a worker thread.
#[derive(Debug)]
pub(super) struct Worker {
    commands: mpsc::Sender<Command>,
    wake: Wake,
    thread: Option<JoinHandle<()>>,
    driver: IoDriver,
}

/// How the handle wakes a worker that may be asleep in its driver.
#[derive(Debug)]
pub(super) enum Wake {
    Mio(Arc<Waker>),
    /// A datagram socket whose other end the worker's ring watches.
    #[cfg(target_os = "linux")]
    Socket(std::os::unix::net::UnixDatagram),
}

impl Wake {
    fn wake(&self) -> std::io::Result<()> {
        match self {
            Self::Mio(w) => w.wake(),
            #[cfg(target_os = "linux")]
            Self::Socket(s) => match s.send(&[1]) {
                // A full socket has a wake-up pending already.
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
                r => r.map(|_| ()),
            },
        }
    }
}

impl Worker {
    /// Starts worker `index` with `driver` (`Auto` resolved here: io_uring if it starts,
    /// `mio` if not; [`Relay::start`](super::Relay::start) resolves it with the first worker
    /// and gives the others the result).
    pub(super) fn spawn(
        index: usize,
        driver: IoDriver,
        config: EngineConfig,
        shared: Arc<Shared>,
    ) -> Result<Self, RelayError> {
        #[cfg(target_os = "linux")]
        if driver != IoDriver::Epoll {
            match super::uring::spawn(index, config.clone(), Arc::clone(&shared)) {
                Ok((commands, wake, thread)) => {
                    return Ok(Self {
                        commands,
                        wake,
                        thread: Some(thread),
                        driver: IoDriver::Uring,
                    })
                }
                Err(e) if driver == IoDriver::Uring => return Err(e),
                Err(e) => {
                    tracing::info!(error = %e, "io_uring unavailable: workers use epoll");
                }
            }
        }
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("relay-worker-{index}"))
            .spawn(move || Loop::new(poll, Core::new(rx, config, shared)).run())?;
        Ok(Self {
            commands: tx,
            wake: Wake::Mio(waker),
            thread: Some(thread),
            driver: IoDriver::Epoll,
        })
    }

    /// The driver this worker runs (never `Auto`).
    pub(super) fn driver(&self) -> IoDriver {
        self.driver
    }

    pub(super) fn send(&self, c: Command) -> Result<(), RelayError> {
        self.commands.send(c).map_err(|_| RelayError::WorkerGone)?;
        self.wake.wake()?;
        Ok(())
    }

    pub(super) fn stop(mut self) {
        let _ = self.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a worker loop does with its sockets: the part that differs between drivers.
pub(super) trait Driver {
    /// Starts receiving on a new socket; `false` if it cannot.
    fn add(&mut self, id: SocketId, socket: StdUdpSocket) -> bool;
    /// Stops receiving on a socket and closes it.
    fn remove(&mut self, id: SocketId);
    /// Sends one datagram the engine made itself (receiver reports: rare).
    fn send_to(&mut self, id: SocketId, data: &[u8], to: std::net::SocketAddr);
}

/// The engine and everything around it that does not depend on the driver.
pub(super) struct Core {
    pub(super) engine: Engine,
    names: HashMap<CallId, u64>,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
}

impl Core {
    pub(super) fn new(
        commands: mpsc::Receiver<Command>,
        config: EngineConfig,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            engine: Engine::new(config, Instant::now()),
            names: HashMap::new(),
            shared,
            commands,
        }
    }

    /// Runs the engine's timers, sends what they made and closes the sockets of calls that
    /// ended.
    pub(super) fn timers(&mut self, driver: &mut impl Driver) {
        self.engine.handle_timeout(Instant::now());
        while let Some(t) = self.engine.poll_transmit() {
            driver.send_to(t.socket, &t.data, t.destination);
        }
        while let Some(e) = self.engine.poll_event() {
            if let Event::CallEnded {
                call,
                sockets,
                stats,
                ..
            } = e
            {
                for s in sockets {
                    driver.remove(s);
                }
                if let Some(id) = self.names.remove(&call) {
                    super::call_ended(&self.shared, id, stats);
                }
            }
        }
    }

    /// Handles queued commands; `false` when told to stop.
    pub(super) fn commands(&mut self, driver: &mut impl Driver) -> bool {
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
                        ok &= s.set_nonblocking(true).is_ok() && driver.add(id, s);
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
                        Err(_) => {
                            for id in ids {
                                driver.remove(id);
                            }
                        }
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
                        for s in sockets {
                            driver.remove(s);
                        }
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

/// The `mio` driver's sockets.
struct MioSockets {
    poll: Poll,
    table: HashMap<SocketId, MioSocket>,
}

/// A socket of the `mio` driver.
struct MioSocket {
    socket: UdpSocket,
    state: UdpSocketState,
    /// Where the engine routes this socket's datagrams, kept for it (see [`Route`]).
    route: Route,
}

impl Driver for MioSockets {
    fn add(&mut self, id: SocketId, s: StdUdpSocket) -> bool {
        let Ok(state) = UdpSocketState::new(UdpSockRef::from(&s)) else {
            return false;
        };
        #[cfg(target_os = "linux")]
        super::sockopt::quiet_receive(&s);
        let mut s = UdpSocket::from_std(s);
        let ok = self
            .poll
            .registry()
            .register(&mut s, Token(id.0 as usize), Interest::READABLE)
            .is_ok();
        self.table.insert(
            id,
            MioSocket {
                socket: s,
                state,
                route: Route::default(),
            },
        );
        ok
    }

    fn remove(&mut self, id: SocketId) {
        if let Some(mut s) = self.table.remove(&id) {
            let _ = self.poll.registry().deregister(&mut s.socket);
        }
    }

    fn send_to(&mut self, id: SocketId, data: &[u8], to: std::net::SocketAddr) {
        if let Some(out) = self.table.get(&id) {
            let _ = out.socket.send_to(data, to);
        }
    }
}

/// The `mio` worker loop.
struct Loop {
    core: Core,
    sockets: MioSockets,
    /// `BATCH` receive buffers, each `SLOT` long, back to back.
    bufs: Vec<u8>,
    meta: Vec<RecvMeta>,
    /// Sockets left with data after their fair share, to serve again before sleeping.
    backlog: Vec<SocketId>,
}

impl Loop {
    fn new(poll: Poll, core: Core) -> Self {
        Self {
            core,
            sockets: MioSockets {
                poll,
                table: HashMap::new(),
            },
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
                self.core
                    .engine
                    .poll_timeout()
                    .saturating_duration_since(now)
            } else {
                std::time::Duration::ZERO
            };
            if let Err(e) = self.sockets.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    return;
                }
            }
            for ev in events.iter() {
                if ev.token() == WAKER {
                    if !self.core.commands(&mut self.sockets) {
                        return;
                    }
                } else {
                    self.receive(SocketId(ev.token().0 as u32));
                }
            }
            for id in std::mem::take(&mut self.backlog) {
                self.receive(id);
            }
            self.core.timers(&mut self.sockets);
        }
    }

    /// Drains the socket in batches: every datagram through the engine, each result sent at
    /// once. A batch that comes back short means the socket is empty: a datagram arriving
    /// later raises a new readiness event.
    fn receive(&mut self, id: SocketId) {
        for _ in 0..FAIR_SHARE {
            let Some(MioSocket {
                socket,
                state,
                route,
            }) = self.sockets.table.get(&id)
            else {
                return;
            };
            let mut route = *route;
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
                // start of the next one) are saved and put back. A datagram longer than
                // `MAX_DATAGRAM` is handed over empty, so the engine counts it as malformed
                // (as the io_uring driver, whose buffers end there, does).
                let stride = meta.stride.max(1);
                let total = meta.len.min(SLOT - TAIL_ROOM);
                let mut start = 0;
                loop {
                    let end = (start + stride).min(total);
                    let mut saved = [0u8; TAIL_ROOM];
                    let keep = (total - end).min(TAIL_ROOM);
                    saved[..keep].copy_from_slice(&slot[end..end + keep]);
                    let len = if end - start > MAX_DATAGRAM {
                        0
                    } else {
                        end - start
                    };
                    let buf = &mut slot[start..start + len + TAIL_ROOM];
                    let sent = self
                        .core
                        .engine
                        .handle_routed(&mut route, now, id, meta.addr, buf, len);
                    if let Some(t) = sent {
                        if let Some(out) = self.sockets.table.get(&t.socket) {
                            let _ = out.socket.send_to(&buf[..t.len], t.destination);
                        }
                    }
                    slot[end..end + keep].copy_from_slice(&saved[..keep]);
                    start = end;
                    if start >= total {
                        break; // (an empty datagram is still handed over once, and counted)
                    }
                }
            }
            if let Some(s) = self.sockets.table.get_mut(&id) {
                s.route = route;
            }
            if n < BATCH {
                return;
            }
        }
        // Still data after a fair share: serve the other sockets first, then come back.
        self.backlog.push(id);
    }
}
