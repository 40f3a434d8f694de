//! `srtp-loadgen`: N simulated calls at 50 packets/s of 172-byte G.711 packets through a relay
//! (srtp-relay in this process, or a running rtpengine through its ng port), one direction,
//! with a progress line and a summary: offered and forwarded packets/s, loss (and where the
//! kernel dropped it: at the relay's sockets or the load generator's), reordering, latency
//! through the relay (p50/p99/max, loopback included; from the send time to the kernel's
//! receive timestamp), the hypervisor's steal time on both cores, and the relay's CPU per
//! packet from /proc. `--find-max` ramps the calls up to the highest rate the relay
//! sustains, then measures latency at half that rate.
//!
//! ```sh
//! cargo run --release -p srtp-loadgen -- --calls 500 --duration 20 --media srtp-rtp
//! rtpengine --config-file=none --foreground --table=-1 --interface=127.0.0.1 \
//!     --listen-ng=127.0.0.1:2223 --port-min=20000 --port-max=29999 --num-threads=1 &
//! cargo run --release -p srtp-loadgen -- --target rtpengine --rtpengine-pid $! --calls 500
//! cargo run --release -p srtp-loadgen -- --find-max --calls 600 --duration 4
//! ```
//! The relay under test runs on core `--relay-core` (in-process workers inherit it; pin an
//! external relay with `taskset`), the load on `--load-core`.

mod cpu;
mod drops;
mod target;
mod trivial;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::IoSliceMut;

use anyhow::{Context, Result};
use clap::Parser;
use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};
use srtp_core::{MasterKey, Policy, Session, MAX_TRAILER_LEN};

use cpu::CoreTime;
use target::{InProcess, Media, Rtpengine, Target, PROFILE};

#[derive(Parser, Debug)]
#[command(version, about = "Load generator for SRTP relays (loopback only)")]
struct Args {
    /// Simultaneous calls.
    #[arg(long, default_value_t = 100)]
    calls: u32,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Packets per second per call (20 ms G.711: 50).
    #[arg(long, default_value_t = 50)]
    pps: u32,
    /// What the calls carry.
    #[arg(long, value_enum, default_value = "srtp-rtp")]
    media: Media,
    /// Which relay.
    #[arg(long, value_enum, default_value = "srtp-relay")]
    target: TargetKind,
    /// srtp-relay worker threads (in-process target).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// The ng address of the relay process (`--target rtpengine` works with any ng relay,
    /// `srtp-relay serve` included).
    #[arg(long, default_value = "127.0.0.1:2223")]
    ng: SocketAddr,
    /// The ng relay's process id, for its CPU time.
    #[arg(long)]
    rtpengine_pid: Option<u32>,
    /// Core for the in-process relay's workers.
    #[arg(long, default_value_t = 0)]
    relay_core: usize,
    /// Core for the load generator.
    #[arg(long, default_value_t = 1)]
    load_core: usize,
    /// Find the highest rate the relay sustains: start at `--calls` and add a quarter more
    /// calls a step (each a fresh run of `--duration` seconds) until a step loses more than
    /// 0.01%, its median latency passes `--max-p50-us`, or the load generator cannot keep to
    /// its schedule; then narrow the gap between the last good step and the first bad one,
    /// and finish with a run at half the highest rate (where the latency target is set).
    #[arg(long)]
    find_max: bool,
    /// The median latency (µs) above which `--find-max` counts the relay as falling behind.
    #[arg(long, default_value_t = 1000)]
    max_p50_us: u32,
    /// The most calls `--find-max` tries.
    #[arg(long, default_value_t = 8000)]
    max_calls: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TargetKind {
    SrtpRelay,
    Rtpengine,
    /// The floor: one socket per call, epoll, no parsing or crypto (rtp-rtp only).
    Trivial,
}

const PACKET: usize = 172;
const SSRC_BASE: u32 = 0x5100_0000;

fn pin(core: usize) {
    let _ = core_affinity::set_for_current(core_affinity::CoreId { id: core });
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.find_max {
        let summary = run(&args, args.calls)?;
        println!("{HEADER}");
        println!("{}", summary.row());
        return Ok(());
    }
    // Ramp: a quarter more calls a step until a step fails (see `Summary::failure`), then
    // three halvings of the gap between the last step that passed and the first that failed.
    println!("{HEADER}");
    let mut best: Option<Summary> = None;
    let mut calls = args.calls;
    let mut failed: Option<(u32, String)> = None;
    loop {
        let s = run(&args, calls)?;
        println!("{}", s.row());
        match s.failure(args.max_p50_us) {
            Some(why) => {
                failed = Some((calls, why));
                break;
            }
            None => best = Some(s),
        }
        if calls >= args.max_calls {
            break;
        }
        calls = (calls + calls / 4).min(args.max_calls);
    }
    if let Some((mut high, _)) = failed {
        for _ in 0..3 {
            let low = best.as_ref().map_or(0, |b| b.calls);
            let mid = low + (high - low) / 2;
            if mid <= low || mid >= high {
                break;
            }
            let s = run(&args, mid)?;
            println!("{}", s.row());
            match s.failure(args.max_p50_us) {
                Some(why) => {
                    high = mid;
                    failed = Some((mid, why));
                }
                None => best = Some(s),
            }
        }
    }
    let next = match &failed {
        Some((calls, why)) => format!("{calls} calls: {why}"),
        None => format!("stopped at --max-calls {}", args.max_calls),
    };
    match &best {
        Some(b) => println!(
            "\nhighest sustained rate: {} packets/s ({} calls; {:.2} relay CPU-µs per packet, \
             latency p50 {} µs, p99 {} µs); failed at {next}",
            b.nominal_rate(),
            b.calls,
            b.cpu_us_per_packet(),
            b.p50,
            b.p99
        ),
        None => println!("\nno step passed; failed at {next}"),
    }
    // The issue's latency target is stated at half the highest sustained rate: measure it
    // there, in the same run, rather than read it off whichever step came closest.
    if let Some(b) = best.filter(|b| b.calls >= 2) {
        let s = run(&args, b.calls / 2)?;
        println!("{}", s.row());
        println!(
            "latency at half that rate ({} packets/s, {} calls): p50 {} µs, p99 {} µs, max {} µs \
             (steal {:.1}% on the relay's core, {:.1}% on the load's); {:.2} relay CPU-µs per \
             packet, {:.3}% lost",
            s.nominal_rate(),
            s.calls,
            s.p50,
            s.p99,
            s.max,
            s.steal.0,
            s.steal.1,
            s.cpu_us_per_packet(),
            100.0 * s.loss()
        );
    }
    Ok(())
}

/// Loss at or under this fraction counts as loss-free (the issue's bound: < 0.01%).
const LOSS_FREE: f64 = 0.0001;

const HEADER: &str = "| relay | media | calls | sent | offered pkt/s | forwarded pkt/s | loss | \
dropped at relay / load generator | reordered | latency p50 / p99 / max (µs) | steal % relay / load core | \
relay CPU-s per Mpkt | relay CPU µs/pkt |\n|---|---|---:|---:|---:|---:|---:|---|---:|---|---|---:|---:|";

/// One run's figures.
struct Summary {
    relay: String,
    media: Media,
    calls: u32,
    pps: u32,
    sent: u64,
    received: u64,
    send_time: Duration,
    reordered: u64,
    undecryptable: u64,
    p50: u32,
    p99: u32,
    max: u32,
    cpu_ns: u64,
    /// Datagrams the kernel dropped at the load generator's sockets.
    own_drops: u64,
    /// Datagrams dropped at every other socket on the machine (the relay's) in the run.
    relay_drops: u64,
    /// The share of the run the hypervisor took from the relay's core and the load
    /// generator's (steal time, percent): a virtual CPU that is not running stalls every
    /// packet in its path, which shows in the latency tail.
    steal: (f64, f64),
}

impl Summary {
    fn nominal_rate(&self) -> u64 {
        u64::from(self.calls) * u64::from(self.pps)
    }

    fn offered_rate(&self) -> f64 {
        self.sent as f64 / self.send_time.as_secs_f64()
    }

    /// Why this run does not count as sustained, if it does not: the load generator fell
    /// behind its schedule (it, not the relay, was the limit), more than 0.01% was lost, or
    /// the median latency passed `max_p50_us` (the relay fell behind and its queues grew).
    fn failure(&self, max_p50_us: u32) -> Option<String> {
        if !self.on_schedule() {
            return Some(format!(
                "the load generator could not offer {} packets/s (it sent {:.0}/s)",
                self.nominal_rate(),
                self.offered_rate()
            ));
        }
        if self.loss() > LOSS_FREE {
            return Some(format!(
                "{:.3}% lost ({} dropped at the relay's sockets, {} at the load generator's)",
                100.0 * self.loss(),
                self.relay_drops,
                self.own_drops
            ));
        }
        if self.p50 > max_p50_us {
            return Some(format!(
                "median latency {} µs, over {max_p50_us} µs: the relay fell behind",
                self.p50
            ));
        }
        None
    }

    /// Whether the load generator kept to its schedule: within 5%, so that a stall of the
    /// shared machine in the middle of a run does not count as the load generator's limit.
    fn on_schedule(&self) -> bool {
        self.offered_rate() >= 0.95 * self.nominal_rate() as f64
    }

    fn loss(&self) -> f64 {
        self.sent.saturating_sub(self.received) as f64 / self.sent.max(1) as f64
    }

    fn cpu_us_per_packet(&self) -> f64 {
        self.cpu_ns as f64 / 1e3 / self.received.max(1) as f64
    }

    fn row(&self) -> String {
        let mut row = format!(
            "| {} | {:?} | {} | {} | {:.0} | {:.0} | {:.3}% | {} / {} | {} | {} / {} / {} | {:.1} / {:.1} | {:.2} | {:.2} |",
            self.relay,
            self.media,
            self.calls,
            self.sent,
            self.offered_rate(),
            self.received as f64 / self.send_time.as_secs_f64(),
            100.0 * self.loss(),
            self.relay_drops,
            self.own_drops,
            self.reordered,
            self.p50,
            self.p99,
            self.max,
            self.steal.0,
            self.steal.1,
            self.cpu_us_per_packet(),
            self.cpu_us_per_packet(),
        );
        if self.undecryptable > 0 {
            row.push_str(&format!(
                "\n({} packets could not be decrypted at the receiver)",
                self.undecryptable
            ));
        }
        row
    }
}

/// `calls` calls through a fresh target for `args.duration` seconds.
fn run(args: &Args, calls: u32) -> Result<Summary> {
    pin(args.relay_core); // in-process relay workers inherit this core
    let mut target: Box<dyn Target> = match args.target {
        TargetKind::SrtpRelay => Box::new(InProcess::start(args.media, args.workers)?),
        TargetKind::Trivial => {
            anyhow::ensure!(
                args.media == Media::RtpRtp,
                "the trivial forwarder does rtp-rtp only"
            );
            Box::new(trivial::Trivial::new())
        }
        TargetKind::Rtpengine => {
            let pid = args
                .rtpengine_pid
                .context("--rtpengine-pid is needed to read rtpengine's CPU time")?;
            Box::new(Rtpengine::connect(args.ng, pid, args.media)?)
        }
    };
    pin(args.load_core);

    let a = UdpSocket::bind("127.0.0.1:0")?;
    let b = UdpSocket::bind("127.0.0.1:0")?;
    b.set_nonblocking(true)?;
    // Room for the datagrams of a few milliseconds at any rate this measures, so that the
    // load generator's own socket is not where packets are lost (capped by net.core.rmem_max;
    // its drops are counted apart all the same).
    let _ = socket2::SockRef::from(&b).set_recv_buffer_size(4 << 20);
    let (a_addr, b_addr) = (a.local_addr()?, b.local_addr()?);

    let srtp_in = args.media != Media::RtpRtp;
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    let setup_start = Instant::now();
    let rss_before = rss_kib();
    for n in 0..calls {
        let key = srtp_in.then(|| MasterKey::generate(PROFILE));
        let setup = target.create(n, a_addr, b_addr, key.as_ref())?;
        let tx = key
            .map(|k| Session::new(&Policy::new(PROFILE, k)))
            .transpose()?;
        senders.push((setup.a_target, tx));
        receivers.push(setup.b_policy.map(|p| Session::new(&p)).transpose()?);
    }
    eprintln!(
        "{}: {} calls ({:?}) set up in {:.2?}; this process grew by {} KiB ({:.1} KiB per call, \
         both ends' sessions included)",
        target.name(),
        calls,
        args.media,
        setup_start.elapsed(),
        rss_kib().saturating_sub(rss_before),
        rss_kib().saturating_sub(rss_before) as f64 / f64::from(calls.max(1)),
    );

    pin(args.relay_core); // threads a target starts now run on the relay's core
    target.start();
    pin(args.load_core);
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    // The load generator's own sockets: `b` receives the media, `a` whatever the relay sends
    // back toward the callers (the bridge's RTCP receiver reports), unread.
    let own = [a_addr.port(), b_addr.port()];
    let own_drops_now = || own.iter().map(|&p| drops::socket_drops(p)).sum::<u64>();
    let (own_drops_before, all_drops_before) = (own_drops_now(), drops::rcvbuf_errors());
    let receiver = {
        let (stop, received) = (Arc::clone(&stop), Arc::clone(&received));
        let core = args.load_core;
        std::thread::spawn(move || receive(b, receivers, calls as usize, &stop, &received, core))
    };

    let cpu = target.cpu();
    let cpu_start = cpu.nanos();
    let cores_start = (CoreTime::of(args.relay_core), CoreTime::of(args.load_core));
    let interval = Duration::from_secs(1) / args.pps;
    let rounds = args.duration * u64::from(args.pps);
    let mut buf = [0u8; PACKET + MAX_TRAILER_LEN];
    let mut sent = 0u64;
    let mut last_report = Instant::now();
    let start = Instant::now();
    for round in 0..rounds {
        for (n, (dest, tx)) in senders.iter_mut().enumerate() {
            let offset = interval * n as u32 / calls.max(1);
            let due = start + interval * round as u32 + offset;
            wait_until(due);
            let len = packet(&mut buf, n as u32, round as u32, tx.as_mut());
            let _ = a.send_to(&buf[..len], *dest);
            sent += 1;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let t = start.elapsed().as_secs_f64();
            let r = received.load(Ordering::Relaxed);
            let cpu_pct = (cpu.nanos() - cpu_start) as f64 / 1e7 / t;
            eprint!(
                "\r  t={t:5.1}s  sent {sent}  received {r}  ({:.0} pkt/s)  relay CPU {cpu_pct:.1}%   ",
                r as f64 / t
            );
        }
    }
    let send_time = start.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let cpu_ns = cpu.nanos() - cpu_start;
    let steal = (
        CoreTime::of(args.relay_core).steal_since(&cores_start.0),
        CoreTime::of(args.load_core).steal_since(&cores_start.1),
    );
    stop.store(true, Ordering::Relaxed);
    let report = receiver.join().expect("receiver thread");
    let own_drops = own_drops_now().saturating_sub(own_drops_before);
    let all_drops = drops::rcvbuf_errors().saturating_sub(all_drops_before);
    eprintln!();
    let relay = target.name();
    target.teardown()?;

    let mut lat = report.latency_us;
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Ok(Summary {
        relay,
        media: args.media,
        calls,
        pps: args.pps,
        sent,
        received: report.received,
        send_time,
        reordered: report.reordered,
        undecryptable: report.undecryptable,
        p50: pct(0.50),
        p99: pct(0.99),
        max: lat.last().copied().unwrap_or(0),
        cpu_ns,
        own_drops,
        relay_drops: all_drops.saturating_sub(own_drops),
        steal,
    })
}

/// Resident memory of this process, KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Sleeps until `due` (never spins: the receiver shares this core).
fn wait_until(due: Instant) {
    let now = Instant::now();
    if due > now + Duration::from_micros(50) {
        std::thread::sleep(due - now);
    }
}

/// The wall clock as the kernel stamps received datagrams: time since the Unix epoch.
fn unix_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Builds call `n`'s packet `seq` (protected if `tx`): the payload starts with the call,
/// the sequence and the send time (wall clock, comparable with the kernel's receive
/// timestamps), for loss, order and latency at the receiver.
fn packet(buf: &mut [u8], n: u32, seq: u32, tx: Option<&mut Session>) -> usize {
    buf[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    buf[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
    buf[4..8].copy_from_slice(&seq.wrapping_mul(160).to_be_bytes());
    buf[8..12].copy_from_slice(&(SSRC_BASE + n).to_be_bytes());
    buf[12..16].copy_from_slice(&n.to_be_bytes());
    buf[16..20].copy_from_slice(&seq.to_be_bytes());
    buf[20..28].copy_from_slice(&(unix_now().as_nanos() as u64).to_be_bytes());
    buf[28..PACKET].fill(0xd5);
    match tx {
        Some(s) => s.protect_rtp(buf, PACKET).unwrap_or(PACKET),
        None => PACKET,
    }
}

/// Accounts one received datagram.
fn record(
    buf: &mut [u8],
    sessions: &mut [Option<Session>],
    highest: &mut [Option<u32>],
    arrival: Duration,
    r: &mut Report,
    received: &AtomicU64,
) {
    let calls = sessions.len();
    if buf.len() < 28 {
        return;
    }
    let ssrc = u32::from_be_bytes(buf[8..12].try_into().expect("4"));
    let Some(n) = ssrc
        .checked_sub(SSRC_BASE)
        .map(|n| n as usize)
        .filter(|&n| n < calls)
    else {
        return;
    };
    let plain = match sessions[n].as_mut() {
        Some(s) => match s.unprotect_rtp(buf) {
            Ok(p) => p,
            Err(_) => {
                r.undecryptable += 1;
                return;
            }
        },
        None => buf,
    };
    if plain.len() < 28 {
        return;
    }
    let seq = u32::from_be_bytes(plain[16..20].try_into().expect("4"));
    let sent_ns = u64::from_be_bytes(plain[20..28].try_into().expect("8"));
    let now_ns = arrival.as_nanos() as u64;
    r.latency_us
        .push((now_ns.saturating_sub(sent_ns) / 1000) as u32);
    match highest[n] {
        Some(h) if seq < h => r.reordered += 1,
        _ => highest[n] = Some(seq),
    }
    r.received += 1;
    received.fetch_add(1, Ordering::Relaxed);
}

struct Report {
    received: u64,
    reordered: u64,
    undecryptable: u64,
    latency_us: Vec<u32>,
}

fn receive(
    sock: UdpSocket,
    mut sessions: Vec<Option<Session>>,
    calls: usize,
    stop: &AtomicBool,
    received: &AtomicU64,
    core: usize,
) -> Report {
    pin(core);
    let mut highest = vec![None::<u32>; calls];
    let mut r = Report {
        received: 0,
        reordered: 0,
        undecryptable: 0,
        latency_us: Vec::with_capacity(1 << 20),
    };
    // Batched receive (recvmmsg), polled every `RECEIVE_POLL` instead of sleeping on the
    // socket: a receiver asleep on the socket would be woken by every datagram the relay
    // sends, and on loopback that wake-up is charged to the relay's send (on a real network
    // the receiver is another machine). The kernel stamps each datagram on arrival
    // (SO_TIMESTAMPNS, which quinn-udp turns on), so latency stays exact.
    const BATCH: usize = 32;
    const RECEIVE_POLL: Duration = Duration::from_micros(500);
    let state = UdpSocketState::new(UdpSockRef::from(&sock)).expect("socket state");
    let mut bufs = vec![[0u8; 2048]; BATCH];
    let mut meta = vec![RecvMeta::default(); BATCH];
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(RECEIVE_POLL);
        loop {
            let n = {
                let mut slices: Vec<IoSliceMut<'_>> =
                    bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
                match state.recv(UdpSockRef::from(&sock), &mut slices, &mut meta) {
                    Ok(n) => n,
                    Err(_) => break,
                }
            };
            for (buf, m) in bufs.iter_mut().zip(&meta).take(n) {
                let arrival = m.timestamp.unwrap_or_else(unix_now);
                record(
                    &mut buf[..m.len.min(2048)],
                    &mut sessions,
                    &mut highest,
                    arrival,
                    &mut r,
                    received,
                );
            }
            if n < BATCH {
                break;
            }
        }
    }
    r
}
