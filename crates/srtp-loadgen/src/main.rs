//! `srtp-loadgen`: N simulated calls at 50 packets/s of 172-byte G.711 packets through a relay
//! (srtp-relay in this process, or a running rtpengine through its ng port), one direction,
//! with a progress line and a summary: forwarded packets/s, loss, reordering, latency through
//! the relay (p50/p99/max, loopback included) and the relay's CPU per packet from /proc.
//!
//! ```sh
//! cargo run --release -p srtp-loadgen -- --calls 500 --duration 20 --media srtp-rtp
//! rtpengine --config-file=none --foreground --table=-1 --interface=127.0.0.1 \
//!     --listen-ng=127.0.0.1:2223 --port-min=20000 --port-max=29999 --num-threads=1 &
//! cargo run --release -p srtp-loadgen -- --target rtpengine --rtpengine-pid $! --calls 500
//! ```
//! The relay under test runs on core `--relay-core` (in-process workers inherit it; pin an
//! external relay with `taskset`), the load on `--load-core`.

mod cpu;
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
    let (a_addr, b_addr) = (a.local_addr()?, b.local_addr()?);

    let srtp_in = args.media != Media::RtpRtp;
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    let setup_start = Instant::now();
    let rss_before = rss_kib();
    for n in 0..args.calls {
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
        args.calls,
        args.media,
        setup_start.elapsed(),
        rss_kib().saturating_sub(rss_before),
        rss_kib().saturating_sub(rss_before) as f64 / f64::from(args.calls.max(1)),
    );

    pin(args.relay_core); // threads a target starts now run on the relay's core
    target.start();
    pin(args.load_core);
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let receiver = {
        let (stop, received) = (Arc::clone(&stop), Arc::clone(&received));
        let calls = args.calls as usize;
        let core = args.load_core;
        std::thread::spawn(move || receive(b, receivers, calls, epoch, &stop, &received, core))
    };

    let cpu = target.cpu();
    let cpu_start = cpu.nanos();
    let interval = Duration::from_secs(1) / args.pps;
    let rounds = args.duration * u64::from(args.pps);
    let mut buf = [0u8; PACKET + MAX_TRAILER_LEN];
    let mut sent = 0u64;
    let mut last_report = Instant::now();
    let start = Instant::now();
    for round in 0..rounds {
        for (n, (dest, tx)) in senders.iter_mut().enumerate() {
            let offset = interval * n as u32 / args.calls.max(1);
            let due = start + interval * round as u32 + offset;
            wait_until(due);
            let len = packet(&mut buf, n as u32, round as u32, epoch, tx.as_mut());
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
    let cpu_used = cpu.nanos() - cpu_start;
    stop.store(true, Ordering::Relaxed);
    let report = receiver.join().expect("receiver thread");
    eprintln!();
    target.teardown()?;

    let got = report.received;
    let mut lat = report.latency_us;
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!("| relay | media | calls | sent | forwarded pkt/s | loss | reordered | latency p50 / p99 / max (µs) | relay CPU-s per Mpkt | relay CPU µs/pkt |");
    println!("|---|---|---:|---:|---:|---:|---:|---|---:|---:|");
    println!(
        "| {} | {:?} | {} | {} | {:.0} | {:.3}% | {} | {} / {} / {} | {:.2} | {:.2} |",
        target.name(),
        args.media,
        args.calls,
        sent,
        got as f64 / send_time.as_secs_f64(),
        100.0 * sent.saturating_sub(got) as f64 / sent.max(1) as f64,
        report.reordered,
        pct(0.50),
        pct(0.99),
        lat.last().copied().unwrap_or(0),
        cpu_used as f64 / 1e9 / (got.max(1) as f64 / 1e6),
        cpu_used as f64 / 1e3 / got.max(1) as f64,
    );
    if report.undecryptable > 0 {
        println!(
            "({} packets could not be decrypted at the receiver)",
            report.undecryptable
        );
    }
    Ok(())
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

/// Builds call `n`'s packet `seq` (protected if `tx`): the payload starts with the call,
/// the sequence and the send time, for loss, order and latency at the receiver.
fn packet(buf: &mut [u8], n: u32, seq: u32, epoch: Instant, tx: Option<&mut Session>) -> usize {
    buf[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    buf[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
    buf[4..8].copy_from_slice(&seq.wrapping_mul(160).to_be_bytes());
    buf[8..12].copy_from_slice(&(SSRC_BASE + n).to_be_bytes());
    buf[12..16].copy_from_slice(&n.to_be_bytes());
    buf[16..20].copy_from_slice(&seq.to_be_bytes());
    buf[20..28].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
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
    epoch: Instant,
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
    let now_ns = epoch.elapsed().as_nanos() as u64;
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
    epoch: Instant,
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
    // Batched receive (recvmmsg): the load generator must cost less than the relay it loads.
    const BATCH: usize = 32;
    let state = UdpSocketState::new(UdpSockRef::from(&sock)).expect("socket state");
    let mut bufs = vec![[0u8; 2048]; BATCH];
    let mut meta = vec![RecvMeta::default(); BATCH];
    let mut poll = mio::Poll::new().expect("poll");
    let mut mio_sock = mio::net::UdpSocket::from_std(sock.try_clone().expect("clone"));
    poll.registry()
        .register(&mut mio_sock, mio::Token(0), mio::Interest::READABLE)
        .expect("register");
    let mut events = mio::Events::with_capacity(4);
    while !stop.load(Ordering::Relaxed) {
        let _ = poll.poll(&mut events, Some(Duration::from_millis(50)));
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
                record(
                    &mut buf[..m.len.min(2048)],
                    &mut sessions,
                    &mut highest,
                    epoch,
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
