//! The io_uring worker loop (Linux 6.0 or later).
//!
//! With epoll a worker enters the kernel two or three times per datagram: to learn which
//! sockets are readable, to receive, and to send. Here it enters once per batch:
//!
//! - **Receive.** Every socket has one multishot `recvmsg` ([`opcode::RecvMsgMulti`]) armed
//!   for its lifetime. The kernel picks a buffer for each datagram from a ring of buffers the
//!   worker provides (one group, [`BUFFERS`] buffers, registered once), writes the source
//!   address and the datagram into it, and posts a completion naming the buffer.
//! - **Send.** The engine transforms the datagram where it landed (each buffer has the
//!   engine's tail room past the largest datagram), and the worker queues a send to the
//!   destination from that same buffer ([`opcode::Send`] with an address, `MSG_DONTWAIT`: a
//!   full socket drops the datagram, as with epoll). The buffer goes back to the ring when
//!   the send completes, or at once when the engine drops the datagram.
//! - **Wait.** One `io_uring_enter` submits the batch's sends and waits for the next
//!   completions or the engine's next deadline. Sockets are registered files, so no file
//!   descriptor is looked up per operation.
//!
//! This module is the relay's only `unsafe` code: the ring's memory (buffers, buffer ring
//! entries, destination addresses) is shared with the kernel, which the borrow checker cannot see.
//! The invariants are few: a buffer is touched by the worker only between the completion
//! that hands it over and its return to the ring; a send's destination lives, unmoved, until
//! the send completes; and all of it outlives its registration (see [`Uring`]'s `Drop`).
#![allow(unsafe_code)]

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::collections::HashMap;
use std::io;
use std::net::{
    Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket as StdUdpSocket,
};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::worker::{Command, Core, Driver, Wake, MAX_DATAGRAM};
use super::{RelayError, Shared};
use crate::engine::{EngineConfig, Route, SocketId, TAIL_ROOM};

/// Receive buffers per worker (a power of two, at most 32768). Datagrams are sent from the
/// buffer they arrived in, which returns to the ring when the send completes (by the next
/// turn of the loop at the latest), so this bounds a burst, not the number of calls.
const BUFFERS: u16 = 1024;
/// The buffer group of the receive ring.
const GROUP: u16 = 0;
/// Room for the source address before each datagram: the largest, `sockaddr_in6`.
const NAME_ROOM: usize = std::mem::size_of::<libc::sockaddr_in6>();
/// What the kernel may fill of a buffer: its `io_uring_recvmsg_out` header (16 bytes), the
/// address room and the largest datagram relayed.
const FILL: usize = 16 + NAME_ROOM + MAX_DATAGRAM;
/// One buffer: what the kernel fills, the engine's tail room, rounded to a cache line.
const STRIDE: usize = (FILL + TAIL_ROOM + 63) & !63;
// Each buffer has the engine's tail room; the ring's indices wrap by masking.
const _: () = assert!(STRIDE >= FILL + TAIL_ROOM && BUFFERS.is_power_of_two());

/// Submission queue entries; the completion queue has four times as many.
const ENTRIES: u32 = 1024;
/// Alignment of the memory shared with the kernel: a page, for pages of up to 64 KiB.
const PAGE_ALIGN: usize = 1 << 16;
/// Receives that end in an error this many times in a row, without a datagram between, are
/// not armed again: the socket is broken, not busy.
const MAX_RECV_ERRORS: u8 = 8;
/// Registered file slots at most (each socket takes one).
const MAX_FILES: u32 = 1 << 16;

/// What a completion is for: the top two bits of its user data.
const KIND_RECV: u64 = 1 << 62;
const KIND_SEND: u64 = 2 << 62;
const KIND_WAKE: u64 = 3 << 62;
const KIND_MASK: u64 = 3 << 62;
/// Completions of cancellations, which need nothing.
const IGNORE: u64 = 0;
/// The completion of the cancellation of everything, when the worker stops.
const CANCEL_ALL: u64 = 1;

/// Starts worker `index` on io_uring: the ring is created on the worker's own thread (it is
/// the ring's only submitter), and this returns once it is running, or why it cannot.
pub(super) fn spawn(
    index: usize,
    config: EngineConfig,
    shared: Arc<Shared>,
) -> Result<(mpsc::Sender<Command>, Wake, JoinHandle<()>), RelayError> {
    let (wake_tx, wake_rx) = UnixDatagram::pair()?;
    wake_tx.set_nonblocking(true)?;
    wake_rx.set_nonblocking(true)?;
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name(format!("relay-worker-{index}"))
        .spawn(move || match Uring::new(wake_rx) {
            Ok(io) => {
                let _ = ready_tx.send(Ok(()));
                Loop {
                    core: Core::new(rx, config, shared),
                    io,
                }
                .run();
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((tx, Wake::Socket(wake_tx), thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(RelayError::Io(e))
        }
        Err(_) => Err(RelayError::WorkerGone),
    }
}

/// Asks the CPU to fetch the cache lines of `value`, at most [`PREFETCH_LINES`] of them (a
/// hint: no effect on what the program computes, and no fault whatever the address).
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        const LINE: usize = 64;
        let start = std::ptr::from_ref(value).cast::<i8>();
        let offset = start as usize % LINE;
        let lines = (offset + std::mem::size_of::<T>()).div_ceil(LINE);
        let first = start.wrapping_sub(offset);
        for k in 0..lines.min(PREFETCH_LINES) {
            // SAFETY: a prefetch neither reads into the program nor faults, whatever the
            // address; these are the lines of `value`, a live reference, and SSE (which
            // `_mm_prefetch` needs) is part of x86-64.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(first.wrapping_add(k * LINE)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// The most cache lines [`prefetch`] asks for at once: a call's state is about 41.
const PREFETCH_LINES: usize = 48;

/// Whether this kernel has what the loop needs: multishot `recvmsg` came with Linux 6.0.
fn kernel_is_recent() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    major >= 6
}

/// One entry of the buffer ring, as the kernel lays it out (`struct io_uring_buf`). The
/// ring's tail is the `resv` field of entry 0, which only the kernel reads and only
/// [`Uring::recycle`] writes; the other fields are written through raw pointers so that no
/// reference ever covers that tail.
#[repr(C)]
struct RingEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

/// A registered socket. The ring holds the socket itself: its file descriptor was closed once
/// it was registered, so that calls are not bounded by the process's open-file limit.
struct Slot {
    id: SocketId,
    /// Receives in a row that ended in an error.
    errors: u8,
    /// Changes each time the slot is reused, so that late completions of an earlier socket's
    /// receive are recognised and dropped.
    generation: u32,
    /// Where the engine routes this socket's datagrams, kept for it (see [`Route`]).
    route: Route,
    /// The socket this one's datagrams last went out on, and its slot: most of a socket's
    /// traffic leaves by one other socket, found here without the `by_id` table (a lookup
    /// whose buckets miss the cache once calls are many), and checked against that slot.
    out: Option<(SocketId, u32)>,
}

/// A send's destination address, one per buffer: stable in memory until the send completes.
struct SendHeader {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl SendHeader {
    fn new() -> Self {
        Self {
            // SAFETY: all-zero socket addresses (plain integers and byte arrays) are valid.
            v4: unsafe { std::mem::zeroed() },
            // SAFETY: as above.
            v6: unsafe { std::mem::zeroed() },
        }
    }

    /// Writes `to` and returns the address and length to give the kernel.
    fn set(&mut self, to: SocketAddr) -> (*const libc::sockaddr, libc::socklen_t) {
        match to {
            SocketAddr::V4(a) => {
                self.v4 = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                (
                    std::ptr::addr_of!(self.v4).cast::<libc::sockaddr>(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
            SocketAddr::V6(a) => {
                self.v6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                (
                    std::ptr::addr_of!(self.v6).cast::<libc::sockaddr>(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    }
}

/// A datagram the engine made itself (a bridge's receiver report), kept with its destination
/// until its send completes. Its id in a send's user data is `BUFFERS` plus its index.
/// (The bytes and the address are on the heap, so they stay put when the list grows.)
struct OwnSend {
    data: Vec<u8>,
    to: Box<SendHeader>,
    busy: bool,
}

/// Page-aligned memory shared with the kernel: the buffer ring's entries and the buffers.
struct Region {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Region {
    fn new(size: usize) -> io::Result<Self> {
        let layout = Layout::from_size_align(size, PAGE_ALIGN)
            .map_err(|_| io::Error::other("buffer layout"))?;
        // SAFETY: `layout` has a non-zero size (every caller asks for at least one page's
        // worth of entries or buffers).
        let ptr = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or_else(|| io::Error::other("out of memory"))?;
        Ok(Self { ptr, layout })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.layout.size() == 0 {
            return; // the empty stand-in of a region left to leak (see `Uring`'s `Drop`)
        }
        // SAFETY: allocated in `new` with this layout; [`Uring`] drops regions only when the
        // kernel can no longer use them.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// The ring, the memory it shares with the kernel, and the sockets.
struct Uring {
    // Declared (and so dropped) first: see `Drop`.
    ring: IoUring,
    /// `BUFFERS` entries of the buffer ring.
    entries: Region,
    /// `BUFFERS` buffers of `STRIDE` bytes.
    buffers: Region,
    /// The ring's tail, as last published.
    tail: u16,
    sends: Box<[SendHeader]>,
    /// Datagrams the engine made itself, while their sends are in flight (and after, for
    /// reuse).
    own: Vec<OwnSend>,
    /// Sends submitted and not completed yet.
    in_flight: usize,
    /// The header every multishot receive was armed with (only its name and control
    /// lengths matter), boxed so that its address never changes.
    recv_msg: Box<libc::msghdr>,
    slots: Vec<Option<Slot>>,
    generations: Vec<u32>,
    free: Vec<u32>,
    files: u32,
    by_id: HashMap<SocketId, u32>,
    wake: UnixDatagram,
    /// Entries to submit, kept here so that a turn of the loop allocates nothing.
    pending: Vec<squeue::Entry>,
    /// Slots whose receive ended and must be armed again.
    rearm: Vec<u32>,
    completions: Vec<cqueue::Entry>,
}

impl Uring {
    fn new(wake: UnixDatagram) -> io::Result<Self> {
        if !kernel_is_recent() {
            return Err(io::Error::other("the kernel is older than 6.0"));
        }
        // Completions are processed only when the worker asks (`DEFER_TASKRUN`, 6.1): a
        // datagram arriving while the worker is busy does not interrupt it.
        let ring = IoUring::builder()
            .setup_cqsize(4 * ENTRIES)
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(ENTRIES)
            .or_else(|_| {
                IoUring::builder()
                    .setup_cqsize(4 * ENTRIES)
                    .setup_coop_taskrun()
                    .build(ENTRIES)
            })?;
        if !ring.params().is_feature_ext_arg() || !ring.params().is_feature_nodrop() {
            return Err(io::Error::other("io_uring lacks EXT_ARG or NODROP"));
        }
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        for code in [
            opcode::RecvMsgMulti::CODE,
            opcode::Send::CODE,
            opcode::PollAdd::CODE,
            opcode::AsyncCancel::CODE,
        ] {
            if !probe.is_supported(code) {
                return Err(io::Error::other(format!("io_uring lacks opcode {code}")));
            }
        }
        let soft = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(s, _)| s);
        let files = u32::try_from(soft)
            .unwrap_or(MAX_FILES)
            .clamp(64, MAX_FILES);
        ring.submitter().register_files_sparse(files)?;

        let entries = Region::new(usize::from(BUFFERS) * std::mem::size_of::<RingEntry>())?;
        let buffers = Region::new(usize::from(BUFFERS) * STRIDE)?;
        // SAFETY: `entries` holds `BUFFERS` entries, page-aligned, and lives until the group
        // is unregistered (`Drop`).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                entries.ptr.as_ptr() as u64,
                BUFFERS,
                GROUP,
                0,
            )?;
        }
        // SAFETY: an all-zero `msghdr` is valid (null pointers, zero lengths).
        let mut recv_msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        recv_msg.msg_namelen = NAME_ROOM as libc::socklen_t;
        let sends = (0..BUFFERS).map(|_| SendHeader::new()).collect();
        let mut io = Self {
            ring,
            entries,
            buffers,
            tail: 0,
            sends,
            own: Vec::new(),
            in_flight: 0,
            recv_msg,
            slots: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            files,
            by_id: HashMap::new(),
            wake,
            pending: Vec::with_capacity(usize::from(BUFFERS) * 2),
            rearm: Vec::new(),
            completions: Vec::with_capacity(4 * ENTRIES as usize),
        };
        for bid in 0..BUFFERS {
            io.recycle(bid);
        }
        io.arm_wake();
        io.flush()?;
        Ok(io)
    }

    /// Buffer `bid`, all `STRIDE` bytes of it.
    ///
    /// Only for a buffer the kernel handed over (a receive completion named it) and that has
    /// not gone back to the ring since; and only one slice at a time.
    fn buffer(&mut self, bid: u16) -> &mut [u8] {
        assert!(bid < BUFFERS);
        // SAFETY: `bid < BUFFERS`, so the range lies inside `buffers`; the kernel writes a
        // buffer only after taking it from the ring, and this one is out of the ring (the
        // caller holds it), and `&mut self` keeps this slice the only one.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.buffers.ptr.as_ptr().add(usize::from(bid) * STRIDE),
                STRIDE,
            )
        }
    }

    /// Puts buffer `bid` back into the receive ring. Each buffer is out of the ring (held by
    /// the worker) when this is called for it, so the ring never holds more than `BUFFERS`.
    fn recycle(&mut self, bid: u16) {
        assert!(bid < BUFFERS);
        let mask = BUFFERS - 1;
        let base = self.entries.ptr.as_ptr().cast::<RingEntry>();
        let addr = self.buffers.ptr.as_ptr() as u64 + u64::from(bid) * STRIDE as u64;
        // SAFETY: `tail & mask < BUFFERS`, so the entry lies inside `entries`; the kernel
        // reads only entries between its head and the published tail, and this one is past
        // the tail; the writes go through raw pointers to the three fields, never touching
        // `resv` (the tail, in entry 0).
        unsafe {
            let entry = base.add(usize::from(self.tail & mask));
            std::ptr::addr_of_mut!((*entry).addr).write(addr);
            std::ptr::addr_of_mut!((*entry).len).write(FILL as u32);
            std::ptr::addr_of_mut!((*entry).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail is entry 0's `resv`, 2-byte aligned inside `entries`, and the
        // kernel reads it concurrently: hence an atomic store, with release ordering so that
        // the entry's fields are visible before the tail that covers them.
        unsafe {
            let tail = std::ptr::addr_of_mut!((*base).resv).cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    fn arm_recv(&mut self, slot: u32) {
        let Some(s) = self.slots.get(slot as usize).and_then(Option::as_ref) else {
            return;
        };
        let entry = opcode::RecvMsgMulti::new(types::Fixed(slot), &*self.recv_msg, GROUP)
            .build()
            .user_data(KIND_RECV | u64::from(s.generation) << 32 | u64::from(slot));
        self.pending.push(entry);
    }

    fn arm_wake(&mut self) {
        let entry = opcode::PollAdd::new(types::Fd(self.wake.as_raw_fd()), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(KIND_WAKE);
        self.pending.push(entry);
    }

    /// Submits every pending entry (entering the kernel when the queue fills). An entry
    /// leaves `pending` as soon as it is in the submission queue, so that an error here never
    /// queues it twice (a send queued twice would return its buffer to the ring twice).
    fn flush(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            let mut done = 0;
            {
                let mut sq = self.ring.submission();
                for e in &self.pending {
                    // SAFETY: every entry points only at memory that outlives its operation:
                    // the boxed receive header (lives with the ring), a send's destination and
                    // its buffer (kept until the send completes), or nothing.
                    if unsafe { sq.push(e) }.is_err() {
                        break;
                    }
                    done += 1;
                }
            }
            self.pending.drain(..done);
            if !self.pending.is_empty() {
                self.ring.submit()?;
            }
        }
        Ok(())
    }

    /// Queues a send of `len` bytes of buffer `bid` (from its datagram's start) on `slot`.
    fn queue_send(&mut self, bid: u16, payload_at: usize, len: usize, slot: u32, to: SocketAddr) {
        // The engine never returns more than the datagram and its tail room; kept inside the
        // buffer all the same.
        let len = len.min(STRIDE - payload_at);
        // SAFETY: `bid < BUFFERS` and `payload_at + len` lies within the buffer's `STRIDE`
        // bytes (the caller took both from this buffer), so the pointer stays inside `buffers`.
        let data = unsafe {
            self.buffers
                .ptr
                .as_ptr()
                .add(usize::from(bid) * STRIDE + payload_at)
        };
        let (name, name_len) = self.sends[usize::from(bid)].set(to);
        self.push_send(slot, data.cast_const(), len, name, name_len, u64::from(bid));
    }

    /// Queues a send of `len` bytes at `data` on `slot` to `name`; `id` (a buffer, or
    /// `BUFFERS` plus an own send's index) comes back with the completion.
    fn push_send(
        &mut self,
        slot: u32,
        data: *const u8,
        len: usize,
        name: *const libc::sockaddr,
        name_len: libc::socklen_t,
        id: u64,
    ) {
        // `send` with a destination (Linux 6.0): `sendto` without a message header to copy.
        let entry = opcode::Send::new(types::Fixed(slot), data, len as u32)
            .dest_addr(name)
            .dest_addr_len(name_len)
            .flags(libc::MSG_DONTWAIT)
            .build()
            .user_data(KIND_SEND | id);
        self.pending.push(entry);
        self.in_flight += 1;
    }

    /// A send completed: its buffer back to the ring, or its own datagram's room freed.
    fn sent(&mut self, id: u64) {
        self.in_flight -= 1;
        match u16::try_from(id) {
            Ok(bid) if bid < BUFFERS => self.recycle(bid),
            _ => {
                if let Some(own) = self.own.get_mut((id - u64::from(BUFFERS)) as usize) {
                    own.busy = false;
                }
            }
        }
    }
}

impl Driver for Uring {
    fn add(&mut self, id: SocketId, socket: StdUdpSocket) -> bool {
        let slot = match self.free.pop() {
            Some(s) => s,
            None if (self.slots.len() as u32) < self.files => {
                self.slots.push(None);
                self.generations.push(0);
                self.slots.len() as u32 - 1
            }
            None => return false,
        };
        if self
            .ring
            .submitter()
            .register_files_update(slot, &[socket.as_raw_fd()])
            .is_err()
        {
            self.free.push(slot);
            return false;
        }
        // The ring holds the socket now: its descriptor is closed here.
        drop(socket);
        let generation = self.generations[slot as usize];
        self.slots[slot as usize] = Some(Slot {
            id,
            errors: 0,
            generation,
            route: Route::default(),
            out: None,
        });
        self.by_id.insert(id, slot);
        self.arm_recv(slot);
        true
    }

    fn remove(&mut self, id: SocketId) {
        let Some(slot) = self.by_id.remove(&id) else {
            return;
        };
        if let Some(s) = self.slots[slot as usize].take() {
            let target = KIND_RECV | u64::from(s.generation) << 32 | u64::from(slot);
            self.pending
                .push(opcode::AsyncCancel::new(target).build().user_data(IGNORE));
            let _ = self.flush();
            let _ = self.ring.submitter().register_files_update(slot, &[-1]);
            // Late completions of this receive carry the old generation.
            let g = &mut self.generations[slot as usize];
            *g = g.wrapping_add(1) & 0x3FFF_FFFF;
            self.free.push(slot);
        }
    }

    fn send_to(&mut self, id: SocketId, data: &[u8], to: SocketAddr) {
        let Some(&slot) = self.by_id.get(&id) else {
            return;
        };
        // A free room (grown only while more of these are in flight at once than ever
        // before: a handful), the datagram copied into it, sent through the ring.
        let i = match self.own.iter().position(|o| !o.busy) {
            Some(i) => i,
            None => {
                self.own.push(OwnSend {
                    data: Vec::new(),
                    to: Box::new(SendHeader::new()),
                    busy: false,
                });
                self.own.len() - 1
            }
        };
        let own = &mut self.own[i];
        own.busy = true;
        own.data.clear();
        own.data.extend_from_slice(data);
        let (name, name_len) = own.to.set(to);
        let (ptr, len) = (own.data.as_ptr(), own.data.len());
        self.push_send(
            slot,
            ptr,
            len,
            name,
            name_len,
            u64::from(BUFFERS) + i as u64,
        );
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        // The kernel must be done with the shared memory before it is freed. First every
        // operation is cancelled (the receives would otherwise pick buffers until the ring's
        // teardown, which the kernel finishes later, on its own), then the buffer group is
        // unregistered (no buffer can be picked after that), then sends still in flight are
        // waited for, briefly: with MSG_DONTWAIT they complete at once, so there should be none.
        // Entries queued this turn go out first (sends among them complete at once), then the
        // cancellation; sends that could not be queued are no longer in flight.
        self.pending.push(
            opcode::AsyncCancel2::new(types::CancelBuilder::any())
                .build()
                .user_data(CANCEL_ALL),
        );
        let mut cancelled = self.flush().is_err();
        let unsent = self
            .pending
            .drain(..)
            .filter(|e| e.get_user_data() & KIND_MASK == KIND_SEND)
            .count();
        self.in_flight -= unsent;
        let deadline = Instant::now() + std::time::Duration::from_millis(200);
        while (!cancelled || self.in_flight > 0) && Instant::now() < deadline {
            let ts = types::Timespec::from(std::time::Duration::from_millis(10));
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = self.ring.submitter().submit_with_args(1, &args);
            for cqe in self.ring.completion() {
                match cqe.user_data() {
                    CANCEL_ALL => cancelled = true,
                    ud if ud & KIND_MASK == KIND_SEND => self.in_flight -= 1,
                    _ => {}
                }
            }
        }
        let unregistered = self.ring.submitter().unregister_buf_ring(GROUP).is_ok();
        if self.in_flight > 0 || !unregistered {
            // Better a leak than memory the kernel may still use being reused: the buffers,
            // the ring's entries and the sends' destination addresses.
            for region in [&mut self.buffers, &mut self.entries] {
                std::mem::forget(std::mem::replace(
                    region,
                    Region {
                        ptr: NonNull::dangling(),
                        layout: Layout::new::<()>(),
                    },
                ));
            }
            std::mem::forget(std::mem::take(&mut self.sends));
            std::mem::forget(std::mem::take(&mut self.own));
        }
    }
}

/// The source address the kernel wrote before a datagram.
fn source(name: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([*name.first()?, *name.get(1)?]);
    let port = u16::from_be_bytes([*name.get(2)?, *name.get(3)?]);
    if i32::from(family) == libc::AF_INET {
        let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
        Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
    } else if i32::from(family) == libc::AF_INET6 {
        let flow = u32::from_ne_bytes(name.get(4..8)?.try_into().ok()?);
        let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
        let scope = u32::from_ne_bytes(name.get(24..28)?.try_into().ok()?);
        Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            flow,
            scope,
        )))
    } else {
        None
    }
}

/// The io_uring worker loop.
struct Loop {
    core: Core,
    io: Uring,
}

impl Loop {
    fn run(mut self) {
        loop {
            if let Err(e) = self.io.flush() {
                tracing::error!(error = %e, "io_uring submit failed: the worker stops");
                return;
            }
            let now = Instant::now();
            let timeout = self
                .core
                .engine
                .poll_timeout()
                .saturating_duration_since(now);
            let ts = types::Timespec::from(timeout);
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.io.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
                    ) => {}
                Err(e) => {
                    tracing::error!(error = %e, "io_uring wait failed: the worker stops");
                    return;
                }
            }
            let mut completions = std::mem::take(&mut self.io.completions);
            completions.extend(self.io.ring.completion());
            let now = Instant::now();
            let mut woken = false;
            for cqe in completions.iter().take(2) {
                self.prefetch(cqe, false);
            }
            for (i, cqe) in completions.iter().enumerate() {
                // Two datagrams ahead the call's state is fetched, one ahead the keys it
                // names (read from that state, now in the cache).
                if let Some(later) = completions.get(i + 2) {
                    self.prefetch(later, false);
                }
                if let Some(next) = completions.get(i + 1) {
                    self.prefetch(next, true);
                }
                match cqe.user_data() & KIND_MASK {
                    KIND_RECV => self.received(now, cqe),
                    KIND_SEND => self.io.sent(cqe.user_data() & !KIND_MASK),
                    KIND_WAKE => {
                        woken = true;
                        if !cqueue::more(cqe.flags()) {
                            self.io.arm_wake();
                        }
                    }
                    _ => {}
                }
            }
            completions.clear();
            self.io.completions = completions;
            for i in 0..self.io.rearm.len() {
                let slot = self.io.rearm[i];
                self.io.arm_recv(slot);
            }
            self.io.rearm.clear();
            if woken {
                let mut byte = [0u8; 16];
                while self.io.wake.recv(&mut byte).is_ok() {}
                if !self.core.commands(&mut self.io) {
                    return;
                }
            }
            self.core.timers(&mut self.io);
        }
    }

    /// Asks the CPU to bring the state of the call a receive completion's datagram belongs
    /// to into the cache, so that it arrives while the datagram before is handled instead
    /// of stalling its own handling: at a thousand calls and more, that state is otherwise
    /// a run of cache misses on every datagram. With `keys`, the SRTP keys that state names
    /// instead (see [`crate::engine::Engine::prefetch_keys`]).
    fn prefetch(&self, cqe: &cqueue::Entry, keys: bool) {
        if cqe.user_data() & KIND_MASK != KIND_RECV {
            return;
        }
        let slot = (cqe.user_data() & 0xFFFF_FFFF) as usize;
        let Some(Some(s)) = self.io.slots.get(slot) else {
            return;
        };
        if keys {
            self.core.engine.prefetch_keys(&s.route);
        } else if let Some(call) = self.core.engine.call_memory(&s.route) {
            prefetch(call);
        }
    }

    /// A receive completion: the datagram through the engine, and out from the same buffer.
    fn received(&mut self, now: Instant, cqe: &cqueue::Entry) {
        let ud = cqe.user_data();
        let slot = (ud & 0xFFFF_FFFF) as u32;
        let generation = ((ud >> 32) & 0x3FFF_FFFF) as u32;
        let live = match self.io.slots.get_mut(slot as usize) {
            Some(Some(s)) if s.generation == generation => Some(s),
            _ => None,
        };
        let id = live.as_ref().map(|s| s.id);
        let (mut route, out) = live
            .as_ref()
            .map_or((Route::default(), None), |s| (s.route, s.out));
        if let Some(s) = live {
            let res = cqe.result();
            if res >= 0 || res == -libc::ENOBUFS {
                s.errors = 0;
            } else {
                s.errors = s.errors.saturating_add(1);
            }
            if !cqueue::more(cqe.flags()) {
                // The multishot receive ended (no buffer was free, or an error): armed again
                // after this turn's buffers are back, unless it keeps failing.
                if s.errors < MAX_RECV_ERRORS {
                    self.io.rearm.push(slot);
                } else {
                    tracing::warn!(
                        socket = s.id.0,
                        error = res,
                        "receives on this socket keep failing: it is no longer read"
                    );
                }
            }
        }
        let Some(bid) = cqueue::buffer_select(cqe.flags()) else {
            return;
        };
        let (Some(id), Ok(filled)) = (id, usize::try_from(cqe.result())) else {
            self.io.recycle(bid);
            return;
        };
        let recv_msg = *self.io.recv_msg;
        let buf = self.io.buffer(bid);
        let parsed = types::RecvMsgOut::parse(&buf[..filled.min(FILL)], &recv_msg)
            .ok()
            .and_then(|out| {
                let from = source(out.name_data())?;
                let at = out.payload_data().as_ptr() as usize - buf.as_ptr() as usize;
                // A datagram longer than the buffer is handed over empty, so the engine
                // counts it as malformed instead of relaying a truncated one.
                let len = if out.is_payload_truncated() {
                    0
                } else {
                    out.payload_data().len()
                };
                Some((from, at, len))
            });
        let Some((from, at, len)) = parsed else {
            self.io.recycle(bid);
            return;
        };
        let packet = &mut buf[at..at + len + TAIL_ROOM];
        let sent = self
            .core
            .engine
            .handle_routed(&mut route, now, id, from, packet, len);
        let to = sent.and_then(|t| {
            let cached = out.filter(|&(oid, o)| {
                oid == t.socket
                    && matches!(self.io.slots.get(o as usize), Some(Some(s)) if s.id == oid)
            });
            let o = cached
                .map(|(_, o)| o)
                .or_else(|| self.io.by_id.get(&t.socket).copied())?;
            Some((t, o))
        });
        if let Some(Some(s)) = self.io.slots.get_mut(slot as usize) {
            s.route = route;
            if let Some((t, o)) = to {
                s.out = Some((t.socket, o));
            }
        }
        match to {
            Some((t, o)) => self.io.queue_send(bid, at, t.len, o, t.destination),
            None => self.io.recycle(bid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_parse() {
        let mut v4 = [0u8; NAME_ROOM];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&4000u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[127, 0, 0, 9]);
        assert_eq!(source(&v4), Some("127.0.0.9:4000".parse().unwrap()));
        let mut v6 = [0u8; NAME_ROOM];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&5000u16.to_be_bytes());
        v6[23] = 1;
        assert_eq!(source(&v6), Some("[::1]:5000".parse().unwrap()));
        assert_eq!(source(&[0u8; 3]), None);
        assert_eq!(source(&[0u8; NAME_ROOM]), None); // AF_UNSPEC
    }
}
