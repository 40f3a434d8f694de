//! Proves the per-packet path allocates nothing: a counting global allocator watches protect
//! and unprotect of SRTP and SRTCP, one packet and batched, for every profile with and
//! without MKI and key derivation rate, once each stream exists.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use srtp_core::{BatchPacket, MasterKey, Mki, Policy, Profile, Session, MAX_TRAILER_LEN};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

std::thread_local! {
    /// Counting is on for this thread only: the test harness's own threads may allocate
    /// while the measured code runs.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator unchanged, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while `f` runs.
fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

/// One test function only, so that no other test thread counts into the same total.
#[test]
fn per_packet_path_never_allocates() {
    for profile in Profile::ALL {
        for (mki, kdr, cryptex) in [
            (false, None, false),
            (true, None, false),
            (false, Some(2), false),
            (false, None, true),
        ] {
            let material: Vec<u8> = (0..profile.key_material_len() as u8).collect();
            let mut key = MasterKey::from_key_material(profile, &material).unwrap();
            if mki {
                key = key.with_mki(Mki::new(7, 2).unwrap());
            }
            let mut policy = Policy::new(profile, key);
            policy.key_derivation_rate = kdr;
            policy.cryptex = cryptex;
            let mut tx = Session::new(&policy).unwrap();
            let mut rx = Session::new(&policy).unwrap();

            let mut rtp = [0u8; 1212 + MAX_TRAILER_LEN];
            rtp[0] = 0x80;
            rtp[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
            if cryptex {
                // Two CSRCs and a one-word extension, encrypted with the payload.
                with_header_extension(&mut rtp);
            }
            let mut rtcp = [0u8; 80 + MAX_TRAILER_LEN];
            rtcp[..8].copy_from_slice(&[0x80, 200, 0, 19, 0x12, 0x34, 0x56, 0x78]);

            // The first packet of a stream creates its state (one allocation, after
            // authentication); everything after must allocate nothing.
            exchange(0, &mut tx, &mut rx, &mut rtp, &mut rtcp);

            let n = allocations_during(|| {
                for seq in 1..200u16 {
                    exchange(seq, &mut tx, &mut rx, &mut rtp, &mut rtcp);
                }
                // A forged packet costs nothing either.
                rtp[2..4].copy_from_slice(&500u16.to_be_bytes());
                let len = tx.protect_rtp(&mut rtp, 172).unwrap();
                rtp[20] ^= 1;
                assert!(rx.unprotect_rtp(&mut rtp[..len]).is_err());
            });
            assert_eq!(
                n, 0,
                "{profile} mki={mki} kdr={kdr:?} cryptex={cryptex}: {n} allocations"
            );

            let mut bufs = [[0u8; 172 + MAX_TRAILER_LEN]; 8];
            for (i, b) in bufs.iter_mut().enumerate() {
                b[0] = 0x80;
                b[2..4].copy_from_slice(&(600 + i as u16).to_be_bytes());
                b[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
                if cryptex {
                    with_header_extension(b);
                }
            }
            let n = allocations_during(|| {
                let [a, b, c, d, e, f, g, h] = &mut bufs;
                let mut batch = [a, b, c, d, e, f, g, h].map(|buf| BatchPacket::new(buf, 172));
                tx.protect_rtp_batch(&mut batch);
                rx.unprotect_rtp_batch(&mut batch);
                assert!(batch.iter().all(|p| p.result.is_ok() && p.len == 172));
            });
            assert_eq!(n, 0, "{profile} batch: {n} allocations");
        }
    }
}

fn exchange(seq: u16, tx: &mut Session, rx: &mut Session, rtp: &mut [u8], rtcp: &mut [u8]) {
    rtp[2..4].copy_from_slice(&seq.to_be_bytes());
    let n = tx.protect_rtp(rtp, 1212).unwrap();
    rx.unprotect_rtp(&mut rtp[..n]).unwrap();
    let n = tx.protect_rtcp(rtcp, 80).unwrap();
    rx.unprotect_rtcp(&mut rtcp[..n]).unwrap();
}

/// Two CSRCs and a one-byte-profile extension block of one word in `rtp`'s header.
fn with_header_extension(rtp: &mut [u8]) {
    rtp[0] = 0x80 | 0x10 | 2;
    rtp[20..24].copy_from_slice(&[0xBE, 0xDE, 0, 1]);
    rtp[24..28].copy_from_slice(&[0x10, 0xAA, 0, 0]);
}
