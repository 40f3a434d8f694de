//! The I/O layer: the only part of the relay that owns sockets and threads.
//!
//! A [`Relay`] runs one worker thread per core (by default). Each worker owns an
//! [`Engine`](crate::engine::Engine), the UDP sockets of its calls and a `mio` poller; both
//! legs of a call live on the same worker, so a packet is received, transformed in place and
//! sent without crossing threads. Buffers are allocated once per worker. Calls are created,
//! changed and ended through the [`Relay`] handle, which allocates ports, binds the sockets and
//! hands them to a worker.
//!
//! ```no_run
//! use srtp_relay::engine::{Mode, Security};
//! use srtp_relay::io::{CallRequest, LegRequest, Relay, RelayConfig};
//!
//! let relay = Relay::start(RelayConfig::default())?;
//! let created = relay.create_call(CallRequest {
//!     mode: Mode::PassThrough { verify: false },
//!     legs: [LegRequest::new(Security::Plain), LegRequest::new(Security::Plain)],
//! })?;
//! println!("leg 0 listens on {}", created.legs[0].rtp);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(target_os = "linux")]
mod sockopt;
#[cfg(target_os = "linux")]
mod uring;
mod worker;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engine::{
    CallInfo, CallSpec, Counters, EngineConfig, Latching, LegSpec, LegStats, LegUpdate,
    MediaDirection, Mode, PortPool, Security, SocketId, DEFAULT_PORT_GUARD,
};
use crate::EngineError;
pub use worker::IoDriver;
use worker::{Command, Worker};

/// Relay settings.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The address media sockets bind to. Default 127.0.0.1.
    pub bind: IpAddr,
    /// The local ports calls use (RTP on even ports, RTCP on the odd port above). Default
    /// 30000–39999.
    pub ports: RangeInclusive<u16>,
    /// Worker threads. Default: one per available core.
    pub workers: usize,
    /// How long a freed port rests before reuse.
    pub port_guard: Duration,
    /// Engine settings (timeouts).
    pub engine: EngineConfig,
    /// How workers receive and send: io_uring where the kernel has it (the default, `Auto`),
    /// or epoll. The environment variable `SRTP_RELAY_IO` (`auto`, `epoll`, `uring`)
    /// overrides `Auto`, for tests and benchmarks.
    pub io: IoDriver,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: 30000..=39999,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            port_guard: DEFAULT_PORT_GUARD,
            engine: EngineConfig::default(),
            io: IoDriver::Auto,
        }
    }
}

/// Why a relay request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The engine refused the call or change.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// No free port is left in the configured range.
    #[error("no free media port left in the configured range")]
    PortsExhausted,
    /// No call with that id.
    #[error("no call {0}")]
    UnknownCall(u64),
    /// A socket operation failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// A worker thread has stopped.
    #[error("relay worker stopped")]
    WorkerGone,
}

/// One leg of a call request: the local ports are allocated by the relay.
#[derive(Clone, Debug)]
pub struct LegRequest {
    /// RTCP on the RTP port (RFC 5761).
    pub rtcp_mux: bool,
    /// The endpoint's RTP address, if known.
    pub remote: Option<SocketAddr>,
    /// The endpoint's RTCP address, if not RTP port + 1 (or the RTP address with rtcp-mux).
    pub remote_rtcp: Option<SocketAddr>,
    /// Plain or SRTP with keys.
    pub security: Security,
    /// The endpoint's media direction.
    pub direction: MediaDirection,
    /// Latching for packets that cannot authenticate.
    pub latching: Latching,
}

impl LegRequest {
    /// A send-receive leg with separate RTCP port and no known remote.
    pub fn new(security: Security) -> Self {
        Self {
            rtcp_mux: false,
            remote: None,
            remote_rtcp: None,
            security,
            direction: MediaDirection::SendRecv,
            latching: Latching::default(),
        }
    }
}

/// A call request.
#[derive(Clone, Debug)]
pub struct CallRequest {
    /// What the relay does between the legs.
    pub mode: Mode,
    /// The two legs; in a bridge leg 0 faces the clients and leg 1 the gateway.
    pub legs: [LegRequest; 2],
}

/// The local addresses of a leg, to put in the SDP sent to its endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalPorts {
    /// Where the endpoint sends RTP (and RTCP with rtcp-mux).
    pub rtp: SocketAddr,
    /// Where the endpoint sends RTCP, without rtcp-mux.
    pub rtcp: Option<SocketAddr>,
}

/// A created call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreatedCall {
    /// The relay-wide call id.
    pub id: u64,
    /// Local addresses per leg.
    pub legs: [LocalPorts; 2],
}

/// A running relay: its workers and the shared port pool.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    workers: Vec<Worker>,
    next_worker: AtomicUsize,
    next_call: AtomicU64,
    next_socket: AtomicU64,
    shared: Arc<Shared>,
}

/// Where a call runs: its worker, its id in that worker's engine, and its local ports.
type CallSite = (usize, crate::engine::CallId, Vec<u16>);

/// What the workers share with the handle.
#[derive(Debug)]
struct Shared {
    ports: Mutex<PortPool>,
    /// Relay call id → where it runs and which ports it holds.
    calls: Mutex<HashMap<u64, CallSite>>,
    /// The final statistics of the latest calls that ended by themselves (inactivity), oldest
    /// first, until [`Relay::delete_call`] collects them: a controller that deletes a call
    /// after its media timed out still gets its totals.
    ended: Mutex<VecDeque<(u64, [LegStats; 2])>>,
}

/// How many calls that ended by themselves keep their final statistics for
/// [`Relay::delete_call`] (the oldest go first).
const ENDED_KEPT: usize = 4096;

impl Shared {
    /// Records the final statistics of a call that ended by itself, then frees it.
    fn call_ended(&self, id: u64, stats: [LegStats; 2]) {
        {
            let mut ended = self.ended.lock().expect("lock");
            if ended.len() == ENDED_KEPT {
                ended.pop_front();
            }
            ended.push_back((id, stats));
        }
        self.forget_call(id);
    }

    /// Takes the final statistics of call `id`, if it ended by itself and they are still
    /// kept.
    fn take_ended(&self, id: u64) -> Option<[LegStats; 2]> {
        let mut ended = self.ended.lock().expect("lock");
        let at = ended.iter().position(|&(i, _)| i == id)?;
        ended.remove(at).map(|(_, stats)| stats)
    }

    /// Frees a call's ports (after the guard time) once it ended, however it ended.
    fn forget_call(&self, id: u64) {
        let removed = self.calls.lock().expect("lock").remove(&id);
        if let Some((_, _, ports)) = removed {
            let now = Instant::now();
            let mut pool = self.ports.lock().expect("lock");
            for p in ports {
                pool.release(p, now);
            }
        }
    }
}

/// Raises the open-file limit toward `needed` descriptors: the soft limit up to the hard one,
/// and, where the process may (root, or `CAP_SYS_RESOURCE`), the hard limit itself up to
/// `needed` (within the kernel's `fs.nr_open`). Returns the soft limit in force afterwards.
fn raise_nofile_limit(needed: u64) -> u64 {
    use rlimit::Resource;
    if let Ok((_, hard)) = rlimit::getrlimit(Resource::NOFILE) {
        if hard < needed {
            let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(hard);
            let target = needed.min(ceiling);
            if target > hard {
                // Refused without the privilege: the soft limit then rises to the old hard one.
                let _ = rlimit::setrlimit(Resource::NOFILE, target, target);
            }
        }
    }
    rlimit::increase_nofile_limit(u64::MAX)
        .ok()
        .or_else(|| {
            rlimit::getrlimit(Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        })
        .unwrap_or(0)
}

impl Relay {
    /// Starts the workers. Raises the open-file limit first, as far as the media port range
    /// needs and the process may (every leg holds one or two sockets), and warns when it
    /// stays below that.
    ///
    /// # Errors
    /// When a worker's poller cannot be created.
    pub fn start(config: RelayConfig) -> Result<Self, RelayError> {
        // One socket per port at most, and some room for everything else.
        let needed = config.ports.clone().count() as u64 + 1024;
        let limit = raise_nofile_limit(needed);
        // RTP on even ports, RTCP on the odd port above.
        let pool = PortPool::with_ports(
            config.ports.clone().filter(|p| p % 2 == 0 && *p < u16::MAX),
            config.port_guard,
        );
        let shared = Arc::new(Shared {
            ports: Mutex::new(pool),
            calls: Mutex::new(HashMap::new()),
            ended: Mutex::new(VecDeque::new()),
        });
        let driver = match (config.io, std::env::var("SRTP_RELAY_IO")) {
            (IoDriver::Auto, Ok(name)) => IoDriver::from_name(&name).ok_or_else(|| {
                RelayError::Io(std::io::Error::other(format!(
                    "SRTP_RELAY_IO={name}: expected auto, epoll or uring"
                )))
            })?,
            (d, _) => d,
        };
        // `Auto` is settled by the first worker; the others then use what it runs, so that all
        // workers run one driver (a later one failing on io_uring is an error, not a mix).
        let mut driver = driver;
        let mut workers = Vec::new();
        for i in 0..config.workers.max(1) {
            let w = Worker::spawn(i, driver, config.engine.clone(), Arc::clone(&shared))?;
            driver = w.driver();
            workers.push(w);
        }
        tracing::info!(
            workers = workers.len(),
            io = workers[0].driver().name(),
            "relay workers started"
        );
        // On epoll every socket holds a descriptor; on io_uring the ring holds the sockets,
        // and each worker's table of them is as large as the soft limit (up to 65 536).
        let room = match workers[0].driver() {
            IoDriver::Uring => workers.len() as u64 * limit.min(1 << 16),
            _ => limit,
        };
        if room < needed {
            tracing::warn!(
                limit,
                needed,
                "the open-file limit is below what the media port range can use: calls will \
                 fail with no free socket before the ports run out (raise it with `ulimit -n` \
                 or LimitNOFILE=, or run with CAP_SYS_RESOURCE)"
            );
        }
        Ok(Self {
            config,
            workers,
            next_worker: AtomicUsize::new(0),
            next_call: AtomicU64::new(1),
            next_socket: AtomicU64::new(1),
            shared,
        })
    }

    /// The driver the workers run (`Auto` resolved: io_uring or epoll).
    pub fn io_driver(&self) -> IoDriver {
        self.workers[0].driver()
    }

    /// Creates a call: allocates and binds its ports, and starts relaying on one worker.
    ///
    /// # Errors
    /// [`RelayError::PortsExhausted`], [`RelayError::Engine`] for a call the engine refuses
    /// (policy, keys), [`RelayError::Io`].
    pub fn create_call(&self, request: CallRequest) -> Result<CreatedCall, RelayError> {
        let mut sockets = Vec::new();
        let mut ports = Vec::new();
        let mut local = Vec::new();
        let mut specs = Vec::new();
        let result = (|| {
            for leg in &request.legs {
                let (port, rtp, rtcp) = self.bind_pair(!leg.rtcp_mux)?;
                ports.push(port);
                let rtp_id = self.socket_id();
                let rtp_addr = rtp.local_addr()?;
                sockets.push((rtp_id, rtp));
                let (rtcp_id, rtcp_addr) = match rtcp {
                    Some(s) => {
                        let id = self.socket_id();
                        let a = s.local_addr()?;
                        sockets.push((id, s));
                        (Some(id), Some(a))
                    }
                    None => (None, None),
                };
                local.push(LocalPorts {
                    rtp: rtp_addr,
                    rtcp: rtcp_addr,
                });
                specs.push(LegSpec {
                    rtp: rtp_id,
                    rtcp: rtcp_id,
                    remote: leg.remote,
                    remote_rtcp: leg.remote_rtcp,
                    security: leg.security.clone(),
                    direction: leg.direction,
                    latching: leg.latching,
                });
            }
            Ok::<_, RelayError>(())
        })();
        let release = |ports: &[u16]| {
            let now = Instant::now();
            let mut pool = self.shared.ports.lock().expect("lock");
            for &p in ports {
                pool.release(p, now);
            }
        };
        if let Err(e) = result {
            release(&ports);
            return Err(e);
        }
        let spec = CallSpec {
            mode: request.mode,
            legs: specs.try_into().expect("two legs"),
        };
        let w = self.next_worker.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        // The call is known to the handle before the worker runs it, and the worker knows its
        // relay-wide id from the start, so a call that ends by itself, however soon, frees its
        // ports.
        // The id is taken under the lock that lists the calls, so a call whose id is below
        // `next_call_id` is always in `calls()` (or has ended).
        let id = {
            let mut calls = self.shared.calls.lock().expect("lock");
            let id = self.next_call.fetch_add(1, Ordering::Relaxed);
            calls.insert(id, (w, crate::engine::CallId(0), ports.clone()));
            id
        };
        let (tx, rx) = mpsc::channel();
        let sent = self.workers[w].send(Command::Create {
            spec: Box::new(spec),
            sockets,
            relay_id: id,
            reply: tx,
        });
        let reply = sent.and_then(|()| rx.recv().map_err(|_| RelayError::WorkerGone));
        let engine_id = match reply {
            Ok(Ok(engine_id)) => engine_id,
            Ok(Err(e)) => {
                self.shared.forget_call(id);
                return Err(e.into());
            }
            Err(e) => {
                self.shared.forget_call(id);
                return Err(e);
            }
        };
        if let Some(site) = self.shared.calls.lock().expect("lock").get_mut(&id) {
            site.1 = engine_id;
        }
        Ok(CreatedCall {
            id,
            legs: [local[0], local[1]],
        })
    }

    /// Changes a leg of a call (remote, keys, direction).
    ///
    /// # Errors
    /// [`RelayError::UnknownCall`], or what the engine says.
    pub fn update_call(&self, id: u64, leg: usize, update: LegUpdate) -> Result<(), RelayError> {
        let (w, engine) = self.locate(id)?;
        let (tx, rx) = mpsc::channel();
        self.workers[w].send(Command::Update {
            call: engine,
            leg,
            update,
            reply: tx,
        })?;
        Ok(rx.recv().map_err(|_| RelayError::WorkerGone)??)
    }

    /// Replaces a leg's media security (and optionally the call's mode) on a running call, for
    /// an answer that declined or changed the offered SRTP; see
    /// [`Engine::change_security`](crate::engine::Engine::change_security).
    ///
    /// # Errors
    /// [`RelayError::UnknownCall`], or what the engine says (the call is unchanged then).
    pub fn change_security(
        &self,
        id: u64,
        leg: usize,
        security: Security,
        mode: Option<Mode>,
    ) -> Result<(), RelayError> {
        let (w, engine) = self.locate(id)?;
        let (tx, rx) = mpsc::channel();
        self.workers[w].send(Command::ChangeSecurity {
            call: engine,
            leg,
            security: Box::new(security),
            mode,
            reply: tx,
        })?;
        Ok(rx.recv().map_err(|_| RelayError::WorkerGone)??)
    }

    /// Ends a call, closes its sockets (its ports rest for the guard time) and returns its
    /// legs' final statistics. A call that already ended by itself (inactivity) returns the
    /// statistics it ended with, once, while they are kept (the latest few thousand such
    /// calls).
    ///
    /// # Errors
    /// [`RelayError::UnknownCall`].
    pub fn delete_call(&self, id: u64) -> Result<[LegStats; 2], RelayError> {
        let ended = || {
            self.shared
                .take_ended(id)
                .ok_or(RelayError::UnknownCall(id))
        };
        let (w, engine) = match self.locate(id) {
            Ok(site) => site,
            Err(RelayError::UnknownCall(_)) => return ended(),
            Err(e) => return Err(e),
        };
        let (tx, rx) = mpsc::channel();
        self.workers[w].send(Command::Delete {
            call: engine,
            reply: tx,
        })?;
        match rx.recv().map_err(|_| RelayError::WorkerGone)? {
            Ok(stats) => {
                self.shared.forget_call(id);
                Ok(stats)
            }
            // It ended by itself between the lookup and the worker's turn.
            Err(EngineError::UnknownCall(_)) => ended(),
            Err(e) => Err(e.into()),
        }
    }

    /// A snapshot of a call (addresses, directions, counters; never keys).
    ///
    /// # Errors
    /// [`RelayError::UnknownCall`].
    pub fn call(&self, id: u64) -> Result<CallInfo, RelayError> {
        let (w, engine) = self.locate(id)?;
        let (tx, rx) = mpsc::channel();
        self.workers[w].send(Command::Query {
            call: engine,
            reply: tx,
        })?;
        rx.recv()
            .map_err(|_| RelayError::WorkerGone)?
            .ok_or(RelayError::UnknownCall(id))
    }

    /// The id the next call will get. Ids only grow, and a call is listed by
    /// [`calls`](Self::calls) from the moment it has its id, so a call with a lower id that a
    /// later `calls()` does not list has ended.
    pub fn next_call_id(&self) -> u64 {
        let _listed = self.shared.calls.lock().expect("lock");
        self.next_call.load(Ordering::Relaxed)
    }

    /// The ids of the running calls.
    pub fn calls(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .shared
            .calls
            .lock()
            .expect("lock")
            .keys()
            .copied()
            .collect();
        v.sort_unstable();
        v
    }

    /// Process totals over every worker.
    ///
    /// # Errors
    /// [`RelayError::WorkerGone`].
    pub fn totals(&self) -> Result<Counters, RelayError> {
        let mut total = Counters::default();
        for w in &self.workers {
            let (tx, rx) = mpsc::channel();
            w.send(Command::Totals { reply: tx })?;
            total.add(&rx.recv().map_err(|_| RelayError::WorkerGone)?);
        }
        Ok(total)
    }

    /// Stops the workers and closes every socket.
    pub fn shutdown(self) {
        for w in self.workers {
            w.stop();
        }
    }

    fn locate(&self, id: u64) -> Result<(usize, crate::engine::CallId), RelayError> {
        let calls = self.shared.calls.lock().expect("lock");
        let &(w, e, _) = calls.get(&id).ok_or(RelayError::UnknownCall(id))?;
        Ok((w, e))
    }

    fn socket_id(&self) -> SocketId {
        SocketId(self.next_socket.fetch_add(1, Ordering::Relaxed) as u32)
    }

    /// Binds an even RTP port (and the odd RTCP port above it when `rtcp`), skipping ports
    /// something else holds.
    fn bind_pair(&self, rtcp: bool) -> Result<(u16, UdpSocket, Option<UdpSocket>), RelayError> {
        let mut busy = Vec::new();
        let result = loop {
            let port = {
                let mut pool = self.shared.ports.lock().expect("lock");
                pool.allocate(Instant::now())
            };
            let Some(port) = port else {
                break Err(RelayError::PortsExhausted);
            };
            let bind = |p: u16| UdpSocket::bind(SocketAddr::new(self.config.bind, p));
            let in_use = |e: &std::io::Error| e.kind() == std::io::ErrorKind::AddrInUse;
            match (bind(port), rtcp.then(|| bind(port + 1))) {
                (Ok(a), None) => break Ok((port, a, None)),
                (Ok(a), Some(Ok(b))) => break Ok((port, a, Some(b))),
                (Err(e), _) | (_, Some(Err(e))) if !in_use(&e) => {
                    // Out of file descriptors, or the address is not ours: not a busy port.
                    busy.push(port);
                    break Err(RelayError::Io(e));
                }
                _ => busy.push(port),
            }
        };
        // Ports held by someone else go back to the pool, to be tried again later.
        let now = Instant::now();
        let mut pool = self.shared.ports.lock().expect("lock");
        for p in busy {
            pool.release(p, now);
        }
        result
    }
}

/// Events of a call that ended by itself, for the operator.
fn call_ended(shared: &Shared, relay_id: u64, stats: [LegStats; 2]) {
    shared.call_ended(relay_id, stats);
}

#[cfg(test)]
mod tests {
    use super::raise_nofile_limit;

    /// The soft limit never falls and rises to the hard limit (when that is finite); asking
    /// for more than the hard limit without the privilege to raise it fails nothing.
    #[test]
    fn nofile_limit_rises_to_the_hard_limit() {
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
        let raised = raise_nofile_limit(16);
        assert!(raised >= soft.max(16), "soft limit {raised}, was {soft}");
        if hard < 1 << 24 {
            assert_eq!(raised, hard);
        }
        let after = raise_nofile_limit(hard.saturating_add(1));
        assert!(after >= raised, "soft limit fell from {raised} to {after}");
    }
}
